package integration

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/pimbridge/pimbridge/bridge"
	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmclient"
	"github.com/pimbridge/pimbridge/crm/crmserver"
	"github.com/pimbridge/pimbridge/crm/crmtest"
	"github.com/pimbridge/pimbridge/idmap"
	"github.com/pimbridge/pimbridge/internal/davserver"
	"github.com/pimbridge/pimbridge/internal/realserver"
	"github.com/pimbridge/pimbridge/pim"
	"github.com/pimbridge/pimbridge/pim/davcalendar"
	"github.com/pimbridge/pimbridge/pim/davcontacts"
	"github.com/pimbridge/pimbridge/pim/davext"
	"github.com/pimbridge/pimbridge/pim/pimtest"
)

// davEnv is one DAV server with the three collections a bridge syncs.
type davEnv struct {
	Name                  string
	URL, User, Password   string
	Book, Tasks, Calendar string
	// Rewrites: the server rewrites objects on PUT (Radicale), so tests
	// compare content lines as sets.
	Rewrites bool
	// paths gives the collection paths for a set named name.
	paths func(name string) (book, tasks, cal string)
	// Store puts raw bytes (malformed ones included) into a collection
	// behind the server's validation; nil when the server cannot.
	Store func(t testing.TB, collection, name string, data []byte)
	// Radicale is set for a Radicale server (bulk loads).
	Radicale *realserver.Radicale
}

// fresh returns the server with three new, empty collections.
func (e davEnv) fresh(t testing.TB, name string) davEnv {
	name = strings.NewReplacer("/", "-", " ", "-", "_", "-").Replace(strings.ToLower(name))
	e.Book, e.Tasks, e.Calendar = e.paths(name)
	c := e.client(t)
	ctx := context.Background()
	if err := c.MkAddressBook(ctx, e.Book, "CRM contacts"); err != nil {
		t.Fatalf("mkaddressbook %s: %v", e.Book, err)
	}
	if err := c.MkCalendar(ctx, e.Tasks, "CRM tasks", "VTODO"); err != nil {
		t.Fatalf("mkcalendar %s: %v", e.Tasks, err)
	}
	if err := c.MkCalendar(ctx, e.Calendar, "CRM appointments", "VEVENT"); err != nil {
		t.Fatalf("mkcalendar %s: %v", e.Calendar, err)
	}
	return e
}

type davFactory struct {
	name string
	new  func(t testing.TB) davEnv
}

func fastDAV(t testing.TB) davEnv {
	ctx := context.Background()
	srv, err := davserver.New(ctx, davserver.Options{Logger: quiet(), BcryptCost: bcrypt.MinCost})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	if err := srv.AddUser(ctx, "alice", "davpw"); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	return davEnv{Name: "davserver", URL: hs.URL, User: "alice", Password: "davpw", paths: func(n string) (string, string, string) {
		return "/alice/contacts/" + n + "/", "/alice/calendars/" + n + "-tasks/", "/alice/calendars/" + n + "-cal/"
	}}
}

func radicaleDAV(t testing.TB) davEnv {
	r := realserver.StartRadicale(t)
	return davEnv{Name: "radicale", URL: r.URL, User: r.User, Password: r.Password, Rewrites: true, Radicale: r, paths: func(n string) (string, string, string) {
		return r.CollectionPath(n + "-contacts"), r.CollectionPath(n + "-tasks"), r.CollectionPath(n + "-cal")
	}}
}

func xandikosDAV(t testing.TB) davEnv {
	x := realserver.StartXandikos(t)
	return davEnv{Name: "xandikos", URL: x.URL, User: "alice", Password: "x", Rewrites: true, paths: func(n string) (string, string, string) {
		return x.ContactsHome() + n + "/", x.CalendarsHome() + n + "-tasks/", x.CalendarsHome() + n + "-cal/"
	}, Store: func(t testing.TB, col, name string, data []byte) { x.BulkLoad(t, col, map[string][]byte{name: data}) }}
}

