package davserver

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-ical"
	"github.com/emersion/go-vcard"
	"github.com/emersion/go-webdav"
	"github.com/emersion/go-webdav/caldav"
	"github.com/emersion/go-webdav/carddav"
	"golang.org/x/crypto/bcrypt"
)

func TestServer_GoWebdavClients(t *testing.T) {
	env := newTestEnv(t)
	ctx := context.Background()
	hc := webdav.HTTPClientWithBasicAuth(&http.Client{}, "alice", alicePW)

	t.Run("carddav", func(t *testing.T) {
		cl, err := carddav.NewClient(hc, env.http.URL)
		mustNoErr(t, err)
		mustNoErr(t, cl.HasSupport(ctx))
		princ, err := cl.FindCurrentUserPrincipal(ctx)
		mustNoErr(t, err)
		if princ != "/alice/" {
			t.Fatalf("principal = %q, want /alice/", princ)
		}
		home, err := cl.FindAddressBookHomeSet(ctx, princ)
		mustNoErr(t, err)
		if home != "/alice/contacts/" {
			t.Fatalf("home set = %q", home)
		}
		abs, err := cl.FindAddressBooks(ctx, home)
		mustNoErr(t, err)
		if len(abs) != 1 || abs[0].Path != "/alice/contacts/crm/" || abs[0].Name != "CRM contacts" {
			t.Fatalf("address books = %+v", abs)
		}
		card := vcard.Card{}
		card.SetValue(vcard.FieldVersion, "3.0")
		card.SetValue(vcard.FieldUID, "c1")
		card.SetValue(vcard.FieldFormattedName, "Ada Lovelace")
		put, err := cl.PutAddressObject(ctx, "/alice/contacts/crm/c1.vcf", card)
		mustNoErr(t, err)
		if put.ETag == "" {
			t.Fatal("PUT returned no ETag")
		}
		got, err := cl.GetAddressObject(ctx, "/alice/contacts/crm/c1.vcf")
		mustNoErr(t, err)
		if got.ETag != put.ETag || got.Card.Value(vcard.FieldFormattedName) != "Ada Lovelace" {
			t.Fatalf("GET = etag %q fn %q, want %q Ada Lovelace", got.ETag, got.Card.Value(vcard.FieldFormattedName), put.ETag)
		}
		q, err := cl.QueryAddressBook(ctx, "/alice/contacts/crm/", &carddav.AddressBookQuery{
			DataRequest: carddav.AddressDataRequest{AllProp: true},
			PropFilters: []carddav.PropFilter{{Name: vcard.FieldFormattedName, TextMatches: []carddav.TextMatch{{Text: "Lovelace"}}}},
		})
		mustNoErr(t, err)
		if len(q) != 1 || q[0].Path != "/alice/contacts/crm/c1.vcf" {
			t.Fatalf("query = %+v", q)
		}
		mg, err := cl.MultiGetAddressBook(ctx, "/alice/contacts/crm/", &carddav.AddressBookMultiGet{
			Paths: []string{"/alice/contacts/crm/c1.vcf"}, DataRequest: carddav.AddressDataRequest{AllProp: true},
		})
		mustNoErr(t, err)
		if len(mg) != 1 || mg[0].ETag != put.ETag || mg[0].Card.Value(vcard.FieldUID) != "c1" {
			t.Fatalf("multiget = %+v", mg)
		}
		sync, err := cl.SyncCollection(ctx, "/alice/contacts/crm/", &carddav.SyncQuery{DataRequest: carddav.AddressDataRequest{AllProp: true}})
		mustNoErr(t, err)
		if !strings.HasPrefix(sync.SyncToken, syncTokenPrefix) || len(sync.Updated) != 1 {
			t.Fatalf("sync = %+v", sync)
		}
	})

	t.Run("caldav", func(t *testing.T) {
		cl, err := caldav.NewClient(hc, env.http.URL)
		mustNoErr(t, err)
		home, err := cl.FindCalendarHomeSet(ctx, "/alice/")
		mustNoErr(t, err)
		cals, err := cl.FindCalendars(ctx, home)
		mustNoErr(t, err)
		comps := map[string][]string{}
		for _, c := range cals {
			comps[c.Path] = c.SupportedComponentSet
		}
		if !slices.Equal(comps["/alice/calendars/calendar/"], []string{"VEVENT"}) || !slices.Equal(comps["/alice/calendars/tasks/"], []string{"VTODO"}) {
			t.Fatalf("calendars = %+v", cals)
		}
		cal, err := ical.NewDecoder(strings.NewReader(eventText("e1", "Kick-off"))).Decode()
		mustNoErr(t, err)
		put, err := cl.PutCalendarObject(ctx, "/alice/calendars/calendar/e1.ics", cal)
		mustNoErr(t, err)
		got, err := cl.GetCalendarObject(ctx, "/alice/calendars/calendar/e1.ics")
		mustNoErr(t, err)
		if got.ETag != put.ETag {
			t.Fatalf("GET etag %q, want %q", got.ETag, put.ETag)
		}
		objs, err := cl.QueryCalendar(ctx, "/alice/calendars/calendar/", &caldav.CalendarQuery{
			CompRequest: caldav.CalendarCompRequest{Name: "VCALENDAR", AllProps: true, AllComps: true},
			CompFilter:  caldav.CompFilter{Name: "VCALENDAR", Comps: []caldav.CompFilter{{Name: "VEVENT"}}},
		})
		mustNoErr(t, err)
		if len(objs) != 1 || objs[0].Data.Children[0].Props.Get(ical.PropSummary).Value != "Kick-off" {
			t.Fatalf("query = %+v", objs)
		}
		// A VEVENT is refused by the VTODO list.
		_, err = cl.PutCalendarObject(ctx, "/alice/calendars/tasks/e1.ics", cal)
		if err == nil || !strings.Contains(err.Error(), "403") {
			t.Fatalf("PUT VEVENT into a VTODO list: err = %v, want 403", err)
		}
	})
}

