package imapmail

import (
	"errors"
	"slices"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

const tracked = "$CRMTracked"

// roundTrip passes the cursor through its serialised form, as the bridge
// stores it.
func roundTrip(t *testing.T, cur Cursor) Cursor {
	t.Helper()
	b, err := cur.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var out Cursor
	if err := out.UnmarshalBinary(b); err != nil {
		t.Fatalf("UnmarshalBinary(%s) = %v", b, err)
	}
	return out
}

func TestClient_Changes(t *testing.T) {
	forEachServer(t, func(t *testing.T, srv *server) {
		c, other := srv.dial(t), srv.dial(t)
		ctx := testCtx(t)
		cur := Cursor{}
		step := func(t *testing.T, want []string, wantExpunged []uint32) *ChangeSet {
			t.Helper()
			cs := mustChanges(t, c, "INBOX", roundTrip(t, cur))
			if got := summary(cs, tracked); !slices.Equal(got, want) {
				t.Errorf("Changes messages = %q, want %q", got, want)
			}
			if !slices.Equal(cs.Expunged, wantExpunged) {
				t.Errorf("Changes expunged = %v, want %v", cs.Expunged, wantExpunged)
			}
			if cs.Resync {
				t.Errorf("Changes resync = true, want false")
			}
			cur = cs.Cursor
			return cs
		}
		step(t, nil, nil)
		u1 := appendMail(t, other, "INBOX", "m1@x")
		u2 := appendMail(t, other, "INBOX", "m2@x", tracked)
		t.Run("new", func(t *testing.T) {
			cs := step(t, []string{fmtS(u1, "new", "m1@x", ""), fmtS(u2, "new", "m2@x", tracked)}, nil)
			m := cs.Messages[0]
			if !slices.Equal(m.InReplyTo, []string{"parent-m1@x"}) || !slices.Equal(m.References, []string{"root@example.com", "parent-m1@x"}) {
				t.Errorf("InReplyTo, References = %q, %q", m.InReplyTo, m.References)
			}
			if len(m.Header) == 0 || m.Size == 0 || m.InternalDate.IsZero() {
				t.Errorf("header %q, size %d, date %v: want all set", m.Header, m.Size, m.InternalDate)
			}
			if srv.condstore && m.ModSeq == 0 {
				t.Errorf("ModSeq = 0 with CONDSTORE")
			}
		})
		t.Run("no change", func(t *testing.T) {
			before := c.Stats()
			step(t, nil, nil)
			if srv.condstore {
				if n := c.Stats().Commands - before.Commands; n != 1 {
					t.Errorf("no-change Changes sent %d commands, want 1 (SELECT)", n)
				}
			}
		})
		t.Run("keyword set by another session", func(t *testing.T) {
			if err := other.SetKeyword(ctx, "INBOX", cur.UIDValidity, []uint32{u1}, tracked); err != nil {
				t.Fatal(err)
			}
			step(t, []string{fmtS(u1, "changed", "m1@x", tracked)}, nil)
		})
		t.Run("keyword cleared by another session", func(t *testing.T) {
			if err := other.ClearKeyword(ctx, "INBOX", cur.UIDValidity, []uint32{u2}, tracked); err != nil {
				t.Fatal(err)
			}
			step(t, []string{fmtS(u2, "changed", "m2@x", "")}, nil)
		})
		t.Run("expunge and new", func(t *testing.T) {
			u3 := appendMail(t, other, "INBOX", "m3@x")
			if _, err := other.Move(ctx, "INBOX", 0, []uint32{u1}, "Sent"); err != nil {
				t.Fatal(err)
			}
			step(t, []string{fmtS(u3, "new", "m3@x", "")}, []uint32{u1})
			step(t, nil, nil)
		})
		t.Run("seen flag is a change", func(t *testing.T) {
			if err := other.storeFlag(ctx, "INBOX", u2, `\Seen`); err != nil {
				t.Fatal(err)
			}
			step(t, []string{fmtS(u2, "changed", "m2@x", "")}, nil)
		})
	})
}

func fmtS(uid uint32, kind, id, kw string) string {
	s := summary(&ChangeSet{Messages: []Message{{UID: uid, New: kind == "new", MessageID: id, Flags: []string{kw}}}}, tracked)
	if kw == "" {
		s = summary(&ChangeSet{Messages: []Message{{UID: uid, New: kind == "new", MessageID: id}}}, tracked)
	}
	return s[0]
}

func TestClient_ChangesResync(t *testing.T) {
	forEachServer(t, func(t *testing.T, srv *server) {
		c := srv.dial(t)
		ctx := testCtx(t)
		const mb = "CRM/Regarding/Contoso"
		if err := c.Create(ctx, mb); err != nil {
			t.Fatal(err)
		}
		if err := c.Create(ctx, mb); err != nil {
			t.Fatalf("Create of an existing mailbox = %v, want nil", err)
		}
		appendMail(t, c, mb, "a@x")
		appendMail(t, c, mb, "b@x")
		cs := mustChanges(t, c, mb, Cursor{})
		cur := cs.Cursor
		if err := c.Delete(ctx, mb); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Changes(ctx, mb, cur); !errors.Is(err, ErrNoMailbox) {
			t.Fatalf("Changes of a deleted mailbox = %v, want ErrNoMailbox", err)
		}
		if err := c.Create(ctx, mb); err != nil {
			t.Fatal(err)
		}
		u := appendMail(t, c, mb, "b@x", tracked)
		cs = mustChanges(t, c, mb, roundTrip(t, cur))
		if !cs.Resync {
			t.Fatalf("Changes after delete+create: Resync = false (UIDVALIDITY %d -> %d)", cur.UIDValidity, cs.Cursor.UIDValidity)
		}
		want := []string{fmtS(u, "new", "b@x", tracked)}
		if got := summary(cs, tracked); !slices.Equal(got, want) || len(cs.Expunged) != 0 {
			t.Fatalf("Changes after resync = %q, expunged %v; want %q, none", got, cs.Expunged, want)
		}
		if _, err := c.FetchMessage(ctx, mb, cur.UIDValidity, u); !errors.Is(err, ErrUIDValidity) {
			t.Fatalf("FetchMessage with the old UIDVALIDITY = %v, want ErrUIDValidity", err)
		}
	})
}

// TestSession_CompleteHeaders covers the answer go-imap may hand a FETCH
// when another session's flag change arrives mid-command: a message
// without the header section, which is fetched again.
func TestSession_CompleteHeaders(t *testing.T) {
	srv := newMemServer(t)
	c := srv.dial(t)
	u1 := appendMail(t, c, "INBOX", "h1@x")
	u2 := appendMail(t, c, "INBOX", "h2@x")
	err := c.do(testCtx(t), "test", false, func(s *session) error {
		if _, err := s.selectMailbox("INBOX", true); err != nil {
			return err
		}
		opts := c.fetchOptions(s)
		bufs, err := s.cl.Fetch(all, &imap.FetchOptions{UID: true, Flags: true}).Collect()
		if err != nil {
			return err
		}
		bufs = append(bufs, &imapclient.FetchMessageBuffer{UID: 99}) // expunged meanwhile
		got, err := s.completeHeaders(bufs, opts)
		if err != nil {
			return err
		}
		var ids []string
		for _, b := range got {
			ids = append(ids, messageOf(b, opts.BodySection[0]).MessageID)
		}
		if want := []string{"h1@x", "h2@x"}; !slices.Equal(ids, want) {
			t.Errorf("completeHeaders of UIDs %d, %d, 99 = %q, want %q", u1, u2, ids, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
