// The randomized end-to-end check with the offline engine: in the
// middle of a run the client goes offline (GoOffline into a replica in
// the run's state dir), the bridge syncs the PIM side against the
// engine's local API as the daemon does (cmd/pimbridge/offline_bridge.go),
// the user writes through the local API, the engine is killed at random
// points (state dir kept, a new engine opened from it), then GoOnline
// replays the queue. After quiescence the invariants of sim_check_test.go
// hold, plus: every write is in CRM or a sync error (the bridge's or the
// offline queue's), and the queue replays each write once, counted on the
// server by a plug-in.

package bridge_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"golang.org/x/crypto/bcrypt"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmclient"
	"github.com/pimbridge/pimbridge/crm/crmserver"
	"github.com/pimbridge/pimbridge/crm/crmtest"
	"github.com/pimbridge/pimbridge/internal/davserver"
	"github.com/pimbridge/pimbridge/offline"
)

// Invariants of the offline runs.
const (
	e2eReplayOnce   = "offline-queue-replays-each-write-once"
	e2eOfflineState = "offline-engine-ends-online"
)

// replayCounter is a server plug-in that counts what the offline replay
// applied, per record: a write with the Offline caller origin, after it
// was applied (post stage).
type replayCounter struct {
	mu      sync.Mutex
	applied map[crm.ID]int
	creates map[crm.ID]int
}

