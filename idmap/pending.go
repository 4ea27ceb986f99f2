package idmap

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/pimbridge/pimbridge/internal/retry"
)

// Side names one side of a pair.
type Side int

// Sides.
const (
	SidePIM Side = iota + 1
	SideCRM
)

func (s Side) String() string {
	switch s {
	case SidePIM:
		return "pim"
	case SideCRM:
		return "crm"
	}
	return fmt.Sprintf("Side(%d)", int(s))
}

// ChangeKind is what happened on one side (Dynamics' OutlookChange and
// CrmChange ints). The numbers are stored; never renumber.
type ChangeKind int

// Change kinds.
const (
	ChangeNone       ChangeKind = 0
	ChangeCreated    ChangeKind = 1
	ChangeModified   ChangeKind = 2
	ChangeDeleted    ChangeKind = 3
	ChangeUntracked  ChangeKind = 4 // PIM side: the user stopped tracking the item
	ChangeLeftFilter ChangeKind = 5 // CRM side: the record left the user's filter
)

func (k ChangeKind) String() string {
	switch k {
	case ChangeNone:
		return "none"
	case ChangeCreated:
		return "created"
	case ChangeModified:
		return "modified"
	case ChangeDeleted:
		return "deleted"
	case ChangeUntracked:
		return "untracked"
	case ChangeLeftFilter:
		return "left-filter"
	}
	return fmt.Sprintf("ChangeKind(%d)", int(k))
}

// removal reports whether k ends the item's life on its side.
func (k ChangeKind) removal() bool {
	return k == ChangeDeleted || k == ChangeUntracked || k == ChangeLeftFilter
}

// coalesce folds a newer change into an older pending one: a removal
// wins over a modification either way round (an edit event for an item
// that is gone changes nothing); a modification of a created item keeps
// it created; a
// creation after a removal (re-tracked, back in the filter) is a
// modification of the still-mapped pair, and so is a CRM record sent again
// after it left the filter (it is back in the user's view).
func coalesce(old, new ChangeKind) ChangeKind {
	switch {
	case old == ChangeNone:
		return new
	case new == ChangeNone:
		return old
	case new.removal():
		return new
	case old == ChangeCreated && new == ChangeModified:
		return ChangeCreated
	case old == ChangeLeftFilter && new == ChangeModified:
		return ChangeModified // the CRM sent it again: it is back in the view
	case old.removal() && new == ChangeModified:
		return old
	case old.removal() && new == ChangeCreated:
		return ChangeModified
	}
	return new
}

// Pending is one row of the OutlookSyncTable.
type Pending struct {
	ChangeID    int64
	MapID       int64
	Seq         int64 // changes on every RecordChange; pass it to Complete and Fail
	PIMTime     time.Time
	PIMChange   ChangeKind
	CRMTime     time.Time
	CRMChange   ChangeKind
	Attempts    int
	NextAttempt time.Time // zero: parked behind a sync error
	LastError   string
}

const pendingCols = `change_id, map_id, seq, pim_time, pim_change, crm_time, crm_change, attempts, next_attempt, last_error`

func scanPending(sc interface{ Scan(...any) error }) (Pending, error) {
	var (
		p              Pending
		pt, ct, next   sql.NullInt64
		pchg, cchg, at int
	)
	if err := sc.Scan(&p.ChangeID, &p.MapID, &p.Seq, &pt, &pchg, &ct, &cchg, &at, &next, &p.LastError); err != nil {
		return Pending{}, err
	}
	p.PIMTime, p.CRMTime, p.NextAttempt = decTime(pt), decTime(ct), decTime(next)
	p.PIMChange, p.CRMChange, p.Attempts = ChangeKind(pchg), ChangeKind(cchg), at
	return p, nil
}

// PendingFor returns the pending change of a mapping, or ErrNoPending.
func (o ops) PendingFor(ctx context.Context, mapID int64) (Pending, error) {
	p, err := scanPending(o.q.QueryRowContext(ctx, "SELECT "+pendingCols+" FROM outlooksync WHERE map_id=?", mapID))
	if errors.Is(err, sql.ErrNoRows) {
		return Pending{}, fmt.Errorf("idmap: pending %d: %w", mapID, ErrNoPending)
	}
	if err != nil {
		return Pending{}, fmt.Errorf("idmap: pending %d: %w", mapID, err)
	}
	return p, nil
}

