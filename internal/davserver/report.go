package davserver

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
)

// XML namespaces.
const (
	davNS  = "DAV:"
	cardNS = "urn:ietf:params:xml:ns:carddav"
	calNS  = "urn:ietf:params:xml:ns:caldav"
	csNS   = "http://calendarserver.org/ns/"

	xmlHeader = `<?xml version="1.0" encoding="utf-8"?>` + "\n"
)

var (
	nameSyncCollection   = xml.Name{Space: davNS, Local: "sync-collection"}
	nameAddressMultiget  = xml.Name{Space: cardNS, Local: "addressbook-multiget"}
	nameCalendarMultiget = xml.Name{Space: calNS, Local: "calendar-multiget"}

	nameGetETag         = xml.Name{Space: davNS, Local: "getetag"}
	nameGetContentType  = xml.Name{Space: davNS, Local: "getcontenttype"}
	nameGetContentLen   = xml.Name{Space: davNS, Local: "getcontentlength"}
	nameGetLastModified = xml.Name{Space: davNS, Local: "getlastmodified"}
	nameResourceType    = xml.Name{Space: davNS, Local: "resourcetype"}
	nameAddressData     = xml.Name{Space: cardNS, Local: "address-data"}
	nameCalendarData    = xml.Name{Space: calNS, Local: "calendar-data"}
	nameGetCTag         = xml.Name{Space: csNS, Local: "getctag"}
	nameSyncToken       = xml.Name{Space: davNS, Local: "sync-token"}
	nameSupportedReport = xml.Name{Space: davNS, Local: "supported-report-set"}
	namePrivileges      = xml.Name{Space: davNS, Local: "current-user-privilege-set"}
)

// prefixes used by the multistatus bodies this file writes.
var nsPrefix = map[string]string{davNS: "d", cardNS: "card", calNS: "cal", csNS: "cs"}

const multistatusOpen = `<d:multistatus xmlns:d="DAV:" xmlns:card="` + cardNS + `" xmlns:cal="` + calNS + `" xmlns:cs="` + csNS + `">`

type anyName struct {
	XMLName xml.Name
}

type propList struct {
	Names []anyName `xml:",any"`
}

type reportRequest struct {
	XMLName   xml.Name
	SyncToken *string `xml:"DAV: sync-token"`
	SyncLevel string  `xml:"DAV: sync-level"`
	Limit     *struct {
		NResults int `xml:"DAV: nresults"`
	} `xml:"DAV: limit"`
	Prop    *propList `xml:"DAV: prop"`
	AllProp *struct{} `xml:"DAV: allprop"`
	Hrefs   []string  `xml:"DAV: href"`
}

type propfindRequest struct {
	XMLName  xml.Name  `xml:"DAV: propfind"`
	Prop     *propList `xml:"DAV: prop"`
	AllProp  *struct{} `xml:"DAV: allprop"`
	PropName *struct{} `xml:"DAV: propname"`
}

type mkcalendarRequest struct {
	XMLName xml.Name `xml:"urn:ietf:params:xml:ns:caldav mkcalendar"`
	Set     struct {
		Prop struct {
			DisplayName string `xml:"DAV: displayname"`
			Description string `xml:"urn:ietf:params:xml:ns:caldav calendar-description"`
			Components  struct {
				Comps []struct {
					Name string `xml:"name,attr"`
				} `xml:"urn:ietf:params:xml:ns:caldav comp"`
			} `xml:"urn:ietf:params:xml:ns:caldav supported-calendar-component-set"`
		} `xml:"DAV: prop"`
	} `xml:"DAV: set"`
}

func xmlUnmarshal(data []byte, v any) error {
	return xml.NewDecoder(bytes.NewReader(data)).Decode(v)
}

func xmlEscape(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}

// ms builds a multistatus body with fixed namespace prefixes.
type ms struct{ b bytes.Buffer }

func newMS() *ms {
	m := &ms{}
	m.b.WriteString(xmlHeader)
	m.b.WriteString(multistatusOpen)
	return m
}

