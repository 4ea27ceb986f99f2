package davext

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/pimbridge/pimbridge/pim"
)

// State is what PROPFIND Depth 0 tells about a collection. Either field is
// empty when the server does not offer it.
type State struct {
	CTag      string // CS:getctag
	SyncToken string // DAV:sync-token (RFC 6578)
}

// CollectionState reads getctag and sync-token of the collection at href
// with one PROPFIND Depth 0.
func (c *Client) CollectionState(ctx context.Context, href string) (State, error) {
	body := xmlHeader + `<D:propfind xmlns:D="DAV:" xmlns:CS="` + nsCS + `"><D:prop><CS:getctag/><D:sync-token/></D:prop></D:propfind>`
	ms, err := c.propfind(ctx, href, "0", body)
	if err != nil {
		return State{}, fmt.Errorf("davext: collection state: %w", err)
	}
	var st State
	for _, r := range ms.Responses {
		p := r.okProp()
		if p.GetCTag != nil {
			st.CTag = strings.TrimSpace(*p.GetCTag)
		}
		if p.SyncToken != nil {
			st.SyncToken = strings.TrimSpace(*p.SyncToken)
		}
	}
	return st, nil
}

// CalendarComponents returns the calendar's supported-calendar-component-
// set ("VEVENT", "VTODO"...), upper-case. A calendar without the property
// takes every component (RFC 4791 5.2.3): nil.
func (c *Client) CalendarComponents(ctx context.Context, href string) (comps []string, err error) {
	body := xmlHeader + `<D:propfind xmlns:D="DAV:" xmlns:C="` + nsCalDAV + `"><D:prop><C:supported-calendar-component-set/></D:prop></D:propfind>`
	ms, err := c.propfind(ctx, href, "0", body)
	if err != nil {
		return nil, fmt.Errorf("davext: calendar components of %s: %w", href, err)
	}
	for _, r := range ms.Responses {
		if p := r.okProp(); p.CompSet != nil {
			for _, cm := range p.CompSet.Comps {
				comps = append(comps, strings.ToUpper(strings.TrimSpace(cm.Name)))
			}
		}
	}
	return comps, nil
}

// TakesComponent reports whether a calendar whose
// supported-calendar-component-set is comps (nil: every component) takes
// comp.
func TakesComponent(comps []string, comp string) bool {
	return comps == nil || slices.Contains(comps, strings.ToUpper(comp))
}

func (c *Client) propfind(ctx context.Context, href, depth, body string) (*multistatus, error) {
	return c.report(ctx, "PROPFIND", href, depth, body)
}

func (c *Client) report(ctx context.Context, method, href, depth, body string) (*multistatus, error) {
	resp, err := c.do(ctx, request{
		method: method,
		href:   href,
		header: http.Header{"Depth": {depth}, "Content-Type": {"application/xml; charset=utf-8"}},
		body:   []byte(body),
	})
	if err != nil {
		return nil, err
	}
	b, err := readAll(resp)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusMultiStatus {
		return nil, fmt.Errorf("%s %s: want 207 Multi-Status, got %d", method, href, resp.StatusCode)
	}
	return decodeMultistatus(b)
}

// Change is one entry of a sync-collection or listing: an object that was
// added or modified (Deleted false, ETag set) or removed (Deleted true).
type Change struct {
	Href    string
	ETag    string
	Deleted bool
}

// SyncCollection runs an RFC 6578 sync-collection REPORT on the collection
// at href asking only for getetag. An empty token lists every object. It
// works for address books and calendars alike. Entries with status 404
// come back as deletions; a 507 for the collection itself (a truncated
// result) sets more, and the caller repeats with newToken. A token the
// server no longer accepts gives an error wrapping pim.ErrTokenExpired.
// limit <= 0 asks for no limit.
func (c *Client) SyncCollection(ctx context.Context, href, token string, limit int) (changes []Change, newToken string, more bool, err error) {
	var b strings.Builder
	b.WriteString(xmlHeader + `<D:sync-collection xmlns:D="DAV:"><D:sync-token>`)
	b.WriteString(xmlText(token))
	b.WriteString(`</D:sync-token><D:sync-level>1</D:sync-level>`)
	if limit > 0 {
		b.WriteString(`<D:limit><D:nresults>` + strconv.Itoa(limit) + `</D:nresults></D:limit>`)
	}
	b.WriteString(`<D:prop><D:getetag/></D:prop></D:sync-collection>`)
	ms, err := c.report(ctx, "REPORT", href, "0", b.String())
	if err != nil {
		return nil, "", false, fmt.Errorf("davext: sync-collection: %w", err)
	}
	self := NormalizeHref(href)
	for _, r := range ms.Responses {
		h := r.href()
		code := statusCode(r.Status)
		if strings.TrimSuffix(h, "/") == strings.TrimSuffix(self, "/") {
			if code == http.StatusInsufficientStorage {
				more = true
			}
			continue
		}
		switch {
		case code == http.StatusNotFound || code == http.StatusGone:
			changes = append(changes, Change{Href: h, Deleted: true})
		case r.Status != "" && (code < 200 || code > 299):
			// unknown per-resource status: skip it
		default:
			p := r.okProp()
			if p.ResourceType.collection() {
				continue
			}
			changes = append(changes, Change{Href: h, ETag: etagValue(p.GetETag)})
		}
	}
	return changes, strings.TrimSpace(ms.SyncToken), more, nil
}

