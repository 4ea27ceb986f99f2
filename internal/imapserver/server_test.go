package imapserver

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-message/mail"
)

const pw = "imap-secret"

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newServer(t *testing.T, dir string) *Server {
	t.Helper()
	s, err := New(context.Background(), Options{Dir: dir, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.AddUser(context.Background(), "alice", pw); err != nil {
		t.Fatal(err)
	}
	return s
}

func login(t *testing.T, s *Server) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialInsecure(s.Addr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Login("alice", pw).Wait(); err != nil {
		t.Fatalf("login: %v", err)
	}
	return c
}

func sample(t *testing.T, subject, id string) []byte {
	t.Helper()
	b, err := Message{
		From:      mail.Address{Name: "Ada Lovelace", Address: "ada@example.org"},
		To:        []mail.Address{{Address: "alice@example.org"}},
		Subject:   subject,
		Date:      time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC),
		MessageID: id,
		Body:      "Hello from the demo.\r\n",
	}.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func hasFlag(flags []imap.Flag, want imap.Flag) bool {
	return slices.ContainsFunc(flags, func(f imap.Flag) bool { return strings.EqualFold(string(f), string(want)) })
}

func TestServer_LoginListKeyword(t *testing.T) {
	s := newServer(t, "")
	t.Cleanup(func() { s.Close() })
	ctx := context.Background()
	uid, validity, err := s.Append(ctx, "alice", "INBOX", sample(t, "Offer", "offer@example.org"), nil, time.Time{})
	if err != nil || uid != 1 || validity == 0 {
		t.Fatalf("Append = %d, %d, %v", uid, validity, err)
	}

	t.Run("bad password", func(t *testing.T) {
		c, err := imapclient.DialInsecure(s.Addr(), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.Login("alice", "wrong").Wait(); err == nil {
			t.Fatal("login with a wrong password succeeded")
		}
	})

	c1 := login(t, s)
	boxes, err := c1.List("", "*", &imap.ListOptions{ReturnSpecialUse: true}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]imap.MailboxAttr{}
	for _, b := range boxes {
		got[b.Mailbox] = b.Attrs
	}
	if len(got) != 3 || !slices.Contains(got["Sent"], imap.MailboxAttrSent) || !slices.Contains(got["Drafts"], imap.MailboxAttrDrafts) {
		t.Fatalf("LIST = %v, want INBOX, Sent (\\Sent), Drafts (\\Drafts)", got)
	}
	if _, ok := got["INBOX"]; !ok {
		t.Fatalf("LIST = %v, want INBOX", got)
	}

	if _, err := c1.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	const kw = imap.Flag("$CRMTracked")
	if err := c1.Store(imap.UIDSetNum(uid), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{kw}}, nil).Close(); err != nil {
		t.Fatalf("STORE: %v", err)
	}

	c2 := login(t, s)
	if _, err := c2.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		t.Fatal(err)
	}
	msgs, err := c2.Fetch(imap.UIDSetNum(uid), &imap.FetchOptions{UID: true, Flags: true}).Collect()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("FETCH = %v, %v", msgs, err)
	}
	if !hasFlag(msgs[0].Flags, kw) {
		t.Fatalf("second session sees flags %v, want %s", msgs[0].Flags, kw)
	}
	sd, err := c2.UIDSearch(&imap.SearchCriteria{Flag: []imap.Flag{kw}}, nil).Wait()
	if err != nil || !slices.Equal(sd.AllUIDs(), []imap.UID{uid}) {
		t.Fatalf("SEARCH KEYWORD = %v, %v", sd, err)
	}

	// CREATE with a special use shows up in LIST.
	if err := c1.Create("Archive", &imap.CreateOptions{SpecialUse: []imap.MailboxAttr{imap.MailboxAttrArchive}}).Wait(); err != nil {
		t.Fatal(err)
	}
	boxes, err = c2.List("", "Arch*", nil).Collect()
	if err != nil || len(boxes) != 1 || !slices.Contains(boxes[0].Attrs, imap.MailboxAttrArchive) {
		t.Fatalf("LIST Arch* = %+v, %v", boxes, err)
	}
}

