package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmclient"
	"github.com/pimbridge/pimbridge/crm/crmserver"
	"github.com/pimbridge/pimbridge/crm/crmstore"
	"github.com/pimbridge/pimbridge/crm/crmtest"
	"github.com/pimbridge/pimbridge/internal/realserver"
)

// startServe runs `crm serve --db db` in-process on a free port until the
// returned stop is called.
func startServe(t *testing.T, db string, extra ...string) (url string, stop func()) {
	t.Helper()
	port := realserver.FreePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	ctx, cancel := context.WithCancel(context.Background())
	logs := &lockedBuffer{}
	done := make(chan error, 1)
	args := append([]string{"crm", "serve", "--db", db, "--listen", addr, "--bcrypt-cost", "4"}, extra...)
	go func() { done <- run(ctx, args, nil, io.Discard, logs) }()
	if err := realserver.WaitPort(port, 60*time.Second); err != nil {
		cancel()
		t.Fatalf("crm serve did not start: %v\n%s", err, logs.String())
	}
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("crm serve: %v\n%s", err, logs.String())
		}
	}
	t.Cleanup(stop)
	return "http://" + addr, stop
}

// migrateTargets are the databases crm migrate is tested into; each gives
// a fresh, empty one.
var migrateTargets = []struct {
	name string
	db   func(t *testing.T) string
}{
	{"sqlite", func(t *testing.T) string { return "sqlite:" + filepath.Join(t.TempDir(), "target.db") }},
	{"postgres", func(t *testing.T) string { return crmtest.PostgresServer(t).NewDatabase(t) }},
}

// drainContacts fetches and acknowledges contact batches until none is
// pending and returns the records received.
func drainContacts(t *testing.T, c *crmclient.Client, subID string) []crm.Record {
	t.Helper()
	ctx := context.Background()
	var got []crm.Record
	for range 100 {
		b, err := c.NextBatch(ctx, subID, "contact", 2)
		if err != nil {
			t.Fatal(err)
		}
		if b.Header.Result == crm.BatchEmpty {
			return got
		}
		got = append(got, b.Upserts...)
		if _, err := c.PostSync(ctx, subID, b.ID); err != nil {
			t.Fatal(err)
		}
	}
	t.Fatal("contact batches never ran out")
	return nil
}

