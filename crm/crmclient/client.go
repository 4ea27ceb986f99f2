// Package crmclient is the HTTP client of the pimbridge CRM server's API
// (crm/crmserver): records (CRUD, queries with paging, $batch), metadata
// and custom attributes, and the sync protocol (subscriptions, prepare,
// batches, postsync, syncinfo, local data filters, the primary client).
//
// It imports crm (whose wire types the server shares), never crmserver.
//
// Every error from the server is an *APIError whose Unwrap returns the crm
// sentinel of its code, so callers write errors.Is(err, crm.ErrNotFound),
// errors.Is(err, crm.ErrPreconditionFailed) (412), errors.Is(err,
// crm.ErrStalePrimary) and so on. APIError.Retryable follows the status
// table of internal/retry (408, 425, 429, most 5xx), with RetryAfter from the Retry-After header.
//
// Writes take *WriteOptions: If-Match (a version), suppressing duplicate
// detection, and the CallerOrigin of a replayed offline request. A client
// made WithGeneration sends the primary-client fencing generation on every
// request, so that a bridge that lost the primary role is refused with
// crm.ErrStalePrimary. Do sends a raw request (for replaying a queued
// offline request as it was recorded).
package crmclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/internal/retry"
)

// Options configure a Client.
type Options struct {
	// HTTPClient sends the requests; nil means a client with a 60 s
	// timeout.
	HTTPClient *http.Client
	// User and Password give HTTP Basic credentials; Token a bearer token
	// (which wins when both are set).
	User, Password string
	Token          string
	// UserAgent is sent as User-Agent; empty means "pimbridge-crmclient".
	UserAgent string
}

// Client talks to one CRM server as one user. It is safe for concurrent
// use.
type Client struct {
	base       *url.URL
	hc         *http.Client
	opts       Options
	generation int64 // 0: no fencing header
	cache      *metaCache
}

// metaCache is the metadata shared by a client and its copies.
type metaCache struct {
	mu   sync.Mutex
	meta *crm.Metadata
}

// New returns a client for the server at baseURL (e.g.
// "http://127.0.0.1:5555").
func New(baseURL string, opts *Options) (*Client, error) {
	u, err := url.Parse(strings.TrimSuffix(baseURL, "/"))
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("crmclient: bad base URL %q", baseURL)
	}
	c := &Client{base: u, cache: &metaCache{}}
	if opts != nil {
		c.opts = *opts
	}
	c.hc = c.opts.HTTPClient
	if c.hc == nil {
		c.hc = &http.Client{Timeout: 60 * time.Second}
	}
	return c, nil
}

// WithGeneration returns a copy of c that sends the fencing generation of
// the primary client on every request (see ClaimPrimary).
func (c *Client) WithGeneration(gen int64) *Client {
	cc := *c
	cc.generation = gen
	return &cc
}

// WithToken returns a copy of c that authenticates with a bearer token.
func (c *Client) WithToken(tok string) *Client {
	cc := *c
	cc.opts.Token = tok
	return &cc
}

// BaseURL returns the server's base URL.
func (c *Client) BaseURL() string { return c.base.String() }

// APIError is an error answer of the server.
type APIError struct {
	Status     int
	Code       string // crm.ErrorCode spelling, e.g. "not_found", "stale_primary"
	Message    string
	RetryAfter time.Duration // from Retry-After; 0 when absent
	// Duplicates are the records duplicate detection found (409
	// duplicate_record).
	Duplicates []crm.Duplicate
}

func (e *APIError) Error() string {
	return fmt.Sprintf("crmclient: %d %s: %s", e.Status, e.Code, e.Message)
}

// Unwrap returns the crm sentinel of the error code (or of the status).
func (e *APIError) Unwrap() error {
	if err, ok := codeSentinels[e.Code]; ok {
		return err
	}
	switch e.Status {
	case http.StatusUnauthorized:
		return crm.ErrUnauthenticated
	case http.StatusForbidden:
		return crm.ErrForbidden
	case http.StatusNotFound:
		return crm.ErrNotFound
	case http.StatusPreconditionFailed:
		return crm.ErrPreconditionFailed
	case http.StatusConflict:
		return crm.ErrConflict
	case http.StatusBadRequest:
		return crm.ErrInvalidArgument
	}
	return nil
}

