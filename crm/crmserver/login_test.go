package crmserver_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pimbridge/pimbridge/crm/crmserver"
	"github.com/pimbridge/pimbridge/crm/crmtest"
)

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// TestSecurity_LoginRateLimitPerUser: after 5 failed logins a user name is
// refused with 429 and Retry-After, even with the right password, for a
// delay that grows with each further failure; the wait over, the right
// password works.
func TestSecurity_LoginRateLimitPerUser(t *testing.T) {
	clk := &fakeClock{now: time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)}
	srv := crmtest.Start(t, &crmtest.Options{Server: crmserver.Options{Now: clk.Now}})
	for i := range 6 {
		st, _, _ := raw(t, srv, "alice", "wrong-password", "GET", "/api/whoami", nil, "")
		if st != 401 {
			t.Fatalf("failure %d = %d, want 401", i+1, st)
		}
	}
	st, h, b := raw(t, srv, "alice", crmtest.AlicePassword, "GET", "/api/whoami", nil, "")
	if st != 429 || errCode(t, b) != "too_many_logins" || h.Get("Retry-After") != "1" {
		t.Fatalf("right password while blocked = %d %q %s, want 429 Retry-After 1", st, h.Get("Retry-After"), b)
	}
	clk.Add(1100 * time.Millisecond)
	if st, _, _ := raw(t, srv, "alice", "wrong-password", "GET", "/api/whoami", nil, ""); st != 401 {
		t.Fatalf("wrong password after the wait = %d, want 401", st)
	}
	if st, h, _ := raw(t, srv, "alice", crmtest.AlicePassword, "GET", "/api/whoami", nil, ""); st != 429 || h.Get("Retry-After") != "2" {
		t.Fatalf("after another failure = %d Retry-After %q, want 429 with a doubled delay of 2", st, h.Get("Retry-After"))
	}
	// Bob, from the same address, is not affected (per-address limit is higher).
	if st, _, _ := raw(t, srv, "bob", crmtest.BobPassword, "GET", "/api/whoami", nil, ""); st != 200 {
		t.Errorf("bob = %d", st)
	}
	clk.Add(time.Minute)
	if st, _, _ := raw(t, srv, "alice", crmtest.AlicePassword, "GET", "/api/whoami", nil, ""); st != 200 {
		t.Errorf("right password after the wait = %d, want 200", st)
	}
	logs := srv.Logs.String()
	if !strings.Contains(logs, `"msg":"crmserver: login failed","user":"alice","addr":"127.0.0.1"`) {
		t.Errorf("no failed-login line with user and address in the log:\n%.2000s", logs)
	}
	if strings.Contains(logs, "wrong-password") || strings.Contains(logs, crmtest.AlicePassword) {
		t.Errorf("log holds a password")
	}
}

// TestSecurity_LoginRateLimitPerAddress: one address guessing many user
// names is blocked after 20 failures, for every name.
func TestSecurity_LoginRateLimitPerAddress(t *testing.T) {
	clk := &fakeClock{now: time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)}
	srv := crmtest.Start(t, &crmtest.Options{Server: crmserver.Options{Now: clk.Now}})
	for i := range 21 {
		raw(t, srv, "guess"+string(rune('a'+i)), "wrong-password", "GET", "/api/whoami", nil, "")
	}
	if st, _, _ := raw(t, srv, "bob", crmtest.BobPassword, "GET", "/api/whoami", nil, ""); st != 429 {
		t.Errorf("bob from a guessing address = %d, want 429", st)
	}
}
