package fileperm_test

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/pimbridge/pimbridge/crm/crmstore"
	"github.com/pimbridge/pimbridge/idmap"
)

// TestFiles_PrivateWhateverTheUmask: the CRM database (also the offline
// replica, which is a crmstore) and the client cache, with SQLite's -wal
// and -shm files, are 0600 in a 0700 directory even under umask 0.
func TestFiles_PrivateWhateverTheUmask(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	dir := t.TempDir()
	ctx := context.Background()
	dbPath := filepath.Join(dir, "crmdata", "crm.db")
	st, err := crmstore.Open(ctx, dbPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateUser(ctx, "alice", "alice-secret-pw", "salesperson"); err != nil {
		t.Fatal(err)
	}
	cachePath := filepath.Join(dir, "state", "cache.db")
	c, err := idmap.Open(ctx, cachePath)
	if err != nil {
		t.Fatal(err)
	}
	checkMode := func(p string, want os.FileMode) {
		t.Helper()
		fi, err := os.Stat(p)
		if err != nil {
			t.Errorf("%s: %v", p, err)
			return
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode().Perm(), want)
		}
	}
	for _, p := range []string{dbPath, dbPath + "-wal", dbPath + "-shm", cachePath, cachePath + "-wal", cachePath + "-shm"} {
		checkMode(p, 0o600)
	}
	checkMode(filepath.Dir(dbPath), 0o700)
	checkMode(filepath.Dir(cachePath), 0o700)
	c.Close()
	st.Close()
}
