package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmtest"
)

// progressCRM is a CRM server with n contacts of alice's.
func progressCRM(t *testing.T, n int) *crmtest.Server {
	t.Helper()
	ctx := context.Background()
	cs := crmtest.Start(t, nil)
	me := crm.Ref{Entity: crm.EntitySystemUser, ID: cs.Alice.ID}
	for i := range n {
		if _, err := cs.Alice.Client.Create(ctx, crm.Record{Entity: crm.EntityContact, Attrs: map[string]any{"lastname": fmt.Sprintf("p%d", i), "ownerid": me}}, nil); err != nil {
			t.Fatal(err)
		}
	}
	return cs
}

// TestSync_progressBarOnTerminal runs `pimbridge sync` (the binary) with
// stderr on a pseudo-terminal for a first sync of 400 contacts: a bar for
// the address book with count, rate and estimate, redrawn in place.
func TestSync_progressBarOnTerminal(t *testing.T) {
	cs := progressCRM(t, 400)
	_, book, davHTTP := startAddressBook(t)
	cfg := writeAliceConfig(t, t.TempDir(), cs.URL, davHTTP.URL+"/", book, "bar", "")
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	cmd := pimbridgeCmd(cfg, "sync")
	var stdout bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, tty
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	tty.Close()
	var screen bytes.Buffer
	copied := make(chan struct{})
	go func() { io.Copy(&screen, ptmx); close(copied) }() // ends when the child closes the terminal
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("sync: %v\n%s", err, screen.String())
		}
	case <-time.After(3 * time.Minute):
		cmd.Process.Kill()
		t.Fatalf("sync did not finish")
	}
	select {
	case <-copied:
	case <-time.After(10 * time.Second):
	}
	out := screen.String()
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(regexp.QuoteMeta(book) + ` +100% \|█+\| \(400/400`), // the book's bar, full
		regexp.MustCompile(`\d+(\.\d+)? items/s`),                              // the rate
		regexp.MustCompile(`\[\d+[smh0-9]*:\d+[smh0-9]*\]`),                    // elapsed:estimate
	} {
		if !want.MatchString(out) {
			t.Errorf("the terminal shows no %v:\n%q", want, out)
		}
	}
	if !strings.Contains(out, "\r\x1b[K") || strings.Contains(out, "synced 400 of 400") {
		t.Errorf("not a bar redrawn in place:\n%q", out)
	}
	if !strings.Contains(stdout.String(), "to PIM: 400 created") {
		t.Errorf("stdout: %s", stdout.String())
	}
}

// TestSync_progressPlainLinesOffTerminal: the same first sync with stderr
// not a terminal prints a plain line when the book starts and per tenth, and no escape
// codes.
func TestSync_progressPlainLinesOffTerminal(t *testing.T) {
	cs := progressCRM(t, 400)
	_, book, davHTTP := startAddressBook(t)
	dir := t.TempDir()
	cfg := writeAliceConfig(t, dir, cs.URL, davHTTP.URL+"/", book, "lines", "")
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"--config", cfg, "sync"}, nil, &stdout, &stderr); err != nil {
		t.Fatalf("sync: %v\n%s", err, stderr.String())
	}
	out := stderr.String()
	if n := strings.Count(out, "pimbridge: "+book+": "); n != 11 || !strings.Contains(out, "400 of 400 items (100%)") || strings.Contains(out, "\x1b[") {
		t.Errorf("%d progress lines:\n%s", n, out)
	}
}
