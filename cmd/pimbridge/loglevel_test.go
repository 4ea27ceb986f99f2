package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmtest"
)

// syncBuffer is a bytes.Buffer safe for a process's stderr and a test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestDaemon_logLevelChangesOnSIGHUP runs the real binary as a daemon at
// log.level = "info": no trace lines; log.level = "trace" in the file and a
// SIGHUP: trace lines of the CRM and CardDAV requests of the next passes,
// without a restart; back to "warn" and SIGHUP: the info lines stop too;
// `pimbridge log-level trace` over the control socket: trace lines again.
func TestDaemon_logLevelChangesWithoutRestart(t *testing.T) {
	ctx := context.Background()
	crmSrv := crmtest.Start(t, nil)
	if _, err := crmSrv.Alice.Client.Create(ctx, crm.Record{Entity: crm.EntityContact, Attrs: map[string]any{
		"firstname": "Ada", "lastname": "Lovelace", "ownerid": crm.Ref{Entity: crm.EntitySystemUser, ID: crmSrv.Alice.ID},
	}}, nil); err != nil {
		t.Fatal(err)
	}
	_, book, davHTTP := startAddressBook(t)
	dir := t.TempDir()
	cfg := writeAliceConfig(t, dir, crmSrv.URL, davHTTP.URL+"/", book, "loglevel", "interval = \"1h\"\npoll = \"100ms\"")
	base, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	setLevel := func(level string) {
		t.Helper()
		if err := os.WriteFile(cfg, append(append([]byte{}, base...), "[log]\nlevel = \""+level+"\"\n"...), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	setLevel("info")

	cmd := pimbridgeCmd(cfg, "daemon")
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	waitFor := func(what string, cond func(string) bool) {
		t.Helper()
		for deadline := time.Now().Add(60 * time.Second); !cond(stderr.String()); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s\n%s", what, stderr.String())
			}
		}
	}
	waitFor("the first full cycle", func(s string) bool { return strings.Contains(s, `"msg":"pimbridge: cycle done"`) })
	if s := stderr.String(); strings.Contains(s, `"level":"TRACE"`) || strings.Contains(s, `"level":"DEBUG"`) {
		t.Fatalf("trace or debug lines at log.level = info:\n%s", s)
	}

	setLevel("trace")
	cmd.Process.Signal(syscall.SIGHUP)
	waitFor("trace lines of CRM and CardDAV requests after SIGHUP", func(s string) bool {
		return strings.Contains(s, `"msg":"trace: crm `) && strings.Contains(s, `"msg":"trace: carddav `)
	})

	setLevel("warn")
	cmd.Process.Signal(syscall.SIGHUP)
	waitFor("the level set to warn", func(s string) bool { return strings.Contains(s, `"log_level":"warn"`) })
	mark := len(stderr.String())
	time.Sleep(time.Second) // ten polls, each of which would trace at trace level
	if after := stderr.String()[mark:]; strings.Contains(after, `"level":"TRACE"`) || strings.Contains(after, `"level":"INFO"`) {
		t.Errorf("trace or info lines after the level went to warn:\n%s", after)
	}

	// The control socket: `pimbridge log-level trace` (the binary again).
	out, err := pimbridgeCmd(cfg, "log-level", "trace").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "trace" {
		t.Fatalf("log-level trace: %v: %s", err, out)
	}
	mark = len(stderr.String())
	waitFor("trace lines after log-level trace", func(s string) bool {
		return strings.Contains(s[mark:], `"msg":"trace: crm `)
	})
	if out, err := pimbridgeCmd(cfg, "log-level").CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "trace" {
		t.Errorf("log-level (read): %v: %s", err, out)
	}
	if out, err := pimbridgeCmd(cfg, "log-level", "loud").CombinedOutput(); err == nil || !strings.Contains(string(out), `"loud"`) {
		t.Errorf("log-level loud: %v: %s", err, out)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("daemon: %v\n%s", err, stderr.String())
	}
}
