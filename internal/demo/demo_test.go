package demo

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmclient"
)

func TestStart_seedsOnceAndKeepsState(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	now := func() time.Time { return time.Date(2026, 3, 20, 12, 0, 0, 0, time.UTC) }

	e, err := Start(ctx, Options{DataDir: dir, Logger: log, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if !e.Seeded {
		t.Error("first Start did not load the sample data")
	}
	want := map[string]int{}
	for _, r := range NewSample(crm.ID{}, "", now(), 1).Records {
		want[r.Entity]++
	}
	for entity, n := range want {
		recs, err := e.CRM.QueryAll(ctx, entity, crmclient.Query{})
		if err != nil {
			t.Fatalf("query %s: %v", entity, err)
		}
		if len(recs) != n {
			t.Errorf("%s: %d records in the CRM, want %d", entity, len(recs), n)
		}
	}
	if want[crm.EntityContact] < 200 || want[crm.EntityAppointment] == 0 {
		t.Errorf("sample too small: %v", want)
	}
	for _, p := range []string{e.AddressBook, e.Calendar, e.Tasks} {
		if _, err := e.DAV.ListObjects(ctx, p); err != nil {
			t.Errorf("collection %s: %v", p, err)
		}
	}
	pw := e.Password
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}

	e2, err := Start(ctx, Options{DataDir: dir, Logger: log, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	defer e2.Close()
	if e2.Seeded || e2.Password != pw {
		t.Errorf("second Start: seeded=%v, password changed=%v; want the same state", e2.Seeded, e2.Password != pw)
	}
	recs, err := e2.CRM.QueryAll(ctx, crm.EntityContact, crmclient.Query{})
	if err != nil || len(recs) != want[crm.EntityContact] {
		t.Errorf("after restart: %d contacts, %v; want %d", len(recs), err, want[crm.EntityContact])
	}
}
