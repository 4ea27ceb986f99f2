package bridge_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pimbridge/pimbridge/bridge"
	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmclient"
	"github.com/pimbridge/pimbridge/crm/crmtest"
	"github.com/pimbridge/pimbridge/pim"
	"github.com/pimbridge/pimbridge/pim/davcalendar"
	"github.com/pimbridge/pimbridge/pim/davcontacts"
	"github.com/pimbridge/pimbridge/pim/davext"
)

// liveRun runs b.Run in the background and counts light passes that
// pulled CRM changes; stop ends it.
type liveRun struct {
	light  atomic.Int64
	cancel context.CancelFunc
	done   chan error
}

func startRun(t *testing.T, b *bridge.Bridge, s bridge.Schedule) *liveRun {
	ctx, cancel := context.WithCancel(context.Background())
	r := &liveRun{cancel: cancel, done: make(chan error, 1)}
	go func() {
		s.Starting = func(light bool) { // counted as they start: one may be in flight
			if light {
				r.light.Add(1)
			}
		}
		r.done <- b.Run(ctx, s, nil)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(15 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	return r
}

func waitUntil(t *testing.T, what string, d time.Duration, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

func (e *env) pimSummary(id crm.ID) string {
	o, err := e.tasks.Get(context.Background(), e.href(id))
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(o.Data), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimRight(line, "\r"), "SUMMARY:"); ok {
			return v
		}
	}
	return ""
}

func (e *env) setSubject(t *testing.T, id crm.ID, subject string) {
	t.Helper()
	if _, err := e.crm.Alice.Client.Update(context.Background(), crm.Record{Entity: crm.EntityTask, ID: id, Attrs: map[string]any{"subject": subject}}, nil); err != nil {
		t.Fatal(err)
	}
}

// TestLive_CRMEditReachesPIMAtOnce: with the poll off and the full cycle an
// hour away, a CRM edit reaches the DAV server through the change feed.
func TestLive_CRMEditReachesPIMAtOnce(t *testing.T) {
	e := newEnv(t)
	task := e.task(t, "before")
	startRun(t, e.bridge(t), bridge.Schedule{Interval: time.Hour, Poll: -1, Live: true})
	waitUntil(t, "the first full cycle", 20*time.Second, func() bool { return e.pimSummary(task.ID) == "before" })
	time.Sleep(300 * time.Millisecond) // the feed opens beside the first cycle
	for i, subject := range []string{"live one", "live two"} {
		e.setSubject(t, task.ID, subject)
		d := waitUntil(t, "the edit on the DAV server", 5*time.Second, func() bool { return e.pimSummary(task.ID) == subject })
		t.Logf("edit %d reached the DAV server in %v", i+1, d)
	}
}

// TestLive_BurstCoalescesIntoFewPasses: a burst of edits makes a handful of
// passes, bounded by the burst's length over LiveMax, not by the edits.
func TestLive_BurstCoalescesIntoFewPasses(t *testing.T) {
	e := newEnv(t)
	const n = 120
	var tasks []crm.Record
	for i := range 4 {
		tasks = append(tasks, e.task(t, "burst"+string(rune('a'+i))))
	}
	r := startRun(t, e.bridge(t), bridge.Schedule{Interval: time.Hour, Poll: -1, Live: true})
	waitUntil(t, "the first full cycle", 20*time.Second, func() bool {
		for i, task := range tasks {
			if e.pimSummary(task.ID) != "burst"+string(rune('a'+i)) {
				return false
			}
		}
		return true
	})
	time.Sleep(300 * time.Millisecond)
	before := r.light.Load()
	start := time.Now()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range n / 4 {
				e.setSubject(t, tasks[w].ID, "edit "+string(rune('a'+w))+" "+strings.Repeat("x", i))
			}
		})
	}
	wg.Wait()
	burst := time.Since(start)
	waitUntil(t, "the last edits on the DAV server", 20*time.Second, func() bool {
		for w := range 4 {
			if e.pimSummary(tasks[w].ID) != "edit "+string(rune('a'+w))+" "+strings.Repeat("x", n/4-1) {
				return false
			}
		}
		return true
	})
	passes := r.light.Load() - before
	limit := int64(burst/(500*time.Millisecond)) + 3
	t.Logf("%d edits in %v: %d light passes (limit %d)", n, burst, passes, limit)
	if passes > limit || passes >= n/4 {
		t.Errorf("%d edits made %d passes, want at most %d", n, passes, limit)
	}
}

