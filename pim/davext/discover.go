package davext

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/pimbridge/pimbridge/pim"
)

// ContextPath returns the path discovery should start from for service
// ("carddav" or "caldav"), RFC 6764 section 5: an endpoint with a path of
// its own is used as given; otherwise /.well-known/<service> is asked with
// PROPFIND and a redirect (301/302/303/307/308, also across hosts: the
// returned URL is absolute) is read by hand instead of being followed,
// because net/http turns PROPFIND into GET on 301/302. No redirect means
// the server root.
func (c *Client) ContextPath(ctx context.Context, service string) (string, error) {
	if p := c.base.Path; p != "" && p != "/" {
		return c.base.String(), nil
	}
	root := c.base.Scheme + "://" + c.base.Host + "/"
	hc, ok := c.http.(*http.Client)
	if !ok {
		return root, nil // cannot stop a foreign client from following
	}
	nofollow := *hc
	nofollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	body := xmlHeader + `<D:propfind xmlns:D="DAV:"><D:prop><D:current-user-principal/></D:prop></D:propfind>`
	wk := root + ".well-known/" + service
	for range 5 { // a few hops, e.g. http -> https -> app path
		req, err := http.NewRequestWithContext(ctx, "PROPFIND", wk, strings.NewReader(body))
		if err != nil {
			return "", fmt.Errorf("davext: well-known: %w", err)
		}
		req.Header.Set("Depth", "0")
		req.Header.Set("Content-Type", "application/xml; charset=utf-8")
		if c.user != "" {
			req.SetBasicAuth(c.user, c.pass)
		}
		resp, err := nofollow.Do(req)
		if err != nil {
			return "", fmt.Errorf("davext: well-known: %w", err)
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
			loc, err := req.URL.Parse(resp.Header.Get("Location"))
			if err != nil || resp.Header.Get("Location") == "" {
				return "", fmt.Errorf("davext: well-known: bad Location %q", resp.Header.Get("Location"))
			}
			if !strings.Contains(loc.Path, "/.well-known/") {
				return loc.String(), nil
			}
			wk = loc.String()
		case http.StatusUnauthorized:
			return "", fmt.Errorf("davext: well-known: %w", &pim.StatusError{Method: "PROPFIND", URL: wk, Code: resp.StatusCode})
		default:
			return root, nil
		}
	}
	return "", fmt.Errorf("davext: well-known: too many redirects from %s", root)
}

// ErrorDoer returns an HTTPClient for go-webdav's clients that adds this
// client's Basic auth and turns every reply of 400 and above into a
// *pim.StatusError, which go-webdav passes through unchanged, so its
// callers can test errors with errors.Is.
func (c *Client) ErrorDoer() HTTPClient { return errorDoer{c} }

type errorDoer struct{ c *Client }

func (d errorDoer) Do(req *http.Request) (*http.Response, error) {
	if d.c.user != "" {
		req.SetBasicAuth(d.c.user, d.c.pass)
	}
	resp, err := d.c.http.Do(req)
	if err != nil || resp.StatusCode < 400 {
		return resp, err
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	return nil, &pim.StatusError{Method: req.Method, URL: req.URL.Redacted(), Code: resp.StatusCode, Body: string(b),
		RetryAfter: pim.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now())}
}