// Due returns up to limit pending changes whose next attempt is at or
// before now, oldest first. Parked changes are never due. limit <= 0
// means no limit.
func (o ops) Due(ctx context.Context, now time.Time, limit int) ([]Pending, error) {
	if limit <= 0 {
		limit = -1
	}
	rows, err := o.q.QueryContext(ctx, "SELECT "+pendingCols+` FROM outlooksync
		WHERE next_attempt IS NOT NULL AND next_attempt <= ? ORDER BY next_attempt, change_id LIMIT ?`,
		now.UTC().UnixNano(), limit)
	if err != nil {
		return nil, fmt.Errorf("idmap: due: %w", err)
	}
	defer rows.Close()
	var ps []Pending
	for rows.Next() {
		p, err := scanPending(rows)
		if err != nil {
			return nil, fmt.Errorf("idmap: due: %w", err)
		}
		ps = append(ps, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("idmap: due: %w", err)
	}
	return ps, nil
}

// CountPending returns how many changes are pending, parked ones included.
func (o ops) CountPending(ctx context.Context) (int, error) {
	var n int
	if err := o.q.QueryRowContext(ctx, "SELECT count(*) FROM outlooksync").Scan(&n); err != nil {
		return 0, fmt.Errorf("idmap: count pending: %w", err)
	}
	return n, nil
}

// RecordChange notes a change on one side of a mapping at time at. It
// merges with a change already pending for the pair (one kind per side,
// the later time kept; see coalesce) and makes the change due at once,
// even if it had been parked or was waiting for a retry: new input
// deserves a new attempt.
func (t *Tx) RecordChange(ctx context.Context, mapID int64, side Side, kind ChangeKind, at time.Time) (Pending, error) {
	if side != SidePIM && side != SideCRM || kind == ChangeNone {
		return Pending{}, fmt.Errorf("idmap: record change: side %v kind %v: %w", side, kind, ErrInvalid)
	}
	p, err := t.PendingFor(ctx, mapID)
	fresh := errors.Is(err, ErrNoPending)
	if err != nil && !fresh {
		return Pending{}, err
	}
	if fresh {
		p = Pending{MapID: mapID}
	}
	if side == SidePIM {
		p.PIMChange = coalesce(p.PIMChange, kind)
		if at.After(p.PIMTime) {
			p.PIMTime = at
		}
	} else {
		p.CRMChange = coalesce(p.CRMChange, kind)
		if at.After(p.CRMTime) {
			p.CRMTime = at
		}
	}
	p.Attempts, p.NextAttempt = 0, t.now().UTC()
	if fresh {
		res, err := t.q.ExecContext(ctx, `INSERT INTO outlooksync (map_id, seq, pim_time, pim_change, crm_time,
			crm_change, attempts, next_attempt, last_error) VALUES (?,1,?,?,?,?,0,?,'')`,
			mapID, encTime(p.PIMTime), int(p.PIMChange), encTime(p.CRMTime), int(p.CRMChange), encTime(p.NextAttempt))
		if err != nil {
			var chk sql.NullInt64
			if t.q.QueryRowContext(ctx, "SELECT map_id FROM idmapping WHERE map_id=?", mapID).Scan(&chk) != nil {
				return Pending{}, fmt.Errorf("idmap: record change %d: %w", mapID, ErrUnmapped)
			}
			return Pending{}, fmt.Errorf("idmap: record change: %w", err)
		}
		p.Seq = 1
		if p.ChangeID, err = res.LastInsertId(); err != nil {
			return Pending{}, fmt.Errorf("idmap: record change: %w", err)
		}
		return p, nil
	}
	p.Seq++
	_, err = t.q.ExecContext(ctx, `UPDATE outlooksync SET seq=?, pim_time=?, pim_change=?, crm_time=?, crm_change=?,
		attempts=0, next_attempt=? WHERE change_id=?`,
		p.Seq, encTime(p.PIMTime), int(p.PIMChange), encTime(p.CRMTime), int(p.CRMChange), encTime(p.NextAttempt), p.ChangeID)
	if err != nil {
		return Pending{}, fmt.Errorf("idmap: record change: %w", err)
	}
	return p, nil
}

// Complete removes the pending change of mapID once it was applied. seq is
// the Pending.Seq the caller worked from: if a newer change was recorded
// meanwhile the row stays and ErrStale is returned (not a failure: the
// newer change is simply due next). A sync error of the item is cleared.
func (t *Tx) Complete(ctx context.Context, mapID, seq int64) error {
	res, err := t.q.ExecContext(ctx, "DELETE FROM outlooksync WHERE map_id=? AND seq=?", mapID, seq)
	if err != nil {
		return fmt.Errorf("idmap: complete: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("idmap: complete: %w", err)
	}
	if n == 0 {
		if _, perr := t.PendingFor(ctx, mapID); perr == nil {
			return fmt.Errorf("idmap: complete %d: %w", mapID, ErrStale)
		}
		return fmt.Errorf("idmap: complete %d: %w", mapID, ErrNoPending)
	}
	if _, err := t.q.ExecContext(ctx, "DELETE FROM syncerror WHERE map_id=?", mapID); err != nil {
		return fmt.Errorf("idmap: complete: %w", err)
	}
	return nil
}

// RetryPolicy says when a failed change is tried again.
type RetryPolicy struct {
	// MaxAttempts failures park the change and record a sync error. If 0, 5.
	MaxAttempts int
	// Base is the first delay, doubled per attempt. If 0, 30s.
	Base time.Duration
	// Max caps the delay. If 0, 1h.
	Max time.Duration
}

func (r RetryPolicy) withDefaults() RetryPolicy {
	if r.MaxAttempts <= 0 {
		r.MaxAttempts = 5
	}
	if r.Base <= 0 {
		r.Base = 30 * time.Second
	}
	if r.Max <= 0 {
		r.Max = time.Hour
	}
	return r
}

// Delay returns the wait after the given number of failed attempts (>= 1).
func (r RetryPolicy) Delay(attempts int) time.Duration {
	r = r.withDefaults()
	return retry.Backoff{Base: r.Base, Max: r.Max}.Delay(attempts)
}

// Failure describes a failed attempt for Fail.
type Failure struct {
	Item    string // what the user sees, e.g. the href or "contact(<id>)"
	Field   string // the field the server rejected, if known
	Message string // the server's message
}

// Fail records a failed attempt at the pending change of mapID (seq as for
// Complete). The change is retried after policy.Delay; after
// policy.MaxAttempts failures it is parked and a sync error is recorded.
// It returns the updated row; Pending.NextAttempt is zero when parked.
func (t *Tx) Fail(ctx context.Context, mapID, seq int64, f Failure, policy RetryPolicy) (Pending, error) {
	policy = policy.withDefaults()
	p, err := t.PendingFor(ctx, mapID)
	if err != nil {
		return Pending{}, err
	}
	if p.Seq != seq {
		return p, fmt.Errorf("idmap: fail %d: %w", mapID, ErrStale)
	}
	now := t.now().UTC()
	p.Attempts++
	p.LastError = f.Message
	if p.Attempts >= policy.MaxAttempts {
		p.NextAttempt = time.Time{}
		if _, err := t.PutSyncError(ctx, SyncError{MapID: mapID, Item: f.Item, Field: f.Field,
			Message: f.Message, Attempts: p.Attempts}); err != nil {
			return Pending{}, err
		}
	} else {
		p.NextAttempt = now.Add(policy.Delay(p.Attempts))
	}
	_, err = t.q.ExecContext(ctx, "UPDATE outlooksync SET attempts=?, next_attempt=?, last_error=? WHERE change_id=?",
		p.Attempts, encTime(p.NextAttempt), p.LastError, p.ChangeID)
	if err != nil {
		return Pending{}, fmt.Errorf("idmap: fail: %w", err)
	}
	return p, nil
}

func (t *Tx) dropPending(ctx context.Context, mapID int64) error {
	if _, err := t.q.ExecContext(ctx, "DELETE FROM outlooksync WHERE map_id=?", mapID); err != nil {
		return fmt.Errorf("idmap: drop pending: %w", err)
	}
	return nil
}
