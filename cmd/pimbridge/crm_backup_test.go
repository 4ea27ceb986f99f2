package main

import (
	"context"
	"database/sql"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/pimbridge/pimbridge/crm/crmclient"
	"github.com/pimbridge/pimbridge/crm/crmmigrate"
	"github.com/pimbridge/pimbridge/crm/crmserver"
	"github.com/pimbridge/pimbridge/crm/crmstore"
	"github.com/pimbridge/pimbridge/crm/crmtest"
	"github.com/pimbridge/pimbridge/internal/realserver"
)

// servedPopulated starts `crm serve` on db with admin and alice and fills
// it through the API (crmtest.Populate).
func servedPopulated(t *testing.T, db string) (url string, stop func(), pop crmtest.Population) {
	t.Helper()
	ctx := context.Background()
	pwFile := filepath.Join(t.TempDir(), "adminpw")
	if err := os.WriteFile(pwFile, []byte(crmtest.AdminPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := run(ctx, []string{"crm", "user", "add", "alice", "--role", crmserver.RoleSalesperson, "--password-stdin", "--db", db, "--bcrypt-cost", "4"},
		strings.NewReader(crmtest.AlicePassword+"\n"), io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	url, stop = startServe(t, db, "--admin-password-file", pwFile)
	admin, err := crmclient.New(url, &crmclient.Options{User: "admin", Password: crmtest.AdminPassword})
	if err != nil {
		t.Fatal(err)
	}
	alice, err := crmclient.New(url, &crmclient.Options{User: "alice", Password: crmtest.AlicePassword})
	if err != nil {
		t.Fatal(err)
	}
	return url, stop, crmtest.Populate(t, admin, alice, 3)
}

func openQuiet(t *testing.T, db string) *crmstore.Store {
	t.Helper()
	st, err := crmstore.Open(context.Background(), db, &crmstore.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// TestBackup_SQLiteOnline: SQLite's online backup of the database of a
// running server (VACUUM INTO, the page copy sqlite3's .backup makes)
// holds every row of the source, and a server started on it serves the
// same users and tokens.
func TestBackup_SQLiteOnline(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db := filepath.Join(dir, "crm.db")
	_, stop, pop := servedPopulated(t, db)
	backup := filepath.Join(dir, "backup.db")
	conn, err := sql.Open("sqlite", "file:"+db)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, "VACUUM INTO ?", backup); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	stop()
	if _, err := crmmigrate.Verify(ctx, openQuiet(t, db), openQuiet(t, backup), nil); err != nil {
		t.Fatalf("backup differs from the source: %v", err)
	}
	url, _ := startServe(t, backup)
	c, err := crmclient.New(url, &crmclient.Options{Token: pop.Token})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := c.Get(ctx, "new_project", pop.IDs["new_project"][0]); err != nil || r.Attrs["new_name"] != "Project 0" {
		t.Errorf("custom record on the restored server with the old token: %v, %v", r.Attrs, err)
	}
}

// TestBackup_PgDumpRestore: pg_dump -Fc of a served PostgreSQL database,
// restored with pg_restore into a new one, holds every row of the source,
// and a server started on it serves the same users and tokens.
func TestBackup_PgDumpRestore(t *testing.T) {
	ctx := context.Background()
	pg := crmtest.PostgresServer(t)
	src := pg.NewDatabase(t)
	_, stop, pop := servedPopulated(t, src)
	// The test's database is a schema of the server's shared database
	// (realserver.NewDatabase): dump that schema, restore it into a
	// database of its own.
	_, schema, ok := strings.Cut(src, "search_path%3D")
	if !ok {
		t.Fatalf("no schema in %s", src)
	}
	bin := realserver.PostgresBin()
	dump := filepath.Join(t.TempDir(), "crm.dump")
	if out, err := exec.Command(filepath.Join(bin, "pg_dump"), "-Fc", "-n", schema, "-f", dump, "--dbname", src).CombinedOutput(); err != nil {
		t.Fatalf("pg_dump: %v\n%s", err, out)
	}
	stop()
	name := "restored_" + schema
	if out, err := exec.Command(filepath.Join(bin, "createdb"), "-h", "127.0.0.1", "-p", strconv.Itoa(pg.Port), "-U", "postgres", name).CombinedOutput(); err != nil {
		t.Fatalf("createdb: %v\n%s", err, out)
	}
	restored := pg.URL(name) + "&options=-csearch_path%3D" + schema
	if out, err := exec.Command(filepath.Join(bin, "pg_restore"), "--no-owner", "--exit-on-error", "--dbname", pg.URL(name), dump).CombinedOutput(); err != nil {
		t.Fatalf("pg_restore: %v\n%s", err, out)
	}
	if _, err := crmmigrate.Verify(ctx, openQuiet(t, src), openQuiet(t, restored), nil); err != nil {
		t.Fatalf("restored database differs from the source: %v", err)
	}
	url, _ := startServe(t, restored)
	c, err := crmclient.New(url, &crmclient.Options{Token: pop.Token})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := c.Get(ctx, "new_project", pop.IDs["new_project"][0]); err != nil || r.Attrs["new_name"] != "Project 0" {
		t.Errorf("custom record on the restored server with the old token: %v, %v", r.Attrs, err)
	}
}
