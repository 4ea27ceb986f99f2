package bridge

import (
	"context"
	"errors"
	"time"
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
// the full cycle. report, when set, gets the outcome of every cycle. Run
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
	full := time.NewTimer(0)
	defer full.Stop()
	var poll <-chan time.Time
	if s.Poll > 0 {
		t := time.NewTicker(s.Poll)
		defer t.Stop()
		poll = t.C
	}
	run := func(light bool) error {
		if s.Starting != nil {
			s.Starting(light)
		}
		st, err := b.Cycle(ctx, CycleOptions{Light: light, ConfirmDeletes: s.ConfirmDeletes})
		if !light && b.opts.Directory != nil && ctx.Err() == nil {
			dst, derr := b.SyncDirectory(ctx)
			st.Directory = &dst
			err = errors.Join(err, derr)
		}
		if report != nil {
			report(light, st, err)
		}
		var fe *FatalError
		if errors.As(err, &fe) {
			return err
		}
		return nil
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-full.C:
			if err := run(false); err != nil {
				return err
			}
			full.Reset(s.Interval)
		case <-b.trigger:
			if err := run(false); err != nil {
				return err
			}
			full.Reset(s.Interval)
		case <-poll:
			if err := run(true); err != nil {
				return err
			}
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}