// TestLive_PollPullsCRMWhenFeedDown: the feed endpoint fails (a proxy
// answers 502); light passes on the poll pull the CRM edit instead.
func TestLive_PollPullsCRMWhenFeedDown(t *testing.T) {
	e := newEnv(t)
	u, _ := url.Parse(e.crm.URL)
	rp := httputil.NewSingleHostReverseProxy(u)
	var feedHits atomic.Int64
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/changes") {
			feedHits.Add(1)
			http.Error(w, "feed down", http.StatusBadGateway)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	defer proxy.Close()
	c, err := crmclient.New(proxy.URL, &crmclient.Options{User: "alice", Password: crmtest.AlicePassword})
	if err != nil {
		t.Fatal(err)
	}
	e.opts.CRM = c
	e.opts.Fenced = func(g int64) bridge.CRM { return c.WithGeneration(g) }
	task := e.task(t, "before")
	startRun(t, e.bridge(t), bridge.Schedule{Interval: time.Hour, Poll: 200 * time.Millisecond, Live: true})
	waitUntil(t, "the first full cycle", 20*time.Second, func() bool { return e.pimSummary(task.ID) == "before" })
	e.setSubject(t, task.ID, "through the poll")
	waitUntil(t, "the poll to carry the edit", 10*time.Second, func() bool { return e.pimSummary(task.ID) == "through the poll" })
	if feedHits.Load() == 0 {
		t.Error("the bridge never tried the feed")
	}
}

// TestLive_FastPollAfterPIMChange: after a pass saw a PIM-side change,
// light passes run every FastPoll for FastFor, then back to Poll.
func TestLive_FastPollAfterPIMChange(t *testing.T) {
	e := newEnv(t)
	a, b := e.task(t, "a"), e.task(t, "b")
	br := e.bridge(t)
	r := startRun(t, br, bridge.Schedule{Interval: time.Hour, Poll: time.Hour, FastPoll: 50 * time.Millisecond, FastFor: time.Second})
	waitUntil(t, "the first full cycle", 20*time.Second, func() bool { return e.pimSummary(a.ID) == "a" && e.pimSummary(b.ID) == "b" })
	editPIM := func(id crm.ID, from, to string) {
		t.Helper()
		o, err := e.tasks.Get(context.Background(), e.href(id))
		if err != nil {
			t.Fatal(err)
		}
		data := strings.Replace(string(o.Data), "SUMMARY:"+from, "SUMMARY:"+to, 1)
		if _, err := e.tasks.Update(context.Background(), o.Href, o.ETag, []byte(data)); err != nil {
			t.Fatal(err)
		}
	}
	crmSubject := func(id crm.ID) string {
		rec, err := e.crm.Alice.Client.Get(context.Background(), crm.EntityTask, id)
		if err != nil {
			return ""
		}
		s, _ := rec.Attrs["subject"].(string)
		return s
	}
	editPIM(a.ID, "a", "a on the phone")
	br.Trigger()
	waitUntil(t, "the full cycle to carry the PIM edit", 20*time.Second, func() bool { return crmSubject(a.ID) == "a on the phone" })
	// The poll is an hour, but the user is at it: the next PIM edit comes soon.
	editPIM(b.ID, "b", "b on the phone")
	waitUntil(t, "a fast light pass", 5*time.Second, func() bool { return crmSubject(b.ID) == "b on the phone" })
	// After FastFor without PIM changes it backs off to Poll.
	time.Sleep(1500 * time.Millisecond)
	n := r.light.Load()
	time.Sleep(time.Second)
	if m := r.light.Load(); m != n {
		t.Errorf("%d light passes after the fast window, want back to the hourly poll", m-n)
	}
}

// stream edits task id until d has passed and returns the last subject.
func (e *env) stream(t *testing.T, id crm.ID, d time.Duration) string {
	t.Helper()
	start, last := time.Now(), ""
	for i := 0; time.Since(start) < d; i++ {
		last = fmt.Sprintf("stream %d", i)
		e.setSubject(t, id, last)
	}
	return last
}

