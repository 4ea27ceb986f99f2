// Package davserver is an embedded CardDAV (RFC 6352) and CalDAV (RFC 4791)
// server for `pimbridge demo` and for fast in-process tests of the bridge.
// It serves go-webdav's carddav.Handler and caldav.Handler over one backend
// persisted in SQLite, and adds what go-webdav v0.6.0 lacks by intercepting
// requests before its handlers:
//
//   - HTTP Basic authentication against a users table (bcrypt); each user
//     sees only their own principal /<user>/ (403 elsewhere);
//   - objects stored as the raw bytes the client PUT and served back
//     byte-for-byte by GET and by the multiget and sync-collection REPORTs,
//     with strong ETags (a content hash);
//   - If-Match / If-None-Match on PUT and DELETE (412), If-None-Match on GET (304);
//   - RFC 6578 sync-collection REPORT, with sync tokens
//     "http://pimbridge/sync/<counter>" from a per-collection change counter
//     and tombstones; an unknown or purged token gives 403 DAV:valid-sync-token;
//   - CS:getctag, DAV:sync-token, DAV:supported-report-set and
//     DAV:current-user-privilege-set in PROPFIND;
//   - MKCALENDAR (RFC 4791 §5.3.1). Extended MKCOL is go-webdav's.
//
// Re-encoding through go-vcard / go-ical happens only where go-webdav's
// handler produces the body itself: the address-data / calendar-data of
// addressbook-query and calendar-query REPORTs and of PROPFIND (a
// non-standard use of those properties). Everything else is the stored bytes.
//
// URL layout (fixed by go-webdav's depth-based resource types):
//
//	/<user>/                               principal
//	/<user>/contacts/<book>/<obj>.vcf      address objects
//	/<user>/calendars/<cal>/<obj>.ics      calendar objects
//	/.well-known/carddav, /.well-known/caldav -> 308 to the principal
//
// On-disk layout: one SQLite file (WAL) with the tables users, collections
// (with counter and purged mark) and objects (data NULL = tombstone); the
// schema is in migrations/. The package must not import the bridge, pim or
// crm packages.
package davserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-ical"
	"github.com/emersion/go-vcard"
	"github.com/emersion/go-webdav/caldav"
	"github.com/emersion/go-webdav/carddav"
	"golang.org/x/crypto/bcrypt"
)

// syncTokenPrefix starts every sync token (and getctag) of the server.
const syncTokenPrefix = "http://pimbridge/sync/"

// maxObjectSize bounds a PUT body.
const maxObjectSize = 4 << 20

// Options configures a Server.
type Options struct {
	// DBPath is the SQLite file. If empty, the state lives in memory and is
	// lost on Close.
	DBPath string
	// Logger receives request and error logs. If nil, slog.Default() is used.
	Logger *slog.Logger
	// BcryptCost is the cost of stored password hashes. If 0,
	// bcrypt.DefaultCost is used; tests may pass bcrypt.MinCost.
	BcryptCost int
}

// Server is the CardDAV/CalDAV server; it is an http.Handler. Its methods
// are safe for concurrent use.
type Server struct {
	st   *store
	log  *slog.Logger
	cost int
	card *carddav.Handler
	cal  *caldav.Handler
}

// Object is one stored calendar or address object.
type Object struct {
	Path    string // unescaped URL path, e.g. /alice/contacts/crm/x.vcf
	ETag    string // strong entity tag, without quotes
	Data    []byte // the bytes as PUT
	ModTime time.Time
}

// New opens (creating or migrating) the database and returns the server.
func New(ctx context.Context, opts Options) (*Server, error) {
	st, err := openStore(ctx, opts.DBPath)
	if err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	cost := opts.BcryptCost
	if cost == 0 {
		cost = bcrypt.DefaultCost
	}
	s := &Server{st: st, log: log.With("component", "davserver"), cost: cost}
	s.card = &carddav.Handler{Backend: &cardBackend{s: s}}
	s.cal = &caldav.Handler{Backend: &calBackend{s: s}}
	return s, nil
}

// Close closes the database. Requests still running fail.
func (s *Server) Close() error {
	if err := s.st.close(); err != nil {
		return fmt.Errorf("davserver: close: %w", err)
	}
	return nil
}

// AddUser creates a user, or sets the password of an existing one. The
// name must be one path segment of letters, digits and -_.@+=~.
func (s *Server) AddUser(ctx context.Context, name, password string) error {
	return s.st.addUser(ctx, name, password, s.cost)
}