// elem writes an empty element for name, with a local xmlns when its
// namespace has no fixed prefix.
func elem(b *bytes.Buffer, n xml.Name) {
	if p, ok := nsPrefix[n.Space]; ok {
		fmt.Fprintf(b, "<%s:%s/>", p, n.Local)
		return
	}
	fmt.Fprintf(b, `<%s xmlns="%s"/>`, n.Local, xmlEscape(n.Space))
}

// valueFunc writes the value element of a property, or reports false if the
// resource has no such property.
type valueFunc func(b *bytes.Buffer, n xml.Name) bool

// response writes one response with a 200 propstat for the properties
// value knows and a 404 propstat for the others.
func (m *ms) response(href string, names []xml.Name, value valueFunc) {
	var found, missing bytes.Buffer
	for _, n := range names {
		if !value(&found, n) {
			elem(&missing, n)
		}
	}
	m.b.WriteString("<d:response><d:href>")
	xml.EscapeText(&m.b, []byte(href))
	m.b.WriteString("</d:href>")
	if found.Len() > 0 || missing.Len() == 0 {
		m.b.WriteString("<d:propstat><d:prop>")
		m.b.Write(found.Bytes())
		m.b.WriteString("</d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat>")
	}
	if missing.Len() > 0 {
		m.b.WriteString("<d:propstat><d:prop>")
		m.b.Write(missing.Bytes())
		m.b.WriteString("</d:prop><d:status>HTTP/1.1 404 Not Found</d:status></d:propstat>")
	}
	m.b.WriteString("</d:response>")
}

func (m *ms) status(href string, code int, errBody string) {
	m.b.WriteString("<d:response><d:href>")
	xml.EscapeText(&m.b, []byte(href))
	fmt.Fprintf(&m.b, "</d:href><d:status>HTTP/1.1 %d %s</d:status>", code, http.StatusText(code))
	if errBody != "" {
		m.b.WriteString("<d:error>" + errBody + "</d:error>")
	}
	m.b.WriteString("</d:response>")
}

func (m *ms) write(w http.ResponseWriter, syncToken string) {
	if syncToken != "" {
		m.b.WriteString("<d:sync-token>" + xmlEscape(syncToken) + "</d:sync-token>")
	}
	m.b.WriteString("</d:multistatus>")
	w.Header().Set("Content-Type", `application/xml; charset="utf-8"`)
	w.Header().Set("Content-Length", strconv.Itoa(m.b.Len()))
	w.WriteHeader(http.StatusMultiStatus)
	w.Write(m.b.Bytes())
}

// objectValue serves the properties of a stored object, data verbatim.
func objectValue(kind string, o object) valueFunc {
	return func(b *bytes.Buffer, n xml.Name) bool {
		switch n {
		case nameGetETag:
			b.WriteString("<d:getetag>" + xmlEscape(quoteETag(o.ETag)) + "</d:getetag>")
		case nameGetContentType:
			b.WriteString("<d:getcontenttype>" + contentType(kind) + "</d:getcontenttype>")
		case nameGetContentLen:
			b.WriteString("<d:getcontentlength>" + strconv.Itoa(len(o.Data)) + "</d:getcontentlength>")
		case nameGetLastModified:
			b.WriteString("<d:getlastmodified>" + o.ModTime.UTC().Format(http.TimeFormat) + "</d:getlastmodified>")
		case nameResourceType:
			b.WriteString("<d:resourcetype/>")
		case nameAddressData:
			if kind != kindAddressBook {
				return false
			}
			b.WriteString("<card:address-data>")
			xml.EscapeText(b, o.Data) // escapes CR as &#xD; so bytes survive
			b.WriteString("</card:address-data>")
		case nameCalendarData:
			if kind != kindCalendar {
				return false
			}
			b.WriteString("<cal:calendar-data>")
			xml.EscapeText(b, o.Data)
			b.WriteString("</cal:calendar-data>")
		default:
			return false
		}
		return true
	}
}

var defaultObjectProps = []xml.Name{nameGetETag, nameGetContentType, nameGetContentLen, nameGetLastModified, nameResourceType}