func TestServer_RawBytes(t *testing.T) {
	env := newTestEnv(t)
	// Unusual order, a folded line, a group, an X- property and LF+CRLF mix
	// that go-vcard would rewrite.
	raw := "BEGIN:VCARD\r\nVERSION:3.0\r\nN:Lovelace;Ada;;;\r\nUID:raw-1\r\nitem1.EMAIL;TYPE=INTERNET:ada@example.org\r\n" +
		"item1.X-ABLabel:work\r\nNOTE:a long note that is folded\r\n  over two lines\r\nFN:Ada Lovelace\r\nX-CUSTOM:kept\r\nEND:VCARD\r\n"
	r := env.putCard(t, "/alice/contacts/crm/raw-1.vcf", raw, nil)
	if r.code != http.StatusCreated {
		t.Fatalf("PUT = %d %s", r.code, r.body)
	}
	etag := r.header.Get("ETag")
	g := env.alice(t, http.MethodGet, "/alice/contacts/crm/raw-1.vcf", "", nil)
	if g.body != raw {
		t.Fatalf("GET body = %q, want %q", g.body, raw)
	}
	if g.header.Get("ETag") != etag || !strings.HasPrefix(g.header.Get("Content-Type"), "text/vcard") {
		t.Fatalf("GET headers = %v, want ETag %s", g.header, etag)
	}
	mg := parseMS(t, env.alice(t, "REPORT", "/alice/contacts/crm/",
		`<card:addressbook-multiget xmlns:d="DAV:" xmlns:card="urn:ietf:params:xml:ns:carddav"><d:prop><d:getetag/><card:address-data/></d:prop>`+
			`<d:href>/alice/contacts/crm/raw-1.vcf</d:href><d:href>/alice/contacts/crm/missing.vcf</d:href></card:addressbook-multiget>`, nil))
	if len(mg.Responses) != 2 {
		t.Fatalf("multiget responses = %d, want 2", len(mg.Responses))
	}
	if got := mg.Responses[0].PropStats[0].Prop.AddressData; got != raw {
		t.Fatalf("multiget address-data = %q, want %q", got, raw)
	}
	if !strings.Contains(mg.Responses[1].Status, "404") {
		t.Fatalf("multiget of a missing href: status %q, want 404", mg.Responses[1].Status)
	}
	obj, err := env.srv.GetObject(context.Background(), "/alice/contacts/crm/raw-1.vcf")
	mustNoErr(t, err)
	if string(obj.Data) != raw || quoteETag(obj.ETag) != etag {
		t.Fatalf("GetObject = %q %q", obj.Data, obj.ETag)
	}
}