// TestCRMMigrate_SyncClientContinues: a server with every kind of data,
// custom entities included, and a sync client in the middle of a sync (a
// batch sent, not yet acknowledged) is stopped and migrated; the server on
// the new database serves the same client with the same token, which
// acknowledges its batch and carries on: every contact arrives once, the
// one changed after its batch was cut arrives again with the change, a
// contact created before the migration and one after both arrive, and
// nothing acknowledged before is sent again.
func TestCRMMigrate_SyncClientContinues(t *testing.T) {
	for _, tg := range migrateTargets {
		t.Run(tg.name, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			srcDB := filepath.Join(dir, "crm.db")
			pwFile := filepath.Join(dir, "adminpw")
			if err := os.WriteFile(pwFile, []byte(crmtest.AdminPassword+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := run(ctx, []string{"crm", "user", "add", "alice", "--role", crmserver.RoleSalesperson, "--password-stdin", "--db", srcDB, "--bcrypt-cost", "4"},
				strings.NewReader(crmtest.AlicePassword+"\n"), io.Discard, io.Discard); err != nil {
				t.Fatal(err)
			}
			url, stop := startServe(t, srcDB, "--admin-password-file", pwFile)
			client := func(url, user, pw string) *crmclient.Client {
				c, err := crmclient.New(url, &crmclient.Options{User: user, Password: pw})
				if err != nil {
					t.Fatal(err)
				}
				return c
			}
			admin, alice := client(url, "admin", crmtest.AdminPassword), client(url, "alice", crmtest.AlicePassword)
			pop := crmtest.Populate(t, admin, alice, 4)
			sync := alice.WithToken(pop.Token)
			sub, err := sync.Subscribe(ctx, "laptop", crm.KindOutlook)
			if err != nil {
				t.Fatal(err)
			}
			prep, err := sync.Prepare(ctx, sub.ID)
			if err != nil {
				t.Fatal(err)
			}
			total := int(prep.Count("contact").InsertCount)
			if total != len(pop.IDs["contact"]) {
				t.Fatalf("prepare: %d contacts, want %d", total, len(pop.IDs["contact"]))
			}
			for { // tasks fully synced before the migration
				b, err := sync.NextBatch(ctx, sub.ID, "task", 0)
				if err != nil {
					t.Fatal(err)
				}
				if b.Header.Result == crm.BatchEmpty {
					break
				}
				if _, err := sync.PostSync(ctx, sub.ID, b.ID); err != nil {
					t.Fatal(err)
				}
			}
			open, err := sync.NextBatch(ctx, sub.ID, "contact", 2)
			if err != nil || len(open.Upserts) != 2 {
				t.Fatalf("first contact batch: %v, %v", open, err)
			}
			// Changed after its batch was cut: must come again.
			changed := open.Upserts[0].ID
			if _, err := alice.Update(ctx, crm.Record{Entity: "contact", ID: changed, Attrs: map[string]any{"lastname": "Changed before migrate"}}, nil); err != nil {
				t.Fatal(err)
			}
			before, err := alice.Create(ctx, crm.Record{Entity: "contact", Attrs: map[string]any{"lastname": "Made before migrate"}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			stop()

			target := tg.db(t)
			var out, errb bytes.Buffer
			if err := run(ctx, []string{"crm", "migrate", "--from", "sqlite:" + srcDB, "--to", target, "--chunk", "5"}, nil, &out, &errb); err != nil {
				t.Fatalf("crm migrate: %v\n%s", err, errb.String())
			}
			if !strings.Contains(out.String(), "verified") {
				t.Errorf("crm migrate said %q", out.String())
			}
			for _, want := range []string{"migrate: copy contact records: 5 of 5 rows", "migrate: verify new_project records: 4 of 4 rows", "migrate: copy users: 2 of 2 rows"} {
				if !strings.Contains(errb.String(), want) {
					t.Errorf("progress lacks %q:\n%s", want, errb.String())
				}
			}
			// A second run into the same, now used, target is refused.
			if err := run(ctx, []string{"crm", "migrate", "--from", "sqlite:" + srcDB, "--to", target}, nil, io.Discard, io.Discard); !errors.Is(err, crmstore.ErrNotEmpty) {
				t.Errorf("migrate into a used target = %v, want ErrNotEmpty", err)
			}

			url2, _ := startServe(t, strings.TrimPrefix(target, "sqlite:"))
			alice2 := client(url2, "alice", crmtest.AlicePassword)
			sync2 := alice2.WithToken(pop.Token)
			if _, err := sync2.PostSync(ctx, sub.ID, open.ID); err != nil {
				t.Fatalf("acknowledging the open batch on the new server: %v", err)
			}
			rest := drainContacts(t, sync2, sub.ID)
			seen := map[crm.ID]int{}
			for _, r := range append(open.Upserts, rest...) {
				seen[r.ID]++
			}
			for _, id := range pop.IDs["contact"] {
				want := 1
				if id == changed {
					want = 2
				}
				if seen[id] != want {
					t.Errorf("contact %s received %d times, want %d", id, seen[id], want)
				}
			}
			for _, r := range rest {
				if r.ID == changed && r.Attrs["lastname"] != "Changed before migrate" {
					t.Errorf("changed contact came again as %v", r.Attrs["lastname"])
				}
			}
			if b, err := sync2.NextBatch(ctx, sub.ID, "task", 0); err != nil || b.Header.Result != crm.BatchEmpty {
				t.Errorf("tasks acknowledged before the migration sent again: %+v, %v", b, err)
			}
			after, err := alice2.Create(ctx, crm.Record{Entity: "contact", Attrs: map[string]any{"lastname": "Made after migrate"}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			prep, err = sync2.Prepare(ctx, sub.ID)
			if err != nil {
				t.Fatal(err)
			}
			if n := prep.Count("contact").InsertCount; n != 2 {
				t.Errorf("prepare after the migration: %d contacts, want 2 (made before and after)", n)
			}
			var ids []crm.ID
			for _, r := range drainContacts(t, sync2, sub.ID) {
				ids = append(ids, r.ID)
			}
			if len(ids) != 2 || !(ids[0] == before.ID && ids[1] == after.ID || ids[0] == after.ID && ids[1] == before.ID) {
				t.Errorf("contacts after the migration = %v, want %s and %s", ids, before.ID, after.ID)
			}
			if r, err := alice2.Get(ctx, "new_project", pop.IDs["new_project"][0]); err != nil || r.Attrs["new_name"] != "Project 0" {
				t.Errorf("custom entity record on the new server: %v, %v", r.Attrs, err)
			}
			if after.Version <= before.Version {
				t.Errorf("version after migrate %d <= before %d: the version counter went back", after.Version, before.Version)
			}
		})
	}
}
