package imapmail

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// Watch returns a wake-up channel for mailboxes: a value arrives (at most
// one pending; wake-ups coalesce) when something may have changed in one
// of them, and after every (re)connect, since changes may have been missed
// while disconnected. It carries no detail: call Changes on each mailbox.
//
// Watch runs one goroutine with its own connection: it IDLEs on
// mailboxes[0] (select it with SELECT, so it needs IDLE) and every
// Options.WatchPoll leaves IDLE to compare STATUS of the other mailboxes
// (without IDLE it polls them all with NOOP and STATUS). When the
// connection breaks it dials again with backoff (Options.ReconnectMin/Max);
// failures are logged, never returned. The goroutine exits, closing the
// channel, when ctx is done; Close does not stop it.
func (c *Client) Watch(ctx context.Context, mailboxes []string) (<-chan struct{}, error) {
	if len(mailboxes) == 0 {
		return nil, errors.New("imapmail: watch: no mailbox")
	}
	ch := make(chan struct{}, 1)
	go c.watch(ctx, append([]string(nil), mailboxes...), ch)
	return ch, nil
}

func wake(ch chan<- struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func (c *Client) watch(ctx context.Context, mailboxes []string, ch chan struct{}) {
	defer close(ch)
	log := c.log.With("watch", mailboxes[0])
	failures := 0
	for ctx.Err() == nil {
		start := time.Now()
		err := c.watchOnce(ctx, mailboxes, ch)
		if ctx.Err() != nil {
			return
		}
		if time.Since(start) > time.Minute {
			failures = 0 // it worked for a while: start the backoff afresh
		}
		failures++
		d := backoff(failures, c.opts.ReconnectMin, c.opts.ReconnectMax)
		log.Warn("imap watch: connection lost; reconnecting", "err", err, "in", d)
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
	}
}

// mailboxState is what STATUS tells about a mailbox not being IDLEd on.
type mailboxState struct {
	uidValidity   uint32
	uidNext       imap.UID
	messages      uint32
	highestModSeq uint64
}

func (c *Client) watchOnce(ctx context.Context, mailboxes []string, ch chan struct{}) error {
	events := make(chan struct{}, 1)
	notify := func() { wake(events) }
	handler := &imapclient.UnilateralDataHandler{
		Expunge: func(uint32) { notify() },
		Mailbox: func(d *imapclient.UnilateralDataMailbox) {
			if d.NumMessages != nil {
				notify()
			}
		},
		Fetch: func(m *imapclient.FetchMessageData) {
			_, _ = m.Collect() // always consume, or the reader blocks
			notify()
		},
	}
	var stats counters // Watch traffic is not part of Client.Stats
	s, err := c.connect(ctx, handler, &stats)
	if err != nil {
		return err
	}
	defer func() { _ = s.cl.Close() }()
	stop := context.AfterFunc(ctx, s.abort)
	defer stop()

	status := func() (map[string]mailboxState, error) {
		out := map[string]mailboxState{}
		first := 1
		if !s.caps.IDLE {
			first = 0
		}
		for _, mb := range mailboxes[first:] {
			d, err := s.cl.Status(mb, &imap.StatusOptions{
				UIDValidity: true, UIDNext: true, NumMessages: true, HighestModSeq: s.caps.CondStore,
			}).Wait()
			if err != nil {
				return nil, fmt.Errorf("status %s: %w", mb, err)
			}
			st := mailboxState{uidValidity: d.UIDValidity, uidNext: d.UIDNext, highestModSeq: d.HighestModSeq}
			if d.NumMessages != nil {
				st.messages = *d.NumMessages
			}
			out[mb] = st
		}
		return out, nil
	}
	if s.caps.IDLE {
		if _, err := s.selectMailbox(mailboxes[0], true); err != nil {
			return err
		}
	}
	base, err := status()
	if err != nil {
		return err
	}
	wake(ch) // connected: whatever happened before is unknown
	// Drop the notifications SELECT itself caused.
	select {
	case <-events:
	default:
	}
	poll := time.NewTicker(durOr(c.opts.WatchPoll, time.Minute))
	defer poll.Stop()
	for {
		var idle *imapclient.IdleCommand
		if s.caps.IDLE {
			if idle, err = s.cl.Idle(); err != nil {
				return fmt.Errorf("idle: %w", err)
			}
		}
	wait:
		for {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-s.cl.Closed():
				return errors.New("connection closed by the server")
			case <-events:
				wake(ch) // and stay in IDLE
			case <-poll.C:
				break wait
			}
		}
		if idle != nil {
			if err := idle.Close(); err != nil {
				return fmt.Errorf("idle: %w", err)
			}
			if err := idle.Wait(); err != nil {
				return fmt.Errorf("idle: %w", err)
			}
		} else if err := s.cl.Noop().Wait(); err != nil {
			return fmt.Errorf("noop: %w", err)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		now, err := status()
		if err != nil {
			return err
		}
		for mb, st := range now {
			if base[mb] != st {
				wake(ch)
			}
		}
		base = now
	}
}