func TestServer_Conditional(t *testing.T) {
	env := newTestEnv(t)
	const p = "/alice/contacts/crm/k.vcf"
	first := env.putCard(t, p, vcardText("k", "One"), map[string]string{"If-None-Match": "*"})
	if first.code != http.StatusCreated {
		t.Fatalf("create = %d %s", first.code, first.body)
	}
	etag1 := first.header.Get("ETag")
	steps := []struct {
		name   string
		method string
		body   string
		header map[string]string
		want   int
	}{
		{"create again with If-None-Match *", http.MethodPut, vcardText("k", "Two"), map[string]string{"If-None-Match": "*"}, 412},
		{"update with stale If-Match", http.MethodPut, vcardText("k", "Two"), map[string]string{"If-Match": `"stale"`}, 412},
		{"GET with current If-None-Match", http.MethodGet, "", map[string]string{"If-None-Match": etag1}, 304},
		{"update with current If-Match", http.MethodPut, vcardText("k", "Two"), map[string]string{"If-Match": etag1}, 204},
		{"update again with the old If-Match", http.MethodPut, vcardText("k", "Three"), map[string]string{"If-Match": etag1}, 412},
		{"DELETE with stale If-Match", http.MethodDelete, "", map[string]string{"If-Match": etag1}, 412},
		{"DELETE with If-Match *", http.MethodDelete, "", map[string]string{"If-Match": "*"}, 204},
		{"DELETE again", http.MethodDelete, "", nil, 404},
		{"update of a deleted object with If-Match *", http.MethodPut, vcardText("k", "Four"), map[string]string{"If-Match": "*"}, 412},
		{"PUT with a UID used by another object", http.MethodPut, vcardText("other", "X"), nil, 201},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			h := map[string]string{"Content-Type": "text/vcard"}
			for k, v := range st.header {
				h[k] = v
			}
			r := env.alice(t, st.method, p, st.body, h)
			if r.code != st.want {
				t.Fatalf("%s %s = %d, want %d (%s)", st.method, p, r.code, st.want, r.body)
			}
		})
	}
	r := env.putCard(t, "/alice/contacts/crm/dup.vcf", vcardText("other", "Y"), nil)
	if r.code != http.StatusConflict || !strings.Contains(r.body, "no-uid-conflict") {
		t.Fatalf("UID conflict = %d %s, want 409 no-uid-conflict", r.code, r.body)
	}
	bad := env.putCard(t, "/alice/contacts/crm/bad.vcf", "not a vcard", nil)
	if bad.code != http.StatusForbidden && bad.code != http.StatusBadRequest {
		t.Fatalf("invalid vCard = %d, want 400/403", bad.code)
	}
}

const syncBody = `<d:sync-collection xmlns:d="DAV:"><d:sync-token>%s</d:sync-token><d:sync-level>1</d:sync-level>%s<d:prop><d:getetag/></d:prop></d:sync-collection>`

func (e *testEnv) sync(t *testing.T, coll, token, limit string) resp {
	t.Helper()
	body := strings.Replace(strings.Replace(syncBody, "%s", token, 1), "%s", limit, 1)
	return e.alice(t, "REPORT", coll, body, nil)
}

