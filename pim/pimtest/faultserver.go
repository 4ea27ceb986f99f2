package pimtest

import (
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// ETagForm is how a FaultServer writes ETags.
type ETagForm int

const (
	StrongETag   ETagForm = iota // "v1"
	WeakETag                     // W/"v1"
	UnquotedETag                 // v1 (mailbox.org style)
)

// FaultServer is a small raw WebDAV server in httptest for tests that need
// what go-webdav's handlers lack: objects kept byte for byte (malformed
// ones included), RFC 6578 sync-tokens with expiry and paging (507),
// getctag, weak or unquoted ETags, PUT replies without ETag, and injected
// failures. Collections are any path ending in "/" made with MKCOL,
// MKCALENDAR or AddCollection. Configure the exported fields before use.
type FaultServer struct {
	URL string

	// ETagForm selects the ETag syntax.
	ETagForm ETagForm
	// NoSyncToken hides sync-token and refuses sync-collection.
	NoSyncToken bool
	// NoCTag hides getctag.
	NoCTag bool
	// PageSize > 0 truncates sync-collection replies to that many entries
	// with a 507 for the collection (RFC 6578 section 3.6).
	PageSize int
	// NoQuery refuses addressbook-query and calendar-query (501).
	NoQuery bool
	// NoPutETag leaves the ETag header off PUT replies.
	NoPutETag bool

	mu       sync.Mutex
	colls    map[string]bool
	items    map[string]*fsItem
	log      []fsChange // change log; token "t<N>" = len(log) at the time
	minSeq   int        // tokens below this are expired
	version  int
	faults   []fsFault
	requests map[string]int
}

type fsItem struct {
	data []byte
	ver  int
}

type fsChange struct {
	href    string
	deleted bool
}

type fsFault struct {
	method     string // "" matches any
	code       int
	retryAfter string
}

// NewFaultServer starts a FaultServer, stopped in t.Cleanup.
func NewFaultServer(t testing.TB) *FaultServer {
	s := &FaultServer{colls: map[string]bool{}, items: map[string]*fsItem{}, requests: map[string]int{}}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

// AddCollection creates a collection at href (ending in "/").
func (s *FaultServer) AddCollection(href string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.colls[href] = true
}

// Store puts raw data at href behind the client's back (no validation).
func (s *FaultServer) Store(href string, data []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.storeLocked(href, data)
}

// Remove deletes href behind the client's back.
func (s *FaultServer) Remove(href string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.items[href]; ok {
		delete(s.items, href)
		s.log = append(s.log, fsChange{href: href, deleted: true})
	}
}

// ExpireTokens makes every sync-token issued so far invalid.
func (s *FaultServer) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.minSeq = len(s.log) + 1
}

// Fail makes the next n requests of method ("" for any) fail with code and
// the given Retry-After header (empty for none).
func (s *FaultServer) Fail(n int, method string, code int, retryAfter string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.faults = append(s.faults, fsFault{method: method, code: code, retryAfter: retryAfter})
	}
}

// Requests returns how many requests of method ("" for all) were served,
// failed ones included.
func (s *FaultServer) Requests(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if method == "" {
		n := 0
		for _, v := range s.requests {
			n += v
		}
		return n
	}
	return s.requests[method]
}

// ETag returns the current ETag of href as the server writes it.
func (s *FaultServer) ETag(href string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if it, ok := s.items[href]; ok {
		return s.etag(it)
	}
	return ""
}

func (s *FaultServer) storeLocked(href string, data []byte) {
	s.version++
	s.items[href] = &fsItem{data: append([]byte(nil), data...), ver: s.version}
	s.log = append(s.log, fsChange{href: href})
}

func (s *FaultServer) etag(it *fsItem) string {
	v := "v" + strconv.Itoa(it.ver)
	switch s.ETagForm {
	case WeakETag:
		return `W/"` + v + `"`
	case UnquotedETag:
		return v
	}
	return `"` + v + `"`
}

func (s *FaultServer) ctagLocked() string { return "c" + strconv.Itoa(len(s.log)) }

