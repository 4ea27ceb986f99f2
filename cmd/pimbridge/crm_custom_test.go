package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmstore"
)

// TestCRMRole_GrantOnCustomEntity: `crm role grant --entity` accepts a
// custom entity by logical or entity-set name and keys the right by the
// logical name, which is what the server checks.
func TestCRMRole_GrantOnCustomEntity(t *testing.T) {
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "crm.db")
	st, err := crmstore.Open(ctx, db, &crmstore.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.AddEntity(ctx, *crm.NewCustomEntity("new_project", "new_projects", "new_name", 0)); err != nil {
		t.Fatal(err)
	}
	st.Close()
	var out, errb bytes.Buffer
	for _, args := range [][]string{
		{"crm", "role", "create", "viewer", "--db", db},
		{"crm", "role", "grant", "viewer", "--entity", "new_projects", "--access", "read", "--scope", "all", "--db", db},
	} {
		if err := run(ctx, args, nil, &out, &errb); err != nil {
			t.Fatalf("%v: %v (%s)", args, err, errb.String())
		}
	}
	out.Reset()
	if err := run(ctx, []string{"crm", "role", "list", "--db", db}, nil, &out, &errb); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"new_project": {`) || strings.Contains(out.String(), `"new_projects"`) {
		t.Errorf("role list = %s; want the right under new_project", out.String())
	}
}
