package crmclient

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/pimbridge/pimbridge/crm"
)

// Subscribe returns the caller's subscription of kind for clientID,
// creating it on first use. Offline needs Go Offline, outlook needs Sync to
// Outlook (crm.ErrForbidden otherwise).
func (c *Client) Subscribe(ctx context.Context, clientID, kind string) (crm.Subscription, error) {
	var s crm.Subscription
	_, err := c.call(ctx, http.MethodPost, "/api/sync/subscriptions", nil, map[string]string{"clientid": clientID, "kind": kind}, &s)
	return s, err
}

// Subscriptions lists the caller's subscriptions.
func (c *Client) Subscriptions(ctx context.Context) ([]crm.Subscription, error) {
	var out struct {
		Value []crm.Subscription `json:"value"`
	}
	_, err := c.call(ctx, http.MethodGet, "/api/sync/subscriptions", nil, nil, &out)
	return out.Value, err
}

// DeleteSubscription removes a subscription and its SyncEntry rows.
func (c *Client) DeleteSubscription(ctx context.Context, subID string) error {
	_, err := c.call(ctx, http.MethodDelete, "/api/sync/subscriptions/"+url.PathEscape(subID), nil, nil, nil)
	return err
}

// PrepareResult is the answer of Prepare.
type PrepareResult struct {
	MetadataVersion int64 `json:"metadataversion"`
	// MaxBatchSize is the largest batch (rows) the server serves; 0 when
	// the server does not say.
	MaxBatchSize int                `json:"maxbatchsize,omitempty"`
	Entities     []crm.PrepareCount `json:"entities"`
}

// Count returns the counts of one entity (zero when absent).
func (p PrepareResult) Count(entity string) crm.PrepareCount {
	for _, c := range p.Entities {
		if c.Entity == entity {
			return c
		}
	}
	return crm.PrepareCount{Entity: entity}
}

// Prepare merges the changes since the last prepare into the
// subscription's SyncEntry and returns per-entity insert and delete counts.
func (c *Client) Prepare(ctx context.Context, subID string) (PrepareResult, error) {
	var out PrepareResult
	_, err := c.call(ctx, http.MethodPost, "/api/sync/subscriptions/"+url.PathEscape(subID)+"/prepare", nil, nil, &out)
	return out, err
}

// NextBatch fetches the next batch of one entity: the unacknowledged one
// again if there is one, else a new one of at most size rows (0: server
// default). An empty batch (Header.Result == crm.BatchEmpty) means nothing
// is pending. Compare Header.MetadataVersion with your metadata before
// inserting rows. Deletes are records that were deleted (tombstones);
// Left are records that still exist but left the user's view (out of the
// subscription's filter, or no longer readable, e.g. reassigned).
func (c *Client) NextBatch(ctx context.Context, subID, entity string, size int) (*crm.Batch, error) {
	p := "/api/sync/subscriptions/" + url.PathEscape(subID) + "/batches?leftfilter=1&entity=" + url.QueryEscape(entity)
	if size > 0 {
		p += "&size=" + strconv.Itoa(size)
	}
	resp, err := c.Open(ctx, http.MethodGet, p, nil, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, err := readBody(resp)
		if err != nil {
			return nil, fmt.Errorf("crmclient: batch: read body: %w", err)
		}
		return nil, apiError(&Response{Status: resp.StatusCode, Header: resp.Header, Body: body})
	}
	b, err := crm.ReadBatch(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("crmclient: batch: %w", err)
	}
	return b, nil
}

// PostSync acknowledges a batch: its rows are then never sent again unless
// they change.
func (c *Client) PostSync(ctx context.Context, subID string, batchID uint64) (crm.PostSyncResult, error) {
	var out crm.PostSyncResult
	_, err := c.call(ctx, http.MethodPost, "/api/sync/subscriptions/"+url.PathEscape(subID)+"/postsync", nil, map[string]uint64{"batch": batchID}, &out)
	return out, err
}

// RecordSyncInfo stores the statistics of a run.
func (c *Client) RecordSyncInfo(ctx context.Context, subID string, info crm.SyncInfo) error {
	_, err := c.call(ctx, http.MethodPost, "/api/sync/subscriptions/"+url.PathEscape(subID)+"/syncinfo", nil, info, nil)
	return err
}

// SyncInfo returns the latest statistics, newest first.
func (c *Client) SyncInfo(ctx context.Context, subID string) ([]crm.SyncInfo, error) {
	var out struct {
		Value []crm.SyncInfo `json:"value"`
	}
	_, err := c.call(ctx, http.MethodGet, "/api/sync/subscriptions/"+url.PathEscape(subID)+"/syncinfo", nil, nil, &out)
	return out.Value, err
}

// LocalFilter returns the caller's effective local data filter of an
// entity.
func (c *Client) LocalFilter(ctx context.Context, entity string) (crm.LocalFilter, error) {
	var f crm.LocalFilter
	_, err := c.call(ctx, http.MethodGet, "/api/sync/filters/"+url.PathEscape(entity), nil, nil, &f)
	return f, err
}

// SetLocalFilter sets the caller's own local data filter (an OData $filter
// with @me, @now-Nd and isparty(@me)); it fails with crm.ErrForbidden when
// an admin locked the default.
func (c *Client) SetLocalFilter(ctx context.Context, entity, filter string) (crm.LocalFilter, error) {
	var f crm.LocalFilter
	_, err := c.call(ctx, http.MethodPut, "/api/sync/filters/"+url.PathEscape(entity), nil, map[string]any{"filter": filter}, &f)
	return f, err
}

// SetDefaultLocalFilter sets the default filter for everyone (admins);
// locked stops users from replacing it.
func (c *Client) SetDefaultLocalFilter(ctx context.Context, entity, filter string, locked bool) (crm.LocalFilter, error) {
	var f crm.LocalFilter
	_, err := c.call(ctx, http.MethodPut, "/api/sync/filters/"+url.PathEscape(entity)+"?default=true", nil, map[string]any{"filter": filter, "locked": locked}, &f)
	return f, err
}

// ClaimPrimary makes clientID the caller's synchronizing client and returns
// the new fencing generation. Use c.WithGeneration(p.Generation) for the
// primary's requests: once another client claims, they fail with
// crm.ErrStalePrimary.
func (c *Client) ClaimPrimary(ctx context.Context, clientID string) (crm.Primary, error) {
	var p crm.Primary
	_, err := c.call(ctx, http.MethodPost, "/api/sync/primary", nil, map[string]string{"clientid": clientID}, &p)
	return p, err
}

// Primary returns the caller's current primary client.
func (c *Client) Primary(ctx context.Context) (crm.Primary, error) {
	var p crm.Primary
	_, err := c.call(ctx, http.MethodGet, "/api/sync/primary", nil, nil, &p)
	return p, err
}
