package bridge_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/pimbridge/pimbridge/bridge"
	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmtest"
	"github.com/pimbridge/pimbridge/idmap"
	"github.com/pimbridge/pimbridge/internal/davserver"
	"github.com/pimbridge/pimbridge/pim/davcalendar"
	"github.com/pimbridge/pimbridge/pim/davcontacts"
	"github.com/pimbridge/pimbridge/pim/davext"
	"github.com/pimbridge/pimbridge/reconcile"
)

type env struct {
	crm   *crmtest.Server
	tasks *davext.Collection // the PIM user's view of the task list
	opts  bridge.Options
}

func newEnv(t *testing.T) *env {
	ctx := context.Background()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := davserver.New(ctx, davserver.Options{Logger: quiet, BcryptCost: bcrypt.MinCost})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	if err := srv.AddUser(ctx, "alice", "pw"); err != nil {
		t.Fatal(err)
	}
	book, _ := srv.CreateAddressBook(ctx, "alice", "crm", "CRM")
	tasks, err := srv.CreateCalendar(ctx, "alice", "tasks", "Tasks", "VTODO")
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	c, err := davext.New(hs.URL, &davext.Options{Username: "alice", Password: "pw", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	cache, err := idmap.OpenOptions(ctx, filepath.Join(t.TempDir(), "cache.db"), &idmap.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cache.Close() })
	cs := crmtest.Start(t, nil)
	alice := cs.Alice.Client
	return &env{crm: cs, tasks: davext.NewCollection(c, tasks, davext.Calendar), opts: bridge.Options{
		CRM: alice, Fenced: func(g int64) bridge.CRM { return alice.WithGeneration(g) }, ClientID: "desktop", Cache: cache,
		Contacts: davcontacts.New(c, book),
		Tasks:    davcalendar.New(c, tasks),
		Logger:   quiet,
	}}
}

func (e *env) bridge(t *testing.T) *bridge.Bridge {
	b, err := bridge.New(e.opts)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (e *env) task(t *testing.T, subject string) crm.Record {
	r, err := e.crm.Alice.Client.Create(context.Background(), crm.Record{Entity: crm.EntityTask, Attrs: map[string]any{"subject": subject}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (e *env) exists(t *testing.T, id crm.ID) bool {
	_, err := e.crm.Admin.Client.Get(context.Background(), crm.EntityTask, id)
	if errors.Is(err, crm.ErrNotFound) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	return true
}

func (e *env) href(id crm.ID) string { return e.tasks.ObjectHref(id.String() + ".ics") }

func TestBridge_MassDeleteGuard(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	b := e.bridge(t)
	var ids []crm.ID
	for _, s := range []string{"a", "b", "c", "d"} {
		ids = append(ids, e.task(t, s).ID)
	}
	if _, err := b.Cycle(ctx, bridge.CycleOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids[:3] {
		if err := e.tasks.Delete(ctx, e.href(id), ""); err != nil {
			t.Fatal(err)
		}
	}
	st, err := b.Cycle(ctx, bridge.CycleOptions{})
	var me *reconcile.MassDeleteError
	if !errors.As(err, &me) || me.Deletes != 3 || me.Total != 4 {
		t.Fatalf("Cycle = %v, want a MassDeleteError of 3 of 4", err)
	}
	if st.Deferred != 3 || !e.exists(t, ids[0]) {
		t.Fatalf("deletions were applied: %+v", st)
	}
	if !strings.Contains(err.Error(), "--confirm-deletes") {
		t.Errorf("error %q does not say how to confirm", err)
	}
	if _, err := b.Cycle(ctx, bridge.CycleOptions{ConfirmDeletes: true}); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids[:3] {
		if e.exists(t, id) {
			t.Errorf("task %s survived a confirmed deletion", id)
		}
	}
	if !e.exists(t, ids[3]) {
		t.Error("the untouched task was deleted")
	}
}

// The daemon loop: track/update applied by light passes at once, deletions
// only at the full cycle (Trigger), and Run returns when ctx ends.
func TestBridge_RunLightPassesAndTrigger(t *testing.T) {
	e := newEnv(t)
	e.opts.Settings.MassDeleteThreshold = 1
	b := e.bridge(t)
	keep, gone := e.task(t, "keep"), e.task(t, "gone")
	ctx, cancel := context.WithCancel(context.Background())
	type result struct {
		light bool
		st    bridge.Stats
		err   error
	}
	var mu sync.Mutex
	var results []result
	done := make(chan error, 1)
	go func() {
		done <- b.Run(ctx, bridge.Schedule{Interval: time.Hour, Poll: 20 * time.Millisecond}, func(light bool, st bridge.Stats, err error) {
			mu.Lock()
			results = append(results, result{light, st, err})
			mu.Unlock()
		})
	}()
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	pimHas := func(id crm.ID) bool { _, err := e.tasks.Get(context.Background(), e.href(id)); return err == nil }
	waitFor("the first full cycle", func() bool { return pimHas(keep.ID) && pimHas(gone.ID) })

	// An update on the PIM side reaches CRM through a light pass.
	o, err := e.tasks.Get(context.Background(), e.href(keep.ID))
	if err != nil {
		t.Fatal(err)
	}
	data := strings.Replace(string(o.Data), "SUMMARY:keep", "SUMMARY:kept and edited", 1)
	if _, err := e.tasks.Update(context.Background(), o.Href, o.ETag, []byte(data)); err != nil {
		t.Fatal(err)
	}
	waitFor("the light pass to apply the update", func() bool {
		r, err := e.crm.Admin.Client.Get(context.Background(), crm.EntityTask, keep.ID)
		return err == nil && r.Attrs["subject"] == "kept and edited"
	})
	// A deletion waits for the full cycle.
	if err := e.tasks.Delete(context.Background(), e.href(gone.ID), ""); err != nil {
		t.Fatal(err)
	}
	waitFor("a light pass to defer the deletion", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, r := range results {
			if r.light && r.st.Deferred > 0 {
				return true
			}
		}
		return false
	})
	if !e.exists(t, gone.ID) {
		t.Fatal("a light pass applied a deletion")
	}
	b.Trigger()
	waitFor("the triggered full cycle to apply the deletion", func() bool { return !e.exists(t, gone.ID) })
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	mu.Lock()
	defer mu.Unlock()
	for _, r := range results {
		if r.err != nil && !errors.Is(r.err, context.Canceled) {
			t.Errorf("cycle (light %v) failed: %v", r.light, r.err)
		}
	}
}

// TestStats_ByEntityAddsUpToTheTotals: a cycle writing contacts and tasks
// both ways reports each entity's share, and the shares sum to the totals
// (the daemon's metrics are labelled with them).
func TestStats_ByEntityAddsUpToTheTotals(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	b := e.bridge(t)
	e.task(t, "from CRM 1")
	e.task(t, "from CRM 2")
	if _, err := e.crm.Alice.Client.Create(ctx, crm.Record{Entity: crm.EntityContact, Attrs: map[string]any{"lastname": "FromCRM"}}, nil); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		data := fmt.Sprintf("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\nBEGIN:VTODO\r\nUID:pim-task-%d\r\nSUMMARY:from PIM %d\r\nEND:VTODO\r\nEND:VCALENDAR\r\n", i, i)
		if _, err := e.tasks.Create(ctx, fmt.Sprintf("pim%d.ics", i), []byte(data)); err != nil {
			t.Fatal(err)
		}
	}
	st, err := b.Cycle(ctx, bridge.CycleOptions{})
	if err != nil {
		t.Fatal(err)
	}
	task, contact := st.ByEntity[crm.EntityTask], st.ByEntity[crm.EntityContact]
	if task == nil || contact == nil || task.ToPIM.Created != 2 || task.ToCRM.Created != 2 || contact.ToPIM.Created != 1 || contact.ToCRM.Created != 0 {
		t.Fatalf("by entity: task %+v, contact %+v", task, contact)
	}
	var sum bridge.EntityStats
	for _, es := range st.ByEntity {
		sum.ToCRM.Created += es.ToCRM.Created
		sum.ToCRM.Updated += es.ToCRM.Updated
		sum.ToPIM.Created += es.ToPIM.Created
		sum.ToPIM.Updated += es.ToPIM.Updated
		sum.Failed += es.Failed
	}
	if sum.ToCRM != st.ToCRM || sum.ToPIM != st.ToPIM || sum.Failed != st.Failed+st.Malformed {
		t.Errorf("shares %+v do not add up to the totals %+v", sum, st)
	}
}
