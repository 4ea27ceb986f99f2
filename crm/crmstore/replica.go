package crmstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmserver"
)

// Hooks for the offline engine, which keeps a crmstore as the local replica
// of one user's server data (DESIGN.md section 3).

// SQLTx returns the SQL transaction behind a Tx that Update passed to its
// function, so that a caller can write its own tables in the same
// transaction (the offline queue). ok is false for a View transaction.
func SQLTx(t crmserver.Tx) (tx *sql.Tx, ok bool) {
	x, isTxn := t.(*txn)
	if !isTxn {
		return nil, false
	}
	return sqlTx(x.q)
}

// ApplyBatch writes a sync batch into the store as a replica, inside t (a
// Tx from Update): upserts keep the server's version numbers, createdon and
// modifiedon, deletes remove the rows and leave tombstones. The version
// sequence is raised to the highest version seen. Every column of the batch
// must be an attribute of e (propagate the schema first). Applying the same
// batch twice gives the same rows.
func ApplyBatch(ctx context.Context, t crmserver.Tx, e *crm.Entity, b *crm.Batch) error {
	x, ok := t.(*txn)
	if !ok {
		return fmt.Errorf("%w: crmstore: apply batch: not a crmstore transaction", crm.ErrInvalidArgument)
	}
	tx, isTx := sqlTx(x.q)
	if !isTx {
		return fmt.Errorf("%w: crmstore: apply batch: read-only transaction", crm.ErrInvalidArgument)
	}
	if b.Entity != e.Name {
		return fmt.Errorf("%w: crmstore: batch of %s applied to %s", crm.ErrInvalidArgument, b.Entity, e.Name)
	}
	for _, id := range b.Deletes {
		res, err := x.q.ExecContext(ctx, "DELETE FROM "+table(e)+" WHERE id = ?", id.String())
		if err != nil {
			return fmt.Errorf("crmstore: apply batch: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			continue
		}
		v, err := nextVersion(ctx, x.q)
		if err != nil {
			return err
		}
		if _, err := x.q.ExecContext(ctx, "INSERT OR REPLACE INTO tombstones (entity, id, version) VALUES (?, ?, ?)", e.Name, id.String(), v); err != nil {
			return fmt.Errorf("crmstore: apply batch: %w", err)
		}
		if e.IsActivity {
			if _, err := x.q.ExecContext(ctx, "DELETE FROM activityparty WHERE activityid = ?", id.String()); err != nil {
				return fmt.Errorf("crmstore: apply batch: %w", err)
			}
		}
	}
	if len(b.Upserts) == 0 {
		return nil
	}
	attrs := make([]*crm.Attribute, 0, len(b.Columns))
	names := []string{"id", "versionnumber"}
	for _, c := range b.Columns {
		if c.Name == "versionnumber" || c.Name == e.PrimaryKey {
			continue
		}
		a := e.Attr(c.Name)
		if a == nil || a.Type != c.Type {
			return &crm.AttributeError{Entity: e.Name, Attribute: c.Name, Err: crm.ErrUnknownAttribute}
		}
		attrs = append(attrs, a)
		for _, col := range columns(a) {
			names = append(names, q(col))
		}
	}
	var tombs bool
	if err := x.q.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM tombstones WHERE entity = ?)", e.Name).Scan(&tombs); err != nil {
		return fmt.Errorf("crmstore: apply batch: %w", err)
	}
	ph := strings.TrimSuffix(strings.Repeat("?, ", len(names)), ", ")
	text := "INSERT OR REPLACE INTO " + table(e) + " (" + strings.Join(names, ", ") + ") VALUES (" + ph + ")"
	if x.s.pg {
		text = pgText(text)
	}
	stmt, err := tx.PrepareContext(ctx, text)
	if err != nil {
		return fmt.Errorf("crmstore: apply batch: %w", err)
	}
	defer stmt.Close()
	args := make([]any, 0, len(names))
	var maxVer int64
	for _, r := range b.Upserts {
		args = append(args[:0], r.ID.String(), r.Version)
		maxVer = max(maxVer, r.Version)
		for _, a := range attrs {
			vals, err := toSQL(a, r.Attrs[a.Name])
			if err != nil {
				return &crm.AttributeError{Entity: e.Name, ID: r.ID, Attribute: a.Name, Err: err}
			}
			args = append(args, vals...)
		}
		if _, err := stmt.ExecContext(ctx, args...); err != nil {
			return fmt.Errorf("crmstore: apply batch %s(%s): %w", e.Name, r.ID, err)
		}
		if tombs {
			if _, err := x.q.ExecContext(ctx, "DELETE FROM tombstones WHERE entity = ? AND id = ?", e.Name, r.ID.String()); err != nil {
				return fmt.Errorf("crmstore: apply batch: %w", err)
			}
		}
		if e.IsActivity {
			if err := x.indexParties(ctx, e, r.ID, r.Attrs, false); err != nil {
				return err
			}
		}
	}
	if _, err := x.q.ExecContext(ctx, "UPDATE seq SET v = max(v, ?) WHERE id = 1", maxVer); err != nil {
		return fmt.Errorf("crmstore: apply batch: %w", err)
	}
	return nil
}
