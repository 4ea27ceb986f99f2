package davext_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/pimbridge/pimbridge/pim"
	"github.com/pimbridge/pimbridge/pim/davext"
	"github.com/pimbridge/pimbridge/pim/pimtest"
)

func newClient(t testing.TB, url string, opts *davext.Options) *davext.Client {
	t.Helper()
	if opts == nil {
		opts = &davext.Options{}
	}
	if opts.RetryDelay == 0 {
		opts.RetryDelay = time.Millisecond
	}
	c, err := davext.New(url, opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCollection_FaultServer(t *testing.T) {
	tests := []struct {
		name  string
		setup func(*pimtest.FaultServer)
		sync  bool
	}{
		{"strong-etags-sync-token", func(*pimtest.FaultServer) {}, true},
		{"weak-etags-sync-token", func(s *pimtest.FaultServer) { s.ETagForm = pimtest.WeakETag }, true},
		{"unquoted-etags-sync-token", func(s *pimtest.FaultServer) { s.ETagForm = pimtest.UnquotedETag }, true},
		{"weak-etags-ctag-only", func(s *pimtest.FaultServer) { s.ETagForm = pimtest.WeakETag; s.NoSyncToken = true }, false},
		{"unquoted-etags-listing-only", func(s *pimtest.FaultServer) {
			s.ETagForm = pimtest.UnquotedETag
			s.NoSyncToken, s.NoCTag = true, true
		}, false},
		{"paged-sync-no-put-etag-no-query", func(s *pimtest.FaultServer) { s.PageSize = 2; s.NoPutETag = true; s.NoQuery = true }, true},
		{"listing-only-no-query", func(s *pimtest.FaultServer) { s.NoSyncToken, s.NoCTag, s.NoQuery = true, true, true }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := pimtest.NewFaultServer(t)
			tt.setup(s)
			c := newClient(t, s.URL, nil)
			var n atomic.Int32
			pimtest.Run(t, pimtest.Options{Kind: pimtest.Contacts, SyncToken: tt.sync}, func(t *testing.T) pimtest.Collection {
				href := fmt.Sprintf("/alice/book%d/", n.Add(1))
				s.AddCollection(href)
				return davext.NewCollection(c, href, davext.AddressBook)
			})
		})
	}
}

func TestCollection_ETagsVerbatim(t *testing.T) {
	for _, form := range []pimtest.ETagForm{pimtest.StrongETag, pimtest.WeakETag, pimtest.UnquotedETag} {
		t.Run(fmt.Sprint(form), func(t *testing.T) {
			ctx := t.Context()
			s := pimtest.NewFaultServer(t)
			s.ETagForm = form
			s.AddCollection("/b/")
			col := davext.NewCollection(newClient(t, s.URL, nil), "/b/", davext.AddressBook)
			ref, err := col.Create(ctx, "a.vcf", pimtest.Sample(pimtest.Contacts, "a", "A"))
			if err != nil {
				t.Fatal(err)
			}
			if want := s.ETag("/b/a.vcf"); ref.ETag != want {
				t.Errorf("Create etag = %q, want %q verbatim", ref.ETag, want)
			}
			changed, _, _, err := col.Changes(ctx, "")
			if err != nil || len(changed) != 1 || changed[0].ETag != ref.ETag {
				t.Fatalf("Changes = %v, %v; want one object with etag %q", changed, err, ref.ETag)
			}
			if _, err := col.Update(ctx, ref.Href, ref.ETag, pimtest.Sample(pimtest.Contacts, "a", "B")); err != nil {
				t.Errorf("Update(If-Match %q) = %v", ref.ETag, err)
			}
		})
	}
}

func TestChanges_RequestCounts(t *testing.T) {
	tests := []struct {
		name      string
		setup     func(*pimtest.FaultServer)
		propfinds int
		reports   int
	}{
		{"sync-token: one REPORT", func(*pimtest.FaultServer) {}, 0, 1},
		{"ctag unchanged: one PROPFIND", func(s *pimtest.FaultServer) { s.NoSyncToken = true }, 1, 0},
		{"no ctag: one listing", func(s *pimtest.FaultServer) { s.NoSyncToken, s.NoCTag = true, true }, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			s := pimtest.NewFaultServer(t)
			tt.setup(s)
			s.AddCollection("/b/")
			col := davext.NewCollection(newClient(t, s.URL, nil), "/b/", davext.AddressBook)
			for i := range 3 {
				if _, err := col.Create(ctx, fmt.Sprintf("%d.vcf", i), pimtest.Sample(pimtest.Contacts, fmt.Sprint(i), "x")); err != nil {
					t.Fatal(err)
				}
			}
			_, _, cur, err := col.Changes(ctx, "")
			if err != nil {
				t.Fatal(err)
			}
			pf, rep := s.Requests("PROPFIND"), s.Requests("REPORT")
			changed, deleted, _, err := col.Changes(ctx, cur)
			if err != nil || len(changed)+len(deleted) != 0 {
				t.Fatalf("Changes(no change) = %d, %d, %v", len(changed), len(deleted), err)
			}
			if gotPF, gotRep := s.Requests("PROPFIND")-pf, s.Requests("REPORT")-rep; gotPF != tt.propfinds || gotRep != tt.reports {
				t.Errorf("no-change Changes sent %d PROPFIND, %d REPORT; want %d, %d", gotPF, gotRep, tt.propfinds, tt.reports)
			}
		})
	}
}

