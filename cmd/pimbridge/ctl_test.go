package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pimbridge/pimbridge/bridge"
	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmclient"
	"github.com/pimbridge/pimbridge/crm/crmtest"
	"github.com/pimbridge/pimbridge/ctl"
	"github.com/pimbridge/pimbridge/idmap"
)

// TestSync_throughDaemon runs `pimbridge daemon` and then `pimbridge sync`
// while it runs: the daemon runs the cycle (a PIM edit made just before
// reaches the CRM, the daemon counts one more full cycle and logs it) and
// the CLI never opens a bridge of its own (the CRM password is gone from
// its environment, which an in-process cycle would need). `errors retry`
// and `status` go through the socket too, a second daemon is refused, and
// once the daemon stopped `sync` runs in-process again.
func TestSync_throughDaemon(t *testing.T) {
	ctx := context.Background()
	srv := crmtest.Start(t, nil)
	me := crm.Ref{Entity: crm.EntitySystemUser, ID: srv.Alice.ID}
	if _, err := srv.Alice.Client.Create(ctx, crm.Record{Entity: crm.EntityContact, Attrs: map[string]any{
		"firstname": "Ada", "lastname": "Lovelace", "ownerid": me,
	}}, nil); err != nil {
		t.Fatal(err)
	}
	dav, book, davHTTP := startAddressBook(t)

	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	// No light passes and no scheduled cycle within the test: every cycle
	// after the first is one that `sync` asked for.
	cfg := writeAliceConfig(t, dir, srv.URL, davHTTP.URL+"/", book, "ctl-test", "interval = \"1h\"\npoll = \"1h\"")
	runCmd := func(args ...string) (stdout, stderr string, err error) {
		var out, errb bytes.Buffer
		err = run(ctx, append([]string{"--config", cfg}, args...), strings.NewReader(""), &out, &errb)
		return out.String(), errb.String(), err
	}
	sock := filepath.Join(state, ctl.SocketName)
	daemonStatus := func() ctl.Status {
		t.Helper()
		c, err := ctl.Dial(ctx, sock)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		st, err := c.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}

	dctx, stopDaemon := context.WithCancel(ctx)
	defer stopDaemon()
	var dlog lockedBuffer
	done := make(chan error, 1)
	go func() { done <- run(dctx, []string{"--config", cfg, "daemon"}, nil, &bytes.Buffer{}, &dlog) }()
	wctx, wcancel := context.WithTimeout(ctx, 60*time.Second)
	defer wcancel()
	waitFor(t, wctx, "the daemon's first full cycle", func() (bool, error) {
		select {
		case err := <-done:
			t.Fatalf("daemon ended: %v\n%s", err, dlog.String())
		default:
		}
		c, err := ctl.Dial(ctx, sock)
		if errors.Is(err, ctl.ErrNoDaemon) {
			return false, nil
		} else if err != nil {
			return false, err
		}
		defer c.Close()
		st, err := c.Status(ctx)
		return err == nil && st.Cycles == 1, err
	})
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("control socket: %v, %v; want mode 0600", fi.Mode(), err)
	}

	// A CardDAV client adds Grace; the CLI cannot log in to the CRM itself.
	grace := "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:grace-1\r\nFN:Grace Hopper\r\nN:Hopper;Grace;;;\r\nEMAIL:grace@navy.example\r\nEND:VCARD\r\n"
	if _, err := dav.PutObject(ctx, book+"grace.vcf", []byte(grace), "", "*"); err != nil {
		t.Fatal(err)
	}
	os.Unsetenv("PIMBRIDGE_TEST_CRM_PW")

	out, errOut, err := runCmd("sync")
	if err != nil {
		t.Fatalf("pimbridge sync with a daemon: %v\n%s%s", err, out, errOut)
	}
	if !strings.HasPrefix(out, "to CRM: 1 created, 0 updated, 0 deleted; to PIM: 0 created") {
		t.Errorf("pimbridge sync printed %q, want the daemon's figures: 1 created to CRM", out)
	}
	recs, err := srv.Alice.Client.QueryAll(ctx, crm.EntityContact, crmclient.Query{Filter: "lastname eq 'Hopper'"})
	if err != nil || len(recs) != 1 {
		t.Fatalf("Grace in CRM after sync: %d records, %v; want 1", len(recs), err)
	}
	if st := daemonStatus(); st.Cycles != 2 || st.LastError != "" || st.ClientID != "ctl-test" {
		t.Errorf("daemon status after sync = %+v, want 2 full cycles, no error", st)
	}
	if !strings.Contains(dlog.String(), `"to_crm":{"created":1`) {
		t.Errorf("the daemon logged no cycle that created Grace:\n%s", dlog.String())
	}

	t.Run("json", func(t *testing.T) {
		out, errOut, err := runCmd("sync", "--json")
		if err != nil {
			t.Fatalf("sync --json: %v\n%s", err, errOut)
		}
		var st bridge.Stats
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			t.Fatalf("sync --json printed %q: %v", out, err)
		}
		if !st.Primary || st.ToCRM != (bridge.Counter{}) || st.ToPIM != (bridge.Counter{}) || st.Duration <= 0 {
			t.Errorf("sync --json = %+v, want an idle primary cycle", st)
		}
		if c := daemonStatus().Cycles; c != 3 {
			t.Errorf("daemon ran %d full cycles, want 3", c)
		}
	})
	t.Run("errors retry", func(t *testing.T) {
		_, _, err := runCmd("errors", "retry", "999")
		if !errors.Is(err, idmap.ErrNoSyncError) || !strings.HasPrefix(err.Error(), "ctl: retry: ") {
			t.Errorf("errors retry 999 = %v, want the daemon's no such sync error", err)
		}
	})
	t.Run("status", func(t *testing.T) {
		out, errOut, err := runCmd("status")
		if err != nil {
			t.Fatalf("status: %v\n%s", err, errOut)
		}
		if !strings.Contains(out, fmt.Sprintf("daemon         running (pid %d", os.Getpid())) {
			t.Errorf("status does not show the daemon:\n%s", out)
		}
	})
	t.Run("second daemon", func(t *testing.T) {
		t.Setenv("PIMBRIDGE_TEST_CRM_PW", crmtest.AlicePassword)
		c, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		err := run(c, []string{"--config", cfg, "daemon"}, nil, &bytes.Buffer{}, &bytes.Buffer{})
		if !errors.Is(err, ctl.ErrDaemonRunning) {
			t.Errorf("second daemon = %v, want ErrDaemonRunning", err)
		}
		daemonStatus() // the first one still answers
	})

	stopDaemon()
	if err := <-done; err != nil {
		t.Fatalf("daemon: %v\n%s", err, dlog.String())
	}
	if _, err := os.Lstat(sock); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("control socket after the daemon stopped: %v, want it removed", err)
	}

	// Without a daemon, sync runs in-process (and needs the password).
	os.Setenv("PIMBRIDGE_TEST_CRM_PW", crmtest.AlicePassword)
	if _, err := dav.PutObject(ctx, book+"alan.vcf", []byte(strings.NewReplacer("grace-1", "alan-1", "Grace Hopper", "Alan Turing",
		"Hopper;Grace", "Turing;Alan", "grace@navy", "alan@bletchley").Replace(grace)), "", "*"); err != nil {
		t.Fatal(err)
	}
	out, errOut, err = runCmd("sync")
	if err != nil {
		t.Fatalf("pimbridge sync without a daemon: %v\n%s%s", err, out, errOut)
	}
	if !strings.HasPrefix(out, "to CRM: 1 created") || strings.Contains(errOut, "the daemon is running") {
		t.Errorf("sync without a daemon printed %q (stderr %q), want an in-process cycle creating Alan", out, errOut)
	}
}

