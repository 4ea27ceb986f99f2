// Package imapserver is the embedded IMAP server of `pimbridge demo` and of
// the bridge's in-process tests: go-imap v2's imapserver over its
// imapmemserver backend (RFC 9051 / RFC 3501), with
//
//   - users that get INBOX, Sent (\Sent) and Drafts (\Drafts), advertised
//     with SPECIAL-USE and CREATE-SPECIAL-USE (RFC 6154), which imapmemserver
//     cannot do by itself in v2.0.0-beta.8: LIST is answered here;
//   - Append and Message helpers for sample mail;
//   - optional persistence to a directory: Close (or Save) writes every
//     mailbox, and AddUser restores the user's saved mailboxes with the same
//     UIDVALIDITY, UIDs, UIDNEXT, flags and internal dates.
//
// Like imapmemserver it has no CONDSTORE/QRESYNC; keywords are lower-cased
// by imapmemserver ($CRMTracked is stored as $crmtracked). State changed
// after the last Save is lost if the process dies.
//
// On-disk layout under Options.Dir, one folder per user:
//
//	<user>/state.json          mailboxes: name, UIDVALIDITY, UIDNEXT, special use,
//	                           subscription, and per message UID, flags, date
//	<user>/<n>/<uid>.eml       a message of the n-th mailbox of state.json, as appended
//
// The package must not import the bridge, pim or crm packages.
package imapserver

import (
	"bytes"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	goimapserver "github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
)

// Sentinel errors.
var (
	// ErrUnknownUser: no such user.
	ErrUnknownUser = errors.New("unknown user")
	// ErrUserExists: AddUser for a user that exists.
	ErrUserExists = errors.New("user exists")
	// ErrClosed: the server was closed.
	ErrClosed = errors.New("server closed")
)

// Default mailboxes of every user and their special use.
var defaultMailboxes = []struct {
	Name string
	Use  imap.MailboxAttr
}{
	{"INBOX", ""},
	{"Sent", imap.MailboxAttrSent},
	{"Drafts", imap.MailboxAttrDrafts},
}

// Options configures a Server.
type Options struct {
	// Addr is the TCP listen address. If empty, 127.0.0.1:0 (a free
	// loopback port) is used.
	Addr string
	// Dir keeps the mailboxes between runs. If empty, they live in memory only.
	Dir string
	// Logger receives server errors. If nil, slog.Default() is used.
	Logger *slog.Logger
}

// Server is an IMAP server listening on one address. Its methods are safe
// for concurrent use.
type Server struct {
	log   *slog.Logger
	dir   string
	mem   *imapmemserver.Server
	srv   *goimapserver.Server
	ln    net.Listener
	serve chan error

	mu       sync.Mutex
	accounts map[string]*account
	closed   bool
}

// account is one user with the mailbox attributes imapmemserver does not
// keep (special use, the list of names for LIST).
type account struct {
	name, password string
	user           *imapmemserver.User

	mu         sync.Mutex
	creates    uint32                        // mailboxes ever created (imapmemserver's UIDVALIDITY counter)
	specialUse map[string][]imap.MailboxAttr // mailbox -> attributes
	subscribed map[string]bool
	names      map[string]bool
}

// New starts the server on Options.Addr.
func New(ctx context.Context, opts Options) (*Server, error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	addr := opts.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("imapserver: listen %s: %w", addr, err)
	}
	s := &Server{
		log:      log.With("component", "imapserver"),
		dir:      opts.Dir,
		mem:      imapmemserver.New(),
		ln:       ln,
		serve:    make(chan error, 1),
		accounts: map[string]*account{},
	}
	s.srv = goimapserver.New(&goimapserver.Options{
		NewSession: func(*goimapserver.Conn) (goimapserver.Session, *goimapserver.GreetingData, error) {
			return &session{srv: s}, nil, nil
		},
		Caps: imap.CapSet{
			imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {},
			imap.CapSpecialUse: {}, imap.CapCreateSpecialUse: {},
		},
		Logger:       slogPrintf{s.log},
		InsecureAuth: true,
	})
	go func() { s.serve <- s.srv.Serve(ln) }()
	return s, nil
}