// faultDAV is pimtest.FaultServer: objects kept byte for byte, malformed
// ones included.
func faultDAV(t testing.TB) davEnv {
	fs := pimtest.NewFaultServer(t)
	return davEnv{Name: "faultserver", URL: fs.URL, User: "alice", Password: "x",
		paths: func(n string) (string, string, string) {
			return "/alice/" + n + "-contacts/", "/alice/" + n + "-tasks/", "/alice/" + n + "-cal/"
		},
		Store: func(t testing.TB, col, name string, data []byte) { fs.Store(col+name, data) },
	}
}

var (
	fault    = davFactory{"faultserver", faultDAV}
	fast     = davFactory{"davserver", fastDAV}
	radicale = davFactory{"radicale", radicaleDAV}
	xandikos = davFactory{"xandikos", xandikosDAV}
	allDAV   = []davFactory{fast, radicale, xandikos, cyrus}
)

// eachDAV runs body once per server as a subtest, on new collections.
func eachDAV(t *testing.T, servers []davFactory, body func(t *testing.T, h *harness)) {
	for _, f := range servers {
		t.Run(f.name, func(t *testing.T) {
			body(t, newHarness(t, f.new(t).fresh(t, "crm")))
		})
	}
}

// eachRow starts each server once and runs every row on new collections
// and a new CRM server.
func eachRow[R any](t *testing.T, servers []davFactory, rows []R, name func(R) string, body func(t *testing.T, h *harness, r R)) {
	for _, f := range servers {
		t.Run(f.name, func(t *testing.T) {
			env := f.new(t)
			// One CRM server per DAV server; each row is a new user
			// ("alice" of the row) so rows do not see each other.
			shared := crmtest.Start(t, nil)
			for i, r := range rows {
				t.Run(name(r), func(t *testing.T) {
					cs := *shared
					cs.Alice = shared.AddUser(t, fmt.Sprintf("alice%d", i), "alice-row-pw", crmserver.RoleSalesperson)
					body(t, newHarnessCRM(t, env.fresh(t, fmt.Sprintf("row%d", i)), &cs), r)
				})
			}
		})
	}
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func (e davEnv) client(t testing.TB) *davext.Client {
	c, err := davext.New(e.URL, &davext.Options{Username: e.User, Password: e.Password, Logger: quiet(), RetryDelay: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// harness is one scenario: a CRM server, a DAV server, and bridges.
type harness struct {
	t        testing.TB
	ctx      context.Context
	CRM      *crmtest.Server
	DAV      davEnv
	PIM      *davext.Client // the PIM user's own client (edits behind the bridge's back)
	Book     *davext.Collection
	Tasks    *davext.Collection
	Cal      *davext.Collection
	Settings bridge.Settings
	Now      func() time.Time
	// WrapCol and WrapCRM, when set, wrap what the next bridges drive
	// (fault and race hooks).
	WrapCol func(bridge.Collection) bridge.Collection
	WrapCRM func(bridge.CRM) bridge.CRM

	root   string
	mu     sync.Mutex
	caches map[string]*idmap.Store
}

func newHarness(t testing.TB, dav davEnv) *harness {
	return newHarnessCRM(t, dav, crmtest.Start(t, nil))
}

// newHarnessCRM is newHarness on a CRM server shared between scenarios.
func newHarnessCRM(t testing.TB, dav davEnv, cs *crmtest.Server) *harness {
	h := &harness{t: t, ctx: context.Background(), CRM: cs, DAV: dav, caches: map[string]*idmap.Store{}, root: t.TempDir()}
	h.PIM = dav.client(t)
	h.Book = davext.NewCollection(h.PIM, dav.Book, davext.AddressBook)
	h.Tasks = davext.NewCollection(h.PIM, dav.Tasks, davext.Calendar)
	h.Cal = davext.NewCollection(h.PIM, dav.Calendar, davext.Calendar)
	return h
}

// cache opens (once) the cache in dir.
func (h *harness) cache(dir string) *idmap.Store {
	h.mu.Lock()
	defer h.mu.Unlock()
	if s, ok := h.caches[dir]; ok {
		return s
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		h.t.Fatal(err)
	}
	s, err := idmap.OpenOptions(h.ctx, filepath.Join(dir, "cache.db"), &idmap.Options{Logger: quiet()})
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { s.Close() })
	h.caches[dir] = s
	return s
}

// closeCache closes the cache in dir (before deleting the state dir).
func (h *harness) closeCache(dir string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if s, ok := h.caches[dir]; ok {
		s.Close()
		delete(h.caches, dir)
	}
}

// bridgeFor builds a bridge for user with client id and state dir.
func (h *harness) bridgeFor(u crmtest.User, clientID, dir string) *bridge.Bridge {
	dc := h.DAV.client(h.t)
	wc, wr := h.WrapCol, h.WrapCRM
	wrapCol := func(c bridge.Collection) bridge.Collection {
		if wc != nil {
			return wc(c)
		}
		return c
	}
	wrapCRM := func(c bridge.CRM) bridge.CRM {
		if wr != nil {
			return wr(c)
		}
		return c
	}
	b, err := bridge.New(bridge.Options{
		CRM:      wrapCRM(u.Client),
		Fenced:   func(g int64) bridge.CRM { return wrapCRM(u.Client.WithGeneration(g)) },
		ClientID: clientID,
		Cache:    h.cache(dir),
		Contacts: wrapCol(davcontacts.New(dc, h.DAV.Book)),
		Tasks:    wrapCol(davcalendar.New(dc, h.DAV.Tasks)),
		Calendar: wrapCol(davcalendar.New(dc, h.DAV.Calendar)),
		Settings: h.Settings,
		Logger:   h.logger(),
		Now:      h.Now,
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return b
}

// alice is the default bridge: alice's primary client "desktop".
func (h *harness) alice() *bridge.Bridge {
	return h.bridgeFor(h.CRM.Alice, "desktop", filepath.Join(h.stateRoot(), "desktop"))
}

func (h *harness) stateRoot() string { return h.root }

// sync runs one full cycle and fails the test on an error other than the
// ones listed in allow.
func (h *harness) sync(b *bridge.Bridge, allow ...error) bridge.Stats {
	h.t.Helper()
	st, err := b.Cycle(h.ctx, bridge.CycleOptions{})
	if err != nil {
		for _, a := range allow {
			if errors.Is(err, a) {
				return st
			}
		}
		h.t.Fatalf("Cycle: %v (stats %+v)", err, st)
	}
	return st
}

// --- CRM helpers ---

func (h *harness) createContact(u crmtest.User, attrs map[string]any) crm.Record {
	h.t.Helper()
	r, err := u.Client.Create(h.ctx, crm.Record{Entity: crm.EntityContact, Attrs: attrs}, nil)
	if err != nil {
		h.t.Fatalf("create contact: %v", err)
	}
	return r
}

func (h *harness) create(u crmtest.User, entity string, attrs map[string]any) crm.Record {
	h.t.Helper()
	r, err := u.Client.Create(h.ctx, crm.Record{Entity: entity, Attrs: attrs}, nil)
	if err != nil {
		h.t.Fatalf("create %s: %v", entity, err)
	}
	return r
}

func (h *harness) update(u crmtest.User, entity string, id crm.ID, attrs map[string]any) crm.Record {
	h.t.Helper()
	r, err := u.Client.Update(h.ctx, crm.Record{Entity: entity, ID: id, Attrs: attrs}, nil)
	if err != nil {
		h.t.Fatalf("update %s: %v", entity, err)
	}
	return r
}

func (h *harness) get(entity string, id crm.ID) (crm.Record, bool) {
	h.t.Helper()
	r, err := h.CRM.Admin.Client.Get(h.ctx, entity, id)
	if errors.Is(err, crm.ErrNotFound) {
		return r, false
	}
	if err != nil {
		h.t.Fatalf("get %s(%s): %v", entity, id, err)
	}
	return r, true
}

func (h *harness) all(entity string) []crm.Record {
	h.t.Helper()
	rs, err := h.CRM.Admin.Client.QueryAll(h.ctx, entity, crmclient.Query{})
	if err != nil {
		h.t.Fatalf("query %s: %v", entity, err)
	}
	return rs
}

// --- PIM helpers ---

// objects lists every object of a collection (a fresh full listing).
func (h *harness) objects(col *davext.Collection) map[string][]byte {
	h.t.Helper()
	changed, _, _, err := col.Changes(h.ctx, "")
	if err != nil {
		h.t.Fatalf("list %s: %v", col.Href(), err)
	}
	out := map[string][]byte{}
	for _, o := range changed {
		out[o.Href] = o.Data
	}
	return out
}

func (h *harness) pimGet(col *davext.Collection, href string) ([]byte, string, bool) {
	h.t.Helper()
	o, err := col.Get(h.ctx, href)
	if err != nil {
		if errors.Is(err, pim.ErrNotFound) {
			return nil, "", false
		}
		h.t.Fatalf("get %s: %v", href, err)
	}
	return o.Data, o.ETag, true
}

// findByCRMID returns the href of the object carrying X-CRM-ID id.
func (h *harness) findByCRMID(col *davext.Collection, id crm.ID) (string, []byte) {
	h.t.Helper()
	for href, data := range h.objects(col) {
		if strings.Contains(strings.ToLower(string(data)), "x-crm-id:"+id.String()) {
			return href, data
		}
	}
	return "", nil
}

// editPIM rewrites the object at href with fn applied to its text.
func (h *harness) editPIM(col *davext.Collection, href string, fn func(string) string) {
	h.t.Helper()
	o, err := col.Get(h.ctx, href)
	if err != nil {
		h.t.Fatalf("get %s: %v", href, err)
	}
	if _, err := col.Update(h.ctx, href, o.ETag, []byte(fn(string(o.Data)))); err != nil {
		h.t.Fatalf("update %s: %v", href, err)
	}
}

func (h *harness) putPIM(col *davext.Collection, name, data string) string {
	h.t.Helper()
	ref, err := col.Create(h.ctx, name, []byte(data))
	if err != nil {
		h.t.Fatalf("create %s: %v", name, err)
	}
	return ref.Href
}

func (h *harness) deletePIM(col *davext.Collection, href string) {
	h.t.Helper()
	if err := col.Delete(h.ctx, href, ""); err != nil {
		h.t.Fatalf("delete %s: %v", href, err)
	}
}

// replaceLine replaces the first line starting with prefix.
func replaceLine(s, prefix, line string) string {
	lines := strings.Split(s, "\r\n")
	for i, l := range lines {
		if strings.HasPrefix(l, prefix) {
			lines[i] = line
			return strings.Join(lines, "\r\n")
		}
	}
	// insert before END:
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.HasPrefix(lines[i], "END:VCARD") || strings.HasPrefix(lines[i], "END:VTODO") || strings.HasPrefix(lines[i], "END:VEVENT") {
			lines = append(lines[:i], append([]string{line}, lines[i:]...)...)
			break
		}
	}
	return strings.Join(lines, "\r\n")
}

func vcard(uid, first, last string, extra ...string) string {
	s := "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:" + uid + "\r\nFN:" + first + " " + last + "\r\nN:" + last + ";" + first + ";;;\r\n"
	for _, e := range extra {
		s += e + "\r\n"
	}
	return s + "END:VCARD\r\n"
}

func fixture(t testing.TB, name string) []byte {
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "shared", "fixtures", name))
	if err != nil {
		b, err = os.ReadFile(filepath.Join("/work/shared/fixtures", name))
	}
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// logger is quiet unless PIMBRIDGE_TEST_DEBUG is set.
func (h *harness) logger() *slog.Logger {
	if os.Getenv("PIMBRIDGE_TEST_DEBUG") == "" {
		return quiet()
	}
	return slog.New(slog.NewTextHandler(testWriter{h.t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
