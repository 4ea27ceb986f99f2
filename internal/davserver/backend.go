package davserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/emersion/go-ical"
	"github.com/emersion/go-vcard"
	"github.com/emersion/go-webdav"
	"github.com/emersion/go-webdav/caldav"
	"github.com/emersion/go-webdav/carddav"
)

// The backends behind go-webdav's handlers. They serve what the handlers do
// themselves (PROPFIND, OPTIONS, MKCOL, addressbook-query and
// calendar-query); GET, PUT, DELETE, multiget and sync-collection are
// answered from the raw store before the handlers see them (handler.go).

type ctxKey struct{}

type noParseKey struct{}

// withoutParsing marks a request whose answer needs no object content, so
// the backends return objects with a nil Card / Data (go-webdav reads them
// only for address-data and calendar-data).
func withoutParsing(ctx context.Context) context.Context {
	return context.WithValue(ctx, noParseKey{}, true)
}

func parsing(ctx context.Context) bool {
	skip, _ := ctx.Value(noParseKey{}).(bool)
	return !skip
}

func withUser(ctx context.Context, user string) context.Context {
	return context.WithValue(ctx, ctxKey{}, user)
}

func userFrom(ctx context.Context) (string, error) {
	u, _ := ctx.Value(ctxKey{}).(string)
	if u == "" {
		return "", webdav.NewHTTPError(http.StatusUnauthorized, errors.New("davserver: no authenticated user"))
	}
	return u, nil
}

// backendError turns a package error into the unwrapped webdav.HTTPError
// go-webdav inspects (it type-asserts 404 without errors.As).
func backendError(err error) error {
	var uc *UIDConflictError
	var unsup *UnsupportedComponentError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrNotFound):
		return webdav.NewHTTPError(http.StatusNotFound, err)
	case errors.Is(err, ErrPreconditionFailed):
		return webdav.NewHTTPError(http.StatusPreconditionFailed, err)
	case errors.As(err, &uc):
		return webdav.NewHTTPError(http.StatusConflict, err)
	case errors.As(err, &unsup):
		return webdav.NewHTTPError(http.StatusForbidden, err)
	case errors.Is(err, ErrInvalidObject):
		return webdav.NewHTTPError(http.StatusBadRequest, err)
	case errors.Is(err, ErrInvalidName):
		return webdav.NewHTTPError(http.StatusForbidden, err)
	case errors.Is(err, ErrExists):
		return webdav.NewHTTPError(http.StatusMethodNotAllowed, err)
	}
	return err
}

// ownPath parses path and checks that it belongs to the user in ctx and to
// kind, at the given depth.
func ownPath(ctx context.Context, path, kind string, depth int) (davPath, error) {
	user, err := userFrom(ctx)
	if err != nil {
		return davPath{}, err
	}
	p, ok := parsePath(path)
	if !ok || p.Depth != depth || p.Kind != kind {
		return p, webdav.NewHTTPError(http.StatusNotFound, fmt.Errorf("davserver: %q: %w", path, ErrNotFound))
	}
	if p.User != user {
		return p, webdav.NewHTTPError(http.StatusForbidden, fmt.Errorf("davserver: %q belongs to another user", path))
	}
	return p, nil
}

func principal(ctx context.Context) (string, error) {
	user, err := userFrom(ctx)
	if err != nil {
		return "", err
	}
	return principalPath(user), nil
}

func (s *Server) listCollections(ctx context.Context, kind string) ([]collection, error) {
	user, err := userFrom(ctx)
	if err != nil {
		return nil, err
	}
	cs, err := s.st.listCollections(ctx, user, kind)
	return cs, backendError(err)
}

func (s *Server) getCollection(ctx context.Context, path, kind string) (collection, davPath, error) {
	p, err := ownPath(ctx, path, kind, 3)
	if err != nil {
		return collection{}, p, err
	}
	c, err := s.st.getCollection(ctx, p.User, kind, p.Coll)
	return c, p, backendError(err)
}

