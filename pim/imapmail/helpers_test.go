package imapmail

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"

	"github.com/pimbridge/pimbridge/internal/realserver"
)

// server is an IMAP server a test runs against.
type server struct {
	name      string
	addr      string
	user      string
	pass      string
	condstore bool // CONDSTORE offered (Dovecot) or not (imapmemserver)
	dovecot   *realserver.DovecotServer
	mem       *imapmemserver.User
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newMemServer starts imapmemserver on 127.0.0.1 with INBOX, Sent and
// Drafts (no SPECIAL-USE, no CONDSTORE).
func newMemServer(t testing.TB) *server {
	t.Helper()
	m := realserver.StartMemIMAP(t)
	return &server{name: "memserver", addr: m.Addr, user: m.User, pass: m.Password, mem: m.Mem}
}

func newDovecot(t testing.TB) *server {
	t.Helper()
	d := realserver.Dovecot(t)
	return &server{name: "dovecot", addr: d.Addr, user: d.User, pass: d.Password, condstore: true, dovecot: d}
}

// forEachServer runs body against imapmemserver and against Dovecot.
func forEachServer(t *testing.T, body func(t *testing.T, srv *server)) {
	t.Run("memserver", func(t *testing.T) { body(t, newMemServer(t)) })
	t.Run("dovecot", func(t *testing.T) { body(t, newDovecot(t)) })
}

func (srv *server) options() Options {
	return Options{
		Addr: srv.addr, Security: SecurityNone, User: srv.user, Password: srv.pass,
		Logger: quietLogger(), ReconnectMin: 20 * time.Millisecond, ReconnectMax: 200 * time.Millisecond,
	}
}

// dial connects a Client and closes it at the end of the test.
func (srv *server) dial(t testing.TB) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, srv.options())
	if err != nil {
		t.Fatalf("Dial(%s) = %v", srv.addr, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// testMail returns a small RFC 5322 message with Message-ID <id>.
func testMail(id, subject string) []byte {
	return fmt.Appendf(nil, "From: Ann <ann@example.com>\r\nTo: Bob <bob@example.org>\r\n"+
		"Subject: %s\r\nDate: Mon, 02 Jan 2006 15:04:05 +0000\r\nMessage-ID: <%s>\r\n"+
		"In-Reply-To: <parent-%s>\r\nReferences: <root@example.com> <parent-%s>\r\n"+
		"Content-Type: text/plain; charset=utf-8\r\n\r\nHello %s\r\n", subject, id, id, id, id)
}

func appendMail(t testing.TB, c *Client, mailbox, id string, flags ...string) uint32 {
	t.Helper()
	_, uid, err := c.Append(testCtx(t), mailbox, flags, time.Time{}, testMail(id, "subject "+id))
	if err != nil {
		t.Fatalf("Append(%s, %s) = %v", mailbox, id, err)
	}
	return uid
}

func mustChanges(t testing.TB, c *Client, mailbox string, cur Cursor) *ChangeSet {
	t.Helper()
	cs, err := c.Changes(testCtx(t), mailbox, cur)
	if err != nil {
		t.Fatalf("Changes(%s) = %v", mailbox, err)
	}
	return cs
}

// summary renders a change set as "uid:new/changed:msgid:tracked".
func summary(cs *ChangeSet, keyword string) []string {
	var out []string
	for _, m := range cs.Messages {
		kind := "changed"
		if m.New {
			kind = "new"
		}
		tracked := ""
		if m.HasFlag(keyword) {
			tracked = ":" + keyword
		}
		out = append(out, fmt.Sprintf("%d:%s:%s%s", m.UID, kind, m.MessageID, tracked))
	}
	return out
}
