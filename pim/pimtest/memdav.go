package pimtest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-ical"
	"github.com/emersion/go-vcard"
	"github.com/emersion/go-webdav"
	"github.com/emersion/go-webdav/caldav"
	"github.com/emersion/go-webdav/carddav"
)

// MemServer is go-webdav's carddav and caldav Handlers over an in-memory
// backend, in httptest: a CardDAV/CalDAV server without sync-token or
// getctag (so clients use the ETag-listing fallback), with If-Match and
// If-None-Match on PUT and If-Match on DELETE enforced, and the
// no-uid-conflict precondition. Layout: principal /alice/, home sets
// /alice/contacts/ and /alice/calendars/.
type MemServer struct {
	URL string

	mu     sync.Mutex
	books  map[string]*carddav.AddressBook
	cals   map[string]*caldav.Calendar
	cards  map[string]memCard
	events map[string]memCal
	seq    int
}

type memCard struct {
	card vcard.Card
	etag string
	mod  time.Time
}

type memCal struct {
	cal  *ical.Calendar
	etag string
	mod  time.Time
}

const (
	memPrincipal = "/alice/"
	memContacts  = "/alice/contacts/"
	memCalendars = "/alice/calendars/"
)

// NewMemServer starts a MemServer, stopped in t.Cleanup.
func NewMemServer(t testing.TB) *MemServer {
	s := &MemServer{
		books:  map[string]*carddav.AddressBook{},
		cals:   map[string]*caldav.Calendar{},
		cards:  map[string]memCard{},
		events: map[string]memCal{},
	}
	card := &carddav.Handler{Backend: (*memCardBackend)(s)}
	cal := &caldav.Handler{Backend: (*memCalBackend)(s)}
	mux := http.NewServeMux()
	mux.Handle("/.well-known/carddav", card)
	mux.Handle("/.well-known/caldav", cal)
	mux.Handle(memContacts, s.deleteCond(card))
	mux.Handle(memCalendars, s.deleteCond(cal))
	mux.HandleFunc(memPrincipal, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != memPrincipal {
			http.NotFound(w, r)
			return
		}
		webdav.ServePrincipal(w, r, &webdav.ServePrincipalOptions{
			CurrentUserPrincipalPath: memPrincipal,
			HomeSets: []webdav.BackendSuppliedHomeSet{
				carddav.NewAddressBookHomeSet(memContacts),
				caldav.NewCalendarHomeSet(memCalendars),
			},
			Capabilities: []webdav.Capability{carddav.CapabilityAddressBook, caldav.CapabilityCalendar},
		})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

// AddAddressBook creates an address book /alice/contacts/<name>/ and
// returns its href.
func (s *MemServer) AddAddressBook(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := memContacts + name + "/"
	s.books[p] = &carddav.AddressBook{Path: p, Name: name}
	return p
}

// AddCalendar creates a calendar /alice/calendars/<name>/ for the given
// components (VEVENT, VTODO) and returns its href.
func (s *MemServer) AddCalendar(name string, comps ...string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := memCalendars + name + "/"
	s.cals[p] = &caldav.Calendar{Path: p, Name: name, SupportedComponentSet: comps}
	return p
}

// deleteCond enforces If-Match on DELETE, which go-webdav's handlers do
// not pass to the backend.
func (s *MemServer) deleteCond(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodDelete {
			if im := r.Header.Get("If-Match"); im != "" {
				s.mu.Lock()
				etag, ok := s.etagLocked(r.URL.Path)
				s.mu.Unlock()
				if !ok {
					http.Error(w, "not found", http.StatusNotFound)
					return
				}
				if im != "*" && strings.Trim(im, `"`) != etag {
					http.Error(w, "etag mismatch", http.StatusPreconditionFailed)
					return
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

func (s *MemServer) etagLocked(p string) (string, bool) {
	if c, ok := s.cards[p]; ok {
		return c.etag, true
	}
	if c, ok := s.events[p]; ok {
		return c.etag, true
	}
	return "", false
}

func (s *MemServer) nextETagLocked(seed string) string {
	s.seq++
	h := sha256.Sum256(fmt.Appendf(nil, "%d\x00%s", s.seq, seed))
	return hex.EncodeToString(h[:8])
}

// checkPutLocked applies If-None-Match / If-Match for a PUT at p.
func (s *MemServer) checkPutLocked(p string, ifNoneMatch, ifMatch webdav.ConditionalMatch) error {
	etag, exists := s.etagLocked(p)
	if ifNoneMatch.IsSet() && exists {
		return webdav.NewHTTPError(http.StatusPreconditionFailed, fmt.Errorf("%s exists", p))
	}
	if ifMatch.IsSet() {
		if !exists {
			return webdav.NewHTTPError(http.StatusPreconditionFailed, fmt.Errorf("%s does not exist", p))
		}
		if !ifMatch.IsWildcard() {
			want, err := ifMatch.ETag()
			if err != nil || want != etag {
				return webdav.NewHTTPError(http.StatusPreconditionFailed, fmt.Errorf("%s: etag mismatch", p))
			}
		}
	}
	return nil
}

func notFound(p string) error {
	return webdav.NewHTTPError(http.StatusNotFound, fmt.Errorf("%s not found", p))
}

func sortedKeys[V any](m map[string]V, dir string) []string {
	var keys []string
	for k := range m {
		if path.Dir(strings.TrimSuffix(k, "/"))+"/" == dir {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}

// memCardBackend is MemServer seen as a carddav.Backend.
type memCardBackend MemServer

var _ carddav.Backend = (*memCardBackend)(nil)

func (b *memCardBackend) CurrentUserPrincipal(context.Context) (string, error) {
	return memPrincipal, nil
}

func (b *memCardBackend) AddressBookHomeSetPath(context.Context) (string, error) {
	return memContacts, nil
}

func (b *memCardBackend) ListAddressBooks(context.Context) ([]carddav.AddressBook, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []carddav.AddressBook
	for _, k := range sortedKeys(b.books, memContacts) {
		out = append(out, *b.books[k])
	}
	return out, nil
}

func (b *memCardBackend) GetAddressBook(_ context.Context, p string) (*carddav.AddressBook, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if ab, ok := b.books[strings.TrimSuffix(p, "/")+"/"]; ok {
		c := *ab
		return &c, nil
	}
	return nil, notFound(p)
}

func (b *memCardBackend) CreateAddressBook(_ context.Context, ab *carddav.AddressBook) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	p := strings.TrimSuffix(ab.Path, "/") + "/"
	c := *ab
	c.Path = p
	b.books[p] = &c
	return nil
}

func (b *memCardBackend) DeleteAddressBook(_ context.Context, p string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	p = strings.TrimSuffix(p, "/") + "/"
	delete(b.books, p)
	for k := range b.cards {
		if strings.HasPrefix(k, p) {
			delete(b.cards, k)
		}
	}
	return nil
}

func (b *memCardBackend) obj(p string, c memCard) carddav.AddressObject {
	return carddav.AddressObject{Path: p, ModTime: c.mod, ETag: c.etag, Card: c.card}
}

func (b *memCardBackend) GetAddressObject(_ context.Context, p string, _ *carddav.AddressDataRequest) (*carddav.AddressObject, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	c, ok := b.cards[p]
	if !ok {
		return nil, notFound(p)
	}
	o := b.obj(p, c)
	return &o, nil
}

func (b *memCardBackend) ListAddressObjects(_ context.Context, p string, _ *carddav.AddressDataRequest) ([]carddav.AddressObject, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []carddav.AddressObject
	for _, k := range sortedKeys(b.cards, strings.TrimSuffix(p, "/")+"/") {
		out = append(out, b.obj(k, b.cards[k]))
	}
	return out, nil
}

func (b *memCardBackend) QueryAddressObjects(ctx context.Context, p string, q *carddav.AddressBookQuery) ([]carddav.AddressObject, error) {
	all, err := b.ListAddressObjects(ctx, p, nil)
	if err != nil {
		return nil, err
	}
	return carddav.Filter(q, all)
}

func (b *memCardBackend) PutAddressObject(_ context.Context, p string, card vcard.Card, opts *carddav.PutAddressObjectOptions) (*carddav.AddressObject, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	dir := path.Dir(p) + "/"
	if _, ok := b.books[dir]; !ok {
		return nil, webdav.NewHTTPError(http.StatusConflict, fmt.Errorf("no address book %s", dir))
	}
	if err := (*MemServer)(b).checkPutLocked(p, opts.IfNoneMatch, opts.IfMatch); err != nil {
		return nil, err
	}
	uid := card.Value(vcard.FieldUID)
	for _, k := range sortedKeys(b.cards, dir) {
		if k != p && uid != "" && b.cards[k].card.Value(vcard.FieldUID) == uid {
			return nil, carddav.NewPreconditionError(carddav.PreconditionNoUIDConflict)
		}
	}
	c := memCard{card: card, etag: (*MemServer)(b).nextETagLocked(p), mod: time.Now()}
	b.cards[p] = c
	o := b.obj(p, c)
	return &o, nil
}

func (b *memCardBackend) DeleteAddressObject(_ context.Context, p string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.cards[p]; !ok {
		return notFound(p)
	}
	delete(b.cards, p)
	return nil
}

// memCalBackend is MemServer seen as a caldav.Backend.
type memCalBackend MemServer

var _ caldav.Backend = (*memCalBackend)(nil)

func (b *memCalBackend) CurrentUserPrincipal(context.Context) (string, error) {
	return memPrincipal, nil
}

func (b *memCalBackend) CalendarHomeSetPath(context.Context) (string, error) {
	return memCalendars, nil
}

func (b *memCalBackend) CreateCalendar(_ context.Context, cal *caldav.Calendar) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	p := strings.TrimSuffix(cal.Path, "/") + "/"
	c := *cal
	c.Path = p
	b.cals[p] = &c
	return nil
}

func (b *memCalBackend) ListCalendars(context.Context) ([]caldav.Calendar, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []caldav.Calendar
	for _, k := range sortedKeys(b.cals, memCalendars) {
		out = append(out, *b.cals[k])
	}
	return out, nil
}

func (b *memCalBackend) GetCalendar(_ context.Context, p string) (*caldav.Calendar, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if c, ok := b.cals[strings.TrimSuffix(p, "/")+"/"]; ok {
		cc := *c
		return &cc, nil
	}
	return nil, notFound(p)
}

func (b *memCalBackend) obj(p string, c memCal) caldav.CalendarObject {
	return caldav.CalendarObject{Path: p, ModTime: c.mod, ETag: c.etag, Data: c.cal}
}

func (b *memCalBackend) GetCalendarObject(_ context.Context, p string, _ *caldav.CalendarCompRequest) (*caldav.CalendarObject, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	c, ok := b.events[p]
	if !ok {
		return nil, notFound(p)
	}
	o := b.obj(p, c)
	return &o, nil
}

func (b *memCalBackend) ListCalendarObjects(_ context.Context, p string, _ *caldav.CalendarCompRequest) ([]caldav.CalendarObject, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []caldav.CalendarObject
	for _, k := range sortedKeys(b.events, strings.TrimSuffix(p, "/")+"/") {
		out = append(out, b.obj(k, b.events[k]))
	}
	return out, nil
}

func (b *memCalBackend) QueryCalendarObjects(ctx context.Context, p string, q *caldav.CalendarQuery) ([]caldav.CalendarObject, error) {
	all, err := b.ListCalendarObjects(ctx, p, nil)
	if err != nil {
		return nil, err
	}
	return caldav.Filter(q, all)
}

func (b *memCalBackend) PutCalendarObject(_ context.Context, p string, cal *ical.Calendar, opts *caldav.PutCalendarObjectOptions) (*caldav.CalendarObject, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	dir := path.Dir(p) + "/"
	if _, ok := b.cals[dir]; !ok {
		return nil, webdav.NewHTTPError(http.StatusConflict, fmt.Errorf("no calendar %s", dir))
	}
	if err := (*MemServer)(b).checkPutLocked(p, opts.IfNoneMatch, opts.IfMatch); err != nil {
		return nil, err
	}
	_, uid, err := caldav.ValidateCalendarObject(cal)
	if err != nil {
		return nil, caldav.NewPreconditionError(caldav.PreconditionValidCalendarObjectResource)
	}
	for _, k := range sortedKeys(b.events, dir) {
		if k == p {
			continue
		}
		if _, other, _ := caldav.ValidateCalendarObject(b.events[k].cal); other == uid {
			return nil, caldav.NewPreconditionError(caldav.PreconditionNoUIDConflict)
		}
	}
	c := memCal{cal: cal, etag: (*MemServer)(b).nextETagLocked(p), mod: time.Now()}
	b.events[p] = c
	o := b.obj(p, c)
	return &o, nil
}

func (b *memCalBackend) DeleteCalendarObject(_ context.Context, p string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.events[p]; !ok {
		return notFound(p)
	}
	delete(b.events, p)
	return nil
}
