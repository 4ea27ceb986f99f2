package ui

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pimbridge/pimbridge/bridge"
	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/idmap"
	"github.com/pimbridge/pimbridge/offline"
)

// fakeBackend records the state-changing calls; its zero value answers
// every read with nothing.
type fakeBackend struct{ calls []string }

func (f *fakeBackend) Status(context.Context) (Status, error) { return Status{ClientID: "desk"}, nil }
func (f *fakeBackend) SyncNow(context.Context) error          { f.calls = append(f.calls, "sync"); return nil }
func (f *fakeBackend) SyncErrors(context.Context) ([]idmap.SyncError, error) {
	return []idmap.SyncError{{ID: 1, Item: "/a/b.vcf", Message: "duplicate"}}, nil
}
func (f *fakeBackend) RetryError(context.Context, int64) error {
	f.calls = append(f.calls, "retry")
	return nil
}
func (f *fakeBackend) DiscardError(context.Context, int64) error {
	f.calls = append(f.calls, "discard")
	return nil
}
func (f *fakeBackend) AllowDuplicate(context.Context, int64) error {
	f.calls = append(f.calls, "allow")
	return nil
}
func (f *fakeBackend) LinkError(context.Context, int64, crm.ID) error {
	f.calls = append(f.calls, "link")
	return nil
}
func (f *fakeBackend) Search(context.Context, int64, string) ([]Match, error) { return nil, nil }
func (f *fakeBackend) Plan(context.Context) (Plan, error)                     { return Plan{}, nil }
func (f *fakeBackend) ConfirmDeletes(context.Context) (bridge.Stats, error) {
	f.calls = append(f.calls, "confirm")
	return bridge.Stats{}, nil
}
func (f *fakeBackend) GoOffline(context.Context, func(offline.Progress)) (offline.Report, error) {
	return offline.Report{}, nil
}
func (f *fakeBackend) GoOnline(context.Context, offline.OnError) (offline.ReplayReport, error) {
	return offline.ReplayReport{}, nil
}
func (f *fakeBackend) QueueLength(context.Context) (int64, error)                 { return 0, nil }
func (f *fakeBackend) OfflineErrors(context.Context) ([]offline.Rejection, error) { return nil, nil }

const testKey = "0123456789abcdef0123456789abcdef0123456789abcdef"

func newTestServer(t *testing.T) (*fakeBackend, http.Handler) {
	t.Helper()
	fb := &fakeBackend{}
	s, err := New(&Options{Backend: fb, Key: testKey})
	if err != nil {
		t.Fatal(err)
	}
	return fb, s.Handler(t.Context(), &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8484})
}

