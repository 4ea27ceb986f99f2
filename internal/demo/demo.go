// Package demo runs everything pimbridge needs in one process, with no setup:
// the CRM server on SQLite with sample data, an embedded CardDAV/CalDAV
// server and an embedded IMAP server, all on 127.0.0.1. `pimbridge demo`
// adds the bridge daemon on top and prints where to point a client.
//
// State lives in Options.DataDir (kept between runs) or in a temporary
// directory removed by Close. It imports the servers and crm packages; only
// cmd imports it.
package demo

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	imap "github.com/emersion/go-imap/v2"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmclient"
	"github.com/pimbridge/pimbridge/crm/crmserver"
	"github.com/pimbridge/pimbridge/crm/crmstore"
	"github.com/pimbridge/pimbridge/internal/davserver"
	"github.com/pimbridge/pimbridge/internal/imapserver"
)

// Options configure Start. The zero value is a throw-away demo on free
// loopback ports.
type Options struct {
	// DataDir keeps the state between runs; "" uses a temporary directory
	// that Close removes.
	DataDir string
	// CRMAddr, DAVAddr and IMAPAddr are listen addresses; "" means a free
	// port on 127.0.0.1.
	CRMAddr, DAVAddr, IMAPAddr string
	// Logger receives the servers' logs; nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock for sample data; nil means time.Now.
	Now func() time.Time
}

// User is the demo login, the same on the CRM, DAV and IMAP servers.
const User = "demo"

// Env is a running demo.
type Env struct {
	CRMURL      string // e.g. http://127.0.0.1:5555
	DAVURL      string // e.g. http://127.0.0.1:5232/
	IMAPAddr    string // e.g. 127.0.0.1:1143
	User        string
	Password    string
	AddressBook string // collection paths on the DAV server
	Calendar    string
	Tasks       string
	Folders     []string // IMAP folders the bridge watches
	DataDir     string
	Seeded      bool // sample data was loaded by this Start

	CRMStore *crmstore.Store
	DAV      *davserver.Server
	IMAP     *imapserver.Server
	// CRM is a client of the CRM server logged in as the demo user.
	CRM *crmclient.Client

	tmp     bool
	servers []*http.Server
	log     *slog.Logger
}