func TestServer_Persistence(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s := newServer(t, dir)
	var uids []imap.UID
	for _, subj := range []string{"one", "two", "three"} {
		uid, _, err := s.Append(ctx, "alice", "INBOX", sample(t, subj, subj+"@example.org"), []imap.Flag{imap.FlagSeen}, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		uids = append(uids, uid)
	}
	if _, _, err := s.Append(ctx, "alice", "Sent", sample(t, "sent", "sent@example.org"), nil, time.Time{}); err != nil {
		t.Fatal(err)
	}
	c := login(t, s)
	// A deleted mailbox leaves a UIDVALIDITY gap; expunging "one" leaves a UID gap.
	for _, cmd := range []func() error{
		func() error { return c.Create("Tmp", nil).Wait() },
		func() error { return c.Delete("Tmp").Wait() },
		func() error { return c.Create("CRM/Regarding/Contoso", nil).Wait() },
		func() error { return c.Create("Tmp2", nil).Wait() },
		func() error { return c.Delete("Tmp2").Wait() },
	} {
		if err := cmd(); err != nil {
			t.Fatal(err)
		}
	}
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(c.Store(imap.UIDSetNum(uids[0]), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close())
	must(c.UIDExpunge(imap.UIDSetNum(uids[0])).Close())
	must(c.Store(imap.UIDSetNum(uids[2]), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{"$CRMTracked"}}, nil).Close())
	c.Close()
	crmStatus, err := statusOf(t, s, "CRM/Regarding/Contoso")
	must(err)
	must(s.Close())

	s2 := newServer(t, dir)
	t.Cleanup(func() { s2.Close() })
	c2 := login(t, s2)
	sel2, err := c2.Select("INBOX", nil).Wait()
	must(err)
	if sel2.UIDValidity != sel.UIDValidity || sel2.UIDNext != sel.UIDNext || sel2.NumMessages != 2 {
		t.Fatalf("INBOX after restart: validity %d next %d n %d; want %d %d 2",
			sel2.UIDValidity, sel2.UIDNext, sel2.NumMessages, sel.UIDValidity, sel.UIDNext)
	}
	msgs, err := c2.Fetch(imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}}, &imap.FetchOptions{
		UID: true, Flags: true, Envelope: true}).Collect()
	must(err)
	if len(msgs) != 2 || msgs[0].UID != uids[1] || msgs[1].UID != uids[2] {
		t.Fatalf("UIDs after restart = %v, want %v", msgs, uids[1:])
	}
	if msgs[0].Envelope.Subject != "two" || !hasFlag(msgs[0].Flags, imap.FlagSeen) || !hasFlag(msgs[1].Flags, "$CRMTracked") {
		t.Fatalf("messages after restart: %q %v / %v", msgs[0].Envelope.Subject, msgs[0].Flags, msgs[1].Flags)
	}
	st2, err := statusOf(t, s2, "CRM/Regarding/Contoso")
	must(err)
	if st2.UIDValidity != crmStatus.UIDValidity {
		t.Fatalf("UIDVALIDITY of a mailbox created after a deleted one: %d, want %d", st2.UIDValidity, crmStatus.UIDValidity)
	}
	boxes, err := c2.List("", "*", nil).Collect()
	must(err)
	for _, b := range boxes {
		if b.Mailbox == "Sent" && !slices.Contains(b.Attrs, imap.MailboxAttrSent) {
			t.Fatalf("Sent lost its special use: %v", b.Attrs)
		}
		if b.Mailbox == "Tmp" || strings.Contains(b.Mailbox, "gap") {
			t.Fatalf("unexpected mailbox %q after restart", b.Mailbox)
		}
	}
	if len(boxes) != 4 {
		t.Fatalf("mailboxes after restart = %d, want 4", len(boxes))
	}
	// A new mailbox gets a fresh UIDVALIDITY, not the deleted Tmp2's.
	must(c2.Create("New", nil).Wait())
	stNew, err := statusOf(t, s2, "New")
	must(err)
	if stNew.UIDValidity <= st2.UIDValidity+1 {
		t.Fatalf("UIDVALIDITY of a new mailbox = %d, want > %d (Tmp2's)", stNew.UIDValidity, st2.UIDValidity+1)
	}
}

func statusOf(t *testing.T, s *Server, mbox string) (*imap.StatusData, error) {
	t.Helper()
	c := login(t, s)
	defer c.Close()
	return c.Status(mbox, &imap.StatusOptions{UIDValidity: true, UIDNext: true, NumMessages: true}).Wait()
}

// TestServer_IdleSeesAppend: a message filed with Append wakes a client
// in IDLE (the bridge's immediate trigger).
func TestServer_IdleSeesAppend(t *testing.T) {
	s := newServer(t, "")
	t.Cleanup(func() { s.Close() })
	exists := make(chan uint32, 4)
	c, err := imapclient.DialInsecure(s.Addr(), &imapclient.Options{
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{
			Mailbox: func(d *imapclient.UnilateralDataMailbox) {
				if d.NumMessages != nil {
					exists <- *d.NumMessages
				}
			},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Login("alice", pw).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	idle, err := c.Idle()
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Append(context.Background(), "alice", "INBOX", sample(t, "Ping", "ping@example.org"), nil, time.Time{}); err != nil {
		t.Fatal(err)
	}
	select {
	case n := <-exists:
		if n != 1 {
			t.Fatalf("EXISTS %d, want 1", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no EXISTS during IDLE after Append")
	}
	if err := idle.Close(); err != nil {
		t.Fatal(err)
	}
	if err := idle.Wait(); err != nil {
		t.Fatal(err)
	}
}