func TestChanges_TokenExpired(t *testing.T) {
	ctx := t.Context()
	s := pimtest.NewFaultServer(t)
	s.AddCollection("/b/")
	col := davext.NewCollection(newClient(t, s.URL, nil), "/b/", davext.AddressBook)
	for _, n := range []string{"a", "b"} {
		if _, err := col.Create(ctx, n+".vcf", pimtest.Sample(pimtest.Contacts, n, n)); err != nil {
			t.Fatal(err)
		}
	}
	_, _, cur, err := col.Changes(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	s.Remove("/b/a.vcf")
	s.ExpireTokens()
	if _, _, _, err := col.Changes(ctx, cur); !errors.Is(err, pim.ErrTokenExpired) {
		t.Fatalf("Changes(expired) = %v, want ErrTokenExpired", err)
	}
	changed, deleted, _, err := col.Changes(ctx, "")
	if err != nil || len(changed) != 1 || changed[0].Href != "/b/b.vcf" || len(deleted) != 0 {
		t.Errorf("Changes(\"\") after expiry = %v, %q, %v; want just /b/b.vcf", changed, deleted, err)
	}
}

func TestSyncCollection_Paging(t *testing.T) {
	ctx := t.Context()
	s := pimtest.NewFaultServer(t)
	s.PageSize = 2
	s.AddCollection("/b/")
	for i := range 5 {
		s.Store(fmt.Sprintf("/b/%d.vcf", i), pimtest.Sample(pimtest.Contacts, fmt.Sprint(i), "x"))
	}
	c := newClient(t, s.URL, nil)
	changes, tok, more, err := c.SyncCollection(ctx, "/b/", "", 2)
	if err != nil || len(changes) != 2 || !more || tok == "" {
		t.Fatalf("SyncCollection(page 1) = %d, %q, %v, %v; want 2 changes, a token, more", len(changes), tok, more, err)
	}
	s.NoQuery = true // make the full listing page through sync-collection
	col := davext.NewCollection(c, "/b/", davext.AddressBook)
	changed, _, cur, err := col.Changes(ctx, "")
	if err != nil || len(changed) != 5 {
		t.Fatalf("Changes(\"\") over pages = %d, %v; want 5", len(changed), err)
	}
	s.Remove("/b/0.vcf")
	s.Store("/b/1.vcf", pimtest.Sample(pimtest.Contacts, "1", "y"))
	s.Store("/b/9.vcf", pimtest.Sample(pimtest.Contacts, "9", "z"))
	changed, deleted, _, err := col.Changes(ctx, cur)
	if err != nil || len(changed) != 2 || len(deleted) != 1 || deleted[0] != "/b/0.vcf" {
		t.Errorf("Changes(delta over pages) = %v, %q, %v; want 2 changed, /b/0.vcf deleted", changed, deleted, err)
	}
}

func TestMultiGet_MissingHref(t *testing.T) {
	s := pimtest.NewFaultServer(t)
	s.AddCollection("/b/")
	s.Store("/b/a.vcf", pimtest.Sample(pimtest.Contacts, "a", "A"))
	c := newClient(t, s.URL, nil)
	objs, missing, err := c.MultiGet(t.Context(), "/b/", false, []string{"/b/a.vcf", "/b/gone.vcf"})
	if err != nil || len(objs) != 1 || objs[0].Href != "/b/a.vcf" || len(missing) != 1 || missing[0] != "/b/gone.vcf" {
		t.Errorf("MultiGet = %v, %q, %v; want a.vcf and missing gone.vcf", objs, missing, err)
	}
}

func TestRetry(t *testing.T) {
	tests := []struct {
		name       string
		n          int
		code       int
		retryAfter string
		opts       davext.Options
		wantErr    bool
		minWait    time.Duration
		requests   int
	}{
		{"500 twice then ok", 2, 500, "", davext.Options{}, false, 0, 3},
		{"503 honours Retry-After", 1, 503, "1", davext.Options{}, false, time.Second, 2},
		{"429 honours Retry-After", 2, 429, "1", davext.Options{}, false, 2 * time.Second, 3},
		{"429 Retry-After beyond cap fails at once", 1, 429, "120", davext.Options{MaxRetryDelay: time.Second}, true, 0, 1},
		{"retries bounded", 5, 500, "", davext.Options{MaxRetries: 2}, true, 0, 3},
		{"retries disabled", 1, 502, "", davext.Options{MaxRetries: -1}, true, 0, 1},
		{"400 not retried", 1, 400, "", davext.Options{}, true, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := pimtest.NewFaultServer(t)
			s.AddCollection("/b/")
			s.Store("/b/a.vcf", []byte("x"))
			opts := tt.opts
			c := newClient(t, s.URL, &opts)
			s.Fail(tt.n, "", tt.code, tt.retryAfter)
			before := s.Requests("")
			start := time.Now()
			_, err := c.Get(t.Context(), "/b/a.vcf")
			if (err != nil) != tt.wantErr {
				t.Fatalf("Get = %v, want error %v", err, tt.wantErr)
			}
			if el := time.Since(start); el < tt.minWait {
				t.Errorf("Get returned after %v, want >= %v (Retry-After)", el, tt.minWait)
			}
			if got := s.Requests("") - before; got != tt.requests {
				t.Errorf("requests = %d, want %d", got, tt.requests)
			}
			var se *pim.StatusError
			if tt.wantErr && (!errors.As(err, &se) || se.Code != tt.code) {
				t.Errorf("Get error = %v, want *pim.StatusError %d", err, tt.code)
			}
			if tt.retryAfter == "120" && se != nil && se.RetryAfter != 120*time.Second {
				t.Errorf("RetryAfter = %v, want 2m0s", se.RetryAfter)
			}
		})
	}
}

