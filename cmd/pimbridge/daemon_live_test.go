package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmclient"
	"github.com/pimbridge/pimbridge/crm/crmtest"
	"github.com/pimbridge/pimbridge/internal/realserver"
	"github.com/pimbridge/pimbridge/pim/davext"
)

// TestDaemon_liveFeedCarriesCRMEdit: with client.poll and client.interval
// an hour, the daemon's CRM change feed (client.live, on by default)
// carries a CRM edit to the CardDAV server within seconds.
func TestDaemon_liveFeedCarriesCRMEdit(t *testing.T) {
	ctx := context.Background()
	crmSrv := crmtest.Start(t, nil)
	ada, err := crmSrv.Alice.Client.Create(ctx, crm.Record{Entity: crm.EntityContact, Attrs: map[string]any{"firstname": "Ada", "lastname": "Lovelace"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, book, davHTTP := startAddressBook(t)
	cfgPath := writeAliceConfig(t, t.TempDir(), crmSrv.URL, davHTTP.URL+"/", book, "live-test", "interval = \"1h\"\npoll = \"1h\"")
	dc, err := davext.New(davHTTP.URL, &davext.Options{Username: "alice", Password: "davpw"})
	if err != nil {
		t.Fatal(err)
	}
	col := davext.NewCollection(dc, book, davext.AddressBook)
	carries := func(s string) bool {
		objs, _, _, err := col.Changes(ctx, "")
		return err == nil && len(objs) == 1 && strings.Contains(string(objs[0].Data), s)
	}
	dctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- run(dctx, []string{"--config", cfgPath, "daemon"}, nil, io.Discard, io.Discard) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("daemon: %v", err)
		}
	}()
	waitUntil := func(what string, d time.Duration, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(d)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out after %v waiting for %s", d, what)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitUntil("the first full cycle", 60*time.Second, func() bool { return carries("Lovelace") })
	time.Sleep(time.Second) // the feed opens beside the first cycle
	if _, err := crmSrv.Alice.Client.Update(ctx, crm.Record{Entity: crm.EntityContact, ID: ada.ID, Attrs: map[string]any{"lastname": "King"}}, nil); err != nil {
		t.Fatal(err)
	}
	waitUntil("the CRM edit on the CardDAV server", 10*time.Second, func() bool { return carries("King") })
}

// TestDaemon_liveFeedWhileOffline: while the client is offline the daemon
// syncs against the local API, whose change feed carries a write made
// there (the replica and the offline queue) to the CardDAV server within
// seconds, with client.poll and client.interval an hour: PIM sync offline
// is live too.
func TestDaemon_liveFeedWhileOffline(t *testing.T) {
	ctx := context.Background()
	crmSrv := crmtest.Start(t, nil)
	ada, err := crmSrv.Alice.Client.Create(ctx, crm.Record{Entity: crm.EntityContact, Attrs: map[string]any{"firstname": "Ada", "lastname": "Lovelace"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, book, davHTTP := startAddressBook(t)
	local := fmt.Sprintf("127.0.0.1:%d", realserver.FreePort(t))
	cfgPath := writeAliceConfig(t, t.TempDir(), crmSrv.URL, davHTTP.URL+"/", book, "live-offline", "interval = \"1h\"\npoll = \"1h\"\n[offline]\nlisten = \""+local+"\"")
	if err := run(ctx, []string{"--config", cfgPath, "go-offline"}, nil, io.Discard, io.Discard); err != nil {
		t.Fatalf("go-offline: %v", err)
	}
	dc, err := davext.New(davHTTP.URL, &davext.Options{Username: "alice", Password: "davpw"})
	if err != nil {
		t.Fatal(err)
	}
	col := davext.NewCollection(dc, book, davext.AddressBook)
	carries := func(s string) bool {
		objs, _, _, err := col.Changes(ctx, "")
		return err == nil && len(objs) == 1 && strings.Contains(string(objs[0].Data), s)
	}
	dctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- run(dctx, []string{"--config", cfgPath, "daemon"}, nil, io.Discard, io.Discard) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("daemon: %v", err)
		}
	}()
	waitUntil := func(what string, d time.Duration, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(d)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out after %v waiting for %s", d, what)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitUntil("the first full cycle against the replica", 60*time.Second, func() bool { return carries("Lovelace") })
	lc, err := crmclient.New("http://"+local, &crmclient.Options{User: "alice", Password: crmtest.AlicePassword})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // the feed opens beside the first cycle
	if _, err := lc.Update(ctx, crm.Record{Entity: crm.EntityContact, ID: ada.ID, Attrs: map[string]any{"lastname": "Offline"}}, nil); err != nil {
		t.Fatalf("offline write through the local API: %v", err)
	}
	waitUntil("the offline edit on the CardDAV server", 10*time.Second, func() bool { return carries("Offline") })
}