// Addr returns the listening address, host:port.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// AddUser creates a user. With Options.Dir, the user's saved mailboxes are
// restored; otherwise (or if nothing was saved) the user gets INBOX, Sent
// and Drafts.
func (s *Server) AddUser(ctx context.Context, name, password string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("imapserver: add user: %w", ErrClosed)
	}
	if _, ok := s.accounts[name]; ok {
		return fmt.Errorf("imapserver: add user %q: %w", name, ErrUserExists)
	}
	a := &account{
		name: name, password: password, user: imapmemserver.NewUser(name, password),
		specialUse: map[string][]imap.MailboxAttr{}, subscribed: map[string]bool{}, names: map[string]bool{},
	}
	restored, err := s.restore(ctx, a)
	if err != nil {
		return err
	}
	if !restored {
		for _, mb := range defaultMailboxes {
			var use []imap.MailboxAttr
			if mb.Use != "" {
				use = []imap.MailboxAttr{mb.Use}
			}
			if err := a.create(mb.Name, use); err != nil {
				return fmt.Errorf("imapserver: add user %q: %w", name, err)
			}
			if err := a.subscribe(mb.Name, true); err != nil {
				return fmt.Errorf("imapserver: add user %q: %w", name, err)
			}
		}
	}
	s.mem.AddUser(a.user)
	s.accounts[name] = a
	return nil
}

func (s *Server) account(name string) (*account, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.accounts[name]
	if !ok {
		return nil, fmt.Errorf("imapserver: user %q: %w", name, ErrUnknownUser)
	}
	return a, nil
}

// Append adds a message to a user's mailbox and returns its UID and the
// mailbox's UIDVALIDITY. A zero date means now.
func (s *Server) Append(ctx context.Context, user, mailbox string, msg []byte, flags []imap.Flag, date time.Time) (imap.UID, uint32, error) {
	if err := ctx.Err(); err != nil {
		return 0, 0, err
	}
	a, err := s.account(user)
	if err != nil {
		return 0, 0, err
	}
	data, err := a.user.Append(mailbox, literal{bytes.NewReader(msg)}, &imap.AppendOptions{Flags: flags, Time: date})
	if err != nil {
		return 0, 0, fmt.Errorf("imapserver: append to %s/%s: %w", user, mailbox, err)
	}
	return data.UID, data.UIDValidity, nil
}

// Close saves the mailboxes (with Options.Dir), then closes the listener
// and every connection.
func (s *Server) Close() error {
	var saveErr error
	if s.dir != "" {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		saveErr = s.Save(ctx)
		cancel()
	}
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	if err := s.srv.Close(); err != nil {
		return errors.Join(saveErr, fmt.Errorf("imapserver: close: %w", err))
	}
	if err := <-s.serve; err != nil {
		return errors.Join(saveErr, fmt.Errorf("imapserver: serve: %w", err))
	}
	return saveErr
}

func (a *account) create(name string, use []imap.MailboxAttr) error {
	if err := a.user.Create(name, &imap.CreateOptions{SpecialUse: use}); err != nil {
		return err
	}
	a.mu.Lock()
	a.creates++
	a.names[name] = true
	if len(use) > 0 {
		a.specialUse[name] = use
	}
	a.mu.Unlock()
	return nil
}

func (a *account) subscribe(name string, on bool) error {
	var err error
	if on {
		err = a.user.Subscribe(name)
	} else {
		err = a.user.Unsubscribe(name)
	}
	if err != nil {
		return err
	}
	a.mu.Lock()
	a.subscribed[name] = on
	a.mu.Unlock()
	return nil
}

