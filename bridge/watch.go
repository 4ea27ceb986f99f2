package bridge

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/pimbridge/pimbridge/internal/retry"
)

// Schedule says when Run runs cycles.
type Schedule struct {
	// Interval is the full-cycle period (client.interval); 0 means 15 min.
	Interval time.Duration
	// Poll is the light-pass period (client.poll); 0 means 30 s, negative
	// disables light passes.
	Poll time.Duration
	// ConfirmDeletes is passed to every full cycle.
	ConfirmDeletes bool
	// Live holds the CRM change feed open (when the CRM client offers one,
	// see Feed) and runs a light pass for the entities it names at once
	// (live.go). Bursts coalesce: the pass waits until the feed has been
	// quiet for LiveDebounce (0: 50 ms), but no longer than LiveMax (0:
	// 1 s) after the first change; FeedWait is the long-poll's wait (0:
	// the server's 25 s).
	Live                  bool
	LiveDebounce, LiveMax time.Duration
	FeedWait              time.Duration
	// FastPoll is the light-pass period, for FastFor, of a collection in
	// which a pass saw a PIM-side change (0: 5 s, at most Poll; 2 min);
	// those passes list only such collections, the others wait for Poll.
	FastPoll, FastFor time.Duration
	// Starting, when set, is called in Run's goroutine just before each
	// cycle starts, so that a caller of Trigger can tell the cycle it asked
	// for from one already running. Nil means no call.
	Starting func(light bool)
}

// Trigger asks a running Run loop for a full cycle now (e.g. `sync now`
// from a control socket, or the demo). It never blocks; triggers that
// arrive while one is queued are merged.
func (b *Bridge) Trigger() {
	b.triggerOnce()
	select {
	case b.trigger <- struct{}{}:
	default:
	}
}

func (b *Bridge) triggerOnce() {
	b.trigMu.Lock()
	if b.trigger == nil {
		b.trigger = make(chan struct{}, 1)
	}
	b.trigMu.Unlock()
}

// Run is the daemon loop: a full cycle (followed by a directory pass when
// Options.Directory is set) at once and then every
// s.Interval (or on Trigger), and a light pass every s.Poll between them
// that applies track, update and untrack at once while deletions wait for
// the full cycle. After a cycle that failed with a transient error
// (retry.Transient: a server unreachable or answering "try again later")
// Run backs off: the next cycle is a full one after 1 s, 2 s, 4 s, ...
// (retry.Backoff, capped at s.Interval, up to a quarter shorter at random),
// and light passes wait until a cycle succeeds; Trigger still runs a cycle
// at once. report, when set, gets the outcome of every cycle. Run
// returns when ctx ends (after the write in progress finishes) or when a
// cycle fails with a *FatalError, which it returns.
func (b *Bridge) Run(ctx context.Context, s Schedule, report func(light bool, st Stats, err error)) error {
	b.triggerOnce()
	if s.Interval <= 0 {
		s.Interval = 15 * time.Minute
	}
	if s.Poll == 0 {
		s.Poll = 30 * time.Second
	}
	if s.LiveDebounce <= 0 {
		s.LiveDebounce = defaultLiveDebounce
	}
	if s.LiveMax <= 0 {
		s.LiveMax = defaultLiveMax
	}
	if s.FastPoll <= 0 {
		s.FastPoll = defaultFastPoll
	}
	s.FastPoll = min(s.FastPoll, s.Poll)
	if s.FastFor <= 0 {
		s.FastFor = defaultFastFor
	}
	full := time.NewTimer(0)
	defer full.Stop()
	var (
		poll  *time.Timer
		pollC <-chan time.Time
		fp    = newFastPoll(b.now(), s.Poll, s.FastPoll, s.FastFor)
	)
	if s.Poll > 0 {
		poll = time.NewTimer(s.Poll)
		defer poll.Stop()
		pollC = poll.C
	}
	var (
		q       *liveQueue
		liveC   <-chan struct{}
		deb     = debounce{quiet: s.LiveDebounce, max: s.LiveMax}
		settle  *time.Timer
		settleC <-chan time.Time
	)
	if f, ok := b.opts.CRM.(Feed); ok && s.Live {
		q = newLiveQueue()
		liveC = q.wake
		b.live.Store(q)
		defer b.live.Store(nil)
		var wg sync.WaitGroup
		defer wg.Wait()
		fctx, cancel := context.WithCancel(ctx)
		defer cancel()
		wg.Add(1)
		go func() { // ends when Run returns
			defer wg.Done()
			b.watchFeed(fctx, f, q, s.FeedWait)
		}()
	}
	failures := 0 // consecutive cycles that failed with a transient error
	run := func(light bool, crmEntities, pimCols []string) error {
		if s.Starting != nil {
			s.Starting(light)
		}
		st, err := b.Cycle(ctx, CycleOptions{Light: light, ConfirmDeletes: s.ConfirmDeletes, CRMEntities: crmEntities, PIMCollections: pimCols})
		if !light && b.opts.Directory != nil && ctx.Err() == nil {
			dst, derr := b.SyncDirectory(ctx)
			st.Directory = &dst
			err = errors.Join(err, derr)
		}
		if cols := b.pimChanged(st); len(cols) > 0 && s.Poll > 0 {
			// A PIM-side change: the user is at it; look again soon.
			fp.saw(b.now(), cols)
			poll.Reset(fp.next(b.now()))
		}
		if report != nil {
			report(light, st, err)
		}
		switch {
		case retry.Transient(err):
			failures++
			wait := retry.Backoff{Base: time.Second, Max: s.Interval, Jitter: 0.25}.Delay(failures)
			b.log.Warn("bridge: cycle failed; backing off", "light", light, "failures", failures, "retry_in", wait, "err", err)
			full.Reset(wait)
		case !light:
			failures = 0
			full.Reset(s.Interval)
		case err == nil:
			failures = 0
		}
		var fe *FatalError
		if errors.As(err, &fe) {
			return err
		}
		return nil
	}
	for {
		var err error
		select {
		case <-ctx.Done():
			return nil
		case <-full.C:
			err = run(false, nil, nil)
		case <-b.trigger:
			err = run(false, nil, nil)
		case <-pollC:
			if failures > 0 { // backing off: the full retry comes first
				poll.Reset(fp.next(b.now()))
				continue
			}
			var pull []string
			if q == nil || !q.healthy.Load() {
				pull = b.crmEntities() // the feed is down: the poll pulls CRM
			}
			if cols, ok := fp.due(b.now()); ok {
				err = run(true, pull, cols)
			}
			poll.Reset(fp.next(b.now()))
		case <-liveC:
			if d := deb.wake(time.Now()); settle == nil {
				settle = time.NewTimer(d)
			} else {
				settle.Reset(d)
			}
			settleC = settle.C
		case <-settleC:
			settleC = nil
			deb.fired()
			if ents := q.take(); len(ents) > 0 && failures == 0 { // backing off: the full retry reads them
				err = run(true, ents, nil)
			}
		}
		if err != nil {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}