// TestLive_DebounceWaitsForQuiet: while feed wakes keep arriving (a stream
// of edits) the pass waits for LiveDebounce of quiet, so a stream shorter
// than LiveMax makes one pass, which carries its last edit.
func TestLive_DebounceWaitsForQuiet(t *testing.T) {
	e := newEnv(t)
	task := e.task(t, "before")
	r := startRun(t, e.bridge(t), bridge.Schedule{Interval: time.Hour, Poll: -1, Live: true, LiveDebounce: 300 * time.Millisecond, LiveMax: 5 * time.Second})
	waitUntil(t, "the first full cycle", 20*time.Second, func() bool { return e.pimSummary(task.ID) == "before" })
	time.Sleep(300 * time.Millisecond) // the feed opens beside the first cycle
	before := r.light.Load()
	last := e.stream(t, task.ID, 1200*time.Millisecond)
	waitUntil(t, "the last edit on the DAV server", 10*time.Second, func() bool { return e.pimSummary(task.ID) == last })
	if n := r.light.Load() - before; n != 1 {
		t.Errorf("a 1.2 s stream of edits made %d light passes, want 1 (after the quiet)", n)
	}
}

// TestLive_DebounceCappedAtLiveMax: a stream of edits that never goes quiet
// still gets a pass LiveMax after its first edit, so an edit reaches the
// DAV server while the stream goes on.
func TestLive_DebounceCappedAtLiveMax(t *testing.T) {
	e := newEnv(t)
	task := e.task(t, "before")
	startRun(t, e.bridge(t), bridge.Schedule{Interval: time.Hour, Poll: -1, Live: true, LiveDebounce: 2 * time.Second, LiveMax: 400 * time.Millisecond})
	waitUntil(t, "the first full cycle", 20*time.Second, func() bool { return e.pimSummary(task.ID) == "before" })
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	for i := 0; !strings.HasPrefix(e.pimSummary(task.ID), "stream"); i++ {
		if time.Since(start) > 30*time.Second {
			t.Fatal("no edit of a 30 s stream reached the DAV server; LiveMax (400 ms) should force a pass while it goes on")
		}
		e.setSubject(t, task.ID, fmt.Sprintf("stream %d", i))
	}
	t.Logf("an edit of the stream reached the DAV server after %v", time.Since(start))
}

// TestLive_FeedFollowsTheFirstCycleRestartingTheSubscription: a new cache
// makes the first cycle start the outlook subscription over, under the
// feed's open wait; the feed takes the new subscription at once, keeping
// its cursor, instead of going down (and the poll taking over) for a
// retry pause.
func TestLive_FeedFollowsTheFirstCycleRestartingTheSubscription(t *testing.T) {
	e := newEnv(t)
	logs := &crmtest.SafeBuffer{}
	e.opts.Logger = slog.New(slog.NewTextHandler(logs, nil))
	task := e.task(t, "before")
	startRun(t, e.bridge(t), bridge.Schedule{Interval: time.Hour, Poll: -1, Live: true})
	waitUntil(t, "the first full cycle", 20*time.Second, func() bool { return e.pimSummary(task.ID) == "before" })
	for _, subject := range []string{"one", "two", "three"} {
		e.setSubject(t, task.ID, subject)
		waitUntil(t, "the edit on the DAV server", 10*time.Second, func() bool { return e.pimSummary(task.ID) == subject })
	}
	if strings.Contains(logs.String(), "feed down") {
		t.Errorf("the feed went down while the first cycle started the subscription over:\n%s", logs.String())
	}
}

func (e *env) onPIM(id crm.ID) bool {
	_, err := e.tasks.Get(context.Background(), e.href(id))
	return err == nil
}

func (e *env) deleteInCRM(t *testing.T, id crm.ID) {
	t.Helper()
	if err := e.crm.Alice.Client.Delete(context.Background(), crm.EntityTask, id, nil); err != nil {
		t.Fatal(err)
	}
}

