package offline

import (
	"context"
	"fmt"
	"strconv"
)

// SchemaChange is one difference applied to the replica.
type SchemaChange struct {
	Entity    string
	Attribute string
}

// propagateSchema is seed 001's "propagate schema changes": it loads the
// server's metadata, compares it with the replica's (entities, attributes,
// relationships) and applies the differences to the replica (new custom
// attributes become columns). Something the replica cannot hold (an entity
// this client does not know, an attribute whose type changed) is
// ErrClientVersion. It returns the server's metadata version.
func (e *Engine) propagateSchema(ctx context.Context, r Remote) (int64, []SchemaChange, error) {
	srv, err := r.Metadata(ctx)
	if err != nil {
		return 0, nil, unavailable(fmt.Errorf("offline: server metadata: %w", err))
	}
	local, err := e.replica.Metadata(ctx)
	if err != nil {
		return 0, nil, err
	}
	var changes []SchemaChange
	for _, se := range srv.Entities {
		le, err := local.Entity(se.Name)
		if err != nil {
			return 0, nil, fmt.Errorf("%w: entity %s", ErrClientVersion, se.Name)
		}
		for _, sa := range se.Attributes {
			la := le.Attr(sa.Name)
			if la != nil {
				if la.Type != sa.Type {
					return 0, nil, fmt.Errorf("%w: %s.%s is %s on the server, %s here", ErrClientVersion, se.Name, sa.Name, sa.Type, la.Type)
				}
				continue
			}
			if !sa.Custom {
				return 0, nil, fmt.Errorf("%w: system attribute %s.%s", ErrClientVersion, se.Name, sa.Name)
			}
			if _, err := e.replica.AddAttribute(ctx, se.Name, sa); err != nil {
				return 0, nil, fmt.Errorf("offline: add %s.%s to the replica: %w", se.Name, sa.Name, err)
			}
			changes = append(changes, SchemaChange{Entity: se.Name, Attribute: sa.Name})
			e.log.Info("offline: schema propagated", "entity", se.Name, "attribute", sa.Name)
		}
	}
	// The other way round: what the client has and the server lacks means
	// an older server (custom attributes it dropped are kept; the server
	// no longer sends them).
	for _, le := range local.Entities {
		se, err := srv.Entity(le.Name)
		if err != nil {
			return 0, nil, fmt.Errorf("%w: it has no entity %s", ErrServerVersion, le.Name)
		}
		for _, la := range le.Attributes {
			if !la.Custom && se.Attr(la.Name) == nil {
				return 0, nil, fmt.Errorf("%w: it has no attribute %s.%s", ErrServerVersion, le.Name, la.Name)
			}
		}
	}
	have := map[string]bool{}
	for _, rel := range local.Relationships {
		have[rel.Name] = true
	}
	for _, rel := range srv.Relationships {
		if !have[rel.Name] {
			return 0, nil, fmt.Errorf("%w: relationship %s", ErrClientVersion, rel.Name)
		}
	}
	if err := setState(ctx, e.replica.DB(), keyMetaVersion, strconv.FormatInt(srv.Version, 10)); err != nil {
		return 0, nil, err
	}
	return srv.Version, changes, nil
}

// ServerMetadataVersion is the server metadata version the replica's schema
// was last propagated from.
func (e *Engine) ServerMetadataVersion(ctx context.Context) (int64, error) {
	return getInt(ctx, e.replica.DB(), keyMetaVersion)
}
