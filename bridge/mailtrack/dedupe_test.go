package mailtrack

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/pimbridge/pimbridge/crm"
)

func TestTracker_UntrackDeletesInCRM(t *testing.T) {
	forEachServer(t, func(t *testing.T, e *env) {
		ctx := testCtx(t)
		c := e.dial(t)
		tr := e.tracker(t, "a.db", func(o *Options) { o.UntrackDeletesInCRM = true })
		uid := appendMail(t, c, "INBOX", testMail("gone@x", "Ann <ann@example.com>", "untrack"), DefaultKeyword)
		cycle(t, tr)
		r := e.one(t, "gone@x")
		if err := c.ClearKeyword(ctx, "INBOX", 0, []uint32{uid}, DefaultKeyword); err != nil {
			t.Fatal(err)
		}
		cycle(t, tr)
		if _, err := e.crm.Alice.Client.Get(ctx, crm.EntityEmail, r.ID); !errors.Is(err, crm.ErrNotFound) {
			t.Fatalf("untracked email still in CRM: %v", err)
		}
		// Tracked again: a new email (the old id is spent on the server).
		if err := c.SetKeyword(ctx, "INBOX", 0, []uint32{uid}, DefaultKeyword); err != nil {
			t.Fatal(err)
		}
		cycle(t, tr)
		if r2 := e.one(t, "gone@x"); r2.ID == r.ID {
			t.Errorf("re-tracked email reuses the deleted id")
		}
		cycle(t, tr)
		e.one(t, "gone@x")
	})
}

// TestTracker_Dedupe: one message in INBOX and Sent (a note to self), seen
// by a primary and a secondary bridge with their own caches, is one email.
func TestTracker_Dedupe(t *testing.T) {
	forEachServer(t, func(t *testing.T, e *env) {
		c := e.dial(t)
		primary, secondary := e.tracker(t, "primary.db", nil), e.tracker(t, "secondary.db", nil)
		msg := testMail("dup@x", "Alice <alice@example.com>", "to self")
		appendMail(t, c, "INBOX", msg, DefaultKeyword)
		appendMail(t, c, e.sent, msg, DefaultKeyword)
		nokw := testMail("dup2@x", "Alice <alice@example.com>", "no message id twice")
		appendMail(t, c, "INBOX", nokw, DefaultKeyword)
		done := make(chan error, 2)
		for _, tr := range []*Tracker{primary, secondary} {
			go func() {
				_, err := tr.Cycle(context.Background())
				done <- err
			}()
		}
		for range 2 {
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		}
		cycle(t, primary)
		cycle(t, secondary)
		e.one(t, "dup@x")
		e.one(t, "dup2@x")
		if n := len(e.allEmails(t)); n != 2 {
			t.Errorf("CRM emails = %d, want 2", n)
		}
	})
}

// TestTracker_NoMessageID: messages without a Message-ID dedupe by their
// stable header fields.
func TestTracker_NoMessageID(t *testing.T) {
	e := newMemEnv(t)
	c := e.dial(t)
	a, b := e.tracker(t, "a.db", nil), e.tracker(t, "b.db", nil)
	msg := []byte("From: Ann <ann@example.com>\r\nTo: bob@example.org\r\nSubject: no id\r\nDate: Mon, 02 Jan 2006 15:04:05 +0000\r\n\r\nbody\r\n")
	appendMail(t, c, "INBOX", msg, DefaultKeyword)
	appendMail(t, c, e.sent, msg, DefaultKeyword)
	cycle(t, a)
	cycle(t, b)
	if n := len(e.allEmails(t)); n != 1 {
		t.Errorf("CRM emails = %d, want 1", n)
	}
}