// TestLive_CRMDeletionReachesPIMAtOnce: a record deleted in CRM (a
// tombstone) reaches the PIM side by the live pass, by the deletion rules:
// an open task's object is deleted, a completed task's object is kept.
func TestLive_CRMDeletionReachesPIMAtOnce(t *testing.T) {
	e := newEnv(t)
	open, done := e.task(t, "open"), e.task(t, "done")
	for _, s := range []string{"k1", "k2", "k3"} {
		e.task(t, s)
	}
	startRun(t, e.bridge(t), bridge.Schedule{Interval: time.Hour, Poll: -1, Live: true})
	waitUntil(t, "the first full cycle", 20*time.Second, func() bool { return e.pimSummary(open.ID) == "open" })
	if _, err := e.crm.Alice.Client.Update(context.Background(), crm.Record{Entity: crm.EntityTask, ID: done.ID, Attrs: map[string]any{"subject": "done!", "statecode": int64(1), "statuscode": int64(5)}}, nil); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the completed task on the DAV server", 10*time.Second, func() bool { return e.pimSummary(done.ID) == "done!" })
	e.deleteInCRM(t, open.ID)
	e.deleteInCRM(t, done.ID)
	waitUntil(t, "the open task's deletion on the DAV server", 10*time.Second, func() bool { return !e.onPIM(open.ID) })
	if !e.onPIM(done.ID) {
		t.Error("the completed task's object was deleted; the rule keeps it (deleted in CRM: deleted on the PIM side if not completed)")
	}
}

// TestLive_CRMDeletionsHeldByTheGuardAcrossPasses: live passes apply CRM
// deletions only while those applied since the last full cycle stay under
// the mass-deletion guard's share of the collection, so a mass deletion
// cannot slip through in slices; the rest wait for the full cycle.
func TestLive_CRMDeletionsHeldByTheGuardAcrossPasses(t *testing.T) {
	e := newEnv(t)
	var ids []crm.ID
	for i := range 10 {
		ids = append(ids, e.task(t, fmt.Sprintf("t%d", i)).ID)
	}
	b := e.bridge(t)
	startRun(t, b, bridge.Schedule{Interval: time.Hour, Poll: -1, Live: true})
	waitUntil(t, "the first full cycle", 20*time.Second, func() bool { return e.pimSummary(ids[9]) == "t9" })
	// 5 of 10, in whatever passes: never over half, applied at once.
	for _, id := range ids[:5] {
		e.deleteInCRM(t, id)
	}
	waitUntil(t, "the first deletions on the DAV server", 10*time.Second, func() bool {
		for _, id := range ids[:5] {
			if e.onPIM(id) {
				return false
			}
		}
		return true
	})
	// 2 more: 2 of the 5 left is under half, but 7 of the 10 since the
	// full cycle is over it.
	e.deleteInCRM(t, ids[5])
	e.deleteInCRM(t, ids[6])
	// Two later edits: the pass that carries the second starts after the
	// one that carried the deletions has finished.
	for _, s := range []string{"after the deletions", "and after that"} {
		e.setSubject(t, ids[9], s)
		waitUntil(t, "a live pass after the deletions", 10*time.Second, func() bool { return e.pimSummary(ids[9]) == s })
	}
	if !e.onPIM(ids[5]) || !e.onPIM(ids[6]) {
		t.Fatal("live passes deleted 7 of 10 objects since the full cycle; the guard (half) should hold the last two for the full cycle")
	}
	b.Trigger()
	waitUntil(t, "the full cycle to judge the held deletions", 20*time.Second, func() bool { return !e.onPIM(ids[5]) && !e.onPIM(ids[6]) })
}

// hookCRM runs hook after a batch is acknowledged.
type hookCRM struct {
	*crmclient.Client
	hook func()
}

func (h *hookCRM) PostSync(ctx context.Context, subID string, batchID uint64) (crm.PostSyncResult, error) {
	res, err := h.Client.PostSync(ctx, subID, batchID)
	if h.hook != nil {
		h.hook()
	}
	return res, err
}

// countingPuts is a DAV collection that counts updates.
type countingPuts struct {
	*davext.Collection
	puts atomic.Int64
}

func (c *countingPuts) Update(ctx context.Context, href, etag string, data []byte) (string, error) {
	c.puts.Add(1)
	return c.Collection.Update(ctx, href, etag, data)
}

