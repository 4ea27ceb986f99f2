package davserver

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// Properties go-webdav v0.6.0 does not know and this file adds to PROPFIND
// answers for collections.
var extraProps = map[xml.Name]bool{nameGetCTag: true, nameSyncToken: true, nameSupportedReport: true, namePrivileges: true}

// ownPrivileges is the DAV:current-user-privilege-set (RFC 3744) of every
// resource under the user's principal: clients such as Thunderbird and
// DAVx5 read it to decide whether a collection is writable.
const ownPrivileges = "<d:current-user-privilege-set>" +
	"<d:privilege><d:all/></d:privilege><d:privilege><d:read/></d:privilege>" +
	"<d:privilege><d:write/></d:privilege><d:privilege><d:write-properties/></d:privilege>" +
	"<d:privilege><d:write-content/></d:privilege><d:privilege><d:bind/></d:privilege>" +
	"<d:privilege><d:unbind/></d:privilege></d:current-user-privilege-set>"

// bufferWriter captures a handler's response.
type bufferWriter struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (b *bufferWriter) Header() http.Header { return b.header }
func (b *bufferWriter) WriteHeader(code int) {
	if b.code == 0 {
		b.code = code
	}
}
func (b *bufferWriter) Write(p []byte) (int, error) {
	if b.code == 0 {
		b.code = http.StatusOK
	}
	return b.body.Write(p)
}

// servePropfind lets go-webdav answer a PROPFIND. When the request names
// CS:getctag, DAV:sync-token or DAV:supported-report-set, they are removed
// from the request given to go-webdav and added to its multistatus: values
// for collections, 404 for other resources.
func (s *Server) servePropfind(w http.ResponseWriter, r *http.Request, p davPath, h http.Handler) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	var req propfindRequest
	if len(bytes.TrimSpace(body)) == 0 || xmlUnmarshal(body, &req) != nil || req.Prop == nil {
		h.ServeHTTP(w, r)
		return
	}
	if !namesData(req.Prop.Names) {
		// No address-data / calendar-data asked: the backend need not
		// parse every object of a Depth 1 listing.
		r = r.WithContext(withoutParsing(r.Context()))
	}
	var keep, extra []xml.Name
	for _, n := range req.Prop.Names {
		if extraProps[n.XMLName] {
			extra = append(extra, n.XMLName)
		} else {
			keep = append(keep, n.XMLName)
		}
	}
	if len(extra) == 0 {
		h.ServeHTTP(w, r)
		return
	}
	if len(keep) == 0 {
		keep = []xml.Name{nameResourceType} // go-webdav needs at least one
	}
	var nb bytes.Buffer
	nb.WriteString(xmlHeader + `<d:propfind xmlns:d="DAV:"` + nsDecls() + `><d:prop>`)
	for _, n := range keep {
		elem(&nb, n)
	}
	nb.WriteString(`</d:prop></d:propfind>`)
	r2 := r.Clone(r.Context())
	r2.Body = io.NopCloser(bytes.NewReader(nb.Bytes()))
	r2.ContentLength = int64(nb.Len())
	r2.Header.Set("Content-Type", `application/xml; charset="utf-8"`)

	rec := &bufferWriter{header: http.Header{}}
	h.ServeHTTP(rec, r2)
	for k, v := range rec.header {
		w.Header()[k] = v
	}
	if rec.code != http.StatusMultiStatus {
		w.WriteHeader(rec.code)
		w.Write(rec.body.Bytes())
		return
	}
	out, err := s.injectProps(r.Context(), rec.body.Bytes(), extra)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(out)))
	w.WriteHeader(http.StatusMultiStatus)
	w.Write(out)
}

func namesData(names []anyName) bool {
	for _, n := range names {
		if n.XMLName == nameAddressData || n.XMLName == nameCalendarData {
			return true
		}
	}
	return false
}

func nsDecls() string {
	return ` xmlns:card="` + cardNS + `" xmlns:cal="` + calNS + `" xmlns:cs="` + csNS + `"`
}

// injectProps adds one propstat per response of a go-webdav multistatus,
// just before its </response>.
func (s *Server) injectProps(ctx context.Context, body []byte, extra []xml.Name) ([]byte, error) {
	respName := xml.Name{Space: davNS, Local: "response"}
	hrefName := xml.Name{Space: davNS, Local: "href"}
	dec := xml.NewDecoder(bytes.NewReader(body))
	var out bytes.Buffer
	var href strings.Builder
	last, depth := 0, 0
	inResp, inHref := false, false
	for {
		off := int(dec.InputOffset())
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("davserver: rewrite PROPFIND answer: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			if depth == 2 && t.Name == respName {
				inResp = true
				href.Reset()
			}
			if inResp && depth == 3 && t.Name == hrefName {
				inHref = true
			}
		case xml.CharData:
			if inHref {
				href.Write(t)
			}
		case xml.EndElement:
			if inHref && depth == 3 {
				inHref = false
			}
			if inResp && depth == 2 && t.Name == respName {
				ps, err := s.collectionPropstat(ctx, href.String(), extra)
				if err != nil {
					return nil, err
				}
				out.Write(body[last:off])
				out.WriteString(ps)
				last = off
				inResp = false
			}
			depth--
		}
	}
	out.Write(body[last:])
	return out.Bytes(), nil
}

// collectionPropstat returns the propstat elements for the extra
// properties of the resource at href: the collection state for address
// books and calendars, privileges for everything the user owns.
func (s *Server) collectionPropstat(ctx context.Context, href string, extra []xml.Name) (string, error) {
	var c collection
	var kind string
	hp, ok := hrefPath(href)
	p, ok2 := parsePath(hp)
	user, _ := userFrom(ctx)
	own := ok && ok2 && p.Depth >= 1 && p.User == user
	isColl := own && p.Depth == 3
	if isColl {
		var err error
		c, err = s.collectionAt(ctx, p)
		if errors.Is(err, ErrNotFound) {
			isColl = false
		} else if err != nil {
			return "", err
		}
		kind = p.Kind
	}
	var found, missing bytes.Buffer
	for _, n := range extra {
		if n == namePrivileges && own {
			found.WriteString(ownPrivileges)
			continue
		}
		if !isColl || n == namePrivileges {
			elem(&missing, n)
			continue
		}
		tok := xmlEscape(formatSyncToken(c.Counter))
		switch n {
		case nameGetCTag:
			found.WriteString("<cs:getctag>" + tok + "</cs:getctag>")
		case nameSyncToken:
			found.WriteString("<d:sync-token>" + tok + "</d:sync-token>")
		case nameSupportedReport:
			found.WriteString("<d:supported-report-set>")
			reports := []string{"<d:sync-collection/>", "<card:addressbook-multiget/>", "<card:addressbook-query/>"}
			if kind == kindCalendar {
				reports = []string{"<d:sync-collection/>", "<cal:calendar-multiget/>", "<cal:calendar-query/>"}
			}
			for _, rep := range reports {
				found.WriteString("<d:supported-report><d:report>" + rep + "</d:report></d:supported-report>")
			}
			found.WriteString("</d:supported-report-set>")
		}
	}
	var b strings.Builder
	open := `<d:propstat xmlns:d="DAV:"` + nsDecls() + `><d:prop>`
	if found.Len() > 0 {
		b.WriteString(open + found.String() + `</d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat>`)
	}
	if missing.Len() > 0 {
		b.WriteString(open + missing.String() + `</d:prop><d:status>HTTP/1.1 404 Not Found</d:status></d:propstat>`)
	}
	return b.String(), nil
}
