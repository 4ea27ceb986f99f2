package bridge_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pimbridge/pimbridge/bridge"
	"github.com/pimbridge/pimbridge/crm/crmclient"
	"github.com/pimbridge/pimbridge/crm/crmtest"
)

// TestBridge_RunBacksOffAfterFailedCycle: while the CRM drops every
// connection, Run retries the cycle after 1 s, 2 s, ... (capped at the
// interval, up to a quarter shorter by jitter) instead of every poll, and
// once the CRM answers again the retry is a full cycle, long before the
// hour-long interval.
func TestBridge_RunBacksOffAfterFailedCycle(t *testing.T) {
	e := newEnv(t)
	var down atomic.Bool
	down.Store(true)
	target, err := url.Parse(e.crm.URL)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(target)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			c, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				c.Close() // a real broken connection: the client reads EOF
			}
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(proxy.Close)
	alice, err := crmclient.New(proxy.URL, &crmclient.Options{User: "alice", Password: crmtest.AlicePassword})
	if err != nil {
		t.Fatal(err)
	}
	e.opts.CRM = alice
	e.opts.Fenced = func(g int64) bridge.CRM { return alice.WithGeneration(g) }
	b := e.bridge(t)

	type cycle struct {
		at    time.Time
		light bool
		err   error
	}
	var (
		mu     sync.Mutex
		cycles []cycle
	)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- b.Run(ctx, bridge.Schedule{Interval: time.Hour, Poll: 10 * time.Millisecond}, func(light bool, st bridge.Stats, err error) {
			mu.Lock()
			cycles = append(cycles, cycle{time.Now(), light, err})
			mu.Unlock()
		})
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	snapshot := func() []cycle {
		mu.Lock()
		defer mu.Unlock()
		return append([]cycle(nil), cycles...)
	}

	time.Sleep(3500 * time.Millisecond)
	down.Store(false)
	failed := snapshot()
	if len(failed) == 0 {
		t.Fatal("no cycle ran while the CRM was down")
	}
	for _, c := range failed {
		if c.err == nil {
			t.Fatalf("a cycle succeeded while the CRM was down: %+v", c)
		}
	}
	// Failures at 0, then 0.75-1 s and 1.5-2 s later: at most three while
	// down (without the doubling there would be four).
	if len(failed) > 3 {
		t.Errorf("%d failed cycles in 3.5 s of outage, want at most 3 (backoff 1 s, 2 s, ...)", len(failed))
	}
	for i := 1; i < len(failed); i++ {
		least := 750 * time.Millisecond << min(i-1, 12)
		if gap := failed[i].at.Sub(failed[i-1].at); gap < least {
			t.Errorf("retry %d came %v after the failure, want at least %v", i, gap, least)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		ok := false
		for _, c := range snapshot()[len(failed):] {
			if !c.light && c.err == nil {
				ok = true
			}
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no successful full cycle within 10 s of the CRM coming back (%d cycles)", len(snapshot()))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
