// Package fileperm creates private files: the databases, replicas and
// caches pimbridge keeps hold credentials' hashes and personal data, so
// they are mode 0600 in directories it creates 0700, whatever the umask or
// a parent directory's default ACL. It imports the standard library only.
package fileperm

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Private makes sure the file at path exists with mode 0600 (creating its
// directory 0700 when missing) and chmods SQLite's side files (-wal, -shm,
// -journal) that exist to 0600. SQLite creates its side files with the
// mode of the database file, so a database opened after Private stays
// private.
func Private(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("fileperm: create directory of %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("fileperm: open %s: %w", path, err)
	}
	defer f.Close()
	if err := f.Chmod(0o600); err != nil {
		return fmt.Errorf("fileperm: chmod %s: %w", path, err)
	}
	for _, side := range []string{"-wal", "-shm", "-journal"} {
		if err := os.Chmod(path+side, 0o600); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("fileperm: chmod %s: %w", path+side, err)
		}
	}
	return nil
}