// CreateAddressBook creates /<user>/contacts/<name>/ if it does not exist
// and returns its path.
func (s *Server) CreateAddressBook(ctx context.Context, user, name, displayName string) (string, error) {
	err := s.st.createCollection(ctx, collection{Owner: user, Kind: kindAddressBook, Name: name, DisplayName: displayName})
	if err != nil {
		return "", err
	}
	return collectionPath(user, kindAddressBook, name), nil
}

// CreateCalendar creates /<user>/calendars/<name>/ if it does not exist and
// returns its path. components are "VEVENT" and/or "VTODO"; none means VEVENT.
func (s *Server) CreateCalendar(ctx context.Context, user, name, displayName string, components ...string) (string, error) {
	comps, err := normComponents(components)
	if err != nil {
		return "", err
	}
	err = s.st.createCollection(ctx, collection{Owner: user, Kind: kindCalendar, Name: name, DisplayName: displayName, Components: comps})
	if err != nil {
		return "", err
	}
	return collectionPath(user, kindCalendar, name), nil
}

func normComponents(components []string) ([]string, error) {
	if len(components) == 0 {
		return []string{ical.CompEvent}, nil
	}
	var out []string
	for _, c := range components {
		c = strings.ToUpper(c)
		if c != ical.CompEvent && c != ical.CompToDo {
			return nil, fmt.Errorf("davserver: calendar component %q (want VEVENT or VTODO): %w", c, ErrInvalidName)
		}
		out = append(out, c)
	}
	return out, nil
}

// collectionAt resolves the collection of a path of depth 3 or 4.
func (s *Server) collectionAt(ctx context.Context, p davPath) (collection, error) {
	if p.Depth < 3 {
		return collection{}, fmt.Errorf("davserver: %s is not in a collection: %w", p, ErrNotFound)
	}
	return s.st.getCollection(ctx, p.User, p.Kind, p.Coll)
}

func (s *Server) parseObjectPath(path string) (davPath, error) {
	p, ok := parsePath(path)
	if !ok || p.Depth != 4 {
		return p, fmt.Errorf("davserver: %q is not an object path: %w", path, ErrInvalidName)
	}
	return p, nil
}

// PutObject stores data at an object path (as a client PUT would, with
// the same validation) and returns the new ETag. cond may be empty.
func (s *Server) PutObject(ctx context.Context, path string, data []byte, ifMatch, ifNoneMatch string) (string, error) {
	p, err := s.parseObjectPath(path)
	if err != nil {
		return "", err
	}
	o, _, err := s.putObject(ctx, p, data, conditions{IfMatch: ifMatch, IfNoneMatch: ifNoneMatch})
	if err != nil {
		return "", err
	}
	return o.ETag, nil
}

func (s *Server) putObject(ctx context.Context, p davPath, data []byte, cond conditions) (object, bool, error) {
	c, err := s.collectionAt(ctx, p)
	if err != nil {
		return object{}, false, err
	}
	uid, err := validateObject(c, data)
	if err != nil {
		return object{}, false, err
	}
	return s.st.putObject(ctx, c.ID, p.Obj, uid, data, cond)
}

// GetObject returns the object stored at path, or ErrNotFound.
func (s *Server) GetObject(ctx context.Context, path string) (Object, error) {
	p, err := s.parseObjectPath(path)
	if err != nil {
		return Object{}, err
	}
	c, err := s.collectionAt(ctx, p)
	if err != nil {
		return Object{}, err
	}
	o, err := s.st.getObject(ctx, c.ID, p.Obj)
	if err != nil {
		return Object{}, err
	}
	return Object{Path: p.String(), ETag: o.ETag, Data: o.Data, ModTime: o.ModTime}, nil
}

// ListObjects returns the objects of the collection at collPath, by name.
func (s *Server) ListObjects(ctx context.Context, collPath string) ([]Object, error) {
	p, ok := parsePath(collPath)
	if !ok || p.Depth != 3 {
		return nil, fmt.Errorf("davserver: %q is not a collection path: %w", collPath, ErrInvalidName)
	}
	c, err := s.collectionAt(ctx, p)
	if err != nil {
		return nil, err
	}
	objs, err := s.st.listObjects(ctx, c.ID)
	if err != nil {
		return nil, err
	}
	out := make([]Object, len(objs))
	for i, o := range objs {
		out[i] = Object{Path: p.String() + o.Name, ETag: o.ETag, Data: o.Data, ModTime: o.ModTime}
	}
	return out, nil
}

// DeleteObject deletes the object at path (leaving a tombstone for
// sync-collection). ifMatch may be empty.
func (s *Server) DeleteObject(ctx context.Context, path, ifMatch string) error {
	p, err := s.parseObjectPath(path)
	if err != nil {
		return err
	}
	c, err := s.collectionAt(ctx, p)
	if err != nil {
		return err
	}
	return s.st.deleteObject(ctx, c.ID, p.Obj, conditions{IfMatch: ifMatch})
}