// TestCycleWaiter_nextStartedCycle: a caller gets the first full cycle that
// STARTS after it asked, never one already running nor a light pass.
func TestCycleWaiter_nextStartedCycle(t *testing.T) {
	outcome := func(ch <-chan cycleOutcome) (int, bool) {
		select {
		case o := <-ch:
			if o.err != nil {
				return -1, true
			}
			return o.st.Linked, true
		default:
			return 0, false
		}
	}
	var w cycleWaiter
	w.starting(false) // cycle 1 is running
	early := w.wait() // asked during cycle 1
	w.starting(true)  // (a light pass cannot start while a full cycle runs, but must not matter)
	w.done(true, bridge.Stats{Linked: 100}, nil)
	w.done(false, bridge.Stats{Linked: 1}, nil)
	if n, ok := outcome(early); ok {
		t.Fatalf("caller asking during cycle 1 got cycle %d, want to wait for cycle 2", n)
	}
	late := w.wait() // asked between cycles: merged into the same next cycle
	w.starting(false)
	again := w.wait() // asked during cycle 2
	w.done(false, bridge.Stats{Linked: 2}, errors.New("boom"))
	if n, ok := outcome(early); !ok || n != -1 {
		t.Errorf("early caller got (%d, %v), want cycle 2's error", n, ok)
	}
	if _, ok := outcome(late); !ok {
		t.Errorf("late caller got nothing from cycle 2")
	}
	if n, ok := outcome(again); ok {
		t.Errorf("caller asking during cycle 2 got cycle %d, want to wait", n)
	}
	w.stop()
	if o := <-again; !errors.Is(o.err, errDaemonStopping) {
		t.Errorf("after stop a waiting caller got %v, want errDaemonStopping", o.err)
	}
	if o := <-w.wait(); !errors.Is(o.err, errDaemonStopping) {
		t.Errorf("wait after stop = %v, want errDaemonStopping", o.err)
	}
}
