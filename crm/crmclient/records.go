package crmclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/pimbridge/pimbridge/crm"
)

// WriteOptions tune a create, update or delete. A nil *WriteOptions is the
// zero value.
type WriteOptions struct {
	// IfMatch, when non-zero, sends If-Match: W/"<IfMatch>"; the server
	// answers 412 (crm.ErrPreconditionFailed) when the record changed.
	IfMatch int64
	// SuppressDuplicateDetection sends MSCRM.SuppressDuplicateDetection.
	SuppressDuplicateDetection bool
	// CallerOrigin is sent as MSCRM.CallerOrigin (e.g. an offline replay
	// with its queued time); zero sends nothing (Online).
	CallerOrigin crm.CallerOrigin
}

func (o *WriteOptions) header() http.Header {
	h := http.Header{}
	if o == nil {
		return h
	}
	if o.IfMatch != 0 {
		h.Set("If-Match", crm.ETag(o.IfMatch))
	}
	if o.SuppressDuplicateDetection {
		h.Set(crm.HeaderSuppressDuplicates, "true")
	}
	if o.CallerOrigin.Kind != "" {
		h.Set(crm.HeaderCallerOrigin, o.CallerOrigin.String())
	}
	return h
}

// entity resolves a logical or entity-set name. The client needs the
// attribute types for JSON, so it caches the server's metadata and fetches
// it again when it meets an unknown entity or attribute (a customization).
func (c *Client) entity(ctx context.Context, name string) (*crm.Entity, error) {
	c.cache.mu.Lock()
	m := c.cache.meta
	c.cache.mu.Unlock()
	if m != nil {
		if e, err := m.Entity(name); err == nil {
			return e, nil
		}
	}
	return c.refreshEntity(ctx, name)
}

func (c *Client) refreshEntity(ctx context.Context, name string) (*crm.Entity, error) {
	m, err := c.Metadata(ctx)
	if err != nil {
		return nil, err
	}
	c.cache.mu.Lock()
	c.cache.meta = m
	c.cache.mu.Unlock()
	e, err := m.Entity(name)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errNoEntity, err)
	}
	return e, nil
}

// decode unmarshals a record, refreshing the metadata once if the record
// has an attribute the cached metadata lacks.
func (c *Client) decode(ctx context.Context, e *crm.Entity, body []byte) (crm.Record, error) {
	r, err := e.UnmarshalRecord(body)
	if errors.Is(err, crm.ErrUnknownAttribute) {
		if e, err = c.refreshEntity(ctx, e.Name); err != nil {
			return crm.Record{}, err
		}
		r, err = e.UnmarshalRecord(body)
	}
	if err != nil {
		return crm.Record{}, fmt.Errorf("crmclient: decode %s: %w", e.Name, err)
	}
	return r, nil
}

func recordPath(e *crm.Entity, id crm.ID) string {
	return "/api/data/" + e.SetName + "(" + id.String() + ")"
}

// Create creates a record and returns it as stored (the server answers 201
// with Prefer: return=representation). When r.ID is set the create is
// idempotent: sending the same body again succeeds (then the record is
// read back), a different body fails with crm.ErrConflict.
func (c *Client) Create(ctx context.Context, r crm.Record, opts *WriteOptions) (crm.Record, error) {
	e, err := c.entity(ctx, r.Entity)
	if err != nil {
		return crm.Record{}, err
	}
	body, err := e.MarshalRecord(crm.Record{Entity: r.Entity, ID: r.ID, Attrs: r.Attrs})
	if err != nil {
		return crm.Record{}, err
	}
	h := opts.header()
	h.Set("Prefer", "return=representation")
	resp, err := c.call(ctx, http.MethodPost, "/api/data/"+e.SetName, h, body, nil)
	if err != nil {
		return crm.Record{}, err
	}
	if resp.Status == http.StatusNoContent { // idempotent repeat
		id := r.ID
		if loc := resp.Header.Get("OData-EntityId"); loc != "" {
			if i := strings.LastIndexByte(loc, '('); i >= 0 {
				if x, err := crm.ParseID(strings.TrimSuffix(loc[i+1:], ")")); err == nil {
					id = x
				}
			}
		}
		return c.Get(ctx, e.Name, id)
	}
	return c.decode(ctx, e, resp.Body)
}

// Get reads a record; sel limits the attributes.
func (c *Client) Get(ctx context.Context, entity string, id crm.ID, sel ...string) (crm.Record, error) {
	e, err := c.entity(ctx, entity)
	if err != nil {
		return crm.Record{}, err
	}
	p := recordPath(e, id)
	if len(sel) > 0 {
		p += "?$select=" + url.QueryEscape(strings.Join(sel, ","))
	}
	resp, err := c.call(ctx, http.MethodGet, p, nil, nil, nil)
	if err != nil {
		return crm.Record{}, err
	}
	return c.decode(ctx, e, resp.Body)
}

