package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmstore"
)

// TestCRM_UserLifecycle: users are disabled, enabled, given a new password,
// stripped of a role and removed from the CLI, and roles deleted, with no
// SQLite editing; each step shows in what a login can do.
func TestCRM_UserLifecycle(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "crm.db")
	ctx := context.Background()
	var out, errb bytes.Buffer
	cli := func(stdin string, args ...string) error {
		out.Reset()
		errb.Reset()
		return run(ctx, append(args, "--db", db, "--bcrypt-cost", "4"), strings.NewReader(stdin), &out, &errb)
	}
	login := func(pw string) error {
		st, err := crmstore.Open(ctx, db, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		_, err = st.Authenticate(ctx, "carol", pw)
		return err
	}
	const pw1, pw2 = "carol-Password-1", "carol-Password-2"
	if err := cli(pw1+"\n", "crm", "user", "add", "carol", "--role", "salesperson", "--password-stdin"); err != nil {
		t.Fatalf("add: %v %s", err, errb.String())
	}
	steps := []struct {
		args    []string
		stdin   string
		pw      string
		loginOK bool
	}{
		{[]string{"crm", "user", "disable", "carol"}, "", pw1, false},
		{[]string{"crm", "user", "enable", "carol"}, "", pw1, true},
		{[]string{"crm", "user", "passwd", "carol", "--password-stdin"}, pw2 + "\n", pw1, false},
		{[]string{"crm", "user", "list"}, "", pw2, true},
	}
	for _, s := range steps {
		if err := cli(s.stdin, s.args...); err != nil {
			t.Fatalf("%v: %v %s", s.args, err, errb.String())
		}
		if err := login(s.pw); (err == nil) != s.loginOK {
			t.Errorf("after %v, login with %s: %v, want ok=%v", s.args, s.pw, err, s.loginOK)
		}
	}
	if err := cli("", "crm", "user", "unassign", "carol", "salesperson"); err != nil {
		t.Fatalf("unassign: %v %s", err, errb.String())
	}
	cli("", "crm", "user", "list")
	if strings.Contains(out.String(), "salesperson") && strings.Contains(out.String(), "carol") {
		for _, l := range strings.Split(out.String(), "\n") {
			if strings.HasPrefix(l, "carol") && strings.Contains(l, "salesperson") {
				t.Errorf("carol kept the role: %q", l)
			}
		}
	}
	if err := cli("", "crm", "role", "create", "viewer"); err != nil {
		t.Fatal(err)
	}
	if err := cli("", "crm", "role", "delete", "viewer"); err != nil {
		t.Errorf("role delete: %v %s", err, errb.String())
	}
	if err := cli("", "crm", "role", "delete", "admin"); err == nil {
		t.Errorf("deleting the built-in admin role succeeded")
	}
	if err := cli("", "crm", "user", "remove", "carol"); err != nil {
		t.Fatalf("remove: %v %s", err, errb.String())
	}
	if err := login(pw2); err == nil {
		t.Errorf("removed user can log in")
	}
	if err := cli("", "crm", "user", "disable", "nobody"); !errors.Is(err, crm.ErrNotFound) || !strings.Contains(err.Error(), "nobody") {
		t.Errorf("disable an unknown user = %v, want not found naming it", err)
	}
}

// TestCRM_AdminPasswordFileMode: --admin-password-file gets the same mode
// check as password_file: a world-readable file is refused.
func TestCRM_AdminPasswordFileMode(t *testing.T) {
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "adminpw")
	if err := os.WriteFile(pwFile, []byte("first-Admin-Password\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(pwFile, 0o644); err != nil {
		t.Fatal(err)
	}
	// On refusal serve returns at once; a server that starts anyway is
	// stopped after a while and counts as a failure.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := run(ctx, []string{"crm", "serve", "--db", filepath.Join(dir, "crm.db"), "--listen", "127.0.0.1:0",
		"--admin-password-file", pwFile, "--bcrypt-cost", "4"}, nil, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "world-readable") {
		t.Errorf("serve with a world-readable admin password file = %v, want refused", err)
	}
}

// TestCRM_RelativeDB: a relative --db works (relative to the working
// directory) and the store is where it says.
func TestCRM_RelativeDB(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	if err := os.Mkdir("data", 0o700); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"crm", "user", "add", "erin", "--role", "salesperson", "--password-stdin", "--db", "data/crm.db", "--bcrypt-cost", "4"},
		strings.NewReader("erin-Password-1\n"), &out, &errb); err != nil {
		t.Fatalf("user add with a relative --db: %v %s", err, errb.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "crm.db")); err != nil {
		t.Errorf("database not at data/crm.db: %v", err)
	}
	out.Reset()
	if err := run(context.Background(), []string{"crm", "user", "list", "--db", "data/crm.db"}, nil, &out, &errb); err != nil || !strings.Contains(out.String(), "erin") {
		t.Errorf("list = %v %q", err, out.String())
	}
}
