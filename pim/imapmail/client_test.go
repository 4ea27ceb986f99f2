package imapmail

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestClient_SpecialUse(t *testing.T) {
	forEachServer(t, func(t *testing.T, srv *server) {
		c := srv.dial(t)
		ctx := testCtx(t)
		for _, tc := range []struct{ use, want string }{
			{SpecialDrafts, "Drafts"},
			{SpecialSent, "Sent"},
		} {
			got, err := c.SpecialUse(ctx, tc.use)
			if err != nil || got != tc.want {
				t.Errorf("SpecialUse(%s) = %q, %v; want %q", tc.use, got, err, tc.want)
			}
		}
		if _, err := c.SpecialUse(ctx, SpecialArchive); !errors.Is(err, ErrNoMailbox) {
			t.Errorf("SpecialUse(Archive) = %v, want ErrNoMailbox", err)
		}
		mbs, err := c.Mailboxes(ctx)
		if err != nil {
			t.Fatal(err)
		}
		caps, err := c.Caps(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if caps.CondStore != srv.condstore || caps.SpecialUse != srv.condstore {
			// Dovecot offers CONDSTORE and SPECIAL-USE, imapmemserver neither.
			t.Errorf("Caps = %+v, want CondStore and SpecialUse = %v", caps, srv.condstore)
		}
		if srv.condstore {
			i := slices.IndexFunc(mbs, func(m Mailbox) bool { return m.Name == "Drafts" })
			if i < 0 || mbs[i].SpecialUse != SpecialDrafts {
				t.Errorf("Mailboxes = %+v, want Drafts with \\Drafts", mbs)
			}
		}
		delim, err := c.Delimiter(ctx)
		if err != nil || delim != "/" {
			t.Errorf("Delimiter = %q, %v; want /", delim, err)
		}
	})
}

func TestFindSpecialUse(t *testing.T) {
	mbs := []Mailbox{
		{Name: "INBOX", Delim: "."},
		{Name: "INBOX.Sent Items", Delim: "."},
		{Name: "Entwürfe", Delim: ".", SpecialUse: SpecialDrafts},
		{Name: "Drafts", Delim: "."},
	}
	for _, tc := range []struct{ use, want string }{
		{SpecialDrafts, "Entwürfe"},       // the attribute wins over the name
		{SpecialSent, "INBOX.Sent Items"}, // name fallback under INBOX
	} {
		if got, err := findSpecialUse(mbs, tc.use); got != tc.want || err != nil {
			t.Errorf("findSpecialUse(%s) = %q, %v; want %q", tc.use, got, err, tc.want)
		}
	}
}

func TestClient_KeywordCase(t *testing.T) {
	forEachServer(t, func(t *testing.T, srv *server) {
		c := srv.dial(t)
		ctx := testCtx(t)
		uid := appendMail(t, c, "INBOX", "k@x")
		cur := mustChanges(t, c, "INBOX", Cursor{}).Cursor
		if err := c.SetKeyword(ctx, "INBOX", cur.UIDValidity, []uint32{uid}, tracked); err != nil {
			t.Fatal(err)
		}
		cs := mustChanges(t, c, "INBOX", cur)
		if len(cs.Messages) != 1 || !cs.Messages[0].HasFlag("$crmTRACKED") {
			t.Fatalf("after SetKeyword: %+v, want one message with %s", cs.Messages, tracked)
		}
		wantCase := tracked
		if srv.mem != nil {
			wantCase = strings.ToLower(tracked) // imapmemserver lower-cases keywords
		}
		if !slices.Contains(cs.Messages[0].Flags, wantCase) {
			t.Errorf("flags = %q, want %q as the server spells it", cs.Messages[0].Flags, wantCase)
		}
		// Clearing with another case removes it.
		if err := c.ClearKeyword(ctx, "INBOX", cur.UIDValidity, []uint32{uid}, "$crmtracked"); err != nil {
			t.Fatal(err)
		}
		cs = mustChanges(t, c, "INBOX", cs.Cursor)
		if len(cs.Messages) != 1 || cs.Messages[0].HasFlag(tracked) {
			t.Fatalf("after ClearKeyword: %+v, want one message without %s", cs.Messages, tracked)
		}
	})
}

func TestClient_Messages(t *testing.T) {
	forEachServer(t, func(t *testing.T, srv *server) {
		c := srv.dial(t)
		ctx := testCtx(t)
		raw := testMail("f@x", "fetch me")
		v, uid, err := c.Append(ctx, "INBOX", []string{`\Seen`, tracked}, time.Time{}, raw)
		if err != nil {
			t.Fatal(err)
		}
		if v == 0 || uid == 0 {
			t.Fatalf("Append = %d, %d; want UIDVALIDITY and UID (UIDPLUS)", v, uid)
		}
		t.Run("fetch", func(t *testing.T) {
			got, err := c.FetchMessage(ctx, "INBOX", v, uid)
			if err != nil || string(got) != string(raw) {
				t.Fatalf("FetchMessage = %q, %v; want %q", got, err, raw)
			}
			if _, err := c.FetchMessage(ctx, "INBOX", v, uid+100); !errors.Is(err, ErrNotFound) {
				t.Fatalf("FetchMessage(missing) = %v, want ErrNotFound", err)
			}
			if _, err := c.FetchMessage(ctx, "INBOX", v+1, uid); !errors.Is(err, ErrUIDValidity) {
				t.Fatalf("FetchMessage(other UIDVALIDITY) = %v, want ErrUIDValidity", err)
			}
			if _, err := c.FetchMessage(ctx, "Nope", 0, uid); !errors.Is(err, ErrNoMailbox) {
				t.Fatalf("FetchMessage(missing mailbox) = %v, want ErrNoMailbox", err)
			}
		})
		t.Run("search message-id", func(t *testing.T) {
			appendMail(t, c, "INBOX", "other@x")
			for _, id := range []string{"f@x", "<f@x>"} {
				got, err := c.SearchMessageID(ctx, "INBOX", id)
				if err != nil || !slices.Equal(got, []uint32{uid}) {
					t.Errorf("SearchMessageID(%q) = %v, %v; want [%d]", id, got, err, uid)
				}
			}
			if got, err := c.SearchMessageID(ctx, "INBOX", "none@x"); err != nil || len(got) != 0 {
				t.Errorf("SearchMessageID(none) = %v, %v; want none", got, err)
			}
		})
		t.Run("invalid keywords never reach the wire", func(t *testing.T) {
			for _, kw := range []string{"", "has space", `\Seen`, "a(b", "über", strings.Repeat("k", 101)} {
				if err := c.SetKeyword(ctx, "INBOX", v, []uint32{uid}, kw); !errors.Is(err, ErrInvalidKeyword) {
					t.Errorf("SetKeyword(%q) = %v, want ErrInvalidKeyword", kw, err)
				}
			}
			if _, _, err := c.Append(ctx, "INBOX", []string{"bad kw"}, time.Time{}, raw); !errors.Is(err, ErrInvalidKeyword) {
				t.Errorf("Append with a bad keyword = %v, want ErrInvalidKeyword", err)
			}
			if c.Stats().Dials != 1 {
				t.Errorf("Dials = %d, want 1: the connection must survive", c.Stats().Dials)
			}
		})
		t.Run("move", func(t *testing.T) {
			const dest = "CRM/Regarding/Fabrikam"
			if err := c.Create(ctx, dest); err != nil {
				t.Fatal(err)
			}
			m, err := c.Move(ctx, "INBOX", v, []uint32{uid}, dest)
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.SearchMessageID(ctx, dest, "f@x")
			if err != nil || len(got) != 1 || m[uid] != got[0] {
				t.Fatalf("after Move: %v in %s (%v), map %v; want the moved UID", got, dest, err, m)
			}
			if got, _ := c.SearchMessageID(ctx, "INBOX", "f@x"); len(got) != 0 {
				t.Fatalf("after Move: %v still in INBOX", got)
			}
		})
	})
}

func TestValidKeyword(t *testing.T) {
	for _, tc := range []struct {
		kw string
		ok bool
	}{
		{"$CRMTracked", true}, {"$label1", true}, {"Junk", true}, {"a.b-c_d+e", true},
		{"", false}, {"a b", false}, {"a\tb", false}, {`\Seen`, false}, {`a"b`, false},
		{"a]b", false}, {"a%b", false}, {"a*b", false}, {"a{b", false}, {"é", false}, {"a\x7f", false},
	} {
		if err := ValidKeyword(tc.kw); (err == nil) != tc.ok {
			t.Errorf("ValidKeyword(%q) = %v, want ok=%v", tc.kw, err, tc.ok)
		}
	}
}

func TestDial_Auth(t *testing.T) {
	srv := newDovecot(t)
	for _, tc := range []struct {
		name    string
		mech    string
		pass    string
		wantErr error
	}{
		{"login command", "", srv.pass, nil},
		{"plain", MechPlain, srv.pass, nil},
		{"login mechanism", MechLogin, srv.pass, nil},
		{"bad password", MechPlain, "wrong", ErrAuth},
		{"bad password, login command", "", "wrong", ErrAuth},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := srv.options()
			o.Mechanism, o.Password = tc.mech, tc.pass
			c, err := Dial(testCtx(t), o)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Dial = %v, want %v", err, tc.wantErr)
			}
			if err == nil {
				c.Close()
			}
		})
	}
}