func (s *Server) getObject(ctx context.Context, path, kind string) (object, davPath, error) {
	p, err := ownPath(ctx, path, kind, 4)
	if err != nil {
		return object{}, p, err
	}
	c, err := s.st.getCollection(ctx, p.User, kind, p.Coll)
	if err != nil {
		return object{}, p, backendError(err)
	}
	o, err := s.st.getObject(ctx, c.ID, p.Obj)
	return o, p, backendError(err)
}

func (s *Server) listObjects(ctx context.Context, path, kind string) ([]object, davPath, error) {
	c, p, err := s.getCollection(ctx, path, kind)
	if err != nil {
		return nil, p, err
	}
	objs, err := s.st.listObjects(ctx, c.ID)
	return objs, p, backendError(err)
}

func (s *Server) createCollection(ctx context.Context, path, kind, name, desc string, comps []string) error {
	p, err := ownPath(ctx, path, kind, 3)
	if err != nil {
		return err
	}
	return backendError(s.createColl(ctx, p, name, desc, comps))
}

// createColl creates the collection at p; ErrExists if it is there.
func (s *Server) createColl(ctx context.Context, p davPath, name, desc string, comps []string) error {
	if _, err := s.st.getCollection(ctx, p.User, p.Kind, p.Coll); err == nil {
		return fmt.Errorf("davserver: create %s: %w", p, ErrExists)
	}
	var err error
	comps, err = normComponents(comps)
	if err != nil {
		return err
	}
	if p.Kind == kindAddressBook {
		comps = nil
	}
	return s.st.createCollection(ctx, collection{
		Owner: p.User, Kind: p.Kind, Name: p.Coll, DisplayName: name, Description: desc, Components: comps,
	})
}

func (s *Server) deleteCollection(ctx context.Context, path, kind string) error {
	c, _, err := s.getCollection(ctx, path, kind)
	if err != nil {
		return err
	}
	return backendError(s.st.deleteCollection(ctx, c.ID))
}

func (s *Server) putParsed(ctx context.Context, path, kind string, data []byte, ifMatch, ifNoneMatch webdav.ConditionalMatch) (object, davPath, error) {
	p, err := ownPath(ctx, path, kind, 4)
	if err != nil {
		return object{}, p, err
	}
	o, _, err := s.putObject(ctx, p, data, conditions{IfMatch: string(ifMatch), IfNoneMatch: string(ifNoneMatch)})
	return o, p, backendError(err)
}

func (s *Server) deleteObject(ctx context.Context, path, kind string) error {
	p, err := ownPath(ctx, path, kind, 4)
	if err != nil {
		return err
	}
	c, err := s.st.getCollection(ctx, p.User, kind, p.Coll)
	if err != nil {
		return backendError(err)
	}
	return backendError(s.st.deleteObject(ctx, c.ID, p.Obj, conditions{}))
}

// --- CardDAV ---

type cardBackend struct{ s *Server }

var _ carddav.Backend = (*cardBackend)(nil)

func (b *cardBackend) CurrentUserPrincipal(ctx context.Context) (string, error) {
	return principal(ctx)
}

func (b *cardBackend) AddressBookHomeSetPath(ctx context.Context) (string, error) {
	user, err := userFrom(ctx)
	if err != nil {
		return "", err
	}
	return homePath(user, kindAddressBook), nil
}

func addressBookOf(c collection) carddav.AddressBook {
	return carddav.AddressBook{
		Path:            collectionPath(c.Owner, kindAddressBook, c.Name),
		Name:            c.DisplayName,
		Description:     c.Description,
		MaxResourceSize: maxObjectSize,
	}
}

func (b *cardBackend) ListAddressBooks(ctx context.Context) ([]carddav.AddressBook, error) {
	cs, err := b.s.listCollections(ctx, kindAddressBook)
	if err != nil {
		return nil, err
	}
	out := make([]carddav.AddressBook, len(cs))
	for i, c := range cs {
		out[i] = addressBookOf(c)
	}
	return out, nil
}

func (b *cardBackend) GetAddressBook(ctx context.Context, path string) (*carddav.AddressBook, error) {
	c, _, err := b.s.getCollection(ctx, path, kindAddressBook)
	if err != nil {
		return nil, err
	}
	ab := addressBookOf(c)
	return &ab, nil
}

