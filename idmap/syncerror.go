package idmap

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// SyncError is an item the bridge could not sync, kept until the user
// retries or discards it, or a later attempt succeeds.
type SyncError struct {
	ID       int64
	MapID    int64  // 0 when the item has no mapping (e.g. a malformed PIM object)
	Item     string // what the user sees: href, mailbox/UID or entity(id); unique
	Field    string // the rejected field, if known
	Message  string // the server's (or parser's) message
	Attempts int
	Retry    bool // the user asked for a retry and the bridge has not picked it up yet
	Created  time.Time
	Updated  time.Time
}

const syncErrorCols = "error_id, map_id, item, field, message, attempts, retry, created, updated"

func scanSyncError(sc interface{ Scan(...any) error }) (SyncError, error) {
	var (
		e        SyncError
		mapID    sql.NullInt64
		retry    int
		cre, upd int64
	)
	if err := sc.Scan(&e.ID, &mapID, &e.Item, &e.Field, &e.Message, &e.Attempts, &retry, &cre, &upd); err != nil {
		return SyncError{}, err
	}
	e.MapID, e.Retry = mapID.Int64, retry != 0
	e.Created, e.Updated = time.Unix(0, cre).UTC(), time.Unix(0, upd).UTC()
	return e, nil
}

// SyncErrors lists the sync errors, oldest first.
func (o ops) SyncErrors(ctx context.Context) ([]SyncError, error) {
	rows, err := o.q.QueryContext(ctx, "SELECT "+syncErrorCols+" FROM syncerror ORDER BY error_id")
	if err != nil {
		return nil, fmt.Errorf("idmap: sync errors: %w", err)
	}
	defer rows.Close()
	var es []SyncError
	for rows.Next() {
		e, err := scanSyncError(rows)
		if err != nil {
			return nil, fmt.Errorf("idmap: sync errors: %w", err)
		}
		es = append(es, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("idmap: sync errors: %w", err)
	}
	return es, nil
}

// SyncErrorByID returns one sync error, or ErrNoSyncError.
func (o ops) SyncErrorByID(ctx context.Context, id int64) (SyncError, error) {
	e, err := scanSyncError(o.q.QueryRowContext(ctx, "SELECT "+syncErrorCols+" FROM syncerror WHERE error_id=?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return SyncError{}, fmt.Errorf("idmap: sync error %d: %w", id, ErrNoSyncError)
	}
	if err != nil {
		return SyncError{}, fmt.Errorf("idmap: sync error %d: %w", id, err)
	}
	return e, nil
}

// PutSyncError records a failure of e.Item. If the item already has a sync
// error, it is updated (message, field, map id, attempts added up) and
// keeps its id. An empty Item is derived from the mapping as entity(id).
// Attempts below 1 count as 1.
func (t *Tx) PutSyncError(ctx context.Context, e SyncError) (SyncError, error) {
	if e.Item == "" && e.MapID != 0 {
		m, err := t.Get(ctx, e.MapID)
		if err != nil {
			return SyncError{}, err
		}
		e.Item = fmt.Sprintf("%s(%s)", m.CRMEntity, m.CRMID)
	}
	if e.Item == "" {
		return SyncError{}, fmt.Errorf("idmap: put sync error: empty item: %w", ErrInvalid)
	}
	if e.Attempts < 1 {
		e.Attempts = 1
	}
	var mapID any
	if e.MapID != 0 {
		mapID = e.MapID
	}
	now := t.now().UTC().UnixNano()
	row := t.q.QueryRowContext(ctx, `INSERT INTO syncerror (map_id, item, field, message, attempts, retry, created, updated)
		VALUES (?,?,?,?,?,0,?,?) ON CONFLICT (item) DO UPDATE SET map_id=excluded.map_id, field=excluded.field,
		message=excluded.message, attempts=syncerror.attempts+excluded.attempts, retry=0, updated=excluded.updated
		RETURNING `+syncErrorCols, mapID, e.Item, e.Field, e.Message, e.Attempts, now, now)
	out, err := scanSyncError(row)
	if err != nil {
		return SyncError{}, fmt.Errorf("idmap: put sync error: %w", err)
	}
	return out, nil
}

// RetrySyncError asks for another attempt. An error whose item has a
// parked pending change is cleared and the change made due now with its
// attempt count reset; any other error is flagged Retry for the bridge to
// pick up (RetryRequested) and stays listed until that attempt succeeds.
func (t *Tx) RetrySyncError(ctx context.Context, id int64) error {
	e, err := t.SyncErrorByID(ctx, id)
	if err != nil {
		return err
	}
	if e.MapID != 0 {
		res, err := t.q.ExecContext(ctx, "UPDATE outlooksync SET attempts=0, next_attempt=?, last_error='' WHERE map_id=?",
			t.now().UTC().UnixNano(), e.MapID)
		if err != nil {
			return fmt.Errorf("idmap: retry: %w", err)
		}
		if n, _ := res.RowsAffected(); n > 0 {
			_, err = t.q.ExecContext(ctx, "DELETE FROM syncerror WHERE error_id=?", id)
			if err != nil {
				return fmt.Errorf("idmap: retry: %w", err)
			}
			return nil
		}
	}
	if _, err := t.q.ExecContext(ctx, "UPDATE syncerror SET retry=1 WHERE error_id=?", id); err != nil {
		return fmt.Errorf("idmap: retry: %w", err)
	}
	return nil
}

// RetryRequested lists the sync errors flagged by RetrySyncError.
func (o ops) RetryRequested(ctx context.Context) ([]SyncError, error) {
	all, err := o.SyncErrors(ctx)
	if err != nil {
		return nil, err
	}
	var out []SyncError
	for _, e := range all {
		if e.Retry {
			out = append(out, e)
		}
	}
	return out, nil
}

// ClearSyncError removes the sync error of an item after it synced; a
// missing one is not an error.
func (t *Tx) ClearSyncError(ctx context.Context, item string) error {
	if _, err := t.q.ExecContext(ctx, "DELETE FROM syncerror WHERE item=?", item); err != nil {
		return fmt.Errorf("idmap: clear sync error: %w", err)
	}
	return nil
}

// DiscardSyncError drops a sync error and, with it, the parked change of
// its item: the user gave up on that change. ErrNoSyncError if unknown.
func (t *Tx) DiscardSyncError(ctx context.Context, id int64) error {
	e, err := t.SyncErrorByID(ctx, id)
	if err != nil {
		return err
	}
	if e.MapID != 0 {
		if _, err := t.q.ExecContext(ctx, "DELETE FROM outlooksync WHERE map_id=? AND next_attempt IS NULL", e.MapID); err != nil {
			return fmt.Errorf("idmap: discard: %w", err)
		}
	}
	if _, err := t.q.ExecContext(ctx, "DELETE FROM syncerror WHERE error_id=?", id); err != nil {
		return fmt.Errorf("idmap: discard: %w", err)
	}
	return nil
}
