// The randomized end-to-end check (in the role of Dropbox's Trinity): the real bridge
// against the in-process CRM server (crmserver over crmstore on a temp
// SQLite) and the in-process DAV server, through a fault-injecting
// transport, with a fake clock, user edits on both sides between and
// during cycles, and the bridge killed (state dir kept, everything in
// memory dropped) at random points. This file is the environment: the
// shared servers, the clock and the transport. sim_test.go drives runs
// and checks them.

package bridge_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/pimbridge/pimbridge/crm/crmserver"
	"github.com/pimbridge/pimbridge/crm/crmtest"
	"github.com/pimbridge/pimbridge/internal/davserver"
)

// simClock is the one clock of a run: the CRM server, the bridge and the
// user's edits all read it. It only moves forward, when the run says.
type simClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *simClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *simClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// simShared holds the servers every run of a test uses; each run has its
// own CRM users and DAV collections, so runs never see each other.
type simShared struct {
	clock  *simClock
	crm    *crmtest.Server
	dav    *davserver.Server
	davURL string
}

func newSimShared(t testing.TB) *simShared {
	t.Helper()
	clock := &simClock{now: time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	cs := crmtest.Start(t, &crmtest.Options{Now: clock.Now, Server: crmserver.Options{Now: clock.Now, Logger: quiet}})
	dav, err := davserver.New(context.Background(), davserver.Options{Logger: quiet, BcryptCost: bcrypt.MinCost})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dav.Close() })
	if err := dav.AddUser(context.Background(), "alice", "pw"); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(dav)
	t.Cleanup(hs.Close)
	return &simShared{clock: clock, crm: cs, dav: dav, davURL: hs.URL}
}

// Fault kinds of the transport.
const (
	faultNone = iota
	fault5xx
	fault412
	faultReset    // the request never reaches the server
	faultLostResp // the server applied it; the reply is lost
	// faultReorder: the server answers, the reply is held back and a
	// user's action (a concurrent request) is answered first; the bridge
	// then gets its reply, already stale. The bridge sends one request at
	// a time, so this is the reordering of concurrent responses it can
	// meet: with the user's own clients.
	faultReorder
)

var faultNames = [...]string{"none", "503", "412", "reset", "lost-reply", "reorder"}

// faultTransport wraps the bridge's transports (CRM and DAV). Every
// decision comes from the run's generator, in request order: the bridge
// sends its requests one at a time, so the order is the seed's.
type faultTransport struct {
	base http.RoundTripper
	run  *simRun
}

func (f *faultTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	kind, kill, agitate := f.run.decide(req)
	if agitate != nil {
		agitate()
	}
	if kill {
		if req.Method == http.MethodPut {
			f.run.mu.Lock()
			f.run.lostWrites[req.URL.Path] = true
			f.run.mu.Unlock()
		}
		f.run.killCycle()
		return nil, fmt.Errorf("sim: killed: %w", context.Canceled)
	}
	switch kind {
	case fault5xx:
		return reply(req, http.StatusServiceUnavailable), nil
	case fault412:
		return reply(req, http.StatusPreconditionFailed), nil
	case faultReset:
		return nil, fmt.Errorf("sim: %s %s: %w", req.Method, req.URL.Path, syscall.ECONNRESET)
	case faultLostResp:
		if req.Method == http.MethodPut {
			f.run.mu.Lock()
			f.run.lostWrites[req.URL.Path] = true
			f.run.mu.Unlock()
		}
		resp, err := f.base.RoundTrip(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		return nil, fmt.Errorf("sim: reply of %s %s lost: %w", req.Method, req.URL.Path, syscall.ECONNRESET)
	case faultReorder:
		resp, err := f.base.RoundTrip(req)
		if err != nil {
			return nil, err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		resp.Body = io.NopCloser(bytes.NewReader(body))
		f.run.mu.Lock()
		op := f.run.reorderRng.IntN(1 << 30)
		f.run.mu.Unlock()
		f.run.note("(reply of %s %s held back)", req.Method, req.URL.Path)
		f.run.userOp(op)
		return resp, nil
	}
	return f.base.RoundTrip(req)
}

func reply(req *http.Request, code int) *http.Response {
	if req.Body != nil {
		io.Copy(io.Discard, req.Body)
		req.Body.Close()
	}
	return &http.Response{StatusCode: code, Status: fmt.Sprintf("%d %s", code, http.StatusText(code)), Proto: "HTTP/1.1",
		ProtoMajor: 1, ProtoMinor: 1, Header: http.Header{"Content-Type": {"text/plain"}},
		Body: io.NopCloser(strings.NewReader(http.StatusText(code))), Request: req}
}

// errKilled is how a killed cycle ends.
var errKilled = errors.New("sim: bridge killed")

// decide draws what happens to one request of the bridge.
func (r *simRun) decide(req *http.Request) (kind int, kill bool, agitate func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.faultsOn {
		return faultNone, false, nil
	}
	r.requests++
	if r.killAt > 0 && r.requests == r.killAt {
		r.killAt = 0
		return faultNone, true, nil
	}
	if r.rng.IntN(100) < r.agitateRate {
		op := r.rng.IntN(1 << 30)
		agitate = func() { r.userOp(op) }
	}
	if r.rng.IntN(100) >= r.faultRate {
		return faultNone, false, agitate
	}
	kind = 1 + r.rng.IntN(len(faultNames)-1)
	if kind == fault412 && req.Method != http.MethodPut && req.Method != http.MethodDelete && req.Method != http.MethodPatch {
		kind = fault5xx
	}
	r.faults[faultNames[kind]]++
	return kind, false, agitate
}

// newRand is the run's generator.
func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x7217)) }