func TestPut_RetryOnWriteStatus(t *testing.T) {
	ctx := t.Context()
	s := pimtest.NewFaultServer(t)
	s.AddCollection("/b/")
	col := davext.NewCollection(newClient(t, s.URL, nil), "/b/", davext.AddressBook)
	s.Fail(1, "PUT", 429, "0")
	ref, err := col.Create(ctx, "a.vcf", pimtest.Sample(pimtest.Contacts, "a", "A"))
	if err != nil || ref.ETag != s.ETag("/b/a.vcf") {
		t.Fatalf("Create after a 429 = %+v, %v", ref, err)
	}
	s.Fail(1, "DELETE", 503, "")
	if err := col.Delete(ctx, ref.Href, ref.ETag); err != nil {
		t.Errorf("Delete after a 503 = %v", err)
	}
}

// Malformed objects from real clients come back as the server holds them:
// the connector never parses them.
func TestChanges_MalformedRaw(t *testing.T) {
	// testdata/malformed: the fixtures MANIFEST.tsv marks malformed.
	files, err := filepath.Glob("testdata/malformed/*.[iv]c[sf]")
	if err != nil || len(files) < 10 {
		t.Fatalf("malformed fixtures: %d files, %v", len(files), err)
	}
	samples := map[string][]byte{
		"no-end.vcf":      []byte("BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Half\r\nX-BROKEN;A=b\r\n"),
		"lf-only.vcf":     []byte("BEGIN:VCARD\nFN:lf\nEND:VCARD\n"),
		"binary-ish.vcf":  []byte("BEGIN:VCARD\r\nNOTE:\x01\x02 <&>\r\nEND:VCARD\r\n"),
		"latin1.vcf":      []byte("BEGIN:VCARD\r\nFN:M\xfcller\r\nEND:VCARD\r\n"),
		"not-a-card.vcf":  []byte("hello, world"),
		"x-colonless.ics": []byte("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nX-FOO;A=b\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"),
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		samples[filepath.Base(f)] = b
	}
	ctx := t.Context()
	s := pimtest.NewFaultServer(t)
	s.AddCollection("/b/")
	for name, b := range samples {
		s.Store("/b/"+name, b)
	}
	col := davext.NewCollection(newClient(t, s.URL, nil), "/b/", davext.AddressBook)
	changed, _, _, err := col.Changes(ctx, "")
	if err != nil {
		t.Fatalf("Changes = %v", err)
	}
	if len(changed) != len(samples) {
		t.Errorf("Changes returned %d objects, want %d", len(changed), len(samples))
	}
	for _, o := range changed {
		name := strings.TrimPrefix(o.Href, "/b/")
		want := samples[name]
		// XML carries valid UTF-8 only and has no bare CR; anything else
		// is exact only through GET.
		if utf8.Valid(want) && !bytes.ContainsAny(want, "\x01\x02") && (bytes.Contains(want, []byte("\r\n")) || !bytes.Contains(want, []byte("\n"))) {
			if !bytes.Equal(o.Data, want) {
				t.Errorf("Changes data of %s = %q, want %q", name, o.Data, want)
			}
		}
		got, err := col.Get(ctx, o.Href)
		if err != nil || !bytes.Equal(got.Data, want) {
			t.Errorf("Get(%s) = %q, %v; want %q", name, got.Data, err, want)
		}
	}
}