// Retryable reports whether the request may succeed if sent again later
// (retry.TransientStatus).
func (e *APIError) Retryable() bool { return retry.TransientStatus(e.Status) }

var codeSentinels = map[string]error{
	"unknown_entity":             crm.ErrUnknownEntity,
	"unknown_attribute":          crm.ErrUnknownAttribute,
	"invalid_id":                 crm.ErrInvalidID,
	"required_attribute_missing": crm.ErrRequired,
	"not_found":                  crm.ErrNotFound,
	"precondition_failed":        crm.ErrPreconditionFailed,
	"duplicate_record":           crm.ErrDuplicate,
	"stale_primary":              crm.ErrStalePrimary,
	"conflict":                   crm.ErrConflict,
	"record_read_only":           crm.ErrReadOnly,
	"unauthenticated":            crm.ErrUnauthenticated,
	"forbidden":                  crm.ErrForbidden,
	"message_unavailable":        crm.ErrUnavailable,
	"invalid_argument":           crm.ErrInvalidArgument,
	"request_too_large":          crm.ErrInvalidArgument,
	"batch_group_failed":         crm.ErrConflict,
	"batch_dependency_failed":    crm.ErrConflict,
}

// Response is a raw answer of Do.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Do sends a raw request: path is relative to the base URL (e.g.
// "/api/data/contacts(…)"), header is added to the client's own headers
// (auth, fencing). It returns the answer whatever its status; only
// transport failures are errors. Use it to replay a recorded request.
func (c *Client) Do(ctx context.Context, method, path string, header http.Header, body []byte) (*Response, error) {
	resp, err := c.Open(ctx, method, path, header, body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := readBody(resp)
	if err != nil {
		return nil, fmt.Errorf("crmclient: %s %s: read body: %w", method, path, err)
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

// Open sends a raw request like Do and returns the answer with its body
// unread; the caller must close resp.Body. Use it for sync batches, which
// can be tens of megabytes: read them as a stream.
func (c *Client) Open(ctx context.Context, method, path string, header http.Header, body []byte) (*http.Response, error) {
	u := c.base.String() + path
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, fmt.Errorf("crmclient: %s %s: %w", method, path, err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if body != nil && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("OData-Version", "4.0")
	ua := c.opts.UserAgent
	if ua == "" {
		ua = "pimbridge-crmclient"
	}
	req.Header.Set("User-Agent", ua)
	switch {
	case c.opts.Token != "":
		req.Header.Set("Authorization", "Bearer "+c.opts.Token)
	case c.opts.User != "":
		req.SetBasicAuth(c.opts.User, c.opts.Password)
	}
	if c.generation != 0 {
		req.Header.Set(crm.HeaderPrimaryGeneration, strconv.FormatInt(c.generation, 10))
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("crmclient: %s %s: %w", method, path, err)
	}
	return resp, nil
}

// maxPresize bounds the buffer allocated up front from a Content-Length.
const maxPresize = 1 << 30

// readBody reads a response body. With a Content-Length (a sync batch of
// tens of megabytes has one), the buffer is allocated once at that size:
// io.ReadAll's growth would hold about twice the body while copying.
func readBody(resp *http.Response) ([]byte, error) {
	n := resp.ContentLength
	if n < 0 || n > maxPresize || resp.Request.Method == http.MethodHead {
		return io.ReadAll(resp.Body)
	}
	// net/http's body reader stops at the Content-Length and reports a
	// short body as io.ErrUnexpectedEOF.
	b := make([]byte, n)
	if _, err := io.ReadFull(resp.Body, b); err != nil {
		return nil, err
	}
	return b, nil
}

// apiError builds the *APIError of a non-2xx response.
func apiError(r *Response) error {
	e := &APIError{Status: r.Status}
	var body struct {
		Error struct {
			Code       string          `json:"code"`
			Message    string          `json:"message"`
			Duplicates []crm.Duplicate `json:"duplicates"`
		} `json:"error"`
	}
	if json.Unmarshal(r.Body, &body) == nil && body.Error.Code != "" {
		e.Code, e.Message, e.Duplicates = body.Error.Code, body.Error.Message, body.Error.Duplicates
	} else {
		e.Code = "http_" + strconv.Itoa(r.Status)
		e.Message = strings.TrimSpace(string(r.Body))
		if len(e.Message) > 200 {
			e.Message = e.Message[:200]
		}
	}
	if ra := r.Header.Get("Retry-After"); ra != "" {
		if n, err := strconv.Atoi(ra); err == nil {
			e.RetryAfter = time.Duration(n) * time.Second
		} else if t, err := http.ParseTime(ra); err == nil {
			e.RetryAfter = time.Until(t)
		}
	}
	return e
}

// call sends a request and decodes a JSON answer into out (if not nil).
func (c *Client) call(ctx context.Context, method, path string, header http.Header, in, out any) (*Response, error) {
	var body []byte
	if in != nil {
		var err error
		if raw, ok := in.([]byte); ok {
			body = raw
		} else if body, err = json.Marshal(in); err != nil {
			return nil, fmt.Errorf("crmclient: encode request: %w", err)
		}
	}
	r, err := c.Do(ctx, method, path, header, body)
	if err != nil {
		return nil, err
	}
	if r.Status < 200 || r.Status > 299 {
		return r, apiError(r)
	}
	if out != nil && len(r.Body) > 0 {
		if err := json.Unmarshal(r.Body, out); err != nil {
			return r, fmt.Errorf("crmclient: %s %s: decode answer: %w", method, path, err)
		}
	}
	return r, nil
}

// Metadata returns the server's metadata.
func (c *Client) Metadata(ctx context.Context) (*crm.Metadata, error) {
	var m crm.Metadata
	if _, err := c.call(ctx, http.MethodGet, "/api/metadata", nil, nil, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// AddAttribute adds a custom attribute (admins only) and returns the new
// metadata version.
func (c *Client) AddAttribute(ctx context.Context, entity string, a crm.Attribute) (int64, error) {
	var out struct {
		Version int64 `json:"version"`
	}
	if _, err := c.call(ctx, http.MethodPost, "/api/metadata/"+url.PathEscape(entity)+"/attributes", nil, a, &out); err != nil {
		return 0, err
	}
	return out.Version, nil
}

// WhoAmI is the answer of WhoAmI.
type WhoAmI struct {
	UserID     crm.ID   `json:"UserId"`
	Name       string   `json:"name"`
	Roles      []string `json:"roles"`
	Privileges []string `json:"privileges"`
	// RoleDefinitions are the user's roles as the server defines them
	// (rights per entity and privileges); empty from older servers.
	RoleDefinitions []crm.Role `json:"roledefinitions,omitempty"`
}

// WhoAmI returns the calling user.
func (c *Client) WhoAmI(ctx context.Context) (WhoAmI, error) {
	var w WhoAmI
	_, err := c.call(ctx, http.MethodGet, "/api/whoami", nil, nil, &w)
	return w, err
}

// Messages returns the message availability table.
func (c *Client) Messages(ctx context.Context) ([]crm.Message, error) {
	var out struct {
		Value []crm.Message `json:"value"`
	}
	_, err := c.call(ctx, http.MethodGet, "/api/messages", nil, nil, &out)
	return out.Value, err
}

// Token asks for a bearer token; use it with WithToken.
func (c *Client) Token(ctx context.Context) (string, time.Time, error) {
	var out struct {
		Token     string `json:"access_token"`
		ExpiresOn string `json:"expires_on"`
	}
	if _, err := c.call(ctx, http.MethodPost, "/api/auth/token", nil, nil, &out); err != nil {
		return "", time.Time{}, err
	}
	exp, _ := time.Parse(time.RFC3339, out.ExpiresOn)
	return out.Token, exp, nil
}

var errNoEntity = errors.New("crmclient: unknown entity")
