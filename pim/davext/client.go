// Package davext is the small WebDAV layer pimbridge adds beside go-webdav
// (go-webdav has none of these): collection state (getctag,
// sync-token), RFC 6578 sync-collection, ETag listings, multiget of raw
// bytes that tolerates missing hrefs, conditional PUT and DELETE, raw GET,
// MKCOL (RFC 5689) and MKCALENDAR (RFC 4791), all over one HTTPClient seam
// with Basic auth, timeouts and bounded retries on 408/425/429/5xx that
// honour Retry-After. ETags are kept verbatim (weak and unquoted included).
//
// It also provides Collection, the connector the pim/davcontacts and
// pim/davcalendar adapters expose per collection.
//
// It imports pim and the standard library only; never bridge. RFCs: 4918,
// 6578, 6352, 4791, 5689, 7232.
package davext

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/pimbridge/pimbridge/internal/retry"
	"github.com/pimbridge/pimbridge/pim"
)

// HTTPClient is the seam every request goes through; *http.Client
// implements it, and so does go-webdav's webdav.HTTPClient.
type HTTPClient interface {
	Do(req *http.Request) (*http.Response, error)
}

// Options configures a Client. The zero value is usable.
type Options struct {
	// HTTPClient sends the requests. If nil, an *http.Client with Timeout
	// and a pooled transport (16 idle connections per host) is used.
	HTTPClient HTTPClient
	// Timeout bounds one request when HTTPClient is nil. Zero means 60 s.
	Timeout time.Duration
	// Username and Password are sent with Basic auth when Username is set.
	Username, Password string
	// MaxRetries is how often a request that failed with a retryable
	// status (or, for GET/PROPFIND/REPORT, a transport error) is repeated.
	// Zero means 4; negative means never.
	MaxRetries int
	// RetryDelay is the first backoff delay, doubled on each retry and
	// shortened by up to a quarter at random (retry.Backoff). Zero means 250 ms.
	RetryDelay time.Duration
	// MaxRetryDelay caps one wait. A Retry-After longer than this ends the
	// retries at once and the *pim.StatusError (with RetryAfter) is
	// returned for the caller to schedule. Zero means 30 s.
	MaxRetryDelay time.Duration
	// Logger receives retry notices. If nil, slog.Default() is used.
	Logger *slog.Logger
}

// Client talks WebDAV to one server. Hrefs given to and returned by its
// methods are escaped absolute paths ("/alice/book/x.vcf"), resolved
// against the endpoint's scheme and host. Safe for concurrent use.
type Client struct {
	base       *url.URL
	http       HTTPClient
	user, pass string
	maxRetries int
	delay      time.Duration
	maxDelay   time.Duration
	log        *slog.Logger
}

// New returns a Client for the server at endpoint (any URL on it; only
// scheme, host and the path as a default base are used).
func New(endpoint string, opts *Options) (*Client, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return nil, fmt.Errorf("davext: endpoint: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("davext: endpoint %q: need an http(s) URL with a host", endpoint)
	}
	if opts == nil {
		opts = &Options{}
	}
	c := &Client{
		base:       u,
		http:       opts.HTTPClient,
		user:       opts.Username,
		pass:       opts.Password,
		maxRetries: opts.MaxRetries,
		delay:      opts.RetryDelay,
		maxDelay:   opts.MaxRetryDelay,
		log:        opts.Logger,
	}
	if c.http == nil {
		timeout := opts.Timeout
		if timeout == 0 {
			timeout = 60 * time.Second
		}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 16
		c.http = &http.Client{Timeout: timeout, Transport: tr}
	}
	if c.maxRetries == 0 {
		c.maxRetries = 4
	}
	if c.delay == 0 {
		c.delay = 250 * time.Millisecond
	}
	if c.maxDelay == 0 {
		c.maxDelay = 30 * time.Second
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	return c, nil
}

// Endpoint returns the URL the client was made for.
func (c *Client) Endpoint() *url.URL { u := *c.base; return &u }

// URL resolves an href (an escaped path or an absolute URL) against the
// endpoint.
func (c *Client) URL(href string) string {
	ref, err := url.Parse(href)
	if err != nil {
		return c.base.Scheme + "://" + c.base.Host + href
	}
	return c.base.ResolveReference(ref).String()
}

// NormalizeHref turns an href from a server (maybe an absolute URL, maybe
// escaped differently) into the canonical escaped path this package uses
// as an object's identity.
func NormalizeHref(h string) string {
	h = strings.TrimSpace(h)
	u, err := url.Parse(h)
	if err != nil {
		return h
	}
	p := u.Path // unescaped
	if p == "" {
		return h
	}
	return (&url.URL{Path: p}).EscapedPath()
}

// request is one HTTP exchange, replayable for retries.
type request struct {
	method string
	href   string
	header http.Header
	body   []byte
}

// do sends r with retries and returns the response of a 2xx reply; any
// other reply becomes a *pim.StatusError (body read and closed).
func (c *Client) do(ctx context.Context, r request) (*http.Response, error) {
	idempotent := r.method == http.MethodGet || r.method == "PROPFIND" || r.method == "REPORT" || r.method == http.MethodHead
	for attempt := 0; ; attempt++ {
		resp, err := c.once(ctx, r)
		if err == nil {
			return resp, nil
		}
		if ctx.Err() != nil || c.maxRetries < 0 || attempt >= c.maxRetries {
			return nil, err
		}
		wait := retry.Backoff{Base: c.delay, Max: c.maxDelay, Jitter: 0.25}.Delay(attempt + 1)
		var se *pim.StatusError
		switch {
		case errors.As(err, &se):
			if !se.Retryable() {
				return nil, err
			}
			if se.RetryAfter > c.maxDelay {
				return nil, err
			}
			if se.RetryAfter > 0 {
				wait = se.RetryAfter
			}
		case idempotent && retry.Transient(err):
		default:
			return nil, err
		}
		c.log.Debug("davext: retrying", "method", r.method, "href", r.href, "attempt", attempt+1, "wait", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, err
		case <-t.C:
		}
	}
}

func (c *Client) once(ctx context.Context, r request) (*http.Response, error) {
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, c.URL(r.href), body)
	if err != nil {
		return nil, err
	}
	for k, v := range r.header {
		req.Header[k] = v
	}
	if c.user != "" {
		req.SetBasicAuth(c.user, c.pass)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp, nil
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	return nil, &pim.StatusError{
		Method:     r.method,
		URL:        req.URL.Redacted(),
		Code:       resp.StatusCode,
		Body:       string(b),
		RetryAfter: pim.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now()),
	}
}

// readAll reads and closes a response body.
func readAll(resp *http.Response) ([]byte, error) {
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}