func (s *FaultServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests[r.Method]++
	for i, f := range s.faults {
		if f.method == "" || f.method == r.Method {
			s.faults = append(s.faults[:i], s.faults[i+1:]...)
			if f.retryAfter != "" {
				w.Header().Set("Retry-After", f.retryAfter)
			}
			http.Error(w, "injected failure", f.code)
			return
		}
	}
	body, _ := io.ReadAll(r.Body)
	p := r.URL.Path
	switch r.Method {
	case "MKCOL", "MKCALENDAR":
		if s.colls[p] {
			http.Error(w, "exists", http.StatusMethodNotAllowed)
			return
		}
		s.colls[p] = true
		w.WriteHeader(http.StatusCreated)
	case http.MethodGet:
		it, ok := s.items[p]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("ETag", s.etag(it))
		_, _ = w.Write(it.data)
	case http.MethodPut:
		it, exists := s.items[p]
		if r.Header.Get("If-None-Match") == "*" && exists {
			http.Error(w, "exists", http.StatusPreconditionFailed)
			return
		}
		if im := r.Header.Get("If-Match"); im != "" && (!exists || (im != "*" && im != s.etag(it))) {
			http.Error(w, "etag mismatch", http.StatusPreconditionFailed)
			return
		}
		if !s.colls[p[:strings.LastIndex(p, "/")+1]] {
			http.Error(w, "no collection", http.StatusConflict)
			return
		}
		s.storeLocked(p, body)
		if !s.NoPutETag {
			w.Header().Set("ETag", s.etag(s.items[p]))
		}
		if exists {
			w.WriteHeader(http.StatusNoContent)
		} else {
			w.WriteHeader(http.StatusCreated)
		}
	case http.MethodDelete:
		it, ok := s.items[p]
		if !ok {
			http.NotFound(w, r)
			return
		}
		if im := r.Header.Get("If-Match"); im != "" && im != "*" && im != s.etag(it) {
			http.Error(w, "etag mismatch", http.StatusPreconditionFailed)
			return
		}
		delete(s.items, p)
		s.log = append(s.log, fsChange{href: p, deleted: true})
		w.WriteHeader(http.StatusNoContent)
	case "PROPFIND":
		s.propfind(w, r, p)
	case "REPORT":
		s.report(w, p, body)
	default:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

func (s *FaultServer) propfind(w http.ResponseWriter, r *http.Request, p string) {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0"?><D:multistatus xmlns:D="DAV:" xmlns:CS="http://calendarserver.org/ns/">`)
	switch {
	case s.colls[p]:
		b.WriteString(`<D:response><D:href>` + p + `</D:href><D:propstat><D:prop><D:resourcetype><D:collection/></D:resourcetype>`)
		if !s.NoCTag {
			b.WriteString(`<CS:getctag>` + s.ctagLocked() + `</CS:getctag>`)
		}
		if !s.NoSyncToken {
			b.WriteString(`<D:sync-token>t` + strconv.Itoa(len(s.log)) + `</D:sync-token>`)
		}
		b.WriteString(`</D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat>`)
		if s.NoSyncToken || s.NoCTag {
			b.WriteString(`<D:propstat><D:prop><CS:getctag/><D:sync-token/></D:prop><D:status>HTTP/1.1 404 Not Found</D:status></D:propstat>`)
		}
		b.WriteString(`</D:response>`)
		if r.Header.Get("Depth") == "1" {
			for _, h := range s.hrefsLocked(p) {
				b.WriteString(`<D:response><D:href>` + h + `</D:href><D:propstat><D:prop><D:resourcetype/><D:getetag>` +
					xmlEscape(s.etag(s.items[h])) + `</D:getetag></D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>`)
			}
		}
	case s.items[p] != nil:
		b.WriteString(`<D:response><D:href>` + p + `</D:href><D:propstat><D:prop><D:getetag>` + xmlEscape(s.etag(s.items[p])) +
			`</D:getetag></D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>`)
	default:
		http.NotFound(w, r)
		return
	}
	b.WriteString(`</D:multistatus>`)
	w.Header().Set("Content-Type", "application/xml; charset=utf-8")
	w.WriteHeader(http.StatusMultiStatus)
	_, _ = io.WriteString(w, b.String())
}

func (s *FaultServer) hrefsLocked(coll string) []string {
	var hs []string
	for h := range s.items {
		if strings.HasPrefix(h, coll) && !strings.Contains(h[len(coll):], "/") {
			hs = append(hs, h)
		}
	}
	sort.Strings(hs)
	return hs
}

type fsReport struct {
	XMLName   xml.Name
	Hrefs     []string `xml:"DAV: href"`
	SyncToken *string  `xml:"DAV: sync-token"`
	NResults  int      `xml:"DAV: limit>nresults"`
}

func (s *FaultServer) report(w http.ResponseWriter, coll string, body []byte) {
	var rep fsReport
	if err := xml.Unmarshal(body, &rep); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var b strings.Builder
	b.WriteString(`<?xml version="1.0"?><D:multistatus xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:carddav" xmlns:I="urn:ietf:params:xml:ns:caldav">`)
	switch rep.XMLName.Local {
	case "addressbook-multiget", "calendar-multiget", "addressbook-query", "calendar-query":
		tag := "C:address-data"
		if strings.HasPrefix(rep.XMLName.Local, "calendar") {
			tag = "I:calendar-data"
		}
		if strings.HasSuffix(rep.XMLName.Local, "-query") {
			if s.NoQuery {
				http.Error(w, "query not supported", http.StatusNotImplemented)
				return
			}
			rep.Hrefs = s.hrefsLocked(coll)
		}
		for _, h := range rep.Hrefs {
			it, ok := s.items[h]
			if !ok {
				b.WriteString(`<D:response><D:href>` + h + `</D:href><D:status>HTTP/1.1 404 Not Found</D:status></D:response>`)
				continue
			}
			b.WriteString(`<D:response><D:href>` + h + `</D:href><D:propstat><D:prop><D:getetag>` + xmlEscape(s.etag(it)) +
				`</D:getetag><` + tag + `>` + xmlEscape(string(it.data)) + `</` + tag + `></D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>`)
		}
	case "sync-collection":
		if s.NoSyncToken {
			http.Error(w, "unsupported report", http.StatusForbidden)
			return
		}
		from := 0
		if tok := strings.TrimSpace(*rep.SyncToken); tok != "" {
			n, err := strconv.Atoi(strings.TrimPrefix(tok, "t"))
			if err != nil || !strings.HasPrefix(tok, "t") || n < s.minSeq || n > len(s.log) {
				w.Header().Set("Content-Type", "application/xml")
				w.WriteHeader(http.StatusForbidden)
				_, _ = io.WriteString(w, `<?xml version="1.0"?><D:error xmlns:D="DAV:"><D:valid-sync-token/></D:error>`)
				return
			}
			from = n
		}
		// latest state per href changed since from, in log order
		last := map[string]int{}
		for i := from; i < len(s.log); i++ {
			if h := s.log[i].href; strings.HasPrefix(h, coll) && !strings.Contains(h[len(coll):], "/") {
				last[h] = i
			}
		}
		var idx []int
		for h, i := range last {
			if from == 0 && s.items[h] == nil {
				continue
			}
			idx = append(idx, i)
		}
		sort.Ints(idx)
		end := len(s.log)
		if s.PageSize > 0 && len(idx) > s.PageSize {
			idx = idx[:s.PageSize]
			end = idx[len(idx)-1] + 1
			b.WriteString(`<D:response><D:href>` + coll + `</D:href><D:status>HTTP/1.1 507 Insufficient Storage</D:status></D:response>`)
		}
		for _, i := range idx {
			h := s.log[i].href
			if it, ok := s.items[h]; ok {
				b.WriteString(`<D:response><D:href>` + h + `</D:href><D:propstat><D:prop><D:getetag>` + xmlEscape(s.etag(it)) +
					`</D:getetag></D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>`)
			} else {
				b.WriteString(`<D:response><D:href>` + h + `</D:href><D:status>HTTP/1.1 404 Not Found</D:status></D:response>`)
			}
		}
		b.WriteString(`<D:sync-token>t` + strconv.Itoa(end) + `</D:sync-token>`)
	default:
		http.Error(w, fmt.Sprintf("unsupported report %q", rep.XMLName.Local), http.StatusBadRequest)
		return
	}
	b.WriteString(`</D:multistatus>`)
	w.Header().Set("Content-Type", "application/xml; charset=utf-8")
	w.WriteHeader(http.StatusMultiStatus)
	_, _ = io.WriteString(w, b.String())
}

func xmlEscape(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}