func TestServer_SyncCollection(t *testing.T) {
	env := newTestEnv(t)
	const coll = "/alice/contacts/crm/"
	for _, n := range []string{"a", "b", "c"} {
		if r := env.putCard(t, coll+n+".vcf", vcardText(n, n), nil); r.code != 201 {
			t.Fatalf("PUT %s = %d", n, r.code)
		}
	}
	initial := parseMS(t, env.sync(t, coll, "", ""))
	if len(initial.Responses) != 3 || initial.SyncToken != syncTokenPrefix+"3" {
		t.Fatalf("initial sync: %d responses, token %q; want 3, %s3", len(initial.Responses), initial.SyncToken, syncTokenPrefix)
	}
	for _, r := range initial.Responses {
		if r.PropStats[0].Prop.ETag == "" {
			t.Fatalf("initial sync: %s has no getetag", r.Href)
		}
	}
	noChange := parseMS(t, env.sync(t, coll, initial.SyncToken, ""))
	if len(noChange.Responses) != 0 || noChange.SyncToken != initial.SyncToken {
		t.Fatalf("no-change sync = %+v", noChange)
	}

	env.putCard(t, coll+"b.vcf", vcardText("b", "B changed"), nil)
	env.putCard(t, coll+"d.vcf", vcardText("d", "d"), nil)
	if r := env.alice(t, http.MethodDelete, coll+"a.vcf", "", nil); r.code != 204 {
		t.Fatalf("DELETE = %d", r.code)
	}
	inc := parseMS(t, env.sync(t, coll, initial.SyncToken, ""))
	got := map[string]string{}
	for _, r := range inc.Responses {
		if r.Status != "" {
			got[r.Href] = r.Status
		} else {
			got[r.Href] = "changed"
		}
	}
	want := map[string]string{coll + "b.vcf": "changed", coll + "d.vcf": "changed", coll + "a.vcf": "HTTP/1.1 404 Not Found"}
	if len(got) != len(want) {
		t.Fatalf("incremental sync = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("incremental sync = %v, want %v", got, want)
		}
	}

	t.Run("limit pages with 507", func(t *testing.T) {
		page := parseMS(t, env.sync(t, coll, initial.SyncToken, "<d:limit><d:nresults>2</d:nresults></d:limit>"))
		var members, truncated int
		for _, r := range page.Responses {
			if strings.Contains(r.Status, "507") {
				truncated++
			} else {
				members++
			}
		}
		if members != 2 || truncated != 1 {
			t.Fatalf("limited sync: %d members, %d 507; want 2, 1", members, truncated)
		}
		rest := parseMS(t, env.sync(t, coll, page.SyncToken, ""))
		if len(rest.Responses) != 1 || rest.SyncToken != inc.SyncToken {
			t.Fatalf("continuation: %d responses, token %q; want 1, %q", len(rest.Responses), rest.SyncToken, inc.SyncToken)
		}
	})

	for _, tc := range []struct{ name, token string }{
		{"foreign token", "http://example.org/sync/1"},
		{"future token", syncTokenPrefix + "999"},
		{"garbage", syncTokenPrefix + "x"},
	} {
		t.Run("invalid "+tc.name, func(t *testing.T) {
			r := env.sync(t, coll, tc.token, "")
			if r.code != http.StatusForbidden || !strings.Contains(r.body, "valid-sync-token") {
				t.Fatalf("sync with %q = %d %s, want 403 valid-sync-token", tc.token, r.code, r.body)
			}
		})
	}

	t.Run("purged tombstones invalidate old tokens", func(t *testing.T) {
		mustNoErr(t, env.srv.PurgeTombstones(context.Background(), coll))
		r := env.sync(t, coll, initial.SyncToken, "")
		if r.code != http.StatusForbidden || !strings.Contains(r.body, "valid-sync-token") {
			t.Fatalf("sync with a purged token = %d %s, want 403", r.code, r.body)
		}
		cur := parseMS(t, env.sync(t, coll, inc.SyncToken, ""))
		if len(cur.Responses) != 0 {
			t.Fatalf("sync with the current token after purge = %+v", cur)
		}
	})
}

func TestServer_PropfindCTag(t *testing.T) {
	env := newTestEnv(t)
	const body = `<d:propfind xmlns:d="DAV:" xmlns:cs="http://calendarserver.org/ns/"><d:prop><d:resourcetype/><d:displayname/><cs:getctag/><d:sync-token/><d:supported-report-set/><d:current-user-privilege-set/></d:prop></d:propfind>`
	state := func() (ctag, token string) {
		m := parseMS(t, env.alice(t, "PROPFIND", "/alice/calendars/calendar/", body, map[string]string{"Depth": "0"}))
		if len(m.Responses) != 1 {
			t.Fatalf("PROPFIND responses = %d", len(m.Responses))
		}
		var reports, rt, privs string
		for _, ps := range m.Responses[0].PropStats {
			if !strings.Contains(ps.Status, "200") {
				continue
			}
			if ps.Prop.CTag != "" {
				ctag = ps.Prop.CTag
			}
			if ps.Prop.SyncToken != "" {
				token = ps.Prop.SyncToken
			}
			if ps.Prop.Reports != nil {
				reports = ps.Prop.Reports.Inner
			}
			if ps.Prop.ResourceType != nil {
				rt = ps.Prop.ResourceType.Inner
			}
			if ps.Prop.Privileges != nil {
				privs = ps.Prop.Privileges.Inner
			}
		}
		if !strings.Contains(reports, "sync-collection") || !strings.Contains(rt, "calendar") {
			t.Fatalf("supported-report-set %q, resourcetype %q", reports, rt)
		}
		if !strings.Contains(privs, "write-content") {
			t.Fatalf("current-user-privilege-set %q lacks write-content", privs)
		}
		return ctag, token
	}
	ctag0, tok0 := state()
	if ctag0 == "" || tok0 == "" {
		t.Fatalf("getctag %q, sync-token %q: want both", ctag0, tok0)
	}
	r := env.alice(t, http.MethodPut, "/alice/calendars/calendar/e.ics", eventText("e", "x"), map[string]string{"Content-Type": "text/calendar"})
	if r.code != 201 {
		t.Fatalf("PUT = %d %s", r.code, r.body)
	}
	ctag1, tok1 := state()
	if ctag1 == ctag0 || tok1 == tok0 {
		t.Fatalf("getctag/sync-token did not change after a PUT: %q %q", ctag1, tok1)
	}

	// On a Depth 1 listing, members get 404 for the collection properties.
	m := parseMS(t, env.alice(t, "PROPFIND", "/alice/calendars/calendar/", body, map[string]string{"Depth": "1"}))
	if len(m.Responses) != 2 {
		t.Fatalf("Depth 1 responses = %d, want 2", len(m.Responses))
	}
}

