package mailtrack

import (
	"context"
	"errors"
	"time"

	"github.com/pimbridge/pimbridge/internal/retry"
)

// Watch forwards IMAP wake-ups (IDLE, or polling where the server has no
// IDLE) for the tracker's folders to trigger, coalescing them: at most one
// is pending, none is ever blocked on. It blocks until ctx is done and then
// returns ctx.Err(); it returns earlier only if the watch cannot start (no
// folder resolved yet: call Cycle first). The folder list is the one of
// the last Cycle; Watch restarts its IMAP watch when a Cycle added
// Regarding folders, at its next wake-up. It never closes trigger.
func (t *Tracker) Watch(ctx context.Context, trigger chan<- struct{}) error {
	for ctx.Err() == nil {
		folders := t.Folders()
		if len(folders) == 0 {
			return errors.New("mailtrack: watch: no folders (run a Cycle first)")
		}
		wctx, cancel := context.WithCancel(ctx)
		ch, err := t.opts.Mailbox.Watch(wctx, folders)
		if err != nil {
			cancel()
			return err
		}
		restart := false
		for !restart {
			_, ok := <-ch
			if !ok {
				break // ctx done
			}
			select {
			case trigger <- struct{}{}:
			default:
			}
			restart = !equal(folders, t.Folders())
		}
		cancel()
		for range ch {
			// Drain until the watch goroutine has exited.
		}
	}
	return ctx.Err()
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Run tracks until ctx is done: a Cycle at once, then one after every IMAP
// wake-up (Watch) and every interval (zero: 15 min), and a retry after a
// failed Cycle with backoff from 1 s up to interval. onCycle, if not nil,
// is called after each Cycle with its result. Run returns ctx.Err() once
// ctx is done and its watch goroutine has exited.
func (t *Tracker) Run(ctx context.Context, interval time.Duration, onCycle func(Stats, error)) error {
	interval = durOr(interval, 15*time.Minute)
	trigger := make(chan struct{}, 1)
	watchDone := make(chan struct{})
	watching := false
	defer func() {
		if watching {
			<-watchDone
		}
	}()
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	failures := 0 // consecutive failed cycles
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
		case <-trigger:
		}
		start := time.Now()
		st, err := t.Cycle(ctx)
		st.Duration = time.Since(start)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if onCycle != nil {
			onCycle(st, err)
		}
		next := interval
		if err != nil {
			failures++
			next = retry.Backoff{Base: time.Second, Max: interval, Jitter: 0.25}.Delay(failures)
			t.log.Warn("mailtrack: cycle failed", "err", err, "retry_in", next)
		} else {
			failures = 0
		}
		if !watching && len(t.Folders()) > 0 {
			watching = true
			go func() {
				defer close(watchDone)
				if err := t.Watch(wctx, trigger); err != nil && !errors.Is(err, context.Canceled) {
					t.log.Warn("mailtrack: watch ended", "err", err)
				}
			}()
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(next)
	}
}
