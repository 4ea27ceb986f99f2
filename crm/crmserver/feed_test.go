package crmserver_test

import (
	"context"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmclient"
	"github.com/pimbridge/pimbridge/crm/crmserver"
	"github.com/pimbridge/pimbridge/crm/crmtest"
)

// feedSub subscribes c (outlook: contacts readable by all, tasks own) and
// returns the subscription id and the feed's current cursor.
func feedSub(t *testing.T, c *crmclient.Client) (string, string) {
	t.Helper()
	ctx := context.Background()
	sub, err := c.Subscribe(ctx, "laptop", crm.KindOutlook)
	if err != nil {
		t.Fatal(err)
	}
	a, err := c.WaitChanges(ctx, sub.ID, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if a.Changed || a.Cursor == "" {
		t.Fatalf("first answer %+v, want the current cursor and no change", a)
	}
	return sub.ID, a.Cursor
}

type feedResult struct {
	a   crm.FeedAnswer
	err error
	at  time.Time
}

func waitAsync(c *crmclient.Client, sub, cursor string, wait time.Duration) <-chan feedResult {
	ch := make(chan feedResult, 1)
	go func() {
		a, err := c.WaitChanges(context.Background(), sub, cursor, wait)
		ch <- feedResult{a, err, time.Now()}
	}()
	return ch
}

func TestFeed_WakesWithin100msOfCommit(t *testing.T) {
	srv := crmtest.Start(t, nil)
	sub, cur := feedSub(t, srv.Alice.Client)
	ch := waitAsync(srv.Alice.Client, sub, cur, 20*time.Second)
	time.Sleep(300 * time.Millisecond) // let the wait park; an early commit would answer at once anyway
	select {
	case r := <-ch:
		t.Fatalf("answered before any commit: %+v %v", r.a, r.err)
	default:
	}
	newContact(t, srv.Alice.Client, "Live")
	committed := time.Now()
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	if !r.a.Changed || !slices.Contains(r.a.Entities, "contact") || r.a.Cursor == cur {
		t.Fatalf("answer %+v, want contact changed and a new cursor", r.a)
	}
	if d := r.at.Sub(committed); d > 100*time.Millisecond {
		t.Errorf("woken %v after the commit, want <= 100ms", d)
	}
}

func TestFeed_NoLostWakeupBetweenWaits(t *testing.T) {
	srv := crmtest.Start(t, nil)
	ctx := context.Background()
	c := srv.Alice.Client
	sub, cur := feedSub(t, c)
	hb, err := c.WaitChanges(ctx, sub, cur, 50*time.Millisecond)
	if err != nil || hb.Changed {
		t.Fatalf("heartbeat %+v %v, want no change", hb, err)
	}
	// The commit lands while no wait is open.
	newContact(t, c, "Between")
	start := time.Now()
	a, err := c.WaitChanges(ctx, sub, hb.Cursor, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !a.Changed || !slices.Contains(a.Entities, "contact") {
		t.Fatalf("answer %+v: the commit between two waits was lost", a)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("answered after %v, want at once", d)
	}
	// The new cursor is past it: the next wait is a heartbeat.
	if a2, err := c.WaitChanges(ctx, sub, a.Cursor, 50*time.Millisecond); err != nil || a2.Changed {
		t.Errorf("next wait %+v %v, want no change", a2, err)
	}
}

func TestFeed_SurvivesCutConnectionThroughProxy(t *testing.T) {
	srv := crmtest.Start(t, nil)
	u, _ := url.Parse(srv.URL)
	rp := httputil.NewSingleHostReverseProxy(u)
	// A proxy that gives up on an upstream answer after 300 ms.
	rp.Transport = &http.Transport{ResponseHeaderTimeout: 300 * time.Millisecond}
	rp.ErrorLog = log.New(io.Discard, "", 0)
	proxy := httptest.NewServer(rp)
	defer proxy.Close()
	c, err := crmclient.New(proxy.URL, &crmclient.Options{User: "alice", Password: crmtest.AlicePassword})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	sub, cur := feedSub(t, c)
	// A wait longer than the proxy allows is cut.
	if _, err := c.WaitChanges(ctx, sub, cur, 5*time.Second); err == nil {
		t.Fatal("the proxy did not cut the wait")
	}
	// A heartbeat under the proxy's limit passes.
	hb, err := c.WaitChanges(ctx, sub, cur, 100*time.Millisecond)
	if err != nil || hb.Changed {
		t.Fatalf("heartbeat through the proxy %+v %v", hb, err)
	}
	// A commit while the connection is cut is seen on reconnect with the cursor.
	ch := waitAsync(c, sub, hb.Cursor, 5*time.Second)
	if r := <-ch; r.err == nil {
		t.Fatalf("want a cut, got %+v", r.a)
	}
	newContact(t, srv.Alice.Client, "WhileCut")
	a, err := c.WaitChanges(ctx, sub, hb.Cursor, 100*time.Millisecond)
	if err != nil || !a.Changed || !slices.Contains(a.Entities, "contact") {
		t.Fatalf("after reconnect %+v %v, want the change", a, err)
	}
}

func TestFeed_SurvivesServerRestart(t *testing.T) {
	srv := crmtest.Start(t, nil)
	ctx := context.Background()
	sub, cur := feedSub(t, srv.Alice.Client)
	// A new server over the same store: the old cursor means another run,
	// whose changes since it this server cannot know, so it answers reset.
	hs := httptest.NewServer(crmserver.New(srv.Store, nil))
	defer hs.Close()
	c, err := crmclient.New(hs.URL, &crmclient.Options{User: "alice", Password: crmtest.AlicePassword})
	if err != nil {
		t.Fatal(err)
	}
	a, err := c.WaitChanges(ctx, sub, cur, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !a.Changed || !a.Reset || !slices.Contains(a.Entities, "contact") || !slices.Contains(a.Entities, "task") {
		t.Fatalf("after a restart %+v, want reset with every entity of the scope", a)
	}
	// From the new cursor on it is live again.
	ch := waitAsync(c, sub, a.Cursor, 20*time.Second)
	newContact(t, c, "AfterRestart")
	if r := <-ch; r.err != nil || !r.a.Changed || r.a.Reset {
		t.Fatalf("after restart %+v %v, want a plain change", r.a, r.err)
	}
}

func TestFeed_NeverSignalsAnotherUsersPrivateChange(t *testing.T) {
	srv := crmtest.Start(t, nil)
	ctx := context.Background()
	alice, bob := srv.Alice.Client, srv.Bob.Client
	sub, cur := feedSub(t, alice)
	// Bob's own task is outside alice's rights (own read on tasks).
	task, err := bob.Create(ctx, crm.Record{Entity: "task", Attrs: map[string]any{"subject": "bob's private"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	a, err := alice.WaitChanges(ctx, sub, cur, 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if a.Changed {
		t.Fatalf("alice's feed signalled bob's private task: %+v", a)
	}
	// Bob's contact is readable by all salespeople: it is signalled.
	newContact(t, bob, "Public")
	a, err = alice.WaitChanges(ctx, sub, a.Cursor, 5*time.Second)
	if err != nil || !a.Changed || !slices.Equal(a.Entities, []string{"contact"}) {
		t.Fatalf("bob's contact: %+v %v, want contact only", a, err)
	}
	// An admin edits bob's task: still not alice's business.
	admin := srv.Admin.Client
	task.Attrs = map[string]any{"subject": "bob's, edited"}
	if _, err := admin.Update(ctx, task, nil); err != nil {
		t.Fatal(err)
	}
	if a, err = alice.WaitChanges(ctx, sub, a.Cursor, 300*time.Millisecond); err != nil || a.Changed {
		t.Fatalf("edit of bob's task: %+v %v, want no change", a, err)
	}
	// The admin gives bob's task to alice: now it is hers, so it is signalled.
	task.Attrs = map[string]any{"ownerid": crm.Ref{Entity: "systemuser", ID: srv.Alice.ID}}
	if _, err := admin.Update(ctx, task, nil); err != nil {
		t.Fatal(err)
	}
	a, err = alice.WaitChanges(ctx, sub, a.Cursor, 5*time.Second)
	if err != nil || !a.Changed || !slices.Equal(a.Entities, []string{"task"}) {
		t.Fatalf("task assigned to alice: %+v %v, want task", a, err)
	}
	// Bob cannot wait on alice's subscription.
	if _, err := bob.WaitChanges(ctx, sub, a.Cursor, 50*time.Millisecond); !errors.Is(err, crm.ErrNotFound) {
		t.Fatalf("bob on alice's feed: %v, want not found", err)
	}
}

// TestFeed_ShutdownEndsWaits: an HTTP server's Shutdown does not wait for
// open long-polls; they get a heartbeat and the client comes back with
// its cursor.
func TestFeed_ShutdownEndsWaits(t *testing.T) {
	srv := crmtest.Start(t, nil)
	api := crmserver.New(srv.Store, nil)
	hs := httptest.NewUnstartedServer(api)
	hs.Config.RegisterOnShutdown(api.EndWaits)
	hs.Start()
	defer hs.Close()
	c, err := crmclient.New(hs.URL, &crmclient.Options{User: "alice", Password: crmtest.AlicePassword})
	if err != nil {
		t.Fatal(err)
	}
	sub, cur := feedSub(t, c)
	ch := waitAsync(c, sub, cur, 50*time.Second)
	time.Sleep(300 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := hs.Config.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown = %v after %v: an open wait held it", err, time.Since(start))
	}
	if r := <-ch; r.err != nil || r.a.Changed {
		t.Fatalf("wait at shutdown %+v %v, want a heartbeat", r.a, r.err)
	}
}