func TestServer_Auth(t *testing.T) {
	env := newTestEnv(t)
	env.putCard(t, "/alice/contacts/crm/x.vcf", vcardText("x", "x"), nil)
	cases := []struct {
		name             string
		method, path     string
		user, pass       string
		want             int
		wantLocationPath string
	}{
		{"no credentials", "PROPFIND", "/alice/", "", "", 401, ""},
		{"wrong password", http.MethodGet, "/alice/contacts/crm/x.vcf", "alice", "nope", 401, ""},
		{"unknown user", http.MethodGet, "/alice/contacts/crm/x.vcf", "mallory", "x", 401, ""},
		{"bob reads alice's object", http.MethodGet, "/alice/contacts/crm/x.vcf", "bob", bobPW, 403, ""},
		{"bob lists alice's book", "PROPFIND", "/alice/contacts/crm/", "bob", bobPW, 403, ""},
		{"bob syncs alice's book", "REPORT", "/alice/contacts/crm/", "bob", bobPW, 403, ""},
		{"alice reads her object", http.MethodGet, "/alice/contacts/crm/x.vcf", "alice", alicePW, 200, ""},
		{"well-known carddav", "PROPFIND", "/.well-known/carddav", "bob", bobPW, 308, "/bob/"},
		{"well-known caldav", "PROPFIND", "/.well-known/caldav", "alice", alicePW, 308, "/alice/"},
		{"outside the layout", http.MethodGet, "/alice/other/x", "alice", alicePW, 404, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := env.do(t, req{method: tc.method, path: tc.path, user: tc.user, pass: tc.pass})
			if r.code != tc.want {
				t.Fatalf("%s %s as %q = %d, want %d", tc.method, tc.path, tc.user, r.code, tc.want)
			}
			if tc.want == 401 && !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Basic") {
				t.Fatalf("401 without a Basic challenge: %v", r.header)
			}
			if tc.wantLocationPath != "" && r.header.Get("Location") != tc.wantLocationPath {
				t.Fatalf("Location = %q, want %q", r.header.Get("Location"), tc.wantLocationPath)
			}
		})
	}
	// Bob's listing shows only his own collections.
	m := parseMS(t, env.do(t, req{method: "PROPFIND", path: "/bob/contacts/", user: "bob", pass: bobPW,
		header: map[string]string{"Depth": "1"}, body: `<d:propfind xmlns:d="DAV:"><d:prop><d:resourcetype/></d:prop></d:propfind>`}))
	for _, r := range m.Responses {
		if strings.Contains(r.Href, "alice") {
			t.Fatalf("bob's listing contains %s", r.Href)
		}
	}
}

