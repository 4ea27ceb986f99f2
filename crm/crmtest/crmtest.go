// Package crmtest starts a real CRM server (crmserver over a crmstore
// SQLite file in t.TempDir()) in-process on 127.0.0.1 for tests of the
// packages built on crmclient: the offline engine, the bridge, the CLI.
//
// Start(t) gives three users with ready clients: alice and bob
// (salesperson: full rights on their own records, read on all accounts and
// contacts, Go Offline, Sync to Outlook) and admin (everything). The
// server stops when the test ends. Nothing is faked: security, business
// logic, duplicate detection and the sync protocol are the production code.
//
//	srv := crmtest.Start(t, nil)
//	c, err := srv.Alice.Client.Create(ctx, crm.Record{Entity: "contact", Attrs: map[string]any{"lastname": "Smith"}}, nil)
//
// It imports crm, crmstore, crmserver and crmclient, and only tests should
// import it.
package crmtest

import (
	"bytes"
	"context"
	"log/slog"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmclient"
	"github.com/pimbridge/pimbridge/crm/crmserver"
	"github.com/pimbridge/pimbridge/crm/crmstore"
	"golang.org/x/crypto/bcrypt"
)

// Options tune Start. A nil *Options is the zero value.
type Options struct {
	// Server is passed to crmserver.New; its Logger defaults to one that
	// writes into Server.Logs.
	Server crmserver.Options
	// Now is the store's clock (createdon, modifiedon); nil means
	// time.Now. Give Server.Now the same clock.
	Now func() time.Time
	// Postgres runs the server on PostgreSQL whatever EnvBackend says
	// (tests of several nodes on one database).
	Postgres bool
}

// User is one login of the test server.
type User struct {
	Name     string
	Password string
	ID       crm.ID // systemuserid
	// Client is a crmclient.Client authenticated as the user (Basic).
	Client *crmclient.Client
}

// Server is a running test server.
type Server struct {
	URL   string // base URL, e.g. http://127.0.0.1:41234
	DSN   string // the store's --db value (a SQLite file or a PostgreSQL URL)
	Store *crmstore.Store
	API   *crmserver.Server
	// Alice and Bob are salespeople, Admin has the admin role.
	Alice, Bob, Admin User
	// Logs holds everything the server and store logged (JSON lines).
	Logs *SafeBuffer

	http *httptest.Server
}

// SafeBuffer is a bytes.Buffer safe for concurrent writes.
type SafeBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write implements io.Writer.
func (b *SafeBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns what was written so far.
func (b *SafeBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Passwords of the built-in test users.
const (
	AlicePassword = "alice-secret-pw"
	BobPassword   = "bob-secret-pw"
	AdminPassword = "admin-secret-pw"
)

// Start starts a server for the test and stops it at the end.
func Start(t testing.TB, opts *Options) *Server {
	t.Helper()
	if opts == nil {
		opts = &Options{}
	}
	dsn := DSN(t)
	if opts.Postgres && !Postgres() {
		dsn = PostgresServer(t).NewDatabase(t)
	}
	s := startNode(t, dsn, opts)
	s.Alice = s.AddUser(t, "alice", AlicePassword, crmserver.RoleSalesperson)
	s.Bob = s.AddUser(t, "bob", BobPassword, crmserver.RoleSalesperson)
	s.Admin = s.AddUser(t, "admin", AdminPassword, crmserver.RoleAdmin)
	return s
}

// StartNode starts another server process ("node") on the same database
// as s, for tests of several nodes on one PostgreSQL database; its users
// are s's, with clients of the new node. It stops when the test ends.
func (s *Server) StartNode(t testing.TB, opts *Options) *Server {
	t.Helper()
	if opts == nil {
		opts = &Options{}
	}
	n := startNode(t, s.DSN, opts)
	for _, u := range []struct{ from, to *User }{{&s.Alice, &n.Alice}, {&s.Bob, &n.Bob}, {&s.Admin, &n.Admin}} {
		*u.to = *u.from
		u.to.Client = n.Client(t, u.from.Name, u.from.Password)
	}
	return n
}

func startNode(t testing.TB, dsn string, opts *Options) *Server {
	t.Helper()
	logs := &SafeBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx := context.Background()
	st, err := crmstore.Open(ctx, dsn, &crmstore.Options{Logger: logger, BcryptCost: bcrypt.MinCost, Now: opts.Now})
	if err != nil {
		t.Fatalf("crmtest: open store: %v", err)
	}
	so := opts.Server
	if so.Logger == nil {
		so.Logger = logger
	}
	api := crmserver.New(st, &so)
	hs := httptest.NewServer(api)
	s := &Server{URL: hs.URL, DSN: dsn, Store: st, API: api, Logs: logs, http: hs}
	t.Cleanup(func() {
		hs.Close()
		st.Close()
	})
	return s
}

// AddUser creates another user with the given roles (none: no rights).
func (s *Server) AddUser(t testing.TB, name, password string, roles ...string) User {
	t.Helper()
	u, err := s.Store.CreateUser(context.Background(), name, password, roles...)
	if err != nil {
		t.Fatalf("crmtest: create user %s: %v", name, err)
	}
	return User{Name: name, Password: password, ID: u.ID, Client: s.Client(t, name, password)}
}

// Client returns a client for any credentials (including wrong ones).
func (s *Server) Client(t testing.TB, user, password string) *crmclient.Client {
	t.Helper()
	c, err := crmclient.New(s.URL, &crmclient.Options{User: user, Password: password, HTTPClient: s.http.Client()})
	if err != nil {
		t.Fatalf("crmtest: client: %v", err)
	}
	return c
}
