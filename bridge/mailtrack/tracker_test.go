package mailtrack

import (
	"errors"
	"testing"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/pim/imapmail"
)

// TestTracker_Rules runs the e-mail rules and the immediate-sync table's
// rows that apply to IMAP, against imapmemserver and Dovecot.
func TestTracker_Rules(t *testing.T) {
	forEachServer(t, func(t *testing.T, e *env) {
		ctx := testCtx(t)
		c := e.dial(t)
		acme, globex := e.account(t, "Acme"), e.account(t, "Globex")
		ann, err := e.crm.Alice.Client.Create(ctx, crm.Record{Entity: crm.EntityContact, Attrs: map[string]any{
			"lastname": "Ann", "emailaddress1": "ann@example.com"}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		tr := e.tracker(t, "a.db", func(o *Options) { o.TrackReplies = true })
		cycle(t, tr)
		acmeF, globexF := tr.RegardingFolder(crm.Ref{Entity: crm.EntityAccount, ID: acme.ID}), tr.RegardingFolder(crm.Ref{Entity: crm.EntityAccount, ID: globex.ID})
		if acmeF != e.path("CRM/Regarding/Acme") || globexF != e.path("CRM/Regarding/Globex") {
			t.Fatalf("regarding folders = %q, %q", acmeF, globexF)
		}

		t.Run("track by keyword", func(t *testing.T) {
			appendMail(t, c, "INBOX", testMail("kw@x", "Ann <ann@example.com>", "keyword"), DefaultKeyword)
			appendMail(t, c, "INBOX", testMail("plain@x", "Ann <ann@example.com>", "plain"))
			cycle(t, tr)
			r := e.one(t, "kw@x")
			if r.Attrs["directioncode"] != false || r.Attrs["subject"] != "keyword" {
				t.Errorf("email = %v", r.Attrs)
			}
			from, _ := r.Attrs["from"].([]crm.Party)
			to, _ := r.Attrs["to"].([]crm.Party)
			if len(from) != 1 || from[0].Party == nil || from[0].Party.ID != ann.ID {
				t.Errorf("from = %+v, want contact %s", from, ann.ID)
			}
			if len(to) != 1 || to[0].Party != nil || to[0].Address != "bob@example.org" {
				t.Errorf("to = %+v, want unresolved bob@example.org", to)
			}
			if n := len(e.emails(t, "plain@x")); n != 0 {
				t.Errorf("untagged message tracked (%d)", n)
			}
		})
		var regUID uint32
		t.Run("track by regarding folder", func(t *testing.T) {
			regUID = appendMail(t, c, acmeF, testMail("reg@x", "Carl <carl@example.net>", "filed"))
			cycle(t, tr)
			r := e.one(t, "reg@x")
			if regardingID(r) != acme.ID {
				t.Errorf("regarding = %v, want Acme", r.Attrs["regardingobjectid"])
			}
			if !hasKeyword(t, c, acmeF, regUID, DefaultKeyword) {
				t.Error("the tracker did not set the keyword")
			}
		})
		t.Run("set regarding by moving", func(t *testing.T) {
			st := cycle(t, tr) // picks up the keyword it set: no change
			if st.Tracked+st.Regarding+st.Untracked != 0 {
				t.Errorf("idle cycle = %+v", st)
			}
			if _, err := c.Move(ctx, acmeF, 0, []uint32{regUID}, globexF); err != nil {
				t.Fatal(err)
			}
			cycle(t, tr)
			cycle(t, tr)
			if r := e.one(t, "reg@x"); regardingID(r) != globex.ID {
				t.Errorf("regarding after move = %v, want Globex", r.Attrs["regardingobjectid"])
			}
		})
		t.Run("move from INBOX into a regarding folder", func(t *testing.T) {
			uid := appendMail(t, c, "INBOX", testMail("mv@x", "Ann <ann@example.com>", "move me"), DefaultKeyword)
			cycle(t, tr)
			if r := e.one(t, "mv@x"); regardingID(r) != (crm.ID{}) {
				t.Fatalf("regarding = %v before the move", r.Attrs["regardingobjectid"])
			}
			if _, err := c.Move(ctx, "INBOX", 0, []uint32{uid}, acmeF); err != nil {
				t.Fatal(err)
			}
			cycle(t, tr)
			if r := e.one(t, "mv@x"); regardingID(r) != acme.ID {
				t.Errorf("regarding after move = %v, want Acme", r.Attrs["regardingobjectid"])
			}
		})
		t.Run("untrack keeps the CRM email", func(t *testing.T) {
			uid := appendMail(t, c, "INBOX", testMail("un@x", "Ann <ann@example.com>", "untrack"), DefaultKeyword)
			cycle(t, tr)
			e.one(t, "un@x")
			if err := c.ClearKeyword(ctx, "INBOX", 0, []uint32{uid}, DefaultKeyword); err != nil {
				t.Fatal(err)
			}
			st := cycle(t, tr)
			if st.Untracked != 1 {
				t.Errorf("Untracked = %d, want 1", st.Untracked)
			}
			e.one(t, "un@x")
			if hasKeyword(t, c, "INBOX", uid, DefaultKeyword) {
				t.Error("keyword set again after untrack")
			}
		})
		t.Run("draft never tracked; tracked once sent", func(t *testing.T) {
			msg := testMail("draft@x", "Alice <alice@example.com>", "draft")
			appendMail(t, c, e.drafts, msg, DefaultKeyword, `\Draft`)
			appendMail(t, c, "INBOX", testMail("draft2@x", "Alice <alice@example.com>", "draft in inbox"), DefaultKeyword, `\Draft`)
			cycle(t, tr)
			if n := len(e.emails(t, "draft@x")) + len(e.emails(t, "draft2@x")); n != 0 {
				t.Fatalf("draft tracked (%d)", n)
			}
			appendMail(t, c, e.sent, msg, DefaultKeyword, `\Seen`)
			cycle(t, tr)
			if r := e.one(t, "draft@x"); r.Attrs["directioncode"] != true {
				t.Errorf("sent message directioncode = %v, want true (outgoing)", r.Attrs["directioncode"])
			}
		})
		t.Run("reply to a tracked message", func(t *testing.T) {
			appendMail(t, c, e.sent, testMail("reply@x", "Alice <alice@example.com>", "Re: keyword", "In-Reply-To: <kw@x>", "References: <kw@x>"))
			appendMail(t, c, e.sent, testMail("other@x", "Alice <alice@example.com>", "Re: other", "In-Reply-To: <nobody@x>"))
			cycle(t, tr)
			e.one(t, "reply@x")
			if n := len(e.emails(t, "other@x")); n != 0 {
				t.Errorf("reply to an untracked message tracked (%d)", n)
			}
		})
		t.Run("deleted on IMAP keeps the CRM email; deleted in CRM leaves IMAP", func(t *testing.T) {
			uid := appendMail(t, c, "INBOX", testMail("del@x", "Ann <ann@example.com>", "delete"), DefaultKeyword)
			uid2 := appendMail(t, c, acmeF, testMail("crmdel@x", "Ann <ann@example.com>", "crm delete"))
			cycle(t, tr)
			trash := e.path("Trash")
			if err := c.Create(ctx, trash); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Move(ctx, "INBOX", 0, []uint32{uid}, trash); err != nil {
				t.Fatal(err)
			}
			st := cycle(t, tr)
			if st.Deleted != 1 {
				t.Errorf("Deleted = %d, want 1", st.Deleted)
			}
			e.one(t, "del@x")
			r := e.one(t, "crmdel@x")
			if err := e.crm.Alice.Client.Delete(ctx, crm.EntityEmail, r.ID, nil); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Move(ctx, acmeF, 0, []uint32{uid2}, globexF); err != nil {
				t.Fatal(err)
			}
			cycle(t, tr)
			if !hasKeyword(t, c, globexF, maxUID(t, c, globexF), DefaultKeyword) {
				t.Error("message touched after its CRM email was deleted")
			}
			if _, err := e.crm.Alice.Client.Get(ctx, crm.EntityEmail, r.ID); !errors.Is(err, crm.ErrNotFound) {
				t.Errorf("deleted email came back: %v", err)
			}
		})
	})
}

func maxUID(t testing.TB, c *imapmail.Client, mailbox string) uint32 {
	t.Helper()
	cs, err := c.Changes(testCtx(t), mailbox, imapmail.Cursor{})
	if err != nil {
		t.Fatal(err)
	}
	return cs.Cursor.LastUID
}
