package mailtrack

// The e-mail level of the randomized end-to-end check: the real
// Tracker against go-imap's in-process IMAP server and the in-process CRM
// server, driven from one seed. Its CRM client goes through a transport
// that fails requests (503, reset before sending, reply lost after the
// server applied it), holds a reply back while a user action overtakes it
// (reordered responses), and kills the tracker at a request (context
// cancelled, in-memory state dropped, a new Tracker over the same cache);
// its mailbox fails calls the same way. The user appends tracked and
// untracked mail to INBOX and Sent, tracks a message later (the keyword),
// and files a copy of a tracked message in the other folder, before and
// during cycles. After quiet cycles: every tracked message is in CRM once
// (or named by a sync error), no Message-ID twice, nothing untracked in
// CRM. PIMBRIDGE_SEED=N replays one run; PIMBRIDGE_MAIL_RUNS=N changes the
// count.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmclient"
	"github.com/pimbridge/pimbridge/idmap"
	"github.com/pimbridge/pimbridge/pim/imapmail"
)

// Invariants of the e-mail level.
const (
	mailTerminates = "terminates"
	mailOnce       = "every-tracked-mail-in-crm-once"
	mailNoDup      = "no-duplicates"
	mailUntracked  = "nothing-untracked-in-crm"
)

type simMail struct {
	id      string // Message-ID without brackets
	folder  string // where the user put it first
	tracked bool   // the user put the keyword on it (at append or later)
	uidv    uint32
	uid     uint32
}

type mailRun struct {
	t     testing.TB
	seed  uint64
	e     *env
	user  *imapmail.Client // the user's own client (no faults)
	clock *mailClock

	mu          sync.Mutex
	rng         *rand.Rand
	faultsOn    bool
	faultRate   int
	agitateRate int
	calls       int
	killAt      int
	cancel      context.CancelFunc
	inCycle     bool
	faults      map[string]int
	kills       int
	cycles      int

	mails []*simMail
	log   []string

	// wrapCRM and wrapMB break a rule on purpose (sim_mail_broken_test.go).
	wrapCRM func(CRM) CRM
	wrapMB  func(Mailbox) Mailbox
}

type mailClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *mailClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *mailClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func (r *mailRun) note(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if r.inCycle {
		msg = "(during cycle) " + msg
	}
	r.log = append(r.log, msg)
}

// Fault kinds.
const (
	mfNone = iota
	mf5xx
	mfReset
	mfLost
	mfReorder
)

var mailFaultNames = [...]string{"none", "503", "reset", "lost-reply", "reorder"}

// decide draws what happens to one call of the tracker (CRM request or
// mailbox call), in call order: the tracker makes one at a time.
func (r *mailRun) decide() (kind int, kill bool, agitate int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.faultsOn {
		return mfNone, false, -1
	}
	r.calls++
	if r.killAt > 0 && r.calls == r.killAt {
		r.killAt = 0
		return mfNone, true, -1
	}
	agitate = -1
	if r.rng.IntN(100) < r.agitateRate {
		agitate = r.rng.IntN(1 << 30)
	}
	if r.rng.IntN(100) >= r.faultRate {
		return mfNone, false, agitate
	}
	kind = 1 + r.rng.IntN(len(mailFaultNames)-1)
	r.faults[mailFaultNames[kind]]++
	return kind, false, agitate
}

func (r *mailRun) reorderOp() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rng.IntN(1 << 30)
}

func (r *mailRun) kill() {
	r.mu.Lock()
	c := r.cancel
	r.mu.Unlock()
	if c != nil {
		c()
	}
}

var errMailKilled = errors.New("sim: tracker killed")

// mailTransport is the fault-injecting transport of the tracker's CRM
// client.
type mailTransport struct {
	base http.RoundTripper
	r    *mailRun
}