// TestTracker_UIDValidity: the folder is rebuilt (new UIDVALIDITY, the same
// messages under new UIDs, keywords lost): tracking is re-linked by
// Message-ID, nothing is duplicated, nothing is lost.
func TestTracker_UIDValidity(t *testing.T) {
	forEachServer(t, func(t *testing.T, e *env) {
		ctx := testCtx(t)
		c := e.dial(t)
		acct := e.account(t, "Acme")
		tr := e.tracker(t, "a.db", func(o *Options) { o.Folders = []string{"INBOX", "Work"} })
		work := e.path("Work") // the setting says "Work"
		if err := c.Create(ctx, work); err != nil {
			t.Fatal(err)
		}
		cycle(t, tr)
		reg := tr.RegardingFolder(crm.Ref{Entity: crm.EntityAccount, ID: acct.ID})
		var msgs [][]byte
		for i := range 5 {
			m := testMail(fmt.Sprintf("uv%d@x", i), "Ann <ann@example.com>", "uv")
			msgs = append(msgs, m)
			flags := []string{}
			if i < 3 {
				flags = append(flags, DefaultKeyword)
			}
			appendMail(t, c, work, m, flags...)
		}
		appendMail(t, c, reg, testMail("uvreg@x", "Ann <ann@example.com>", "uv"))
		cycle(t, tr)
		before := len(e.allEmails(t))
		if before != 4 {
			t.Fatalf("tracked = %d, want 4", before)
		}
		rebuild := func(folder string, ms [][]byte) {
			if err := c.Delete(ctx, folder); err != nil {
				t.Fatal(err)
			}
			if err := c.Create(ctx, folder); err != nil {
				t.Fatal(err)
			}
			for _, m := range ms {
				appendMail(t, c, folder, m) // keywords lost
			}
		}
		rebuild(work, msgs)
		rebuild(reg, [][]byte{testMail("uvreg@x", "Ann <ann@example.com>", "uv")})
		st := cycle(t, tr)
		if st.Relinked != 4 {
			t.Errorf("Relinked = %d, want 4 (%+v)", st.Relinked, st)
		}
		cycle(t, tr)
		if n := len(e.allEmails(t)); n != before {
			t.Errorf("CRM emails after UIDVALIDITY change = %d, want %d", n, before)
		}
		for i := range 3 {
			e.one(t, fmt.Sprintf("uv%d@x", i))
			if !hasKeyword(t, c, work, uint32(i+1), DefaultKeyword) {
				t.Errorf("uv%d: keyword not restored", i)
			}
		}
		for i := 3; i < 5; i++ {
			if n := len(e.emails(t, fmt.Sprintf("uv%d@x", i))); n != 0 {
				t.Errorf("untracked uv%d tracked after resync", i)
			}
		}
		// Still tracked: untracking works on the new UID.
		if err := c.ClearKeyword(ctx, work, 0, []uint32{1}, DefaultKeyword); err != nil {
			t.Fatal(err)
		}
		if st := cycle(t, tr); st.Untracked != 1 {
			t.Errorf("untrack after resync: %+v", st)
		}
	})
}

// TestTracker_IDLE: a keyword set by another session is tracked within 5 s
// through Run's IDLE wake-up (the full-cycle interval is an hour).
func TestTracker_IDLE(t *testing.T) {
	forEachServer(t, func(t *testing.T, e *env) {
		tr := e.tracker(t, "a.db", nil)
		c := e.dial(t)
		uid := appendMail(t, c, "INBOX", testMail("idle@x", "Ann <ann@example.com>", "idle"))
		ctx, cancel := context.WithCancel(context.Background())
		cycles := make(chan Stats, 100)
		runErr := make(chan error, 1)
		go func() { runErr <- tr.Run(ctx, time.Hour, func(s Stats, _ error) { cycles <- s }) }()
		defer func() {
			cancel()
			if err := <-runErr; !errors.Is(err, context.Canceled) {
				t.Errorf("Run = %v", err)
			}
		}()
		<-cycles
		time.Sleep(200 * time.Millisecond) // the watch is up
		start := time.Now()
		if err := c.SetKeyword(testCtx(t), "INBOX", 0, []uint32{uid}, DefaultKeyword); err != nil {
			t.Fatal(err)
		}
		for time.Since(start) < 5*time.Second {
			if len(e.emails(t, "idle@x")) == 1 {
				t.Logf("%s: tracked %v after the keyword was set", e.name, time.Since(start).Round(time.Millisecond))
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("not tracked within 5 s")
	})
}

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(childMain())
	}
	os.Exit(m.Run())
}
