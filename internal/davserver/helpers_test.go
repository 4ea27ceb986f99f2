package davserver

import (
	"context"
	"encoding/xml"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

const (
	alicePW = "alice-secret"
	bobPW   = "bob-secret"
)

type testEnv struct {
	srv    *Server
	http   *httptest.Server
	dbPath string
}

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// newTestEnv starts a server with users alice and bob, alice's address book
// "crm", calendar "calendar" (VEVENT) and task list "tasks" (VTODO), and
// bob's address book "crm".
func newTestEnv(t testing.TB) *testEnv {
	t.Helper()
	ctx := context.Background()
	dbPath := filepath.Join(t.TempDir(), "dav.db")
	srv, err := New(ctx, Options{DBPath: dbPath, Logger: quietLogger(), BcryptCost: bcrypt.MinCost})
	if err != nil {
		t.Fatal(err)
	}
	mustNoErr(t, srv.AddUser(ctx, "alice", alicePW))
	mustNoErr(t, srv.AddUser(ctx, "bob", bobPW))
	for _, f := range []func() (string, error){
		func() (string, error) { return srv.CreateAddressBook(ctx, "alice", "crm", "CRM contacts") },
		func() (string, error) {
			return srv.CreateCalendar(ctx, "alice", "calendar", "CRM appointments", "VEVENT")
		},
		func() (string, error) { return srv.CreateCalendar(ctx, "alice", "tasks", "CRM tasks", "VTODO") },
		func() (string, error) { return srv.CreateAddressBook(ctx, "bob", "crm", "Bob's contacts") },
	} {
		if _, err := f(); err != nil {
			t.Fatal(err)
		}
	}
	hs := httptest.NewServer(srv)
	env := &testEnv{srv: srv, http: hs, dbPath: dbPath}
	t.Cleanup(func() {
		hs.Close()
		srv.Close()
	})
	return env
}

func mustNoErr(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

type req struct {
	method, path, body string
	user, pass         string
	header             map[string]string
}

type resp struct {
	code   int
	header http.Header
	body   string
}

func (e *testEnv) do(t *testing.T, r req) resp {
	t.Helper()
	hr, err := http.NewRequest(r.method, e.http.URL+r.path, strings.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	if r.user != "" {
		hr.SetBasicAuth(r.user, r.pass)
	}
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	if r.body != "" && hr.Header.Get("Content-Type") == "" {
		hr.Header.Set("Content-Type", "application/xml; charset=utf-8")
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp{code: res.StatusCode, header: res.Header, body: string(b)}
}

// alice sends a request as alice.
func (e *testEnv) alice(t *testing.T, method, path, body string, header map[string]string) resp {
	t.Helper()
	return e.do(t, req{method: method, path: path, body: body, user: "alice", pass: alicePW, header: header})
}

// multistatus is a parsed 207 body.
type multistatus struct {
	Responses []struct {
		Href      string `xml:"DAV: href"`
		Status    string `xml:"DAV: status"`
		PropStats []struct {
			Status string `xml:"DAV: status"`
			Prop   struct {
				ETag         string `xml:"DAV: getetag"`
				CTag         string `xml:"http://calendarserver.org/ns/ getctag"`
				SyncToken    string `xml:"DAV: sync-token"`
				AddressData  string `xml:"urn:ietf:params:xml:ns:carddav address-data"`
				CalendarData string `xml:"urn:ietf:params:xml:ns:caldav calendar-data"`
				ResourceType *struct {
					Inner string `xml:",innerxml"`
				} `xml:"DAV: resourcetype"`
				Reports *struct {
					Inner string `xml:",innerxml"`
				} `xml:"DAV: supported-report-set"`
				Privileges *struct {
					Inner string `xml:",innerxml"`
				} `xml:"DAV: current-user-privilege-set"`
			} `xml:"DAV: prop"`
		} `xml:"DAV: propstat"`
	} `xml:"DAV: response"`
	SyncToken string `xml:"DAV: sync-token"`
}

func parseMS(t *testing.T, r resp) multistatus {
	t.Helper()
	if r.code != http.StatusMultiStatus {
		t.Fatalf("status = %d, want 207; body:\n%s", r.code, r.body)
	}
	var m multistatus
	if err := xml.Unmarshal([]byte(r.body), &m); err != nil {
		t.Fatalf("parse multistatus: %v\n%s", err, r.body)
	}
	return m
}

func vcardText(uid, fn string) string {
	return "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:" + uid + "\r\nFN:" + fn + "\r\nN:" + fn + ";;;;\r\nEND:VCARD\r\n"
}

func eventText(uid, summary string) string {
	return "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//pimbridge//test//EN\r\nBEGIN:VEVENT\r\nUID:" + uid +
		"\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:20260301T090000Z\r\nDTEND:20260301T100000Z\r\nSUMMARY:" + summary +
		"\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
}

func todoText(uid, summary string) string {
	return "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//pimbridge//test//EN\r\nBEGIN:VTODO\r\nUID:" + uid +
		"\r\nDTSTAMP:20260101T000000Z\r\nSUMMARY:" + summary + "\r\nEND:VTODO\r\nEND:VCALENDAR\r\n"
}

func (e *testEnv) putCard(t *testing.T, path, data string, header map[string]string) resp {
	t.Helper()
	h := map[string]string{"Content-Type": "text/vcard; charset=utf-8"}
	for k, v := range header {
		h[k] = v
	}
	return e.alice(t, http.MethodPut, path, data, h)
}

func newHTTPTestServer(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	hs := httptest.NewServer(h)
	t.Cleanup(hs.Close)
	return hs
}