func TestServer_Collections(t *testing.T) {
	env := newTestEnv(t)
	mk := `<c:mkcalendar xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav"><d:set><d:prop><d:displayname>Todo</d:displayname>` +
		`<c:supported-calendar-component-set><c:comp name="VTODO"/></c:supported-calendar-component-set></d:prop></d:set></c:mkcalendar>`
	if r := env.alice(t, "MKCALENDAR", "/alice/calendars/todo/", mk, nil); r.code != 201 {
		t.Fatalf("MKCALENDAR = %d %s", r.code, r.body)
	}
	if r := env.alice(t, "MKCALENDAR", "/alice/calendars/todo/", mk, nil); r.code != 405 {
		t.Fatalf("MKCALENDAR again = %d, want 405", r.code)
	}
	mkcol := `<d:mkcol xmlns:d="DAV:" xmlns:card="urn:ietf:params:xml:ns:carddav"><d:set><d:prop><d:resourcetype><d:collection/><card:addressbook/></d:resourcetype>` +
		`<d:displayname>Private</d:displayname></d:prop></d:set></d:mkcol>`
	if r := env.alice(t, "MKCOL", "/alice/contacts/private/", mkcol, nil); r.code != 201 {
		t.Fatalf("MKCOL = %d %s", r.code, r.body)
	}
	r := env.alice(t, http.MethodPut, "/alice/calendars/todo/t.ics", todoText("t", "Call back"), map[string]string{"Content-Type": "text/calendar"})
	if r.code != 201 {
		t.Fatalf("PUT VTODO = %d %s", r.code, r.body)
	}
	r = env.alice(t, http.MethodPut, "/alice/calendars/todo/e.ics", eventText("e", "x"), map[string]string{"Content-Type": "text/calendar"})
	if r.code != 403 || !strings.Contains(r.body, "supported-calendar-component") {
		t.Fatalf("PUT VEVENT into VTODO calendar = %d %s", r.code, r.body)
	}
	for _, n := range []string{"x", "y"} {
		if r := env.putCard(t, "/alice/contacts/private/"+n+".vcf", vcardText(n, n), nil); r.code != 201 {
			t.Fatalf("PUT = %d", r.code)
		}
	}
	oldToken := parseMS(t, env.sync(t, "/alice/contacts/private/", "", "")).SyncToken
	if r := env.alice(t, http.MethodDelete, "/alice/contacts/private/", "", nil); r.code != 204 {
		t.Fatalf("DELETE collection = %d", r.code)
	}
	if r := env.putCard(t, "/alice/contacts/private/x.vcf", vcardText("x", "x"), nil); r.code != 409 {
		t.Fatalf("PUT into a deleted collection = %d, want 409", r.code)
	}
	// A collection re-created at the same path refuses the old tokens.
	if r := env.alice(t, "MKCOL", "/alice/contacts/private/", mkcol, nil); r.code != 201 {
		t.Fatalf("MKCOL again = %d %s", r.code, r.body)
	}
	if r := env.sync(t, "/alice/contacts/private/", oldToken, ""); r.code != http.StatusForbidden {
		t.Fatalf("sync of a re-created collection with an old token = %d %s, want 403", r.code, r.body)
	}
	fresh := parseMS(t, env.sync(t, "/alice/contacts/private/", "", ""))
	if len(fresh.Responses) != 0 || fresh.SyncToken == oldToken {
		t.Fatalf("initial sync of the re-created collection = %+v", fresh)
	}
	if r := env.sync(t, "/alice/contacts/private/", fresh.SyncToken, ""); r.code != http.StatusMultiStatus {
		t.Fatalf("sync with the fresh token = %d %s", r.code, r.body)
	}
	if _, err := env.srv.CreateCalendar(context.Background(), "alice", "j", "J", "VJOURNAL"); !errors.Is(err, ErrInvalidName) {
		t.Fatalf("CreateCalendar(VJOURNAL) err = %v", err)
	}
	if _, err := env.srv.CreateAddressBook(context.Background(), "nobody", "x", ""); !errors.Is(err, ErrNotFound) {
		t.Fatalf("CreateAddressBook for an unknown user: err = %v", err)
	}
}