func do(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func signedIn(method, target string, body url.Values) *http.Request {
	var r *http.Request
	if body != nil {
		r = httptest.NewRequest(method, "http://127.0.0.1:8484"+target, strings.NewReader(body.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		r = httptest.NewRequest(method, "http://127.0.0.1:8484"+target, nil)
	}
	r.AddCookie(&http.Cookie{Name: cookieName, Value: derive(testKey, "session")})
	return r
}

func TestGuard_SignInWithKeySetsStrictHttpOnlyCookie(t *testing.T) {
	_, h := newTestServer(t)
	w := do(h, httptest.NewRequest("GET", "http://127.0.0.1:8484/errors?key="+testKey, nil))
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/errors" {
		t.Fatalf("GET /errors?key=KEY = %d to %q, want 303 to /errors (the key out of the address bar)", w.Code, w.Header().Get("Location"))
	}
	c := w.Result().Cookies()
	if len(c) != 1 || !c[0].HttpOnly || c[0].SameSite != http.SameSiteStrictMode || c[0].Value == testKey {
		t.Fatalf("cookie = %+v, want one HttpOnly SameSite=Strict cookie not holding the key", c)
	}
	if w := do(h, signedIn("GET", "/errors", nil)); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "/a/b.vcf") {
		t.Errorf("GET /errors with the cookie = %d, want 200 listing the error", w.Code)
	}
}

func TestGuard_RefusesWithoutKey(t *testing.T) {
	_, h := newTestServer(t)
	if w := do(h, httptest.NewRequest("GET", "http://127.0.0.1:8484/errors", nil)); w.Code != http.StatusUnauthorized || strings.Contains(w.Body.String(), "/a/b.vcf") {
		t.Errorf("GET /errors without key = %d, want 401 and no data", w.Code)
	}
	if w := do(h, httptest.NewRequest("GET", "http://127.0.0.1:8484/?key=wrong", nil)); w.Code != http.StatusForbidden || len(w.Result().Cookies()) != 0 {
		t.Errorf("GET /?key=wrong = %d, want 403 and no cookie", w.Code)
	}
}

// TestGuard_StateChangeNeedsCSRFAndSameOrigin: the cookie alone changes
// nothing; a request from another origin or site changes nothing even with
// the token; the key header needs no token.
func TestGuard_StateChangeNeedsCSRFAndSameOrigin(t *testing.T) {
	csrf := derive(testKey, "csrf")
	tests := []struct {
		name   string
		form   url.Values
		header map[string]string
		cookie bool
		want   int
	}{
		{"cookie without token", url.Values{}, nil, true, http.StatusForbidden},
		{"cookie wrong token", url.Values{"csrf": {"x"}}, nil, true, http.StatusForbidden},
		{"cookie and token", url.Values{"csrf": {csrf}}, nil, true, http.StatusSeeOther},
		{"cross-origin", url.Values{"csrf": {csrf}}, map[string]string{"Origin": "http://127.0.0.1:9999"}, true, http.StatusForbidden},
		{"same-site other port", url.Values{"csrf": {csrf}}, map[string]string{"Sec-Fetch-Site": "same-site"}, true, http.StatusForbidden},
		{"cross-site", url.Values{"csrf": {csrf}}, map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "http://evil.example"}, true, http.StatusForbidden},
		{"same origin", url.Values{"csrf": {csrf}}, map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": "http://127.0.0.1:8484"}, true, http.StatusSeeOther},
		{"key header", url.Values{}, map[string]string{KeyHeader: testKey}, false, http.StatusSeeOther},
		{"wrong key header", url.Values{}, map[string]string{KeyHeader: "nope"}, false, http.StatusUnauthorized},
		{"token without cookie", url.Values{"csrf": {csrf}}, nil, false, http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fb, h := newTestServer(t)
			r := signedIn("POST", "/errors/1/retry", tt.form)
			if !tt.cookie {
				r.Header.Del("Cookie")
			}
			for k, v := range tt.header {
				r.Header.Set(k, v)
			}
			w := do(h, r)
			if w.Code != tt.want {
				t.Fatalf("POST = %d, want %d (%s)", w.Code, tt.want, w.Body.String())
			}
			if changed := len(fb.calls) > 0; changed != (tt.want == http.StatusSeeOther) {
				t.Errorf("backend calls %v after a %d", fb.calls, w.Code)
			}
		})
	}
}

func TestGuard_ForeignHostRefused(t *testing.T) {
	_, h := newTestServer(t)
	r := signedIn("GET", "/", nil)
	r.Host = "rebind.example:8484"
	if w := do(h, r); w.Code != http.StatusMisdirectedRequest {
		t.Errorf("GET with Host rebind.example = %d, want 421", w.Code)
	}
}

func TestGuard_NoCORS(t *testing.T) {
	_, h := newTestServer(t)
	r := signedIn("OPTIONS", "/errors/1/retry", nil)
	r.Header.Set("Origin", "http://evil.example")
	r.Header.Set("Access-Control-Request-Method", "POST")
	w := do(h, r)
	for k := range w.Header() {
		if strings.HasPrefix(k, "Access-Control-") {
			t.Errorf("preflight answered with %s", k)
		}
	}
}

// TestErrors_DiscardAsksFirst: discard without confirm=yes shows the
// confirmation and drops nothing.
func TestErrors_DiscardAsksFirst(t *testing.T) {
	fb, h := newTestServer(t)
	csrf := derive(testKey, "csrf")
	w := do(h, signedIn("POST", "/errors/1/discard", url.Values{"csrf": {csrf}}))
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "Are you sure") || len(fb.calls) != 0 {
		t.Fatalf("discard without confirm = %d, calls %v; want the question and nothing dropped", w.Code, fb.calls)
	}
	w = do(h, signedIn("POST", "/errors/1/discard", url.Values{"csrf": {csrf}, "confirm": {"yes"}}))
	if w.Code != http.StatusSeeOther || len(fb.calls) != 1 || fb.calls[0] != "discard" {
		t.Fatalf("discard confirmed = %d, calls %v", w.Code, fb.calls)
	}
}

func TestLoadOrCreateKey_privateAndStable(t *testing.T) {
	dir := t.TempDir()
	k, err := LoadOrCreateKey(dir)
	if err != nil || len(k) != 64 {
		t.Fatalf("LoadOrCreateKey = %q, %v", k, err)
	}
	fi, err := os.Stat(filepath.Join(dir, KeyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode = %v, %v; want 0600", fi.Mode(), err)
	}
	if k2, err := LoadOrCreateKey(dir); err != nil || k2 != k {
		t.Errorf("second LoadOrCreateKey = %q, %v; want the same key", k2, err)
	}
}
