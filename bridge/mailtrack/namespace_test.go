package mailtrack

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/pim/imapmail"
)

// defaultFolders are the folder settings as a config with the defaults
// passes them: paths written with "/".
func defaultFolders(o *Options) {
	o.Folders = []string{"INBOX", "Sent"}
	o.RegardingFolder = "CRM/Regarding"
}

// TestTracker_FolderPathsFollowServerNamespace: folder paths in the config
// are written with "/" and become the server's separator and personal
// namespace (RFC 2342); "Sent" is the server's \Sent folder (RFC 6154).
// On Cyrus ("." and INBOX.) the defaults must track without an error.
func TestTracker_FolderPathsFollowServerNamespace(t *testing.T) {
	forEachServer(t, func(t *testing.T, e *env) {
		c := e.dial(t)
		acme := e.account(t, "Acme")
		tr := e.tracker(t, "a.db", defaultFolders)
		st, err := tr.Cycle(testCtx(t))
		if err != nil || st.Failed != 0 {
			t.Fatalf("first Cycle with the default folders = %+v, %v", st, err)
		}
		want := e.path("CRM/Regarding/Acme")
		if got := tr.RegardingFolder(crm.Ref{Entity: crm.EntityAccount, ID: acme.ID}); got != want {
			t.Fatalf("regarding folder of Acme = %q, want %q", got, want)
		}
		if got := tr.Folders(); !slices.Contains(got, e.sent) || !slices.Contains(got, "INBOX") {
			t.Fatalf("folders read = %q, want INBOX and %s", got, e.sent)
		}
		appendMail(t, c, e.sent, testMail("out@x", "Alice <alice@example.com>", "sent"), DefaultKeyword)
		appendMail(t, c, want, testMail("filed@x", "Carl <carl@example.net>", "filed"))
		cycle(t, tr)
		if r := e.one(t, "out@x"); r.Attrs["directioncode"] != true {
			t.Errorf("message in %s: directioncode = %v, want outgoing", e.sent, r.Attrs["directioncode"])
		}
		if r := e.one(t, "filed@x"); regardingID(r) != acme.ID {
			t.Errorf("message filed in %s: regarding = %v, want Acme", want, r.Attrs["regardingobjectid"])
		}
	})
}

// refusingMailbox refuses to create one folder, as a server does for a
// name it does not allow.
type refusingMailbox struct {
	Mailbox
	refuse string
}

func (m refusingMailbox) Create(ctx context.Context, name string) error {
	if name == m.refuse {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Text: "Permission denied"}
	}
	return m.Mailbox.Create(ctx, name)
}

// TestTracker_FolderNotCreatedIsOneSyncError: a Regarding folder the
// server will not create is one sync error naming it; the cycle goes on
// (other folders are created and messages tracked) and does not fail, and
// the error goes once the folder can be created.
func TestTracker_FolderNotCreatedIsOneSyncError(t *testing.T) {
	forEachServer(t, func(t *testing.T, e *env) {
		c := e.dial(t)
		e.account(t, "Acme")
		globex := e.account(t, "Globex")
		bad := e.path("CRM/Regarding/Acme")
		rm := &refusingMailbox{Mailbox: c, refuse: bad}
		tr := e.tracker(t, "a.db", func(o *Options) { defaultFolders(o); o.Mailbox = rm })
		appendMail(t, c, "INBOX", testMail("kw@x", "Ann <ann@example.com>", "keyword"), DefaultKeyword)
		st, err := tr.Cycle(testCtx(t))
		if err != nil {
			t.Fatalf("Cycle with one folder refused = %v, want no error (one sync error)", err)
		}
		if st.Failed != 1 {
			t.Errorf("Failed = %d, want 1", st.Failed)
		}
		errs, err := tr.opts.Cache.SyncErrors(testCtx(t))
		if err != nil {
			t.Fatal(err)
		}
		if len(errs) != 1 || !strings.Contains(errs[0].Item, bad) || !strings.Contains(errs[0].Message, "Permission denied") {
			t.Fatalf("sync errors = %+v, want one naming %s", errs, bad)
		}
		if got := tr.RegardingFolder(crm.Ref{Entity: crm.EntityAccount, ID: globex.ID}); got != e.path("CRM/Regarding/Globex") {
			t.Errorf("Globex folder = %q", got)
		}
		e.one(t, "kw@x")
		rm.refuse = ""
		tr.opts.RegardingRefresh = 1 // due again at once
		cycle(t, tr)
		if errs, _ := tr.opts.Cache.SyncErrors(testCtx(t)); len(errs) != 0 {
			t.Errorf("sync errors after the folder was created = %+v", errs)
		}
		mbs, err := c.Mailboxes(testCtx(t))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(mbs, func(m imapmail.Mailbox) bool { return m.Name == bad }) {
			t.Errorf("%s not created once allowed", bad)
		}
	})
}