// TestLive_PassWritesTheRecordAsOfTheWrite: when the feed names an entity
// again while a live pass runs (the burst goes on), the pass reads the
// record again before writing it, so it writes the newest version and
// the next pass has nothing left to write for it: each object is written
// once, not once per pass.
func TestLive_PassWritesTheRecordAsOfTheWrite(t *testing.T) {
	e := newEnv(t)
	task := e.task(t, "start")
	col := &countingPuts{Collection: e.opts.Tasks.(*davcalendar.Calendar).Collection}
	e.opts.Tasks = col
	alice := e.crm.Alice.Client
	var armed atomic.Bool
	hook := func() {
		if armed.CompareAndSwap(true, false) {
			e.setSubject(t, task.ID, "newer")
			time.Sleep(500 * time.Millisecond) // the feed names task again
		}
	}
	e.opts.CRM = &hookCRM{Client: alice, hook: hook}
	e.opts.Fenced = func(g int64) bridge.CRM { return &hookCRM{Client: alice.WithGeneration(g), hook: hook} }
	r := startRun(t, e.bridge(t), bridge.Schedule{Interval: time.Hour, Poll: -1, Live: true})
	waitUntil(t, "the first full cycle", 20*time.Second, func() bool { return e.pimSummary(task.ID) == "start" })
	time.Sleep(300 * time.Millisecond)
	before, puts := r.light.Load(), col.puts.Load()
	armed.Store(true)
	e.setSubject(t, task.ID, "older")
	waitUntil(t, "the newer edit on the DAV server", 10*time.Second, func() bool { return e.pimSummary(task.ID) == "newer" })
	waitUntil(t, "the pass the newer edit woke", 10*time.Second, func() bool { return r.light.Load() >= before+2 })
	time.Sleep(time.Second) // it finishes
	if n := col.puts.Load() - puts; n != 1 {
		t.Errorf("two edits, the second while the pass of the first ran: %d PUTs, want 1 (the pass writes the newest version)", n)
	}
}

// countingChanges is a DAV collection that counts listings.
type countingChanges struct {
	*davext.Collection
	lists atomic.Int64
}

func (c *countingChanges) Changes(ctx context.Context, cursor string) ([]pim.Object, []string, string, error) {
	c.lists.Add(1)
	return c.Collection.Changes(ctx, cursor)
}

// TestLive_FastPollOnlyTheChangedCollection: the fast poll after a
// PIM-side change lists only the collection that changed; the others wait
// for client.poll.
func TestLive_FastPollOnlyTheChangedCollection(t *testing.T) {
	e := newEnv(t)
	a := e.task(t, "a")
	book := &countingChanges{Collection: e.opts.Contacts.(*davcontacts.AddressBook).Collection}
	tasks := &countingChanges{Collection: e.opts.Tasks.(*davcalendar.Calendar).Collection}
	e.opts.Contacts, e.opts.Tasks = book, tasks
	br := e.bridge(t)
	startRun(t, br, bridge.Schedule{Interval: time.Hour, Poll: time.Hour, FastPoll: 50 * time.Millisecond, FastFor: 30 * time.Second})
	waitUntil(t, "the first full cycle", 20*time.Second, func() bool { return e.pimSummary(a.ID) == "a" })
	o, err := e.tasks.Get(context.Background(), e.href(a.ID))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.tasks.Update(context.Background(), o.Href, o.ETag, []byte(strings.Replace(string(o.Data), "SUMMARY:a", "SUMMARY:a on the phone", 1))); err != nil {
		t.Fatal(err)
	}
	br.Trigger()
	waitUntil(t, "the full cycle to carry the PIM edit", 20*time.Second, func() bool {
		rec, err := e.crm.Alice.Client.Get(context.Background(), crm.EntityTask, a.ID)
		return err == nil && rec.Attrs["subject"] == "a on the phone"
	})
	b0, t0 := book.lists.Load(), tasks.lists.Load()
	waitUntil(t, "three fast polls of the changed task list", 20*time.Second, func() bool { return tasks.lists.Load()-t0 >= 3 })
	if n := book.lists.Load() - b0; n != 0 {
		t.Errorf("the unchanged address book was listed %d times during the task list's fast poll, want 0", n)
	}
}