func TestDial_Options(t *testing.T) {
	for _, tc := range []struct {
		name    string
		o       Options
		wantErr error
	}{
		{"plain text off loopback", Options{Addr: "192.0.2.1:143", User: "u", Security: SecurityNone}, ErrInsecure},
		{"xoauth2 without token", Options{Addr: "127.0.0.1:1", User: "u", Mechanism: XOAuth2}, nil},
		{"unknown mechanism", Options{Addr: "127.0.0.1:1", User: "u", Mechanism: "CRAM-MD5"}, ErrUnsupported},
		{"no user", Options{Addr: "127.0.0.1:1"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Dial(testCtx(t), tc.o)
			if err == nil || (tc.wantErr != nil && !errors.Is(err, tc.wantErr)) {
				t.Fatalf("Dial = %v, want %v", err, tc.wantErr)
			}
		})
	}
}

// hangingServer accepts IMAP connections, logs anyone in, answers
// CAPABILITY, and never answers any other command.
func hangingServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	go func() {
		defer close(done)
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, conn)
			go func() {
				fmt.Fprintf(conn, "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] hang\r\n")
				r := bufio.NewReader(conn)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					tag, rest, _ := strings.Cut(line, " ")
					switch cmd, _, _ := strings.Cut(strings.TrimSpace(rest), " "); strings.ToUpper(cmd) {
					case "LOGIN":
						fmt.Fprintf(conn, "%s OK [CAPABILITY IMAP4rev1 IDLE] in\r\n", tag)
					case "CAPABILITY":
						fmt.Fprintf(conn, "* CAPABILITY IMAP4rev1 IDLE\r\n%s OK done\r\n", tag)
					case "LOGOUT":
						fmt.Fprintf(conn, "* BYE\r\n%s OK bye\r\n", tag)
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func TestClient_ContextUnblocks(t *testing.T) {
	addr := hangingServer(t)
	c, err := Dial(testCtx(t), Options{Addr: addr, Security: SecurityNone, User: "u", Password: "p", Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	t.Run("cancel", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(100*time.Millisecond, cancel)
		start := time.Now()
		_, err := c.Changes(ctx, "INBOX", Cursor{})
		if !errors.Is(err, context.Canceled) || time.Since(start) > 3*time.Second {
			t.Fatalf("Changes = %v after %v, want context.Canceled within 3 s", err, time.Since(start))
		}
	})
	t.Run("deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := c.FetchMessage(ctx, "INBOX", 0, 1)
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 3*time.Second {
			t.Fatalf("FetchMessage = %v after %v, want DeadlineExceeded within 3 s", err, time.Since(start))
		}
	})
	t.Run("queued call gives up", func(t *testing.T) {
		ctx1, cancel1 := context.WithTimeout(context.Background(), time.Second)
		defer cancel1()
		go func() { _, _ = c.Changes(ctx1, "INBOX", Cursor{}) }()
		time.Sleep(50 * time.Millisecond)
		ctx2, cancel2 := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel2()
		if _, err := c.Mailboxes(ctx2); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Mailboxes while another call hangs = %v, want DeadlineExceeded", err)
		}
	})
}

func TestClient_ReconnectAfterRestart(t *testing.T) {
	srv := newDovecot(t)
	c := srv.dial(t)
	appendMail(t, c, "INBOX", "r1@x")
	cs := mustChanges(t, c, "INBOX", Cursor{})
	srv.dovecot.Restart(t)
	appendMail(t, c, "INBOX", "r2@x") // not retried: the old connection is dead
	cs = mustChanges(t, c, "INBOX", cs.Cursor)
	if got := summary(cs, tracked); len(got) != 1 || !strings.HasSuffix(got[0], ":new:r2@x") {
		t.Fatalf("Changes after restart = %q, want r2@x new", got)
	}
	if d := c.Stats().Dials; d != 2 {
		t.Fatalf("Dials = %d, want 2", d)
	}
	// Killed mid-use: the call fails while the server is down, and the
	// next one after the restart works.
	srv.dovecot.Kill(t)
	if _, err := c.Changes(testCtx(t), "INBOX", cs.Cursor); err == nil {
		t.Fatalf("Changes with the server down = nil error")
	} else if ce := (*ConnError)(nil); !errors.As(err, &ce) || !ce.Retryable() {
		t.Fatalf("Changes with the server down = %v, want a retryable *ConnError", err)
	}
	srv.dovecot.Start(t)
	cs2 := mustChanges(t, c, "INBOX", cs.Cursor)
	if len(cs2.Messages) != 0 || len(cs2.Expunged) != 0 {
		t.Fatalf("Changes after kill+start = %+v, want no change", cs2)
	}
}

// TestClient_KillMidChanges kills Dovecot while a full Changes of 1,500
// messages is in flight: the call either completes or fails with a
// retryable error and no ChangeSet, so the caller keeps its old cursor; the
// next run after the restart reports every message exactly once.
func TestClient_KillMidChanges(t *testing.T) {
	const n = 1500
	srv := newDovecot(t)
	msgs := make([][]byte, n)
	for i := range msgs {
		msgs[i] = testMail(fmt.Sprintf("k%d@x", i), "kill")
	}
	srv.dovecot.WriteMaildir(t, srv.user, "INBOX", msgs)
	c := srv.dial(t)
	if err := c.Create(testCtx(t), "Warm"); err != nil { // log in before the race
		t.Fatal(err)
	}
	seen := map[string]int{}
	cur := Cursor{}
	killed := make(chan struct{})
	go func() {
		defer close(killed)
		time.Sleep(20 * time.Millisecond)
		srv.dovecot.Kill(t)
	}()
	cs, err := c.Changes(testCtx(t), "INBOX", cur)
	<-killed
	if err == nil {
		t.Logf("Changes finished before the kill")
		for _, m := range cs.Messages {
			seen[m.MessageID]++
		}
		cur = cs.Cursor
	} else if ce := (*ConnError)(nil); !errors.As(err, &ce) || cs != nil {
		t.Fatalf("Changes during kill = %v, %v; want a *ConnError and no change set", cs, err)
	}
	srv.dovecot.Start(t)
	cs = mustChanges(t, c, "INBOX", cur)
	for _, m := range cs.Messages {
		seen[m.MessageID]++
	}
	if len(seen) != n {
		t.Fatalf("after restart: %d distinct messages, want %d", len(seen), n)
	}
	for id, k := range seen {
		if k != 1 {
			t.Fatalf("message %s reported %d times", id, k)
		}
	}
}