func (f mailTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	kind, kill, op := f.r.decide()
	if op >= 0 {
		f.r.userOp(op)
	}
	if kill {
		f.r.kill()
		return nil, fmt.Errorf("sim: killed: %w", context.Canceled)
	}
	switch kind {
	case mf5xx:
		if req.Body != nil {
			_, _ = io.Copy(io.Discard, req.Body)
			req.Body.Close()
		}
		return &http.Response{StatusCode: http.StatusServiceUnavailable, Status: "503 Service Unavailable", Proto: "HTTP/1.1",
			ProtoMajor: 1, ProtoMinor: 1, Header: http.Header{"Content-Type": {"text/plain"}},
			Body: io.NopCloser(strings.NewReader("unavailable")), Request: req}, nil
	case mfReset:
		return nil, fmt.Errorf("sim: %s %s: %w", req.Method, req.URL.Path, syscall.ECONNRESET)
	case mfLost:
		resp, err := f.base.RoundTrip(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		return nil, fmt.Errorf("sim: reply of %s %s lost: %w", req.Method, req.URL.Path, syscall.ECONNRESET)
	case mfReorder:
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
		f.r.userOp(f.r.reorderOp())
		return resp, nil
	}
	return f.base.RoundTrip(req)
}

// mailFaults is the tracker's mailbox with faults: a call fails before it
// reaches the server (reset) or, for the keyword write, after (lost).
type mailFaults struct {
	Mailbox
	r *mailRun
}

func (m mailFaults) before() error {
	kind, kill, op := m.r.decide()
	if op >= 0 {
		m.r.userOp(op)
	}
	if kill {
		m.r.kill()
		return fmt.Errorf("sim: killed: %w", context.Canceled)
	}
	if kind == mf5xx || kind == mfReset {
		return fmt.Errorf("sim: imap: %w", syscall.ECONNRESET)
	}
	if kind == mfLost || kind == mfReorder {
		return errLostIMAP
	}
	return nil
}

var errLostIMAP = errors.New("sim: imap reply lost")

func (m mailFaults) Changes(ctx context.Context, mailbox string, cur imapmail.Cursor) (*imapmail.ChangeSet, error) {
	if err := m.before(); err != nil && err != errLostIMAP {
		return nil, err
	}
	return m.Mailbox.Changes(ctx, mailbox, cur)
}

func (m mailFaults) FetchMessage(ctx context.Context, mailbox string, uidValidity, uid uint32) ([]byte, error) {
	if err := m.before(); err != nil && err != errLostIMAP {
		return nil, err
	}
	return m.Mailbox.FetchMessage(ctx, mailbox, uidValidity, uid)
}

func (m mailFaults) SetKeyword(ctx context.Context, mailbox string, uidValidity uint32, uids []uint32, keyword string) error {
	err := m.before()
	if err != nil && err != errLostIMAP {
		return err
	}
	if serr := m.Mailbox.SetKeyword(ctx, mailbox, uidValidity, uids, keyword); serr != nil || err == nil {
		return serr
	}
	return fmt.Errorf("sim: imap reply lost: %w", syscall.ECONNRESET)
}

// userOp is one action of the user on their mailbox, drawn from op.
func (r *mailRun) userOp(op int) {
	g := rand.New(rand.NewPCG(uint64(op), r.seed))
	ctx := context.Background()
	var untracked, tracked []*simMail
	for _, m := range r.mails {
		if m.tracked {
			tracked = append(tracked, m)
		} else {
			untracked = append(untracked, m)
		}
	}
	switch k := g.IntN(10); {
	case k < 5 || len(r.mails) == 0: // a new message
		m := &simMail{id: fmt.Sprintf("r%d-m%d@sim.example", r.seed, len(r.mails)), folder: "INBOX", tracked: g.IntN(3) > 0}
		if g.IntN(3) == 0 {
			m.folder = "Sent"
		}
		var flags []string
		if m.tracked {
			flags = []string{DefaultKeyword}
		}
		v, uid, err := r.user.Append(ctx, m.folder, flags, time.Time{}, testMail(m.id, "Alice <alice@example.org>", "mail "+m.id))
		if err != nil {
			r.t.Fatalf("seed %d: append: %v", r.seed, err)
		}
		m.uidv, m.uid = v, uid
		r.mails = append(r.mails, m)
		r.note("append %s to %s tracked=%v", m.id, m.folder, m.tracked)
	case k < 8 && len(untracked) > 0: // the user tracks a message later
		m := untracked[g.IntN(len(untracked))]
		if err := r.user.SetKeyword(ctx, m.folder, m.uidv, []uint32{m.uid}, DefaultKeyword); err != nil {
			r.t.Fatalf("seed %d: set keyword: %v", r.seed, err)
		}
		m.tracked = true
		r.note("track %s", m.id)
	case len(tracked) > 0: // a copy of a tracked message in the other folder
		m := tracked[g.IntN(len(tracked))]
		other := "Sent"
		if m.folder == "Sent" {
			other = "INBOX"
		}
		if _, _, err := r.user.Append(ctx, other, []string{DefaultKeyword}, time.Time{}, testMail(m.id, "Alice <alice@example.org>", "mail "+m.id)); err != nil {
			r.t.Fatalf("seed %d: append copy: %v", r.seed, err)
		}
		r.note("copy %s to %s", m.id, other)
	}
}

func (r *mailRun) newTracker(crmc CRM, mb Mailbox, cache *idmap.Store) *Tracker {
	var m Mailbox = mailFaults{Mailbox: mb, r: r}
	if r.wrapMB != nil {
		m = r.wrapMB(m)
	}
	if r.wrapCRM != nil {
		crmc = r.wrapCRM(crmc)
	}
	tr, err := New(Options{CRM: crmc, Mailbox: m, Cache: cache, RegardingFolder: "-",
		Logger: quietLogger(), Now: r.clock.Now})
	if err != nil {
		r.t.Fatal(err)
	}
	return tr
}

// mailE2E runs one seed and returns its violations.
func mailE2E(t testing.TB, seed uint64) ([]string, *mailRun) { return mailE2EWith(t, seed, nil, nil) }

// mailE2EWith is mailE2E with the tracker's CRM and mailbox wrapped.
func mailE2EWith(t testing.TB, seed uint64, wrapCRM func(CRM) CRM, wrapMB func(Mailbox) Mailbox) ([]string, *mailRun) {
	e := newMemEnv(t)
	r := &mailRun{t: t, seed: seed, e: e, rng: rand.New(rand.NewPCG(seed, 0x3a11)), faults: map[string]int{},
		clock: &mailClock{now: time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)}, wrapCRM: wrapCRM, wrapMB: wrapMB}
	r.faultRate = 4 + r.rng.IntN(12)
	r.agitateRate = 4 + r.rng.IntN(9)
	r.user = e.dial(t)
	crmc, err := crmclient.New(e.crm.URL, &crmclient.Options{User: e.crm.Alice.Name, Password: e.crm.Alice.Password,
		HTTPClient: &http.Client{Transport: mailTransport{base: http.DefaultTransport, r: r}, Timeout: 30 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	mb := e.dial(t)
	cache, err := idmap.OpenOptions(context.Background(), filepath.Join(e.dir, "cache.db"), &idmap.Options{Now: r.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cache.Close() })
	tr := r.newTracker(crmc, mb, cache)
	var runErr error
	for n := 2 + r.rng.IntN(5); n > 0; n-- {
		r.userOp(r.rng.IntN(1 << 30))
	}
	rounds := 3 + r.rng.IntN(4)
	for i := 0; i < rounds; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		r.mu.Lock()
		r.faultsOn, r.calls, r.killAt, r.cancel, r.inCycle = true, 0, 0, cancel, true
		if r.rng.IntN(3) == 0 {
			r.killAt = 1 + r.rng.IntN(30)
		}
		r.mu.Unlock()
		_, err := tr.Cycle(ctx)
		killed := ctx.Err() != nil
		cancel()
		r.mu.Lock()
		r.faultsOn, r.inCycle = false, false
		r.mu.Unlock()
		r.cycles++
		if killed {
			r.kills++
			r.note("killed during cycle %d", r.cycles)
			tr = r.newTracker(crmc, mb, cache) // in-memory state dropped
		} else {
			r.note("cycle %d done: %v", r.cycles, err)
		}
		for n := 1 + r.rng.IntN(4); n > 0; n-- {
			r.userOp(r.rng.IntN(1 << 30))
		}
		r.clock.Advance(time.Duration(1+r.rng.IntN(30)) * time.Minute)
	}
	// Quiet cycles, past every retry, until one finds nothing to do.
	quiet := false
	for i := 0; i < 7 && !quiet; i++ {
		r.clock.Advance(2 * time.Hour)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		st, err := tr.Cycle(ctx)
		cancel()
		r.cycles++
		r.note("quiet cycle %d: %+v %v", r.cycles, st, err)
		quiet = st.Changed == 0 && st.Tracked == 0 && st.Keywords == 0 && st.Failed == 0 && st.Relinked == 0
	}
	if !quiet {
		runErr = errors.New("no quiet cycle in 7")
	}
	return r.check(cache, runErr), r
}

func (r *mailRun) check(cache *idmap.Store, runErr error) []string {
	var out []string
	if runErr != nil {
		out = append(out, mailTerminates+": "+runErr.Error())
	}
	ctx := context.Background()
	errs, err := cache.SyncErrors(ctx)
	if err != nil {
		r.t.Fatal(err)
	}
	recs, err := r.e.crm.Admin.Client.QueryAll(ctx, crm.EntityEmail, crmclient.Query{Select: []string{"messageid"}})
	if err != nil {
		r.t.Fatal(err)
	}
	inCRM := map[string]int{}
	for _, rec := range recs {
		id, _ := rec.Attrs["messageid"].(string)
		inCRM[strings.Trim(id, "<>")]++
	}
	excused := func(m *simMail) bool {
		for _, e := range errs {
			if strings.Contains(e.Item, fmt.Sprintf("/%d", m.uid)) || strings.Contains(e.Message, m.id) {
				return true
			}
		}
		return false
	}
	seen := map[string]bool{}
	for _, m := range r.mails {
		seen[m.id] = true
		switch n := inCRM[m.id]; {
		case n > 1:
			out = append(out, fmt.Sprintf("%s: %s is in CRM %d times", mailNoDup, m.id, n))
		case m.tracked && n == 0 && !excused(m):
			out = append(out, fmt.Sprintf("%s: tracked %s (%s) is not in CRM and no sync error names it", mailOnce, m.id, m.folder))
		case !m.tracked && n > 0:
			out = append(out, fmt.Sprintf("%s: %s was never tracked but is in CRM", mailUntracked, m.id))
		}
	}
	for id := range inCRM {
		if !seen[id] {
			out = append(out, fmt.Sprintf("%s: CRM has %s, which the user never wrote", mailUntracked, id))
		}
	}
	slices.Sort(out)
	return out
}

const defaultMailRuns = 20

// TestRandomizedMail is the e-mail level of the randomized end-to-end
// check. PIMBRIDGE_SEED=N replays run N alone; PIMBRIDGE_MAIL_RUNS=N
// changes the count; PIMBRIDGE_SOAK=10m runs from a time-chosen seed for
// that long.
func TestRandomizedMail(t *testing.T) {
	var seeds []uint64
	if s := os.Getenv("PIMBRIDGE_SEED"); s != "" {
		seed, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		seeds = []uint64{seed}
	} else {
		n := uint64(defaultMailRuns)
		if raceDetector {
			n = 3
		}
		if s := os.Getenv("PIMBRIDGE_MAIL_RUNS"); s != "" {
			v, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			n = v
		}
		for i := uint64(1); i <= n; i++ {
			seeds = append(seeds, i)
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
			vs, r := mailE2E(t, seed)
			if os.Getenv("PIMBRIDGE_SIM_DEBUG") != "" {
				t.Logf("seed %d: %d cycles, %d kills, faults %v\n    %s", seed, r.cycles, r.kills, r.faults, strings.Join(r.log, "\n    "))
			}
			if len(vs) > 0 {
				failed = append(failed, seed)
				t.Errorf("seed %d: %s\n%d cycles, %d kills, faults %v\n    %s\nreplay: PIMBRIDGE_SEED=%d go test -run TestRandomizedMail ./bridge/mailtrack/",
					seed, strings.Join(vs, "\n"), r.cycles, r.kills, r.faults, strings.Join(r.log, "\n    "), seed)
			}
		})
	}
	el := time.Since(start)
	msg := fmt.Sprintf("%d e-mail end-to-end runs in %v (%.2f runs/s); failing seeds: %v", runs, el.Round(time.Millisecond),
		float64(runs)/el.Seconds(), failed)
	t.Log(msg)
	if soak > 0 {
		fmt.Println("soak mail: " + msg)
	}
}