func (b *cardBackend) CreateAddressBook(ctx context.Context, ab *carddav.AddressBook) error {
	return b.s.createCollection(ctx, ab.Path, kindAddressBook, ab.Name, ab.Description, nil)
}

func (b *cardBackend) DeleteAddressBook(ctx context.Context, path string) error {
	return b.s.deleteCollection(ctx, path, kindAddressBook)
}

func addressObjectOf(ctx context.Context, p davPath, o object) (carddav.AddressObject, error) {
	var card vcard.Card
	if parsing(ctx) {
		var err error
		if card, err = decodeCard(o.Data); err != nil {
			return carddav.AddressObject{}, err
		}
	}
	return carddav.AddressObject{
		Path:          p.String(),
		ModTime:       o.ModTime,
		ContentLength: int64(len(o.Data)),
		ETag:          o.ETag,
		Card:          card,
	}, nil
}

func (b *cardBackend) GetAddressObject(ctx context.Context, path string, _ *carddav.AddressDataRequest) (*carddav.AddressObject, error) {
	o, p, err := b.s.getObject(ctx, path, kindAddressBook)
	if err != nil {
		return nil, err
	}
	ao, err := addressObjectOf(ctx, p, o)
	if err != nil {
		return nil, err
	}
	return &ao, nil
}

func (b *cardBackend) ListAddressObjects(ctx context.Context, path string, _ *carddav.AddressDataRequest) ([]carddav.AddressObject, error) {
	objs, p, err := b.s.listObjects(ctx, path, kindAddressBook)
	if err != nil {
		return nil, err
	}
	out := make([]carddav.AddressObject, 0, len(objs))
	for _, o := range objs {
		op := p
		op.Depth, op.Obj = 4, o.Name
		ao, err := addressObjectOf(ctx, op, o)
		if err != nil {
			return nil, err
		}
		out = append(out, ao)
	}
	return out, nil
}

func (b *cardBackend) QueryAddressObjects(ctx context.Context, path string, q *carddav.AddressBookQuery) ([]carddav.AddressObject, error) {
	aos, err := b.ListAddressObjects(ctx, path, &q.DataRequest)
	if err != nil {
		return nil, err
	}
	return carddav.Filter(q, aos)
}

// PutAddressObject stores a card that go-webdav parsed. The handler in
// handler.go answers PUT itself with the raw body, so this path re-encodes
// only if go-webdav's own PUT is ever reached.
func (b *cardBackend) PutAddressObject(ctx context.Context, path string, card vcard.Card, opts *carddav.PutAddressObjectOptions) (*carddav.AddressObject, error) {
	var buf bytes.Buffer
	if err := vcard.NewEncoder(&buf).Encode(card); err != nil {
		return nil, webdav.NewHTTPError(http.StatusBadRequest, err)
	}
	o, p, err := b.s.putParsed(ctx, path, kindAddressBook, buf.Bytes(), opts.IfMatch, opts.IfNoneMatch)
	if err != nil {
		return nil, err
	}
	ao, err := addressObjectOf(ctx, p, o)
	if err != nil {
		return nil, err
	}
	return &ao, nil
}

func (b *cardBackend) DeleteAddressObject(ctx context.Context, path string) error {
	return b.s.deleteObject(ctx, path, kindAddressBook)
}

// --- CalDAV ---

type calBackend struct{ s *Server }

var _ caldav.Backend = (*calBackend)(nil)

func (b *calBackend) CurrentUserPrincipal(ctx context.Context) (string, error) { return principal(ctx) }

func (b *calBackend) CalendarHomeSetPath(ctx context.Context) (string, error) {
	user, err := userFrom(ctx)
	if err != nil {
		return "", err
	}
	return homePath(user, kindCalendar), nil
}

func calendarOf(c collection) caldav.Calendar {
	comps := c.Components
	if len(comps) == 0 {
		comps = []string{ical.CompEvent}
	}
	return caldav.Calendar{
		Path:                  collectionPath(c.Owner, kindCalendar, c.Name),
		Name:                  c.DisplayName,
		Description:           c.Description,
		MaxResourceSize:       maxObjectSize,
		SupportedComponentSet: comps,
	}
}

