package imapmail

import (
	"context"
	"testing"
	"time"
)

// waitWake waits for a wake-up on ch, failing after within.
func waitWake(t *testing.T, ch <-chan struct{}, within time.Duration, what string) {
	t.Helper()
	select {
	case _, ok := <-ch:
		if !ok {
			t.Fatalf("%s: watch channel closed", what)
		}
	case <-time.After(within):
		t.Fatalf("%s: no wake-up within %v", what, within)
	}
}

// drain empties ch of pending wake-ups.
func drain(ch <-chan struct{}) {
	for {
		select {
		case <-ch:
		case <-time.After(200 * time.Millisecond):
			return
		}
	}
}

func TestClient_Watch(t *testing.T) {
	forEachServer(t, func(t *testing.T, srv *server) {
		o := srv.options()
		o.WatchPoll = 300 * time.Millisecond
		ctx := testCtx(t)
		c, err := Dial(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		other := srv.dial(t)
		uid := appendMail(t, other, "INBOX", "w@x")

		wctx, stop := context.WithCancel(ctx)
		ch, err := c.Watch(wctx, []string{"INBOX", "Sent"})
		if err != nil {
			t.Fatal(err)
		}
		waitWake(t, ch, 5*time.Second, "connect")
		drain(ch)

		start := time.Now()
		if err := other.SetKeyword(ctx, "INBOX", 0, []uint32{uid}, tracked); err != nil {
			t.Fatal(err)
		}
		waitWake(t, ch, 5*time.Second, "keyword set by another session (IDLE)")
		t.Logf("IDLE wake-up after %v", time.Since(start))
		drain(ch)

		appendMail(t, other, "Sent", "s@x")
		waitWake(t, ch, 5*time.Second, "append to Sent (STATUS poll)")
		drain(ch)

		if srv.dovecot != nil {
			srv.dovecot.Restart(t)
			waitWake(t, ch, 5*time.Second, "reconnect after restart")
			drain(ch)
			appendMail(t, other, "INBOX", "w2@x")
			waitWake(t, ch, 5*time.Second, "new mail after reconnect")
		}

		stop()
		select {
		case _, ok := <-ch:
			for ok {
				_, ok = <-ch
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("watch goroutine did not exit within 5 s of cancel")
		}
	})
}
