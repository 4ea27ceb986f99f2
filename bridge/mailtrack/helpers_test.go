package mailtrack

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmclient"
	"github.com/pimbridge/pimbridge/crm/crmtest"
	"github.com/pimbridge/pimbridge/idmap"
	"github.com/pimbridge/pimbridge/internal/realserver"
	"github.com/pimbridge/pimbridge/pim/imapmail"
)

var _ CRM = (*crmclient.Client)(nil)

// env is one IMAP server (imapmemserver or Dovecot) and one CRM server.
type env struct {
	name    string
	addr    string
	user    string
	pass    string
	dovecot *realserver.DovecotServer
	crm     *crmtest.Server
	dir     string
	// sent and drafts are the server's \Sent and \Drafts folders; serverPath turns a folder path
	// written with "/" into the server's name (nil: unchanged).
	sent       string
	drafts     string
	serverPath func(string) string
}

// path is the server's name of a folder path written with "/".
func (e *env) path(p string) string {
	if e.serverPath == nil {
		return p
	}
	return e.serverPath(p)
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newMemEnv starts imapmemserver (no CONDSTORE, no SPECIAL-USE) with
// INBOX, Sent and Drafts.
func newMemEnv(t testing.TB) *env {
	t.Helper()
	m := realserver.StartMemIMAP(t)
	return &env{name: "memserver", addr: m.Addr, user: m.User, pass: m.Password,
		crm: crmtest.Start(t, nil), dir: t.TempDir(), sent: "Sent", drafts: "Drafts"}
}

func newDovecotEnv(t testing.TB) *env {
	t.Helper()
	d := realserver.Dovecot(t)
	return &env{name: "dovecot", addr: d.Addr, user: d.User, pass: d.Password, dovecot: d,
		crm: crmtest.Start(t, nil), dir: t.TempDir(), sent: "Sent", drafts: "Drafts"}
}

// newCyrusEnv is Cyrus IMAP with Debian's stock namespace: "." separator
// and the personal namespace "INBOX.", Sent at INBOX.Sent.
func newCyrusEnv(t testing.TB) *env {
	t.Helper()
	s := realserver.Cyrus(t)
	return &env{name: "cyrus", addr: s.IMAPAddr, user: s.User, pass: s.Password,
		crm: crmtest.Start(t, nil), dir: t.TempDir(), sent: "INBOX.Sent", drafts: "INBOX.Drafts",
		serverPath: func(p string) string {
			if strings.EqualFold(p, "INBOX") {
				return "INBOX"
			}
			return "INBOX." + strings.ReplaceAll(p, "/", ".")
		}}
}

// forEachServer runs body against imapmemserver, Dovecot and Cyrus (whose
// separator is "." under an INBOX. personal namespace).
func forEachServer(t *testing.T, body func(t *testing.T, e *env)) {
	t.Run("memserver", func(t *testing.T) { body(t, newMemEnv(t)) })
	t.Run("dovecot", func(t *testing.T) { body(t, newDovecotEnv(t)) })
	t.Run("cyrus", func(t *testing.T) { body(t, newCyrusEnv(t)) })
}

func (e *env) imapOptions() imapmail.Options {
	return imapmail.Options{Addr: e.addr, Security: imapmail.SecurityNone, User: e.user, Password: e.pass,
		Logger: quietLogger(), ReconnectMin: 20 * time.Millisecond, ReconnectMax: 200 * time.Millisecond,
		WatchPoll: 500 * time.Millisecond}
}

func (e *env) dial(t testing.TB) *imapmail.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := imapmail.Dial(ctx, e.imapOptions())
	if err != nil {
		t.Fatalf("Dial(%s) = %v", e.addr, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func openCache(t testing.TB, path string) *idmap.Store {
	t.Helper()
	st, err := idmap.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// tracker returns a Tracker of alice with its own cache file name.
func (e *env) tracker(t testing.TB, cache string, mod func(*Options)) *Tracker {
	t.Helper()
	o := Options{CRM: e.crm.Alice.Client, Mailbox: e.dial(t), Cache: openCache(t, filepath.Join(e.dir, cache)),
		Logger: quietLogger()}
	if mod != nil {
		mod(&o)
	}
	tr, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func cycle(t testing.TB, tr *Tracker) Stats {
	t.Helper()
	st, err := tr.Cycle(testCtx(t))
	if err != nil {
		t.Fatalf("Cycle = %+v, %v", st, err)
	}
	return st
}

// testMail returns a small message with Message-ID <id>.
func testMail(id, from, subject string, extra ...string) []byte {
	h := ""
	for _, x := range extra {
		h += x + "\r\n"
	}
	return fmt.Appendf(nil, "From: %s\r\nTo: Bob <bob@example.org>\r\nSubject: %s\r\n"+
		"Date: Mon, 02 Jan 2006 15:04:05 +0000\r\nMessage-ID: <%s>\r\n%s"+
		"Content-Type: text/plain; charset=utf-8\r\n\r\nHello %s\r\n", from, subject, id, h, id)
}

func appendMail(t testing.TB, c *imapmail.Client, mailbox string, msg []byte, flags ...string) uint32 {
	t.Helper()
	_, uid, err := c.Append(testCtx(t), mailbox, flags, time.Time{}, msg)
	if err != nil {
		t.Fatalf("Append(%s) = %v", mailbox, err)
	}
	return uid
}

// emails returns the CRM emails (as alice sees them) with that Message-ID.
func (e *env) emails(t testing.TB, id string) []crm.Record {
	t.Helper()
	rs, err := e.crm.Alice.Client.QueryAll(testCtx(t), crm.EntityEmail, crmclient.Query{
		Filter: "messageid eq " + odataString("<"+id+">")})
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func (e *env) allEmails(t testing.TB) []crm.Record {
	t.Helper()
	rs, err := e.crm.Alice.Client.QueryAll(testCtx(t), crm.EntityEmail, crmclient.Query{Select: []string{"messageid", "regardingobjectid"}})
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// one returns the only CRM email with that Message-ID, failing otherwise.
func (e *env) one(t testing.TB, id string) crm.Record {
	t.Helper()
	rs := e.emails(t, id)
	if len(rs) != 1 {
		t.Fatalf("CRM emails with Message-ID %s = %d, want 1", id, len(rs))
	}
	return rs[0]
}

func (e *env) account(t testing.TB, name string) crm.Record {
	t.Helper()
	r, err := e.crm.Alice.Client.Create(testCtx(t), crm.Record{Entity: crm.EntityAccount, Attrs: map[string]any{"name": name}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// flagsOf returns whether message uid of mailbox has the keyword, read by a
// fresh Changes.
func hasKeyword(t testing.TB, c *imapmail.Client, mailbox string, uid uint32, kw string) bool {
	t.Helper()
	cs, err := c.Changes(testCtx(t), mailbox, imapmail.Cursor{})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range cs.Messages {
		if m.UID == uid {
			return m.HasFlag(kw)
		}
	}
	t.Fatalf("%s: no UID %d", mailbox, uid)
	return false
}

func regardingID(r crm.Record) crm.ID {
	ref, _ := r.Attrs["regardingobjectid"].(crm.Ref)
	return ref.ID
}

func mustAll(t testing.TB, c *imapmail.Client) []imapmail.Message {
	t.Helper()
	cs, err := c.Changes(testCtx(t), "INBOX", imapmail.Cursor{})
	if err != nil {
		t.Fatal(err)
	}
	return cs.Messages
}