// mailboxNames returns the user's mailboxes, sorted.
func (a *account) mailboxNames() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]string, 0, len(a.names))
	for n := range a.names {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// session is an imapmemserver session with our own Login and LIST, and the
// mailbox bookkeeping LIST needs.
type session struct {
	*imapmemserver.UserSession // nil until Login
	srv                        *Server
	acct                       *account
}

var _ goimapserver.SessionIMAP4rev2 = (*session)(nil)

func (s *session) Login(username, password string) error {
	a, err := s.srv.account(username)
	if err != nil {
		return goimapserver.ErrAuthFailed
	}
	if subtle.ConstantTimeCompare([]byte(password), []byte(a.password)) != 1 {
		return goimapserver.ErrAuthFailed
	}
	s.acct = a
	s.UserSession = imapmemserver.NewUserSession(a.user)
	return nil
}

// idlePoll is how often an idling session looks for mailbox updates.
const idlePoll = 100 * time.Millisecond

// Idle sends the selected mailbox's updates until stop closes. It polls
// rather than calling imapmemserver's Idle: go-imap's SessionTracker.Idle
// registers for notifications only after the server has written "+ idling"
// and does not look at what is already queued, so an update that lands in
// between (an APPEND the moment a client starts IDLE) waits for the next
// one. A poll every idlePoll never leaves one behind.
func (s *session) Idle(w *goimapserver.UpdateWriter, stop <-chan struct{}) error {
	t := time.NewTicker(idlePoll)
	defer t.Stop()
	for {
		if err := s.UserSession.Poll(w, true); err != nil {
			return err
		}
		select {
		case <-stop:
			return nil
		case <-t.C:
		}
	}
}

func (s *session) Close() error {
	if s.UserSession == nil {
		return nil
	}
	return s.UserSession.Close()
}

func (s *session) Create(name string, opts *imap.CreateOptions) error {
	var use []imap.MailboxAttr
	if opts != nil {
		use = opts.SpecialUse
	}
	return s.acct.create(name, use)
}

func (s *session) Delete(name string) error {
	if err := s.UserSession.Delete(name); err != nil {
		return err
	}
	a := s.acct
	a.mu.Lock()
	delete(a.names, name)
	delete(a.specialUse, name)
	delete(a.subscribed, name)
	a.mu.Unlock()
	return nil
}

func (s *session) Rename(oldName, newName string, opts *imap.RenameOptions) error {
	if err := s.UserSession.Rename(oldName, newName, opts); err != nil {
		return err
	}
	a := s.acct
	a.mu.Lock()
	delete(a.names, oldName)
	a.names[newName] = true
	if u, ok := a.specialUse[oldName]; ok {
		delete(a.specialUse, oldName)
		a.specialUse[newName] = u
	}
	if a.subscribed[oldName] {
		delete(a.subscribed, oldName)
		a.subscribed[newName] = true
	}
	a.mu.Unlock()
	return nil
}

func (s *session) Subscribe(name string) error   { return s.acct.subscribe(name, true) }
func (s *session) Unsubscribe(name string) error { return s.acct.subscribe(name, false) }

// List answers LIST with the special-use attributes (RFC 6154 §2: always
// returned when the server advertises SPECIAL-USE).
func (s *session) List(w *goimapserver.ListWriter, ref string, patterns []string, opts *imap.ListOptions) error {
	if len(patterns) == 0 {
		return w.WriteList(&imap.ListData{Attrs: []imap.MailboxAttr{imap.MailboxAttrNoSelect}, Delim: '/'})
	}
	if opts == nil {
		opts = &imap.ListOptions{}
	}
	a := s.acct
	for _, name := range a.mailboxNames() {
		match := false
		for _, p := range patterns {
			if goimapserver.MatchList(name, '/', ref, p) {
				match = true
				break
			}
		}
		if !match {
			continue
		}
		a.mu.Lock()
		use := a.specialUse[name]
		sub := a.subscribed[name]
		a.mu.Unlock()
		if (opts.SelectSubscribed && !sub) || (opts.SelectSpecialUse && len(use) == 0) {
			continue
		}
		data := &imap.ListData{Mailbox: name, Delim: '/'}
		if sub {
			data.Attrs = append(data.Attrs, imap.MailboxAttrSubscribed)
		}
		data.Attrs = append(data.Attrs, use...)
		if opts.ReturnStatus != nil {
			st, err := a.user.Status(name, opts.ReturnStatus)
			if err != nil {
				continue // deleted meanwhile
			}
			data.Status = st
		}
		if err := w.WriteList(data); err != nil {
			return err
		}
	}
	return nil
}

// literal adapts a bytes.Reader to imap.LiteralReader.
type literal struct{ *bytes.Reader }

func (l literal) Size() int64 { return l.Reader.Size() }

// slogPrintf adapts slog to go-imap's Logger.
type slogPrintf struct{ log *slog.Logger }

func (l slogPrintf) Printf(format string, args ...any) {
	l.log.Warn(fmt.Sprintf(format, args...))
}