func (b *calBackend) CreateCalendar(ctx context.Context, cal *caldav.Calendar) error {
	return b.s.createCollection(ctx, cal.Path, kindCalendar, cal.Name, cal.Description, cal.SupportedComponentSet)
}

func (b *calBackend) ListCalendars(ctx context.Context) ([]caldav.Calendar, error) {
	cs, err := b.s.listCollections(ctx, kindCalendar)
	if err != nil {
		return nil, err
	}
	out := make([]caldav.Calendar, len(cs))
	for i, c := range cs {
		out[i] = calendarOf(c)
	}
	return out, nil
}

func (b *calBackend) GetCalendar(ctx context.Context, path string) (*caldav.Calendar, error) {
	c, _, err := b.s.getCollection(ctx, path, kindCalendar)
	if err != nil {
		return nil, err
	}
	cal := calendarOf(c)
	return &cal, nil
}

func calendarObjectOf(ctx context.Context, p davPath, o object) (caldav.CalendarObject, error) {
	var cal *ical.Calendar
	if parsing(ctx) {
		var err error
		if cal, err = decodeCalendar(o.Data); err != nil {
			return caldav.CalendarObject{}, err
		}
	}
	return caldav.CalendarObject{
		Path:          p.String(),
		ModTime:       o.ModTime,
		ContentLength: int64(len(o.Data)),
		ETag:          o.ETag,
		Data:          cal,
	}, nil
}

func (b *calBackend) GetCalendarObject(ctx context.Context, path string, _ *caldav.CalendarCompRequest) (*caldav.CalendarObject, error) {
	o, p, err := b.s.getObject(ctx, path, kindCalendar)
	if err != nil {
		return nil, err
	}
	co, err := calendarObjectOf(ctx, p, o)
	if err != nil {
		return nil, err
	}
	return &co, nil
}

func (b *calBackend) ListCalendarObjects(ctx context.Context, path string, _ *caldav.CalendarCompRequest) ([]caldav.CalendarObject, error) {
	objs, p, err := b.s.listObjects(ctx, path, kindCalendar)
	if err != nil {
		return nil, err
	}
	out := make([]caldav.CalendarObject, 0, len(objs))
	for _, o := range objs {
		op := p
		op.Depth, op.Obj = 4, o.Name
		co, err := calendarObjectOf(ctx, op, o)
		if err != nil {
			return nil, err
		}
		out = append(out, co)
	}
	return out, nil
}

func (b *calBackend) QueryCalendarObjects(ctx context.Context, path string, q *caldav.CalendarQuery) ([]caldav.CalendarObject, error) {
	cos, err := b.ListCalendarObjects(ctx, path, &q.CompRequest)
	if err != nil {
		return nil, err
	}
	return caldav.Filter(q, cos)
}

// PutCalendarObject stores a calendar that go-webdav parsed (re-encoded);
// see PutAddressObject.
func (b *calBackend) PutCalendarObject(ctx context.Context, path string, cal *ical.Calendar, opts *caldav.PutCalendarObjectOptions) (*caldav.CalendarObject, error) {
	var buf bytes.Buffer
	if err := ical.NewEncoder(&buf).Encode(cal); err != nil {
		return nil, webdav.NewHTTPError(http.StatusBadRequest, err)
	}
	o, p, err := b.s.putParsed(ctx, path, kindCalendar, buf.Bytes(), opts.IfMatch, opts.IfNoneMatch)
	if err != nil {
		return nil, err
	}
	co, err := calendarObjectOf(ctx, p, o)
	if err != nil {
		return nil, err
	}
	return &co, nil
}

// DeleteCalendarObject is also what go-webdav calls for DELETE on a
// calendar (it has no DeleteCalendar); handler.go routes those itself.
func (b *calBackend) DeleteCalendarObject(ctx context.Context, path string) error {
	return b.s.deleteObject(ctx, path, kindCalendar)
}
