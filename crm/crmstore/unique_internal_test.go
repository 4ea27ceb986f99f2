package crmstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
)

// TestIsUniqueErr_ByCode: a UNIQUE or PRIMARY KEY violation is recognised
// by SQLite's extended error code, wrapped or not; other constraint
// failures and an error that merely says the words are not.
func TestIsUniqueErr_ByCode(t *testing.T) {
	ctx := context.Background()
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "u.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, "INSERT INTO t (id, name) VALUES (1, 'a')"); err != nil {
		t.Fatal(err)
	}
	_, unique := db.ExecContext(ctx, "INSERT INTO t (id, name) VALUES (2, 'a')")
	_, pk := db.ExecContext(ctx, "INSERT INTO t (id, name) VALUES (1, 'b')")
	_, notNull := db.ExecContext(ctx, "INSERT INTO t (id, name) VALUES (3, NULL)")
	for _, tt := range []struct {
		name string
		err  error
		want bool
	}{
		{"unique", unique, true},
		{"primary key", pk, true},
		{"wrapped unique", fmt.Errorf("crmstore: create user: %w", unique), true},
		{"not null", notNull, false},
		{"text only", errors.New("UNIQUE constraint failed: t.name"), false},
		{"nil", nil, false},
	} {
		if got := isUniqueErr(tt.err); got != tt.want {
			t.Errorf("isUniqueErr(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}
