package offline

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/pimbridge/pimbridge/crm"
)

// SchemaChange is one difference applied to the replica.
type SchemaChange struct {
	Entity       string
	Attribute    string // a new attribute of Entity ("" for a new entity)
	Relationship string // a new relationship whose lookup is on Entity
}

// propagateSchema propagates schema changes (docs/offline.md): it loads the
// server's metadata, compares it with the replica's (entities, attributes,
// relationships) and applies the differences to the replica: new custom
// attributes become columns, new custom entities tables, new custom
// one-to-many relationships lookup columns. Something the replica cannot
// hold (a built-in entity this client does not know, an attribute whose
// type changed or whose type it does not know) is ErrClientVersion. It returns the server's metadata version.
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
	hadRel := map[string]bool{}
	for _, rel := range local.Relationships {
		hadRel[rel.Name] = true
	}
	for _, se := range srv.Entities {
		le, err := local.Entity(se.Name)
		if err != nil {
			c, err := e.addEntity(ctx, se)
			if err != nil {
				return 0, nil, err
			}
			changes = append(changes, c)
			continue
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
			if sa.Type == crm.TypeLookup {
				// A custom one-to-many relationship: its lookup on the
				// referencing entity (the relationship change follows).
				if len(sa.Targets) != 1 {
					return 0, nil, fmt.Errorf("%w: custom lookup %s.%s has %d targets", ErrClientVersion, se.Name, sa.Name, len(sa.Targets))
				}
				rel := crm.Relationship{Referencing: se.Name, ReferencingAttribute: sa.Name, Referenced: sa.Targets[0]}
				if _, _, err := e.replica.AddRelationship(ctx, rel); err != nil {
					return 0, nil, cannotHold(err, fmt.Sprintf("relationship %s.%s -> %s", se.Name, sa.Name, sa.Targets[0]))
				}
				continue
			}
			if _, err := e.replica.AddAttribute(ctx, se.Name, sa); err != nil {
				return 0, nil, fmt.Errorf("offline: add %s.%s to the replica: %w", se.Name, sa.Name, err)
			}
			changes = append(changes, SchemaChange{Entity: se.Name, Attribute: sa.Name})
			e.log.Info("offline: schema propagated", "entity", se.Name, "attribute", sa.Name)
		}
	}
	// The other way round: what the client has and the server lacks means
	// an older server (custom entities and attributes it dropped are kept;
	// the server no longer sends them).
	for _, le := range local.Entities {
		se, err := srv.Entity(le.Name)
		if err != nil {
			if le.Custom {
				continue
			}
			return 0, nil, fmt.Errorf("%w: it has no entity %s", ErrServerVersion, le.Name)
		}
		for _, la := range le.Attributes {
			if !la.Custom && !le.Custom && se.Attr(la.Name) == nil {
				return 0, nil, fmt.Errorf("%w: it has no attribute %s.%s", ErrServerVersion, le.Name, la.Name)
			}
		}
	}
	// Relationships: every one of the server's must now be in the replica
	// (custom ones came with their lookups above).
	now, err := e.replica.Metadata(ctx)
	if err != nil {
		return 0, nil, err
	}
	have := map[string]bool{}
	for _, rel := range now.Relationships {
		have[rel.Name] = true
	}
	for _, rel := range srv.Relationships {
		if !have[rel.Name] {
			return 0, nil, fmt.Errorf("%w: relationship %s", ErrClientVersion, rel.Name)
		}
		if !hadRel[rel.Name] {
			changes = append(changes, SchemaChange{Entity: rel.Referencing, Relationship: rel.Name})
			e.log.Info("offline: schema propagated", "relationship", rel.Name)
		}
	}
	if err := setState(ctx, e.replica.DB(), keyMetaVersion, strconv.FormatInt(srv.Version, 10)); err != nil {
		return 0, nil, err
	}
	return srv.Version, changes, nil
}

// addEntity creates a server's entity in the replica, as the server
// defines it (attributes, custom lookups, states). Only a custom entity
// can be new: a built-in entity the client does not know, or a definition
// it cannot hold (an attribute type it does not know), is ErrClientVersion.
func (e *Engine) addEntity(ctx context.Context, se *crm.Entity) (SchemaChange, error) {
	if !se.Custom {
		return SchemaChange{}, fmt.Errorf("%w: entity %s", ErrClientVersion, se.Name)
	}
	if _, err := e.replica.AddEntity(ctx, *se); err != nil {
		return SchemaChange{}, cannotHold(err, "entity "+se.Name)
	}
	e.log.Info("offline: schema propagated", "entity", se.Name, "set", se.SetName)
	return SchemaChange{Entity: se.Name}, nil
}

// cannotHold turns the replica's refusal of a server definition into
// ErrClientVersion (this client cannot hold it); other errors pass.
func cannotHold(err error, what string) error {
	if errors.Is(err, crm.ErrInvalidArgument) || errors.Is(err, crm.ErrConflict) || errors.Is(err, crm.ErrUnknownEntity) {
		return fmt.Errorf("%w: %s: %w", ErrClientVersion, what, err)
	}
	return fmt.Errorf("offline: add %s to the replica: %w", what, err)
}

// ServerMetadataVersion is the server metadata version the replica's schema
// was last propagated from.
func (e *Engine) ServerMetadataVersion(ctx context.Context) (int64, error) {
	return getInt(ctx, e.replica.DB(), keyMetaVersion)
}
