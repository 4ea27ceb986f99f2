package crmstore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/pimbridge/pimbridge/crm"
)

// BulkInsert inserts many records of one entity in one transaction with a
// prepared statement, bypassing business logic, security and plug-ins. It is
// for imports and benchmarks (a million rows take seconds, not the minutes
// the HTTP API would). Every record must set the same attributes; records
// without an ID get a new one. Versions come from the global sequence.
func (s *Store) BulkInsert(ctx context.Context, entity string, recs []crm.Record) error {
	if len(recs) == 0 {
		return nil
	}
	m, _ := s.Metadata(ctx)
	e, err := m.Entity(entity)
	if err != nil {
		return err
	}
	keys := sortedKeys(recs[0].Attrs)
	var attrs []*crm.Attribute
	names := []string{"id", "versionnumber", `"createdon"`, `"modifiedon"`}
	for _, k := range keys {
		if k == "createdon" || k == "modifiedon" || k == "versionnumber" {
			return fmt.Errorf("%w: bulk insert sets %s itself", crm.ErrInvalidArgument, k)
		}
		a := e.Attr(k)
		if a == nil || a.Type == crm.TypeUniqueID {
			return &crm.AttributeError{Entity: e.Name, Attribute: k, Err: crm.ErrUnknownAttribute}
		}
		attrs = append(attrs, a)
		for _, c := range columns(a) {
			names = append(names, q(c))
		}
	}
	tx, err := s.beginWrite(ctx)
	if err != nil {
		return fmt.Errorf("crmstore: bulk insert: %w", err)
	}
	defer tx.Rollback()
	var last int64
	if err := tx.QueryRowContext(ctx, "UPDATE seq SET v = v + ? WHERE id = 1 RETURNING v", len(recs)).Scan(&last); err != nil {
		return fmt.Errorf("crmstore: bulk insert: %w", err)
	}
	first := last - int64(len(recs)) + 1
	ph := strings.TrimSuffix(strings.Repeat("?, ", len(names)), ", ")
	stmt, err := tx.PrepareContext(ctx, "INSERT INTO "+table(e)+" ("+strings.Join(names, ", ")+") VALUES ("+ph+")")
	if err != nil {
		return fmt.Errorf("crmstore: bulk insert: %w", err)
	}
	defer stmt.Close()
	now := unix(s.now().UTC().Truncate(time.Second))
	args := make([]any, 0, len(names))
	for i, r := range recs {
		if len(r.Attrs) != len(keys) {
			return fmt.Errorf("%w: bulk insert record %d sets other attributes than the first", crm.ErrInvalidArgument, i)
		}
		id := r.ID
		if id == (crm.ID{}) {
			id = crm.NewID()
		}
		args = append(args[:0], id.String(), first+int64(i), now, now)
		for _, a := range attrs {
			v, ok := r.Attrs[a.Name]
			if !ok {
				return fmt.Errorf("%w: bulk insert record %d lacks %s", crm.ErrInvalidArgument, i, a.Name)
			}
			vals, err := toSQL(a, v)
			if err != nil {
				return err
			}
			args = append(args, vals...)
		}
		if _, err := stmt.ExecContext(ctx, args...); err != nil {
			return fmt.Errorf("crmstore: bulk insert %s: %w", e.Name, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("crmstore: bulk insert: %w", err)
	}
	return nil
}
