package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmtest"
	"github.com/pimbridge/pimbridge/offline"
)

// TestGoOffline_signalCancels: Ctrl-C (SIGINT) or SIGTERM in the middle of
// go-offline leaves the client in GoOfflineCanceled, and the
// next go-offline finishes the download.
func TestGoOffline_signalCancels(t *testing.T) {
	ctx := context.Background()
	cs := crmtest.Start(t, nil)
	me := crm.Ref{Entity: crm.EntitySystemUser, ID: cs.Alice.ID}
	for i := range 400 {
		if _, err := cs.Alice.Client.Create(ctx, crm.Record{Entity: crm.EntityContact, Attrs: map[string]any{"lastname": fmt.Sprintf("s%d", i), "ownerid": me}}, nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			dir := t.TempDir()
			cfg := writeAliceConfig(t, dir, cs.URL, "http://127.0.0.1:1/", "/alice/crm/", "sig"+strings.ReplaceAll(sig.String(), " ", ""), "")
			f, err := os.OpenFile(cfg, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.WriteString("[offline]\nrows_batch_size = 2\nmin_batch_time = \"1ns\"\nmax_batch_time = \"1m\"\n")
			f.Close()
			state := func() offline.ClientState {
				var out bytes.Buffer
				if err := run(ctx, []string{"--config", cfg, "status", "--json"}, strings.NewReader(""), &out, &out); err != nil {
					return -1
				}
				var st offline.Status
				if json.Unmarshal(out.Bytes(), &st) != nil {
					return -1
				}
				return st.State
			}
			// The replica exists before go-offline starts (status makes it),
			// and is then watched read-only, so that the watching never
			// competes with go-offline for the write lock.
			if st := state(); st != offline.Online {
				t.Fatalf("state before go-offline = %v", st)
			}
			ro, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "state", "offline-alice.db")+"?mode=ro&_pragma=busy_timeout(10000)")
			if err != nil {
				t.Fatal(err)
			}
			defer ro.Close()
			watched := func() string {
				var v string
				ro.QueryRowContext(ctx, "SELECT v FROM offline_state WHERE k = 'client_state'").Scan(&v)
				return v
			}
			cmd := pimbridgeCmd(cfg, "go-offline")
			var errb bytes.Buffer
			cmd.Stderr = &errb
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
			for deadline := time.Now().Add(60 * time.Second); watched() != offline.GoingOffline.String(); time.Sleep(20 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("go-offline never reached GoingOffline\n%s", errb.String())
				}
			}
			cmd.Process.Signal(sig)
			err = cmd.Wait()
			if err == nil {
				t.Fatalf("go-offline finished before the signal; make the download longer")
			}
			if st := state(); st != offline.GoOfflineCanceled {
				t.Fatalf("after %v mid go-offline: state %v, want GoOfflineCanceled\n%s", sig, st, errb.String())
			}
			var out bytes.Buffer
			if err := run(ctx, []string{"--config", cfg, "go-offline"}, strings.NewReader(""), &out, &out); err != nil {
				t.Fatalf("go-offline after the cancel: %v\n%s", err, out.String())
			}
			if st := state(); st != offline.Offline {
				t.Errorf("state after the second go-offline = %v", st)
			}
		})
	}
}
