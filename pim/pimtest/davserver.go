package pimtest

import (
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/pimbridge/pimbridge/internal/davserver"
	"golang.org/x/crypto/bcrypt"
)

// DAVServer is the project's own CardDAV/CalDAV server (internal/davserver,
// the one `pimbridge demo` runs) in memory, in httptest, with the user
// alice (password "x"): sync-token, getctag, If-Match / If-None-Match and
// no-uid-conflict as that server has them. FaultServer is for the quirks
// of other servers and injected failures.
type DAVServer struct {
	URL string
	srv *davserver.Server
	t   testing.TB
}

// NewDAVServer starts a DAVServer, stopped in t.Cleanup.
func NewDAVServer(t testing.TB) *DAVServer {
	t.Helper()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := davserver.New(t.Context(), davserver.Options{Logger: quiet, BcryptCost: bcrypt.MinCost})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		hs.Close()
		srv.Close()
	})
	if err := srv.AddUser(t.Context(), "alice", "x"); err != nil {
		t.Fatal(err)
	}
	return &DAVServer{URL: hs.URL, srv: srv, t: t}
}

// AddAddressBook creates alice's address book name and returns its href.
func (s *DAVServer) AddAddressBook(name string) string {
	s.t.Helper()
	href, err := s.srv.CreateAddressBook(s.t.Context(), "alice", name, name)
	if err != nil {
		s.t.Fatal(err)
	}
	return href
}

// AddCalendar creates alice's calendar name for comps (VEVENT, VTODO; none
// means both) and returns its href.
func (s *DAVServer) AddCalendar(name string, comps ...string) string {
	s.t.Helper()
	href, err := s.srv.CreateCalendar(s.t.Context(), "alice", name, name, comps...)
	if err != nil {
		s.t.Fatal(err)
	}
	return href
}