func TestMkcol(t *testing.T) {
	s := pimtest.NewFaultServer(t)
	c := newClient(t, s.URL, nil)
	if err := c.MkAddressBook(t.Context(), "/alice/book/", "Book"); err != nil {
		t.Fatalf("MkAddressBook = %v", err)
	}
	if err := c.MkCalendar(t.Context(), "/alice/tasks/", "Tasks", "VTODO"); err != nil {
		t.Fatalf("MkCalendar = %v", err)
	}
	if err := c.MkCalendar(t.Context(), "/alice/tasks/", "Tasks", "VTODO"); err == nil {
		t.Errorf("MkCalendar(existing) = nil, want an error")
	}
}

// A server that fails the whole multiget on one object it cannot serve
// (Xandikos answers 500 to a multiget holding an object it cannot parse):
// (and the query): Changes reads the objects one at a time, so the rest of the collection
// syncs and the bad object comes back by name with no data.
func TestChanges_MultigetFailureReadsOneByOne(t *testing.T) {
	s := pimtest.NewFaultServer(t)
	s.AddCollection("/b/")
	s.Store("/b/good.vcf", []byte("BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Good\r\nEND:VCARD\r\n"))
	s.Store("/b/bad.vcf", []byte("BEGIN:VCARD\r\nFN:Bad\r\nEND:VCARD\r\n"))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		if r.Method == "REPORT" && (bytes.Contains(body, []byte("multiget")) || bytes.Contains(body, []byte("-query"))) {
			http.Error(w, "cannot parse bad.vcf", http.StatusInternalServerError)
			return
		}
		if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/bad.vcf") {
			http.Error(w, "cannot parse bad.vcf", http.StatusInternalServerError)
			return
		}
		s.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	col := davext.NewCollection(newClient(t, srv.URL, nil), "/b/", davext.AddressBook)
	ctx := t.Context()
	for _, cursor := range []string{"", "delta"} {
		from := ""
		if cursor == "delta" {
			_, _, c, err := col.Changes(ctx, "")
			if err != nil {
				t.Fatal(err)
			}
			from = c
			s.Store("/b/good.vcf", []byte("BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Good 2\r\nEND:VCARD\r\n"))
			s.Store("/b/bad.vcf", []byte("BEGIN:VCARD\r\nFN:Bad 2\r\nEND:VCARD\r\n"))
			s.Store("/b/gone.vcf", []byte("BEGIN:VCARD\r\nFN:Gone\r\nEND:VCARD\r\n"))
			s.Remove("/b/gone.vcf")
		}
		changed, _, next, err := col.Changes(ctx, from)
		if err != nil {
			t.Fatalf("%s: Changes = %v, want the objects read one at a time", cursor, err)
		}
		if !strings.HasPrefix(next, "s:") {
			t.Errorf("%s: cursor %q, want a sync-token cursor", cursor, next)
		}
		got := map[string]string{}
		for _, o := range changed {
			got[o.Href] = string(o.Data)
		}
		if !strings.Contains(got["/b/good.vcf"], "FN:Good") {
			t.Errorf("%s: good.vcf = %q, want its data", cursor, got["/b/good.vcf"])
		}
		if d, ok := got["/b/bad.vcf"]; !ok || d != "" {
			t.Errorf("%s: bad.vcf listed %v with data %q, want listed with none", cursor, ok, d)
		}
	}
	missing, err := col.Missing(ctx, []string{"/b/good.vcf", "/b/nothere.vcf"})
	if err == nil {
		t.Errorf("Missing through a failing multiget = %v, nil error", missing)
	}
	direct := davext.NewCollection(newClient(t, s.URL, nil), "/b/", davext.AddressBook)
	missing, err = direct.Missing(ctx, []string{"/b/good.vcf", "/b/nothere.vcf"})
	if err != nil || len(missing) != 1 || missing[0] != "/b/nothere.vcf" {
		t.Errorf("Missing = %v, %v; want [/b/nothere.vcf]", missing, err)
	}
}