func requestedProps(prop *propList, allProp bool) []xml.Name {
	if prop == nil || allProp {
		return defaultObjectProps
	}
	out := make([]xml.Name, len(prop.Names))
	for i, n := range prop.Names {
		out[i] = n.XMLName
	}
	return out
}

func isXMLContent(h http.Header) bool {
	t, _, _ := mime.ParseMediaType(h.Get("Content-Type"))
	return t == "application/xml" || t == "text/xml" || t == ""
}

// serveReport answers sync-collection and the multiget REPORTs from the raw
// store and hands the queries to go-webdav.
func (s *Server) serveReport(w http.ResponseWriter, r *http.Request, p davPath, h http.Handler) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var req reportRequest
	if err := xmlUnmarshal(body, &req); err != nil {
		http.Error(w, "bad REPORT body: "+err.Error(), http.StatusBadRequest)
		return
	}
	switch req.XMLName {
	case nameSyncCollection:
		s.serveSyncCollection(w, r, p, &req)
	case nameAddressMultiget, nameCalendarMultiget:
		s.serveMultiget(w, r, p, &req)
	default:
		r.Body = io.NopCloser(bytes.NewReader(body))
		h.ServeHTTP(w, r)
	}
}

func (s *Server) serveMultiget(w http.ResponseWriter, r *http.Request, p davPath, req *reportRequest) {
	ctx := r.Context()
	names := requestedProps(req.Prop, req.AllProp != nil)
	m := newMS()
	colls := map[string]collection{}
	for _, href := range req.Hrefs {
		hp, ok := hrefPath(href)
		op, ok2 := parsePath(hp)
		if !ok || !ok2 || op.Depth != 4 || op.User != p.User || op.Kind != p.Kind {
			m.status(href, http.StatusNotFound, "")
			continue
		}
		key := op.Coll
		c, ok := colls[key]
		if !ok {
			var err error
			c, err = s.collectionAt(ctx, op)
			if errors.Is(err, ErrNotFound) {
				m.status(href, http.StatusNotFound, "")
				continue
			} else if err != nil {
				s.writeError(w, r, err)
				return
			}
			colls[key] = c
		}
		o, err := s.st.getObject(ctx, c.ID, op.Obj)
		if errors.Is(err, ErrNotFound) {
			m.status(href, http.StatusNotFound, "")
			continue
		} else if err != nil {
			s.writeError(w, r, err)
			return
		}
		m.response(href, names, objectValue(p.Kind, o))
	}
	m.write(w, "")
}

// serveSyncCollection implements the RFC 6578 REPORT: changed members
// with the requested properties, deleted ones as 404 responses, and with a
// DAV:limit a 507 for the collection when more changes remain.
func (s *Server) serveSyncCollection(w http.ResponseWriter, r *http.Request, p davPath, req *reportRequest) {
	ctx := r.Context()
	if p.Depth != 3 {
		http.Error(w, "sync-collection needs a collection", http.StatusForbidden)
		return
	}
	if lvl := strings.TrimSpace(req.SyncLevel); lvl != "" && lvl != "1" {
		http.Error(w, "only sync-level 1 is supported", http.StatusForbidden)
		return
	}
	c, err := s.collectionAt(ctx, p)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var tok string
	if req.SyncToken != nil {
		tok = *req.SyncToken
	}
	since, err := parseSyncToken(tok)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	limit := 0
	if req.Limit != nil {
		limit = req.Limit.NResults
		if limit <= 0 {
			limit = 1
		}
	}
	objs, newTok, more, err := s.st.changes(ctx, c.ID, since, limit)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	names := requestedProps(req.Prop, false)
	collHref := escapePath(p.String())
	m := newMS()
	for _, o := range objs {
		href := escapePath(p.String() + o.Name)
		if o.Data == nil {
			m.status(href, http.StatusNotFound, "")
			continue
		}
		m.response(href, names, objectValue(p.Kind, o))
	}
	if more {
		m.status(collHref, http.StatusInsufficientStorage, "<d:number-of-matches-within-limits/>")
	}
	m.write(w, formatSyncToken(newTok))
}
