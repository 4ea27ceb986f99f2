package crmstore

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/pimbridge/pimbridge/crm"
)

// loadCustomEntities appends the stored custom entities to m in creation
// order.
func loadCustomEntities(ctx context.Context, db querier, m *crm.Metadata) error {
	rows, err := db.QueryContext(ctx, "SELECT name, def FROM custom_entities ORDER BY seq")
	if err != nil {
		return fmt.Errorf("crmstore: custom entities: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var name, def string
		if err := rows.Scan(&name, &def); err != nil {
			return fmt.Errorf("crmstore: custom entities: %w", err)
		}
		var e crm.Entity
		if err := json.Unmarshal([]byte(def), &e); err != nil {
			return fmt.Errorf("crmstore: custom entity %s: %w", name, err)
		}
		m.Entities = append(m.Entities, &e)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("crmstore: custom entities: %w", err)
	}
	return nil
}

// AddEntity adds a custom entity (crm.NewCustomEntity, or a definition
// copied from a server's metadata) with its table, and bumps the metadata
// version. Taken names are crm.ErrConflict, bad definitions
// crm.ErrInvalidArgument (crm.ErrUnknownType for an attribute type this
// version does not know).
func (s *Store) AddEntity(ctx context.Context, e crm.Entity) (*crm.Metadata, error) {
	// The write lock before the metadata lock: a write transaction holding
	// the former reads the metadata.
	tx, err := s.beginWrite(ctx)
	if err != nil {
		return nil, fmt.Errorf("crmstore: add entity: %w", err)
	}
	defer tx.Rollback()
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.meta.Clone()
	ne := &e
	ne.Attributes = append([]crm.Attribute(nil), e.Attributes...)
	if err := crm.ValidateCustomEntity(m, ne); err != nil {
		return nil, err
	}
	keyOnly := &crm.Entity{Name: ne.Name, Attributes: []crm.Attribute{{Name: ne.PrimaryKey, Type: crm.TypeUniqueID}}}
	for _, a := range ne.Attributes {
		if a.Name == ne.PrimaryKey {
			continue
		}
		if err := checkColumnName(keyOnly, a.Name); err != nil {
			return nil, err
		}
	}
	def, err := json.Marshal(ne)
	if err != nil {
		return nil, fmt.Errorf("crmstore: add entity: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO custom_entities (name, setname, def, seq)
		VALUES (?, ?, ?, (SELECT coalesce(max(seq), 0) + 1 FROM custom_entities))`, ne.Name, ne.SetName, string(def)); err != nil {
		if isUniqueErr(err) {
			return nil, fmt.Errorf("%w: custom entity %q exists", crm.ErrConflict, ne.Name)
		}
		return nil, fmt.Errorf("crmstore: add entity: %w", err)
	}
	m.Entities = append(m.Entities, ne)
	m.RebuildRelationships()
	if err := s.ensureTable(ctx, tx, ne); err != nil {
		return nil, err
	}
	if err := tx.QueryRowContext(ctx, "UPDATE meta SET version = version + 1 WHERE id = 1 RETURNING version").Scan(&m.Version); err != nil {
		return nil, fmt.Errorf("crmstore: add entity: %w", err)
	}
	if err := s.metaChanged(ctx, tx); err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("crmstore: add entity: %w", err)
	}
	s.meta = m
	s.log.Info("crmstore: custom entity added", "entity", ne.Name, "set", ne.SetName, "metadata_version", m.Version)
	return m, nil
}

// AddRelationship adds a custom one-to-many relationship: a custom lookup
// attribute rel.ReferencingAttribute on rel.Referencing pointing at
// rel.Referenced (a built-in entity). rel.Name is set from the three. It
// bumps the metadata version.
func (s *Store) AddRelationship(ctx context.Context, rel crm.Relationship) (*crm.Metadata, crm.Relationship, error) {
	// The write lock before the metadata lock: a write transaction holding
	// the former reads the metadata.
	tx, err := s.beginWrite(ctx)
	if err != nil {
		return nil, rel, fmt.Errorf("crmstore: add relationship: %w", err)
	}
	defer tx.Rollback()
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.meta.Clone()
	if err := crm.ValidateCustomRelationship(m, rel); err != nil {
		return nil, rel, err
	}
	e, _ := m.Entity(rel.Referencing)
	ref, _ := m.Entity(rel.Referenced)
	rel.Referencing, rel.Referenced = e.Name, ref.Name
	rel.Name = crm.RelationshipName(e.Name, rel.ReferencingAttribute, ref.Name)
	if err := checkColumnName(e, rel.ReferencingAttribute); err != nil {
		return nil, rel, err
	}
	a := crm.Attribute{Name: rel.ReferencingAttribute, Type: crm.TypeLookup, Targets: []string{ref.Name}, Custom: true}
	def, err := json.Marshal(a)
	if err != nil {
		return nil, rel, fmt.Errorf("crmstore: add relationship: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO custom_attributes (entity, name, def, seq)
		VALUES (?, ?, ?, (SELECT coalesce(max(seq), 0) + 1 FROM custom_attributes))`, e.Name, a.Name, string(def)); err != nil {
		return nil, rel, fmt.Errorf("crmstore: add relationship: %w", err)
	}
	e.Attributes = append(e.Attributes, a)
	m.RebuildRelationships()
	if err := s.ensureTable(ctx, tx, e); err != nil {
		return nil, rel, err
	}
	if err := tx.QueryRowContext(ctx, "UPDATE meta SET version = version + 1 WHERE id = 1 RETURNING version").Scan(&m.Version); err != nil {
		return nil, rel, fmt.Errorf("crmstore: add relationship: %w", err)
	}
	if err := s.metaChanged(ctx, tx); err != nil {
		return nil, rel, err
	}
	if err := tx.Commit(); err != nil {
		return nil, rel, fmt.Errorf("crmstore: add relationship: %w", err)
	}
	s.meta = m
	s.log.Info("crmstore: custom relationship added", "relationship", rel.Name, "metadata_version", m.Version)
	return m, rel, nil
}
