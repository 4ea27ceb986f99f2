package crmserver_test

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmclient"
	"github.com/pimbridge/pimbridge/crm/crmserver"
	"github.com/pimbridge/pimbridge/crm/crmtest"
)

// TestBadInput: malformed bodies, wrong types, unknown attributes, bodies
// over the limit, invalid GUIDs and hostile query options give 400 with a
// clear code, never 500, and leave the data as it was.
func TestBadInput(t *testing.T) {
	srv := crmtest.Start(t, &crmtest.Options{Server: crmserver.Options{MaxBodyBytes: 4096}})
	ctx := context.Background()
	a := srv.Alice
	keep, err := a.Client.Create(ctx, crm.Record{Entity: "contact", Attrs: map[string]any{"lastname": "Keep", "emailaddress1": "keep@example.com"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kid := keep.ID.String()
	filter := func(f string) string { return "/api/data/contacts?$filter=" + url.QueryEscape(f) }
	cases := []struct {
		name, method, path, body, code string
	}{
		{"malformed JSON", "POST", "/api/data/contacts", `{"lastname":`, "invalid_argument"},
		{"not an object", "POST", "/api/data/contacts", `["lastname"]`, "invalid_argument"},
		{"trailing data", "PATCH", "/api/data/contacts(" + kid + ")", `{"jobtitle":"a"}{"x":1}`, "invalid_argument"},
		{"wrong type", "POST", "/api/data/contacts", `{"lastname":5}`, "invalid_argument"},
		{"wrong type date", "PATCH", "/api/data/contacts(" + kid + ")", `{"birthdate":"not a date"}`, "invalid_argument"},
		{"too long", "PATCH", "/api/data/contacts(" + kid + ")", `{"firstname":"` + strings.Repeat("x", 51) + `"}`, "invalid_argument"},
		{"invalid UTF-8", "PATCH", "/api/data/contacts(" + kid + ")", "{\"firstname\":\"\xff\xfe\"}", "invalid_argument"},
		{"unknown attribute", "POST", "/api/data/contacts", `{"lastname":"x","nosuch":1}`, "unknown_attribute"},
		{"system attribute", "PATCH", "/api/data/contacts(" + kid + ")", `{"versionnumber":1}`, "invalid_argument"},
		{"clear required", "PATCH", "/api/data/contacts(" + kid + ")", `{"lastname":null}`, "required_attribute_missing"},
		{"body over limit", "POST", "/api/data/contacts", `{"lastname":"` + strings.Repeat("x", 5000) + `"}`, "request_too_large"},
		{"invalid GUID in URL", "GET", "/api/data/contacts(1234)", "", "invalid_id"},
		{"invalid GUID quoted", "PATCH", "/api/data/contacts('" + kid + "')", `{}`, "invalid_id"},
		{"invalid GUID in body", "POST", "/api/data/contacts", `{"contactid":"zzzz","lastname":"x"}`, "invalid_id"},
		{"nil GUID", "POST", "/api/data/contacts", `{"contactid":"00000000-0000-0000-0000-000000000000","lastname":"x"}`, "invalid_id"},
		{"bad lookup", "POST", "/api/data/contacts", `{"lastname":"x","parentcustomerid@odata.bind":"/accounts(nope)"}`, "invalid_id"},
		{"sql in filter 1", "GET", filter("lastname eq 'x'; DROP TABLE e_contact; --"), "", "invalid_argument"},
		{"sql in filter 2", "GET", filter("lastname eq 'x' or 1=1"), "", "invalid_argument"},
		{"sql in filter 3", "GET", filter("lastname) or (1 eq 1"), "", "invalid_argument"},
		{"sql in filter 4", "GET", filter(`"lastname" eq 'x'`), "", "invalid_argument"},
		{"sql in filter 5", "GET", filter("e_contact.lastname eq 'x'"), "", "invalid_argument"},
		{"sql in filter 6", "GET", filter("lastname eq x' or '1'='1"), "", "invalid_argument"},
		{"unknown attr in filter", "GET", filter("sqlite_master eq 'x'"), "", "unknown_attribute"},
		{"type mismatch in filter", "GET", filter("birthdate eq 'yesterday'"), "", "invalid_argument"},
		{"deep filter", "GET", filter(strings.Repeat("(", 500) + "lastname eq 'x'" + strings.Repeat(")", 500)), "", "invalid_argument"},
		{"sql in orderby", "GET", "/api/data/contacts?$orderby=" + url.QueryEscape("lastname; DROP TABLE e_contact"), "", "invalid_argument"},
		{"sql in select", "GET", "/api/data/contacts?$select=" + url.QueryEscape("lastname,(SELECT pwhash FROM users)"), "", "invalid_argument"},
		{"bad top", "GET", "/api/data/contacts?$top=-1", "", "invalid_argument"},
		{"bad skiptoken", "GET", "/api/data/contacts?$skiptoken=abc", "", "invalid_argument"},
		{"unknown entity set", "GET", "/api/data/users", "", "unknown_entity"},
		{"bad If-Match", "PATCH", "/api/data/contacts(" + kid + ")", `{"jobtitle":"a"}`, "invalid_argument"},
		{"bad batch", "POST", "/api/data/$batch", `{"requests":[{"id":"1","method":"GET"}],"x":1}`, "invalid_argument"},
		{"bad CallerOrigin", "POST", "/api/data/contacts", `{"lastname":"x"}`, "invalid_argument"},
		{"bad state", "PATCH", "/api/data/contacts(" + kid + ")", `{"statecode":7}`, "invalid_argument"},
		{"bad sync kind", "POST", "/api/sync/subscriptions", `{"clientid":"x","kind":"y"}`, "invalid_argument"},
		{"bad filter in sync", "PUT", "/api/sync/filters/contact", `{"filter":"lastname eq"}`, "invalid_argument"},
		{"bad generation", "GET", "/api/whoami", "", "invalid_argument"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := map[string]string{}
			switch c.name {
			case "bad If-Match":
				h["If-Match"] = `W/"abc"`
			case "bad CallerOrigin":
				h[crm.HeaderCallerOrigin] = "Offline; queued=tomorrow"
			case "bad generation":
				h[crm.HeaderPrimaryGeneration] = "one"
			}
			st, _, b := raw(t, srv, a.Name, a.Password, c.method, c.path, h, c.body)
			if st != 400 && !(c.code == "unknown_entity" && st == 404) {
				t.Errorf("%s %s = %d %s, want 400", c.method, c.path, st, b)
			}
			if got := errCode(t, b); got != c.code {
				t.Errorf("code = %q (%s), want %q", got, b, c.code)
			}
		})
	}
	// A quote inside a string literal is data, not SQL.
	recs, err := a.Client.QueryAll(ctx, "contact", crmclient.Query{Filter: "lastname eq 'x'' OR 1=1 --'"})
	if err != nil || len(recs) != 0 {
		t.Errorf("escaped quote query = %d records, %v; want none", len(recs), err)
	}
	// The data is intact.
	got, err := a.Client.Get(ctx, "contact", keep.ID)
	if err != nil || got.Version != keep.Version || got.Attrs["lastname"] != "Keep" {
		t.Errorf("record changed by bad input: %+v, %v", got, err)
	}
	all, err := srv.Admin.Client.QueryAll(ctx, "contact", crmclient.Query{})
	if err != nil || len(all) != 1 {
		t.Errorf("contacts after bad input = %d, %v; want 1", len(all), err)
	}
}

// TestLogs_NoSecrets greps the server's log for passwords and tokens.
func TestLogs_NoSecrets(t *testing.T) {
	srv := crmtest.Start(t, nil)
	ctx := context.Background()
	tok, _, err := srv.Alice.Client.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	srv.Client(t, "", "").WithToken(tok).WhoAmI(ctx)
	srv.Client(t, "alice", "wrong-Password-123").WhoAmI(ctx)
	srv.Client(t, "mallory", "mallory-Password-456").WhoAmI(ctx)
	srv.Client(t, "", "").WithToken("pbt_not-a-real-token-789").WhoAmI(ctx)
	srv.Bob.Client.Create(ctx, crm.Record{Entity: "contact", Attrs: map[string]any{"lastname": "x"}}, nil)
	srv.AddUser(t, "dave", "dave-Password-000", crmserver.RoleSalesperson)
	if err := srv.Store.SetPassword(ctx, "dave", "dave-Password-111"); err != nil {
		t.Fatal(err)
	}
	if err := srv.Store.DisableUser(ctx, "dave", true); err != nil {
		t.Fatal(err)
	}
	srv.Client(t, "dave", "dave-Password-111").WhoAmI(ctx)
	logs := srv.Logs.String()
	for _, line := range []string{"crmserver: request", "crmserver: login failed", "crmstore: password changed", "crmstore: user state changed"} {
		if !strings.Contains(logs, line) {
			t.Fatalf("no %q log lines: %q", line, logs)
		}
	}
	for _, s := range []string{crmtest.AlicePassword, crmtest.BobPassword, crmtest.AdminPassword, tok, tok[4:],
		"wrong-Password-123", "mallory-Password-456", "not-a-real-token-789", "dave-Password-000", "dave-Password-111", "Basic ", "Bearer "} {
		if strings.Contains(logs, s) {
			t.Errorf("log contains secret %q", s)
		}
	}
}
