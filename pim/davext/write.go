package davext

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/pimbridge/pimbridge/pim"
)

// Get fetches the object at href with a plain GET: its bytes exactly as
// served and the ETag header verbatim (empty if the server sent none).
func (c *Client) Get(ctx context.Context, href string) (pim.Object, error) {
	resp, err := c.do(ctx, request{method: http.MethodGet, href: href})
	if err != nil {
		return pim.Object{}, fmt.Errorf("davext: get: %w", err)
	}
	b, err := readAll(resp)
	if err != nil {
		return pim.Object{}, fmt.Errorf("davext: get %s: %w", href, err)
	}
	return pim.Object{Href: NormalizeHref(href), ETag: resp.Header.Get("ETag"), Data: b}, nil
}

// ETag reads the getetag of one object (PROPFIND Depth 0).
func (c *Client) ETag(ctx context.Context, href string) (string, error) {
	body := xmlHeader + `<D:propfind xmlns:D="DAV:"><D:prop><D:getetag/></D:prop></D:propfind>`
	ms, err := c.propfind(ctx, href, "0", body)
	if err != nil {
		return "", fmt.Errorf("davext: etag: %w", err)
	}
	for _, r := range ms.Responses {
		if p := r.okProp(); p.GetETag != nil {
			return etagValue(p.GetETag), nil
		}
	}
	return "", fmt.Errorf("davext: etag of %s: server sent none", href)
}

// Put writes data to href. With createOnly it sends If-None-Match: * (an
// existing object gives an error wrapping pim.ErrPreconditionFailed);
// otherwise a non-empty ifMatch is sent verbatim as If-Match (a stale one
// gives pim.ErrPreconditionFailed). It returns the new ETag; when the
// server sends none (it may have rewritten the data) the ETag is re-read.
func (c *Client) Put(ctx context.Context, href, contentType string, data []byte, ifMatch string, createOnly bool) (string, error) {
	h := http.Header{"Content-Type": {contentType}}
	if createOnly {
		h.Set("If-None-Match", "*")
	} else if ifMatch != "" {
		h["If-Match"] = []string{ifMatch}
	}
	resp, err := c.do(ctx, request{method: http.MethodPut, href: href, header: h, body: data})
	if err != nil {
		return "", fmt.Errorf("davext: put: %w", err)
	}
	if err := multistatusFailure(resp, http.MethodPut, href); err != nil {
		return "", fmt.Errorf("davext: put: %w", err)
	}
	if etag := resp.Header.Get("ETag"); etag != "" {
		return etag, nil
	}
	etag, err := c.ETag(ctx, href)
	if err != nil {
		return "", fmt.Errorf("davext: put %s: %w", href, err)
	}
	return etag, nil
}

// Delete removes the object at href, sending a non-empty ifMatch verbatim
// as If-Match (a stale one gives pim.ErrPreconditionFailed, a missing
// object pim.ErrNotFound).
func (c *Client) Delete(ctx context.Context, href, ifMatch string) error {
	h := http.Header{}
	if ifMatch != "" {
		h["If-Match"] = []string{ifMatch}
	}
	resp, err := c.do(ctx, request{method: http.MethodDelete, href: href, header: h})
	if err != nil {
		return fmt.Errorf("davext: delete: %w", err)
	}
	if err := multistatusFailure(resp, http.MethodDelete, href); err != nil {
		return fmt.Errorf("davext: delete: %w", err)
	}
	return nil
}

// MkAddressBook creates an address book at href with an extended MKCOL
// (RFC 5689) whose resourcetype is collection + CARDDAV:addressbook.
func (c *Client) MkAddressBook(ctx context.Context, href, displayName string) error {
	body := xmlHeader + `<D:mkcol xmlns:D="DAV:" xmlns:C="` + nsCardDAV + `"><D:set><D:prop>` +
		`<D:resourcetype><D:collection/><C:addressbook/></D:resourcetype>` +
		`<D:displayname>` + xmlText(displayName) + `</D:displayname>` +
		`</D:prop></D:set></D:mkcol>`
	return c.mk(ctx, "MKCOL", href, body)
}

// MkCalendar creates a calendar at href with MKCALENDAR (RFC 4791) and a
// supported-calendar-component-set of the given components ("VEVENT",
// "VTODO").
func (c *Client) MkCalendar(ctx context.Context, href, displayName string, components ...string) error {
	body := xmlHeader + `<C:mkcalendar xmlns:D="DAV:" xmlns:C="` + nsCalDAV + `"><D:set><D:prop>` +
		`<D:displayname>` + xmlText(displayName) + `</D:displayname>`
	if len(components) > 0 {
		body += `<C:supported-calendar-component-set>`
		for _, comp := range components {
			body += `<C:comp name="` + xmlText(comp) + `"/>`
		}
		body += `</C:supported-calendar-component-set>`
	}
	body += `</D:prop></D:set></C:mkcalendar>`
	return c.mk(ctx, "MKCALENDAR", href, body)
}

func (c *Client) mk(ctx context.Context, method, href, body string) error {
	resp, err := c.do(ctx, request{
		method: method,
		href:   href,
		header: http.Header{"Content-Type": {"application/xml; charset=utf-8"}},
		body:   []byte(body),
	})
	if err != nil {
		var se *pim.StatusError
		if errors.As(err, &se) && se.Code == http.StatusMethodNotAllowed {
			return fmt.Errorf("davext: %s %s: already exists or not allowed here: %w", method, href, err)
		}
		return fmt.Errorf("davext: %s: %w", method, err)
	}
	_, _ = readAll(resp)
	return nil
}

// multistatusFailure reads and closes resp. A 207 Multi-Status reply to a
// PUT or DELETE carries per-resource failures (Xandikos answers a
// no-uid-conflict this way): the first non-2xx one becomes a
// *pim.StatusError with the whole body.
func multistatusFailure(resp *http.Response, method, href string) error {
	b, err := readAll(resp)
	if resp.StatusCode != http.StatusMultiStatus {
		return nil
	}
	if err != nil {
		return err
	}
	ms, err := decodeMultistatus(b)
	if err != nil {
		return err
	}
	for _, r := range ms.Responses {
		if code := statusCode(r.Status); r.Status != "" && (code < 200 || code > 299) {
			return &pim.StatusError{Method: method, URL: href, Code: code, Body: string(b)}
		}
	}
	return nil
}
