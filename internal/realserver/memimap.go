package realserver

import (
	"net"
	"testing"

	imap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
)

// MemIMAP is go-imap's in-memory IMAP server, running in-process: the
// counterpart of Dovecot for the paths a server without CONDSTORE and
// SPECIAL-USE takes (it lower-cases keywords).
type MemIMAP struct {
	Addr     string
	User     string
	Password string
	// Mem is the user's mailbox store, for tests that change it directly.
	Mem *imapmemserver.User
}

// StartMemIMAP serves imapmemserver on a free 127.0.0.1 port with user
// alice and INBOX, Sent and Drafts; it stops with the test.
func StartMemIMAP(t testing.TB) *MemIMAP {
	t.Helper()
	mem := imapmemserver.New()
	user := imapmemserver.NewUser("alice", "mempw")
	for _, mb := range []string{"INBOX", "Sent", "Drafts"} {
		if err := user.Create(mb, nil); err != nil {
			t.Fatal(err)
		}
	}
	mem.AddUser(user)
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return mem.NewSession(), nil, nil
		},
		Caps:         imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {}},
		InsecureAuth: true,
		Logger:       discardLogger{},
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { // ends when Close below closes the listener
		defer close(done)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		<-done
	})
	return &MemIMAP{Addr: ln.Addr().String(), User: "alice", Password: "mempw", Mem: user}
}

type discardLogger struct{}

func (discardLogger) Printf(string, ...any) {}
