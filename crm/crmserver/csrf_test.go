package crmserver_test

import (
	"testing"

	"github.com/pimbridge/pimbridge/crm/crmserver"
	"github.com/pimbridge/pimbridge/crm/crmtest"
)

// TestSecurity_CrossSite: bodies must be application/json (a browser form
// can send only urlencoded, multipart or text/plain), a browser Origin
// that is not allowed is refused, and nothing happens for either.
func TestSecurity_CrossSite(t *testing.T) {
	srv := crmtest.Start(t, &crmtest.Options{Server: crmserver.Options{AllowedOrigins: []string{"https://crm.example"}}})
	cases := []struct {
		name, method, path, body string
		header                   map[string]string
		want                     int
		code                     string
	}{
		{"text/plain body", "POST", "/api/data/contacts", `{"lastname":"Form"}`, map[string]string{"Content-Type": "text/plain"}, 415, "unsupported_media_type"},
		{"form body", "POST", "/api/data/contacts", `lastname=Form`, map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, 415, "unsupported_media_type"},
		{"multipart body", "POST", "/api/data/$batch", `{"requests":[{"id":"1","method":"POST","url":"contacts","body":{"lastname":"Form"}}]}`, map[string]string{"Content-Type": "multipart/form-data; boundary=x"}, 415, "unsupported_media_type"},
		{"no content type", "PUT", "/api/sync/filters/contact", `{"filter":"ownerid eq @me"}`, map[string]string{"Content-Type": ""}, 415, "unsupported_media_type"},
		{"foreign origin", "POST", "/api/data/contacts", `{"lastname":"Form"}`, map[string]string{"Origin": "https://evil.example"}, 403, "origin_refused"},
		{"foreign origin GET", "GET", "/api/whoami", ``, map[string]string{"Origin": "https://evil.example"}, 403, "origin_refused"},
		{"null origin", "POST", "/api/auth/token", ``, map[string]string{"Origin": "null"}, 403, "origin_refused"},
		{"cross-site fetch without origin", "GET", "/api/sync/subscriptions", ``, map[string]string{"Sec-Fetch-Site": "cross-site"}, 403, "origin_refused"},
		{"allowed origin", "GET", "/api/whoami", ``, map[string]string{"Origin": "https://crm.example"}, 200, ""},
		{"json with charset", "POST", "/api/data/contacts", `{"lastname":"Json"}`, map[string]string{"Content-Type": "application/json; charset=utf-8"}, 204, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st, _, b := raw(t, srv, "alice", crmtest.AlicePassword, c.method, c.path, c.header, c.body)
			if st != c.want || c.code != "" && errCode(t, b) != c.code {
				t.Errorf("= %d %s, want %d %s", st, b, c.want, c.code)
			}
		})
	}
	// Nothing named Form was created.
	st, _, b := raw(t, srv, "alice", crmtest.AlicePassword, "GET", "/api/data/contacts?$filter=lastname%20eq%20'Form'", nil, "")
	if st != 200 || b == "" || contains(b, `"Form"`) {
		t.Errorf("refused requests created records: %d %s", st, b)
	}
}

// TestSecurity_LocalAPINoBasicChallenge: the offline local API (a server
// with Offline, or NoBasicChallenge) never answers with a Basic challenge,
// which would make a browser ask for and cache the credentials.
func TestSecurity_LocalAPINoBasicChallenge(t *testing.T) {
	for name, o := range map[string]crmserver.Options{"offline": {Offline: true}, "sync half": {NoBasicChallenge: true}} {
		t.Run(name, func(t *testing.T) {
			srv := crmtest.Start(t, &crmtest.Options{Server: o})
			for _, pw := range []string{"", "wrong-password"} {
				user := ""
				if pw != "" {
					user = "alice"
				}
				st, h, _ := raw(t, srv, user, pw, "GET", "/api/data/contacts", nil, "")
				if st != 401 || h.Get("WWW-Authenticate") == "" || contains(h.Get("WWW-Authenticate"), "Basic") {
					t.Errorf("user %q: %d WWW-Authenticate %q, want 401 without a Basic challenge", user, st, h.Get("WWW-Authenticate"))
				}
			}
		})
	}
}
