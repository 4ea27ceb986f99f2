package bridge_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/pimbridge/pimbridge/bridge"
	"github.com/pimbridge/pimbridge/crm"
)

// TestBridge_DefectiveFieldLeftAsItWas: a PIM edit that makes one property
// unreadable for the CRM (a garbage DUE) leaves that CRM field as it was,
// the other edited field syncs, the PIM line stays as the user wrote it, and
// the sync log names the defect at info.
func TestBridge_DefectiveFieldLeftAsItWas(t *testing.T) {
	e := newEnv(t)
	var logb bytes.Buffer
	e.opts.Logger = slog.New(slog.NewTextHandler(&logb, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx := context.Background()
	due := time.Date(2026, 3, 4, 15, 0, 0, 0, time.UTC)
	r, err := e.crm.Alice.Client.Create(ctx, crm.Record{Entity: crm.EntityTask, Attrs: map[string]any{"subject": "Call Bob", "scheduledend": due}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	b := e.bridge(t)
	if _, err := b.Cycle(ctx, bridge.CycleOptions{}); err != nil {
		t.Fatal(err)
	}
	obj, err := e.tasks.Get(ctx, e.href(r.ID))
	if err != nil {
		t.Fatal(err)
	}
	s := string(obj.Data)
	i := strings.Index(s, "DUE")
	if i < 0 {
		t.Fatalf("no DUE in\n%s", s)
	}
	j := strings.Index(s[i:], "\r\n")
	s = s[:i] + "DUE:next-tuesday" + s[i+j:]
	s = strings.Replace(s, "SUMMARY:Call Bob", "SUMMARY:Call Bob again", 1)
	if _, err := e.tasks.Update(ctx, e.href(r.ID), obj.ETag, []byte(s)); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Cycle(ctx, bridge.CycleOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := e.crm.Alice.Client.Get(ctx, crm.EntityTask, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Attrs["subject"] != "Call Bob again" {
		t.Errorf("subject = %v, want the PIM edit", got.Attrs["subject"])
	}
	if end, _ := got.Attrs["scheduledend"].(time.Time); !end.Equal(due) {
		t.Errorf("scheduledend = %v, want it left as it was (%v)", got.Attrs["scheduledend"], due)
	}
	obj, err = e.tasks.Get(ctx, e.href(r.ID))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(obj.Data), "DUE:next-tuesday\r\n") {
		t.Errorf("the PIM line was rewritten:\n%s", obj.Data)
	}
	if !strings.Contains(logb.String(), "invalid-date") {
		t.Errorf("the log does not name the defect:\n%s", logb.String())
	}
}