// ListETags lists the member objects of the collection at href with their
// ETags (PROPFIND Depth 1 for getetag), skipping the collection itself and
// sub-collections. It is the fallback for servers without sync-collection.
func (c *Client) ListETags(ctx context.Context, href string) ([]pim.Ref, error) {
	body := xmlHeader + `<D:propfind xmlns:D="DAV:"><D:prop><D:getetag/><D:resourcetype/></D:prop></D:propfind>`
	ms, err := c.propfind(ctx, href, "1", body)
	if err != nil {
		return nil, fmt.Errorf("davext: list etags: %w", err)
	}
	self := strings.TrimSuffix(NormalizeHref(href), "/")
	var refs []pim.Ref
	for _, r := range ms.Responses {
		h := r.href()
		if strings.TrimSuffix(h, "/") == self {
			continue
		}
		if code := statusCode(r.Status); r.Status != "" && (code < 200 || code > 299) {
			continue
		}
		p := r.okProp()
		if p.ResourceType.collection() || strings.HasSuffix(h, "/") {
			continue
		}
		refs = append(refs, pim.Ref{Href: h, ETag: etagValue(p.GetETag)})
	}
	return refs, nil
}

// MultiGet fetches the objects at hrefs (members of the collection at
// collection) with one addressbook-multiget (calendar false) or
// calendar-multiget REPORT and returns their raw data and ETags. Hrefs the
// server answers with 404, or leaves out, are returned in missing instead
// of failing the batch. Data has CRLF line ends restored (see restoreCRLF).
func (c *Client) MultiGet(ctx context.Context, collection string, calendar bool, hrefs []string) (objs []pim.Object, missing []string, err error) {
	if len(hrefs) == 0 {
		return nil, nil, nil
	}
	var b strings.Builder
	b.WriteString(xmlHeader)
	if calendar {
		b.WriteString(`<C:calendar-multiget xmlns:D="DAV:" xmlns:C="` + nsCalDAV + `"><D:prop><D:getetag/><C:calendar-data/></D:prop>`)
	} else {
		b.WriteString(`<C:addressbook-multiget xmlns:D="DAV:" xmlns:C="` + nsCardDAV + `"><D:prop><D:getetag/><C:address-data/></D:prop>`)
	}
	want := make(map[string]bool, len(hrefs))
	for _, h := range hrefs {
		want[NormalizeHref(h)] = true
		b.WriteString(`<D:href>` + xmlText(h) + `</D:href>`)
	}
	if calendar {
		b.WriteString(`</C:calendar-multiget>`)
	} else {
		b.WriteString(`</C:addressbook-multiget>`)
	}
	ms, err := c.report(ctx, "REPORT", collection, "1", b.String())
	if err != nil {
		return nil, nil, fmt.Errorf("davext: multiget: %w", err)
	}
	got := make(map[string]bool, len(hrefs))
	for _, r := range ms.Responses {
		for _, raw := range r.Hrefs {
			h := NormalizeHref(raw)
			if !want[h] || got[h] {
				continue
			}
			p := r.okProp()
			data := p.AddressData
			if calendar {
				data = p.CalendarData
			}
			if code := statusCode(r.Status); (r.Status != "" && (code < 200 || code > 299)) || data == nil {
				continue // reported as missing below
			}
			got[h] = true
			objs = append(objs, pim.Object{Href: h, ETag: etagValue(p.GetETag), Data: restoreCRLF(*data)})
		}
	}
	for _, h := range hrefs {
		if n := NormalizeHref(h); !got[n] {
			missing = append(missing, n)
			got[n] = true
		}
	}
	return objs, missing, nil
}

// QueryAll fetches every object of the collection at href with their raw
// data and ETags in one REPORT: an addressbook-query with an empty filter,
// or a calendar-query for any VCALENDAR. It is the cheap way to do a full
// listing; multiget of every href costs far more on some servers
// (Xandikos: ~15 s per 100 hrefs in a 10k collection).
func (c *Client) QueryAll(ctx context.Context, href string, calendar bool) ([]pim.Object, error) {
	var body string
	if calendar {
		body = xmlHeader + `<C:calendar-query xmlns:D="DAV:" xmlns:C="` + nsCalDAV + `"><D:prop><D:getetag/><C:calendar-data/></D:prop>` +
			`<C:filter><C:comp-filter name="VCALENDAR"/></C:filter></C:calendar-query>`
	} else {
		body = xmlHeader + `<C:addressbook-query xmlns:D="DAV:" xmlns:C="` + nsCardDAV + `"><D:prop><D:getetag/><C:address-data/></D:prop>` +
			`<C:filter/></C:addressbook-query>`
	}
	ms, err := c.report(ctx, "REPORT", href, "1", body)
	if err != nil {
		return nil, fmt.Errorf("davext: query: %w", err)
	}
	self := strings.TrimSuffix(NormalizeHref(href), "/")
	var objs []pim.Object
	for _, r := range ms.Responses {
		h := r.href()
		if strings.TrimSuffix(h, "/") == self || strings.HasSuffix(h, "/") {
			continue
		}
		if code := statusCode(r.Status); r.Status != "" && (code < 200 || code > 299) {
			continue
		}
		p := r.okProp()
		data := p.AddressData
		if calendar {
			data = p.CalendarData
		}
		if data == nil {
			continue
		}
		objs = append(objs, pim.Object{Href: h, ETag: etagValue(p.GetETag), Data: restoreCRLF(*data)})
	}
	return objs, nil
}
