package crmclient

import (
	"context"
	"net/http"

	"github.com/pimbridge/pimbridge/crm"
)

// AddEntity creates a custom entity (admins only) and returns the new
// metadata version.
func (c *Client) AddEntity(ctx context.Context, req crm.EntityRequest) (int64, error) {
	var out struct {
		Version int64 `json:"version"`
	}
	if _, err := c.call(ctx, http.MethodPost, "/api/metadata/entities", nil, req, &out); err != nil {
		return 0, err
	}
	return out.Version, nil
}

// AddRelationship creates a custom one-to-many relationship (admins only):
// a lookup rel.ReferencingAttribute on rel.Referencing pointing at
// rel.Referenced. It returns the new metadata version and the relationship
// with its schema name.
func (c *Client) AddRelationship(ctx context.Context, rel crm.Relationship) (int64, crm.Relationship, error) {
	var out struct {
		Version      int64            `json:"version"`
		Relationship crm.Relationship `json:"relationship"`
	}
	if _, err := c.call(ctx, http.MethodPost, "/api/metadata/relationships", nil, rel, &out); err != nil {
		return 0, rel, err
	}
	return out.Version, out.Relationship, nil
}