// Start starts the servers and loads the sample data on the first run.
// On error everything started so far is stopped.
func Start(ctx context.Context, opts Options) (env *Env, err error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	e := &Env{User: User, DataDir: opts.DataDir, log: log}
	defer func() {
		if err != nil {
			e.Close()
		}
	}()
	if e.DataDir == "" {
		if e.DataDir, err = os.MkdirTemp("", "pimbridge-demo-"); err != nil {
			return nil, fmt.Errorf("demo: %w", err)
		}
		e.tmp = true
	} else if err = os.MkdirAll(e.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	if e.Password, err = password(filepath.Join(e.DataDir, "password")); err != nil {
		return nil, err
	}

	// CRM server.
	if e.CRMStore, err = crmstore.Open(ctx, filepath.Join(e.DataDir, "crm.db"), &crmstore.Options{Logger: log}); err != nil {
		return nil, fmt.Errorf("demo: crm store: %w", err)
	}
	if e.CRMURL, err = e.serve(opts.CRMAddr, crmserver.New(e.CRMStore, &crmserver.Options{Logger: log})); err != nil {
		return nil, err
	}
	me, created, err := e.ensureCRMUser(ctx)
	if err != nil {
		return nil, err
	}
	if e.CRM, err = crmclient.New(e.CRMURL, &crmclient.Options{User: User, Password: e.Password}); err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	// One bcrypt check for a token instead of one per request.
	tok, _, err := e.CRM.Token(ctx)
	if err != nil {
		return nil, fmt.Errorf("demo: crm token: %w", err)
	}
	e.CRM = e.CRM.WithToken(tok)

	// CardDAV/CalDAV server.
	if e.DAV, err = davserver.New(ctx, davserver.Options{DBPath: filepath.Join(e.DataDir, "dav.db"), Logger: log}); err != nil {
		return nil, fmt.Errorf("demo: dav: %w", err)
	}
	if err = e.DAV.AddUser(ctx, User, e.Password); err != nil && !errors.Is(err, davserver.ErrExists) {
		return nil, fmt.Errorf("demo: dav user: %w", err)
	}
	if e.AddressBook, err = e.DAV.CreateAddressBook(ctx, User, "crm-contacts", "CRM contacts"); err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	if e.Calendar, err = e.DAV.CreateCalendar(ctx, User, "crm-calendar", "CRM appointments", "VEVENT"); err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	if e.Tasks, err = e.DAV.CreateCalendar(ctx, User, "crm-tasks", "CRM tasks", "VTODO"); err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	if e.DAVURL, err = e.serve(opts.DAVAddr, e.DAV); err != nil {
		return nil, err
	}
	e.DAVURL += "/"

	// IMAP server.
	imapAddr := opts.IMAPAddr
	if e.IMAP, err = imapserver.New(ctx, imapserver.Options{Addr: imapAddr, Dir: filepath.Join(e.DataDir, "imap"), Logger: log}); err != nil {
		return nil, fmt.Errorf("demo: imap: %w", err)
	}
	if err = e.IMAP.AddUser(ctx, User, e.Password); err != nil {
		return nil, fmt.Errorf("demo: imap user: %w", err)
	}
	e.IMAPAddr = e.IMAP.Addr()
	e.Folders = []string{"INBOX", "Sent"}

	if created {
		if err = e.seed(ctx, me, now()); err != nil {
			return nil, err
		}
		e.Seeded = true
	}
	return e, nil
}

// serve starts h on addr (default a free loopback port) and returns its URL.
func (e *Env) serve(addr string, h http.Handler) (string, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("demo: listen %s: %w", addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	e.servers = append(e.servers, srv)
	go func() { // exits when Close shuts the server down
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			e.log.Error("demo: server stopped", "addr", addr, "err", err)
		}
	}()
	return "http://" + ln.Addr().String(), nil
}

// ensureCRMUser creates the demo user on the first run.
func (e *Env) ensureCRMUser(ctx context.Context) (crm.ID, bool, error) {
	u, err := e.CRMStore.CreateUser(ctx, User, e.Password, crmserver.RoleSalesperson)
	if err == nil {
		return u.ID, true, nil
	}
	if !errors.Is(err, crm.ErrConflict) {
		return crm.ID{}, false, fmt.Errorf("demo: crm user: %w", err)
	}
	p, err := e.CRMStore.Authenticate(ctx, User, e.Password)
	if err != nil {
		return crm.ID{}, false, fmt.Errorf("demo: crm user exists with another password (remove %s): %w", e.DataDir, err)
	}
	return p.UserID, false, nil
}

// seed loads the sample data: CRM records through the API (so business
// logic runs) and mail into the IMAP server.
func (e *Env) seed(ctx context.Context, me crm.ID, now time.Time) error {
	email := User + "@pimbridge.example"
	s := NewSample(me, email, now, 1)
	for _, r := range s.Records {
		if _, err := e.CRM.Create(ctx, r, &crmclient.WriteOptions{SuppressDuplicateDetection: true}); err != nil {
			return fmt.Errorf("demo: seed %s %s: %w", r.Entity, r.ID, err)
		}
	}
	for _, m := range s.Mail {
		var flags []imap.Flag
		if m.Tracked {
			flags = append(flags, imap.Flag("$CRMTracked"))
		}
		if m.Mailbox == "Sent" {
			flags = append(flags, imap.FlagSeen)
		}
		if _, _, err := e.IMAP.Append(ctx, User, m.Mailbox, m.Raw, flags, m.Date); err != nil {
			return fmt.Errorf("demo: seed mail: %w", err)
		}
	}
	e.log.Info("demo: sample data loaded", "records", len(s.Records), "messages", len(s.Mail))
	return nil
}

// password returns the demo password stored at path, creating a random one
// (mode 0600) on the first run.
func password(path string) (string, error) {
	if b, err := os.ReadFile(path); err == nil {
		return strings.TrimSpace(string(b)), nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("demo: %w", err)
	}
	buf := make([]byte, 12)
	if _, err := rand.Read(buf); err != nil {
		return "", fmt.Errorf("demo: %w", err)
	}
	pw := base64.RawURLEncoding.EncodeToString(buf)
	if err := os.WriteFile(path, []byte(pw+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("demo: %w", err)
	}
	return pw, nil
}

// Close stops the servers, saves the IMAP state and removes a temporary
// data directory.
func (e *Env) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var errs []error
	for _, s := range e.servers {
		errs = append(errs, s.Shutdown(ctx))
	}
	if e.IMAP != nil {
		errs = append(errs, e.IMAP.Close())
	}
	if e.DAV != nil {
		errs = append(errs, e.DAV.Close())
	}
	if e.CRMStore != nil {
		errs = append(errs, e.CRMStore.Close())
	}
	if e.tmp {
		errs = append(errs, os.RemoveAll(e.DataDir))
	}
	return errors.Join(errs...)
}