// SyncToken returns the current sync token (also the getctag) of the
// collection at collPath.
func (s *Server) SyncToken(ctx context.Context, collPath string) (string, error) {
	p, ok := parsePath(collPath)
	if !ok || p.Depth != 3 {
		return "", fmt.Errorf("davserver: %q is not a collection path: %w", collPath, ErrInvalidName)
	}
	c, err := s.collectionAt(ctx, p)
	if err != nil {
		return "", err
	}
	return formatSyncToken(c.Counter), nil
}

// PurgeTombstones forgets the deletions recorded in the collection at
// collPath; sync tokens from before the last of them then get 403
// DAV:valid-sync-token and clients must resync in full.
func (s *Server) PurgeTombstones(ctx context.Context, collPath string) error {
	p, ok := parsePath(collPath)
	if !ok || p.Depth != 3 {
		return fmt.Errorf("davserver: %q is not a collection path: %w", collPath, ErrInvalidName)
	}
	c, err := s.collectionAt(ctx, p)
	if err != nil {
		return err
	}
	return s.st.purgeTombstones(ctx, c.ID)
}

func formatSyncToken(counter int64) string {
	return syncTokenPrefix + strconv.FormatInt(counter, 10)
}

// initialSync is what parseSyncToken returns for the empty token. It is
// not 0: an empty collection hands out the token "sync/0", and a client
// syncing from it must hear of objects made and removed since (RFC 6578
// section 3.5.2 reports removals only for a real token).
const initialSync = -1

// parseSyncToken returns initialSync for the empty token.
func parseSyncToken(tok string) (int64, error) {
	tok = strings.TrimSpace(tok)
	if tok == "" {
		return initialSync, nil
	}
	rest, ok := strings.CutPrefix(tok, syncTokenPrefix)
	if !ok {
		return 0, fmt.Errorf("davserver: sync token %q: %w", tok, ErrInvalidSyncToken)
	}
	n, err := strconv.ParseInt(rest, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("davserver: sync token %q: %w", tok, ErrInvalidSyncToken)
	}
	return n, nil
}

// validateObject checks that data is one vCard, or one iCalendar object of
// a component type the calendar supports, and returns its UID.
func validateObject(c collection, data []byte) (string, error) {
	if c.Kind == kindAddressBook {
		card, err := decodeCard(data)
		if err != nil {
			return "", err
		}
		return card.Value(vcard.FieldUID), nil
	}
	cal, err := decodeCalendar(data)
	if err != nil {
		return "", err
	}
	compType, uid, err := caldav.ValidateCalendarObject(cal)
	if err != nil {
		return "", fmt.Errorf("davserver: %v: %w", err, ErrInvalidObject)
	}
	supported := c.Components
	if len(supported) == 0 {
		supported = []string{ical.CompEvent}
	}
	for _, comp := range supported {
		if comp == compType {
			return uid, nil
		}
	}
	return "", &UnsupportedComponentError{Component: compType}
}

// UnsupportedComponentError reports a calendar object whose component type
// the calendar does not hold (RFC 4791 supported-calendar-component).
type UnsupportedComponentError struct{ Component string }

func (e *UnsupportedComponentError) Error() string {
	return fmt.Sprintf("davserver: calendar does not hold %s components", e.Component)
}

func (e *UnsupportedComponentError) Unwrap() error { return ErrInvalidObject }

func decodeCard(data []byte) (vcard.Card, error) {
	dec := vcard.NewDecoder(bytes.NewReader(data))
	card, err := dec.Decode()
	if err != nil {
		return nil, fmt.Errorf("davserver: vCard: %v: %w", err, ErrInvalidObject)
	}
	if _, err := dec.Decode(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("davserver: vCard: more than one card: %w", ErrInvalidObject)
	}
	return card, nil
}

// decodeCalendar parses with go-ical, which panics on some malformed lines
// (a known go-ical bug); the panic becomes ErrInvalidObject.
func decodeCalendar(data []byte) (cal *ical.Calendar, err error) {
	defer func() {
		if r := recover(); r != nil {
			cal, err = nil, fmt.Errorf("davserver: iCalendar: parser panic: %v: %w", r, ErrInvalidObject)
		}
	}()
	cal, err = ical.NewDecoder(bytes.NewReader(data)).Decode()
	if err != nil {
		return nil, fmt.Errorf("davserver: iCalendar: %v: %w", err, ErrInvalidObject)
	}
	return cal, nil
}