func (c *replayCounter) Execute(_ context.Context, pc *crmserver.PluginContext) error {
	if pc.Stage != crmserver.PostOperation || pc.CallerOrigin.Kind != "Offline" {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.applied[pc.ID]++
	if pc.Message == crmserver.MsgCreate {
		c.creates[pc.ID]++
	}
	return nil
}

// newSimSharedOffline is newSimShared with the replay counter installed.
func newSimSharedOffline(t testing.TB, rc *replayCounter) *simShared {
	t.Helper()
	clock := &simClock{now: time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	cs := crmtest.Start(t, &crmtest.Options{Now: clock.Now, Server: crmserver.Options{Now: clock.Now, Logger: quiet,
		Plugins: []crmserver.Plugin{rc}}})
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

// offSim is the offline part of one run: the engine, its local API and
// what the check needs to know of the queue.
type offSim struct {
	r      *simRun
	rc     *replayCounter
	path   string
	eng    *offline.Engine
	ln     net.Listener
	srv    *http.Server
	addr   string // the local API's address, kept across engine restarts
	remote offline.Remote

	// queued is every queue row seen before a GoOnline attempt, by row
	// number: what the replay may apply, at most once each.
	queued map[int64]offline.QueueRow
	// rejected are the offline sync errors (discarded at GoOnline).
	rejected []offline.Rejection

	// replay runs the engine's GoOnline; nil: offline.Engine.GoOnline
	// (a broken rule replaces it).
	replay func(ctx context.Context, eng *offline.Engine, r offline.Remote, opts offline.ReplayOptions) error

	mu      sync.Mutex
	killAt  int // request of the engine's run that kills it (0: none)
	reqs    int
	cancel  context.CancelFunc
	faulty  bool
	kills   int
	restart int
}

// engineTransport injects faults into the engine's requests to the
// server: 503, reset, a lost reply after the server applied the request,
// and a kill (the run's context cancelled, the engine closed and opened
// again from its replica).
type engineTransport struct{ o *offSim }

func (t engineTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	o := t.o
	r := o.r
	o.mu.Lock()
	faulty := o.faulty
	o.reqs++
	kill := faulty && o.killAt > 0 && o.reqs == o.killAt
	cancel := o.cancel
	o.mu.Unlock()
	if kill {
		cancel()
		return nil, fmt.Errorf("sim: engine killed: %w", context.Canceled)
	}
	kind := faultNone
	if faulty {
		r.mu.Lock()
		if r.rng.IntN(100) < r.faultRate {
			kind = []int{fault5xx, faultReset, faultLostResp}[r.rng.IntN(3)]
			r.faults["engine-"+faultNames[kind]]++
		}
		r.mu.Unlock()
	}
	switch kind {
	case fault5xx:
		return reply(req, http.StatusServiceUnavailable), nil
	case faultReset:
		return nil, fmt.Errorf("sim: %s %s: %w", req.Method, req.URL.Path, syscall.ECONNRESET)
	case faultLostResp:
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		return nil, fmt.Errorf("sim: reply of %s %s lost: %w", req.Method, req.URL.Path, syscall.ECONNRESET)
	}
	return http.DefaultTransport.RoundTrip(req)
}

func (o *offSim) open() {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	eng, err := offline.Open(o.r.ctx, &offline.Options{Path: o.path, ClientID: "desktop", Logger: quiet,
		Now: o.r.sh.clock.Now, BcryptCost: bcrypt.MinCost})
	if err != nil {
		o.r.t.Fatalf("seed %d: open the replica: %v", o.r.seed, err)
	}
	o.eng = eng
}

// kill drops the engine and its local API; open starts a new one from
// the replica.
func (o *offSim) kill() {
	o.stopLocal()
	if o.eng != nil {
		o.eng.Close()
		o.eng = nil
	}
}

func (o *offSim) stopLocal() {
	if o.srv != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		o.srv.Shutdown(sctx)
		cancel()
		o.srv, o.ln = nil, nil
	}
}

// serveLocal serves the local API at the same address every time (the
// daemon's offline.listen), and points the bridge and the user at it.
func (o *offSim) serveLocal() {
	addr := o.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var ln net.Listener
	var err error
	for i := 0; i < 50; i++ {
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		o.r.t.Fatalf("seed %d: local API: %v", o.r.seed, err)
	}
	o.addr = ln.Addr().String()
	o.ln = ln
	srv := crmserver.HTTPServer(o.eng.Handler(), crmserver.Timeouts{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	o.srv = srv
	go func() { _ = srv.Serve(ln) }() // ends at Shutdown in stopLocal
	url := "http://" + o.addr
	c, err := crmclient.New(url, &crmclient.Options{User: o.r.alice.Name, Password: o.r.alice.Password})
	if err != nil {
		o.r.t.Fatal(err)
	}
	o.r.crmURL, o.r.userCRM = url, c
}

// engineRun runs one GoOffline or GoOnline with faults and perhaps a kill;
// a killed or failed run is started again on a new engine from the
// replica, as the user would, until it succeeds.
func (o *offSim) engineRun(what string, run func(ctx context.Context) error) {
	r := o.r
	for attempt := 0; ; attempt++ {
		ctx, cancel := context.WithCancel(r.ctx)
		faulty := attempt < 6
		o.mu.Lock()
		o.reqs, o.killAt, o.cancel, o.faulty = 0, 0, cancel, faulty
		if faulty && r.rng.IntN(2) == 0 {
			o.killAt = 1 + r.rng.IntN(30)
		}
		o.mu.Unlock()
		err := run(ctx)
		killed := ctx.Err() != nil
		cancel()
		o.mu.Lock()
		o.faulty = false
		o.mu.Unlock()
		if killed {
			o.kills++
			r.note("engine killed during %s (attempt %d)", what, attempt)
			o.kill()
			o.open()
			continue
		}
		if err == nil {
			r.note("%s done (attempt %d)", what, attempt)
			return
		}
		r.note("%s: %v (attempt %d)", what, err, attempt)
		if attempt > 10 {
			r.t.Fatalf("seed %d: %s keeps failing: %v", r.seed, what, err)
		}
		r.sh.clock.Advance(time.Minute)
	}
}

func (o *offSim) goOffline() {
	o.open()
	o.engineRun("go-offline", func(ctx context.Context) error {
		_, err := o.eng.GoOffline(ctx, o.remote, offline.Credentials{User: o.r.alice.Name, Password: o.r.alice.Password})
		return err
	})
	o.serveLocal()
}

// goOnline replays the queue; sync errors are recorded and discarded (the
// user's choice in the dialog), the client ends online.
func (o *offSim) goOnline() {
	o.stopLocal()
	o.r.crmURL, o.r.userCRM = "", nil
	o.engineRun("go-online", func(ctx context.Context) error {
		rows, err := o.eng.Queue(ctx, 0)
		if err != nil {
			return err
		}
		for _, q := range rows {
			o.queued[q.RowNumber] = q
		}
		opts := offline.ReplayOptions{
			Cred: offline.Credentials{User: o.r.alice.Name, Password: o.r.alice.Password},
			Prompt: func(errs []offline.Rejection) offline.OnError {
				o.rejected = append(o.rejected, errs...)
				return offline.Discard
			}}
		if o.replay != nil {
			return o.replay(ctx, o.eng, o.remote, opts)
		}
		_, err = o.eng.GoOnline(ctx, o.remote, opts)
		return err
	})
}

// switchWindow tracks what the user did between the start of the
// bridge's last cycle before an endpoint switch and its first full cycle
// after it (simObj.atSwitch).
type switchWindow struct {
	open      bool
	from      time.Time
	edits     map[*simObj]int // PIM edits at from
	lastStart time.Time
	lastEdits map[*simObj]int
}

func pimEditCounts(objs []*simObj) map[*simObj]int {
	m := make(map[*simObj]int, len(objs))
	for _, o := range objs {
		m[o] = o.pimEdits
	}
	return m
}

func (w *switchWindow) switched() {
	if !w.open {
		w.open, w.from, w.edits = true, w.lastStart, w.lastEdits
	}
}

func (w *switchWindow) close(r *simRun) {
	if !w.open {
		return
	}
	w.open = false
	now := r.sh.clock.Now()
	for _, o := range r.objs {
		if o.pimEdits > w.edits[o] || o.removed() && !o.removedAt.Before(w.from) && !o.removedAt.After(now) {
			o.atSwitch = true
		}
	}
}

// offlineRun is run with the client offline from round `from` to round
// `to`: every kill of the bridge while offline may kill the engine too,
// and the engine may die between cycles.
func (r *simRun) offlineRun(o *offSim) {
	b := r.newBridge()
	rounds := 3 + r.rng.IntN(3)
	from := r.rng.IntN(2)
	to := from + 1 + r.rng.IntN(rounds-from-1)
	w := &switchWindow{lastStart: r.sh.clock.Now(), lastEdits: map[*simObj]int{}}
	var offlineAt time.Time
	for i := 0; i < rounds; i++ {
		if i == from {
			offlineAt = r.sh.clock.Now()
			o.goOffline()
			r.note("offline")
			b = r.newBridge()
			w.switched()
		}
		if i == to {
			// A manager's reassignment on the server while the client was
			// offline reaches the bridge only at the switch.
			for _, so := range r.objs {
				if so.reassigned && !so.removedAt.Before(offlineAt) {
					so.atSwitch = true
				}
			}
			o.goOnline()
			r.note("online")
			b = r.newBridge()
			w.switched()
		}
		for n := 1 + r.rng.IntN(4); n > 0; n-- {
			r.userOp(r.rng.IntN(1 << 30))
		}
		r.sh.clock.Advance(time.Duration(1+r.rng.IntN(30)) * time.Minute)
		w.lastStart, w.lastEdits = r.sh.clock.Now(), pimEditCounts(r.objs)
		var err error
		b, _, err = r.cycle(b, true)
		if err != nil {
			r.note("cycle %d: %v", r.cycles, err)
		} else {
			w.close(r)
		}
		if r.userCRM != nil && (errors.Is(err, errKilled) || r.rng.IntN(3) == 0) {
			// The engine dies with (or beside) the bridge; the daemon
			// opens it again from the replica.
			o.restart++
			r.note("engine restarted while offline")
			o.kill()
			o.open()
			o.serveLocal()
			b = r.newBridge()
		}
	}
	r.quiesce(b)
	w.close(r)
}

// checkOffline adds the offline invariants to check's violations, and
// excuses the writes the replay rejected (sync errors of the queue).
func (r *simRun) checkOffline(o *offSim, vs []e2eViolation) []e2eViolation {
	rejected := map[crm.ID]bool{}
	for _, e := range o.rejected {
		rejected[e.Row.ObjectID] = true
	}
	var out []e2eViolation
	for _, v := range vs {
		if v.obj != nil && (v.inv == e2eWritesKept || v.inv == e2eNothingLost || v.inv == e2eConverges || v.inv == e2eDeletionTable) {
			if id, ok := r.crmIDOf(v.obj); ok && rejected[id] {
				r.note("excused by an offline sync error: %s: %s", v.inv, v.msg)
				continue
			}
		}
		out = append(out, v)
	}
	perRecord := map[crm.ID]int{}
	creates := map[crm.ID]int{}
	for _, q := range o.queued {
		perRecord[q.ObjectID]++
		if q.Command == crmserver.MsgCreate {
			creates[q.ObjectID]++
		}
	}
	// The item a record id belongs to, for the known-bug match.
	objOf := func(id crm.ID) *simObj {
		obj := &simObj{key: "record " + id.String()}
		for _, so := range r.objs {
			if sid, ok := r.crmIDOf(so); ok && sid == id {
				obj = so
			}
		}
		return obj
	}
	o.rc.mu.Lock()
	defer o.rc.mu.Unlock()
	for id, n := range o.rc.applied {
		if n > perRecord[id] {
			out = append(out, e2eViolation{e2eReplayOnce, fmt.Sprintf("record %s: the server applied %d offline writes, the queue held %d", id, n, perRecord[id]), objOf(id)})
		}
	}
	for id, n := range o.rc.creates {
		if n > 1 || n > creates[id] {
			out = append(out, e2eViolation{e2eReplayOnce, fmt.Sprintf("record %s created %d times by the replay (%d queued creates)", id, n, creates[id]), nil})
		}
	}
	if o.eng != nil {
		st, err := o.eng.State(r.ctx)
		if err != nil || st.IsOffline() {
			out = append(out, e2eViolation{e2eOfflineState, fmt.Sprintf("the client ends in state %v (%v)", st, err), nil})
		}
		if n, err := o.eng.QueueLength(r.ctx); err != nil || n != 0 {
			out = append(out, e2eViolation{e2eOfflineState, fmt.Sprintf("%d rows left in the offline queue (%v)", n, err), nil})
		}
	}
	return out
}

// e2eOfflineRun runs one seed with the offline engine.
func e2eOfflineRun(t testing.TB, seed uint64) ([]e2eViolation, *simRun, *offSim) {
	return e2eOfflineRunWith(t, seed, nil)
}

// e2eOfflineRunWith is e2eOfflineRun with wrap applied to the engine's
// client of the server (the broken rules of sim_offline_broken_test.go).
func e2eOfflineRunWith(t testing.TB, seed uint64, wrap func(offline.Remote) offline.Remote) ([]e2eViolation, *simRun, *offSim) {
	return e2eOfflineRunBroken(t, seed, wrap, nil)
}

// e2eOfflineRunBroken is e2eOfflineRunWith with goOnline in place of the
// engine's GoOnline when not nil.
func e2eOfflineRunBroken(t testing.TB, seed uint64, wrap func(offline.Remote) offline.Remote,
	goOnline func(context.Context, *offline.Engine, offline.Remote, offline.ReplayOptions) error) ([]e2eViolation, *simRun, *offSim) {
	uuid.SetRand(rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16), byte(seed >> 24), 'o', 'f', 'f'}))
	t.Cleanup(func() { uuid.SetRand(nil) })
	rc := &replayCounter{applied: map[crm.ID]int{}, creates: map[crm.ID]int{}}
	r := newSimRun(t, newSimSharedOffline(t, rc), seed)
	o := &offSim{r: r, rc: rc, path: filepath.Join(r.dir, "replica.db"), queued: map[int64]offline.QueueRow{}, replay: goOnline}
	remote, err := crmclient.New(r.sh.crm.URL, &crmclient.Options{User: r.alice.Name, Password: r.alice.Password,
		HTTPClient: &http.Client{Transport: engineTransport{o}, Timeout: 30 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	o.remote = remote
	if wrap != nil {
		o.remote = wrap(remote)
	}
	t.Cleanup(o.kill)
	r.offlineRun(o)
	return r.checkOffline(o, r.check()), r, o
}

const defaultOfflineRuns = 30

// TestRandomizedBridgeOffline: seeded runs that go offline in the middle.
// PIMBRIDGE_SEED=N replays run N alone; PIMBRIDGE_OFFLINE_RUNS=N changes
// the count; PIMBRIDGE_SOAK=10m runs from a time-chosen seed for that long.
func TestRandomizedBridgeOffline(t *testing.T) {
	seeds := []uint64{}
	if s := os.Getenv("PIMBRIDGE_SEED"); s != "" {
		seed, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		seeds = append(seeds, seed)
	} else {
		n := uint64(defaultOfflineRuns)
		if raceDetector {
			n = 2
		}
		if s := os.Getenv("PIMBRIDGE_OFFLINE_RUNS"); s != "" {
			v, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			n = v
		}
		for s := uint64(1); s <= n; s++ {
			seeds = append(seeds, s)
		}
	}
	var soak time.Duration
	if d := os.Getenv("PIMBRIDGE_SOAK"); d != "" && len(seeds) != 1 {
		var err error
		if soak, err = time.ParseDuration(d); err != nil {
			t.Fatalf("PIMBRIDGE_SOAK=%q: %v", d, err)
		}
		seeds = nil
	}
	first := uint64(time.Now().UnixNano() % 1e9)
	start := time.Now()
	known := map[string][]uint64{}
	var failed []uint64
	runs := 0
	for i := 0; ; i++ {
		var seed uint64
		switch {
		case soak > 0 && time.Since(start) < soak:
			seed = first + uint64(i)
		case soak == 0 && i < len(seeds):
			seed = seeds[i]
		}
		if seed == 0 || len(failed) >= 5 {
			break
		}
		runs++
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			vs, r, o := e2eOfflineRun(t, seed)
			for _, v := range vs {
				if why, ok := knownFor(v); ok {
					known[why] = append(known[why], seed)
				}
			}
			if e2eReport(t, seed, vs, r, len(seeds) == 1) {
				failed = append(failed, seed)
				t.Logf("replay: PIMBRIDGE_SEED=%d go test -run TestRandomizedBridgeOffline ./bridge/", seed)
			}
			t.Logf("seed %d: engine kills %d, restarts %d, queued rows %d, offline sync errors %d", seed, o.kills, o.restart, len(o.queued), len(o.rejected))
		})
	}
	el := time.Since(start)
	msg := fmt.Sprintf("%d offline end-to-end runs in %v (%.2f runs/s); failing seeds: %v; known-broken seeds: %v",
		runs, el.Round(time.Millisecond), float64(runs)/el.Seconds(), failed, known)
	t.Log(msg)
	if soak > 0 {
		fmt.Println("soak offline: " + msg)
	}
}