func TestServer_Persistence(t *testing.T) {
	env := newTestEnv(t)
	ctx := context.Background()
	const coll = "/alice/calendars/calendar/"
	data := eventText("p1", "Persisted")
	etag, err := env.srv.PutObject(ctx, coll+"p1.ics", []byte(data), "", "*")
	mustNoErr(t, err)
	tok, err := env.srv.SyncToken(ctx, coll)
	mustNoErr(t, err)
	mustNoErr(t, env.srv.DeleteObject(ctx, coll+"p1.ics", ""))
	_, err = env.srv.PutObject(ctx, coll+"p2.ics", []byte(eventText("p2", "Second")), "", "")
	mustNoErr(t, err)
	env.http.Close()
	mustNoErr(t, env.srv.Close())

	srv2, err := New(ctx, Options{DBPath: env.dbPath, Logger: quietLogger(), BcryptCost: bcrypt.MinCost})
	mustNoErr(t, err)
	t.Cleanup(func() { srv2.Close() })
	objs, err := srv2.ListObjects(ctx, coll)
	mustNoErr(t, err)
	if len(objs) != 1 || objs[0].Path != coll+"p2.ics" {
		t.Fatalf("objects after reopen = %+v", objs)
	}
	if _, err := srv2.GetObject(ctx, coll+"p1.ics"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted object after reopen: err = %v", err)
	}
	if etag == objs[0].ETag {
		t.Fatal("different content, same ETag")
	}
	// The user, the password and the old token survive: an incremental sync
	// over HTTP still reports the deletion.
	env2 := &testEnv{srv: srv2, dbPath: env.dbPath}
	env2.http = newHTTPTestServer(t, srv2)
	m := parseMS(t, env2.sync(t, coll, tok, ""))
	var deleted bool
	for _, r := range m.Responses {
		if r.Href == coll+"p1.ics" && strings.Contains(r.Status, "404") {
			deleted = true
		}
	}
	if !deleted || len(m.Responses) != 2 {
		t.Fatalf("sync after reopen = %+v", m)
	}
}

func TestServer_EscapedNames(t *testing.T) {
	env := newTestEnv(t)
	const escaped = "/alice/contacts/crm/a%20b@x%3Ay.vcf"
	if r := env.putCard(t, escaped, vcardText("ab", "A B"), nil); r.code != 201 {
		t.Fatalf("PUT %s = %d %s", escaped, r.code, r.body)
	}
	if _, err := env.srv.GetObject(context.Background(), "/alice/contacts/crm/a b@x:y.vcf"); err != nil {
		t.Fatalf("GetObject(unescaped) = %v", err)
	}
	m := parseMS(t, env.sync(t, "/alice/contacts/crm/", "", ""))
	if len(m.Responses) != 1 {
		t.Fatalf("sync = %+v", m)
	}
	href := m.Responses[0].Href
	if href != "/alice/contacts/crm/a%20b@x:y.vcf" && href != escaped {
		t.Fatalf("sync href = %q", href)
	}
	mg := parseMS(t, env.alice(t, "REPORT", "/alice/contacts/crm/",
		`<card:addressbook-multiget xmlns:d="DAV:" xmlns:card="urn:ietf:params:xml:ns:carddav"><d:prop><d:getetag/></d:prop>`+
			`<d:href>`+href+`</d:href></card:addressbook-multiget>`, nil))
	if len(mg.Responses) != 1 || mg.Responses[0].Status != "" || mg.Responses[0].PropStats[0].Prop.ETag == "" {
		t.Fatalf("multiget of %q = %+v", href, mg)
	}
	if g := env.alice(t, http.MethodGet, href, "", nil); g.code != 200 {
		t.Fatalf("GET %s = %d", href, g.code)
	}
}

// TestServer_SyncFromEmptyCollectionReportsRemovals: the token an empty
// collection hands out ("sync/0") is a real token, not an initial sync: an
// object made and removed since is reported as removed, or a client that
// lost the reply of its own PUT never hears that the user deleted it.
func TestServer_SyncFromEmptyCollectionReportsRemovals(t *testing.T) {
	env := newTestEnv(t)
	const coll = "/alice/contacts/crm/"
	empty := parseMS(t, env.sync(t, coll, "", ""))
	if len(empty.Responses) != 0 || empty.SyncToken != syncTokenPrefix+"0" {
		t.Fatalf("empty collection: %d responses, token %q; want 0, %s0", len(empty.Responses), empty.SyncToken, syncTokenPrefix)
	}
	if r := env.putCard(t, coll+"a.vcf", vcardText("a", "a"), nil); r.code != 201 {
		t.Fatalf("PUT = %d", r.code)
	}
	if r := env.alice(t, http.MethodDelete, coll+"a.vcf", "", nil); r.code != 204 {
		t.Fatalf("DELETE = %d", r.code)
	}
	inc := parseMS(t, env.sync(t, coll, empty.SyncToken, ""))
	if len(inc.Responses) != 1 || inc.Responses[0].Href != coll+"a.vcf" || inc.Responses[0].Status != "HTTP/1.1 404 Not Found" {
		t.Fatalf("sync from %s = %+v, want a.vcf removed", empty.SyncToken, inc.Responses)
	}
}
