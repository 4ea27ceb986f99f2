package offline

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmserver"
	"github.com/pimbridge/pimbridge/crm/crmstore"
	"github.com/pimbridge/pimbridge/internal/retry"
)

// Discard restores: the data that was changed offline is replicated again
// from the server. A discarded sync error leaves a row in
// offline_restore, written in the transaction that drops the error; the
// restore puts the server's version of that record into the replica, or
// removes it when the server has none (a discarded create) or the user can
// no longer read it, and drops the row in the same transaction. It runs at
// once when the server answers, and otherwise at the start of the next
// GoOffline or refresh, so a kill or a lost network never leaves the
// discarded change in the replica for good.

const restoreSchema = `CREATE TABLE IF NOT EXISTS offline_restore (
	objecttype TEXT NOT NULL, objectid TEXT NOT NULL, PRIMARY KEY (objecttype, objectid));`

// PendingRestores returns how many discarded records still wait for the
// server's version.
func (e *Engine) PendingRestores(ctx context.Context) (int, error) {
	var n int
	if err := e.replica.DB().QueryRowContext(ctx, "SELECT count(*) FROM offline_restore").Scan(&n); err != nil {
		return 0, fmt.Errorf("offline: restores: %w", err)
	}
	return n, nil
}

// restoreDiscarded fetches the server's version of every record waiting in
// offline_restore and writes it into the replica. A record that still has
// rows in the offline queue is left for later (those rows replay first).
func (e *Engine) restoreDiscarded(ctx context.Context, r Remote) error {
	db := e.replica.DB()
	rows, err := db.QueryContext(ctx, `SELECT objecttype, objectid FROM offline_restore
		WHERE NOT EXISTS (SELECT 1 FROM offline_queue q WHERE q.objecttype = offline_restore.objecttype AND q.objectid = offline_restore.objectid)`)
	if err != nil {
		return fmt.Errorf("offline: restores: %w", err)
	}
	type ref struct{ entity, id string }
	var todo []ref
	for rows.Next() {
		var x ref
		if err := rows.Scan(&x.entity, &x.id); err != nil {
			rows.Close()
			return fmt.Errorf("offline: restores: %w", err)
		}
		todo = append(todo, x)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("offline: restores: %w", err)
	}
	if len(todo) == 0 {
		return nil
	}
	md, err := e.replica.Metadata(ctx)
	if err != nil {
		return err
	}
	for _, x := range todo {
		ent, err := md.Entity(x.entity)
		if err != nil {
			return fmt.Errorf("offline: restore %s %s: %w", x.entity, x.id, err)
		}
		id, err := crm.ParseID(x.id)
		if err != nil {
			return fmt.Errorf("offline: restore %s %s: %w", x.entity, x.id, err)
		}
		b := &crm.Batch{Entity: ent.Name}
		resp, err := r.Do(ctx, http.MethodGet, "/api/data/"+ent.SetName+"("+id.String()+")", nil, nil)
		if err != nil {
			return unavailable(fmt.Errorf("offline: restore %s %s: %w", x.entity, x.id, err))
		}
		switch {
		case resp.Status == http.StatusOK:
			rec, err := ent.UnmarshalRecord(resp.Body)
			if err != nil {
				return fmt.Errorf("offline: restore %s %s: %w", x.entity, x.id, err)
			}
			for _, a := range ent.Attributes {
				b.Columns = append(b.Columns, crm.Attribute{Name: a.Name, Type: a.Type})
			}
			b.Upserts = []crm.Record{rec}
		case resp.Status == http.StatusNotFound || resp.Status == http.StatusForbidden:
			// Gone on the server, never made (a discarded create), or out
			// of the user's reach: the replica must not keep it either.
			b.Deletes = []crm.ID{id}
		case retry.TransientStatus(resp.Status):
			return fmt.Errorf("%w: restore %s %s: status %d", ErrServerUnavailable, x.entity, x.id, resp.Status)
		default:
			return fmt.Errorf("offline: restore %s %s: status %d: %s", x.entity, x.id, resp.Status, resp.Body)
		}
		err = e.replica.Update(ctx, func(tx crmserver.Tx) error {
			if err := crmstore.ApplyBatch(ctx, tx, ent, b); err != nil {
				return err
			}
			stx, _ := crmstore.SQLTx(tx)
			_, err := stx.ExecContext(ctx, "DELETE FROM offline_restore WHERE objecttype = ? AND objectid = ?", x.entity, x.id)
			return err
		})
		if err != nil {
			return fmt.Errorf("offline: restore %s %s: %w", x.entity, x.id, err)
		}
		e.log.Info("offline: discarded change undone in the replica", "entity", x.entity, "id", x.id, "gone", len(b.Deletes) > 0)
	}
	return nil
}

// restoreLater runs restoreDiscarded where the server may be out of reach:
// a failure leaves the rows for the next run.
func (e *Engine) restoreLater(ctx context.Context, r Remote) {
	if err := e.restoreDiscarded(ctx, r); err != nil && !errors.Is(err, context.Canceled) {
		e.log.Warn("offline: discarded changes not restored yet; the next refresh tries again", "err", err)
	}
}