// TestTracker_SentFoundBySpecialUseBeforeNames: "Sent" in the folders
// setting means the folder the server marks \Sent (RFC 6154), even when
// it has another name and a plain folder is called Sent. Cyrus: INBOX.Sent
// (\Sent) renamed to INBOX.Gesendet, keeping its special use, and a new
// plain INBOX.Sent.
func TestTracker_SentFoundBySpecialUseBeforeNames(t *testing.T) {
	e := newCyrusEnv(t)
	raw, err := imapclient.DialInsecure(e.addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if err := raw.Login(e.user, e.pass).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := raw.Rename("INBOX.Sent", "INBOX.Gesendet", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := raw.Create("INBOX.Sent", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	c := e.dial(t)
	mbs, err := c.Mailboxes(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if i := slices.IndexFunc(mbs, func(m imapmail.Mailbox) bool { return m.Name == "INBOX.Gesendet" }); i < 0 || mbs[i].SpecialUse != imapmail.SpecialSent {
		t.Fatalf("setup: mailboxes = %+v, want INBOX.Gesendet with \\Sent", mbs)
	}
	tr := e.tracker(t, "a.db", defaultFolders)
	cycle(t, tr)
	if got := tr.Folders(); !slices.Contains(got, "INBOX.Gesendet") || slices.Contains(got, "INBOX.Sent") {
		t.Fatalf("folders read = %q, want INBOX.Gesendet (\\Sent) and not the plain INBOX.Sent", got)
	}
	appendMail(t, c, "INBOX.Gesendet", testMail("out@x", "Alice <alice@example.com>", "sent"), DefaultKeyword)
	cycle(t, tr)
	if r := e.one(t, "out@x"); r.Attrs["directioncode"] != true {
		t.Errorf("message in the \\Sent folder: directioncode = %v, want outgoing", r.Attrs["directioncode"])
	}
}

// TestTracker_MissingWatchedFolderIsASyncError: a folder of the folders
// setting that the server does not have is a sync error naming it (the
// user typed it; it is not skipped silently), the other folders are still
// tracked, and the error goes once the folder exists.
func TestTracker_MissingWatchedFolderIsASyncError(t *testing.T) {
	forEachServer(t, func(t *testing.T, e *env) {
		c := e.dial(t)
		tr := e.tracker(t, "a.db", func(o *Options) { o.Folders = []string{"INBOX", "Archive/2026"} })
		appendMail(t, c, "INBOX", testMail("kw@x", "Ann <ann@example.com>", "keyword"), DefaultKeyword)
		st, err := tr.Cycle(testCtx(t))
		if err != nil || st.Failed != 1 {
			t.Fatalf("Cycle with a missing folder = %+v, %v; want no error and 1 failed", st, err)
		}
		archive := e.path("Archive/2026")
		errs, err := tr.opts.Cache.SyncErrors(testCtx(t))
		if err != nil {
			t.Fatal(err)
		}
		if len(errs) != 1 || !strings.Contains(errs[0].Item, archive) {
			t.Fatalf("sync errors = %+v, want one naming %s", errs, archive)
		}
		e.one(t, "kw@x")
		if err := c.Create(testCtx(t), archive); err != nil {
			t.Fatal(err)
		}
		cycle(t, tr)
		if errs, _ := tr.opts.Cache.SyncErrors(testCtx(t)); len(errs) != 0 {
			t.Errorf("sync errors after the folder was made = %+v", errs)
		}
	})
}