// Update sets the attributes in r.Attrs (only those) on record r.ID and
// returns the record after the update. Setting statecode/statuscode is the
// SetState message.
func (c *Client) Update(ctx context.Context, r crm.Record, opts *WriteOptions) (crm.Record, error) {
	e, err := c.entity(ctx, r.Entity)
	if err != nil {
		return crm.Record{}, err
	}
	body, err := e.MarshalRecord(crm.Record{Entity: r.Entity, Attrs: r.Attrs})
	if err != nil {
		return crm.Record{}, err
	}
	h := opts.header()
	h.Set("Prefer", "return=representation")
	resp, err := c.call(ctx, http.MethodPatch, recordPath(e, r.ID), h, body, nil)
	if err != nil {
		return crm.Record{}, err
	}
	return c.decode(ctx, e, resp.Body)
}

// Delete deletes a record.
func (c *Client) Delete(ctx context.Context, entity string, id crm.ID, opts *WriteOptions) error {
	e, err := c.entity(ctx, entity)
	if err != nil {
		return err
	}
	_, err = c.call(ctx, http.MethodDelete, recordPath(e, id), opts.header(), nil, nil)
	return err
}

// Query is a query over one entity: OData $select, $filter, $orderby and
// $top, with pages of PageSize records (Prefer: odata.maxpagesize).
type Query struct {
	Select   []string
	Filter   string // e.g. "lastname eq 'Smith' and contains(emailaddress1,'@example.com')"
	OrderBy  string // e.g. "lastname desc,firstname"
	Top      int
	PageSize int // 0: the server's default (5000)
}

func (q Query) values() url.Values {
	v := url.Values{}
	if len(q.Select) > 0 {
		v.Set("$select", strings.Join(q.Select, ","))
	}
	if q.Filter != "" {
		v.Set("$filter", q.Filter)
	}
	if q.OrderBy != "" {
		v.Set("$orderby", q.OrderBy)
	}
	if q.Top > 0 {
		v.Set("$top", strconv.Itoa(q.Top))
	}
	return v
}

// QueryPages runs a query and calls fn once per page, following
// @odata.nextLink until the last page or until fn returns an error.
func (c *Client) QueryPages(ctx context.Context, entity string, q Query, fn func(page []crm.Record) error) error {
	e, err := c.entity(ctx, entity)
	if err != nil {
		return err
	}
	h := http.Header{}
	if q.PageSize > 0 {
		h.Set("Prefer", "odata.maxpagesize="+strconv.Itoa(q.PageSize))
	}
	path := "/api/data/" + e.SetName
	if v := q.values().Encode(); v != "" {
		path += "?" + v
	}
	for path != "" {
		var page struct {
			Value    []json.RawMessage `json:"value"`
			NextLink string            `json:"@odata.nextLink"`
		}
		if _, err := c.call(ctx, http.MethodGet, path, h, nil, &page); err != nil {
			return err
		}
		recs := make([]crm.Record, 0, len(page.Value))
		for _, raw := range page.Value {
			r, err := c.decode(ctx, e, raw)
			if err != nil {
				return err
			}
			recs = append(recs, r)
		}
		if err := fn(recs); err != nil {
			return err
		}
		path = ""
		if page.NextLink != "" {
			u, err := url.Parse(page.NextLink)
			if err != nil {
				return fmt.Errorf("crmclient: bad nextLink %q", page.NextLink)
			}
			path = u.RequestURI()
		}
	}
	return nil
}

// QueryAll runs a query and returns every record of every page.
func (c *Client) QueryAll(ctx context.Context, entity string, q Query) ([]crm.Record, error) {
	var out []crm.Record
	err := c.QueryPages(ctx, entity, q, func(p []crm.Record) error {
		out = append(out, p...)
		return nil
	})
	return out, err
}

// Batch sends a JSON $batch. Requests sharing an AtomicityGroup (adjacent)
// commit or fail together. The error is only for the batch as a whole;
// each part has its own status (a failed group's other parts answer 424).
func (c *Client) Batch(ctx context.Context, reqs []crm.BatchRequest) ([]crm.BatchResponse, error) {
	var out struct {
		Responses []crm.BatchResponse `json:"responses"`
	}
	if _, err := c.call(ctx, http.MethodPost, "/api/data/$batch", nil, map[string]any{"requests": reqs}, &out); err != nil {
		return nil, err
	}
	return out.Responses, nil
}

// PartError returns the *APIError of a failed batch part, or nil for 2xx.
func PartError(r crm.BatchResponse) error {
	if r.Status >= 200 && r.Status <= 299 {
		return nil
	}
	return apiError(&Response{Status: r.Status, Header: http.Header{}, Body: r.Body})
}
