package crmstore_test

import (
	"os"
	"slices"
	"testing"
)

// TestMigrations_VersionedAlike: the SQLite and PostgreSQL migrations
// have the same numbers and names, so that a schema version means the
// same on both backends.
func TestMigrations_VersionedAlike(t *testing.T) {
	names := func(dir string) []string {
		es, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range es {
			if !e.IsDir() && len(e.Name()) > 4 && e.Name()[len(e.Name())-4:] == ".sql" {
				out = append(out, e.Name())
			}
		}
		slices.Sort(out)
		return out
	}
	lite, pg := names("migrations"), names("migrations/postgres")
	if !slices.Equal(lite, pg) {
		t.Errorf("migrations differ:\n sqlite   %v\n postgres %v", lite, pg)
	}
}
