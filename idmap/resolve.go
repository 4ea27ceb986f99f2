package idmap

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/pimbridge/pimbridge/crm"
)

// Resolutions of a sync error the user chose for one item (a
// duplicate found on going online or synchronizing). They are kept in the
// setting table under "duplicate.allow.<map id>" (map ids are never
// reused), so the schema needs no migration.

// ErrAlreadySynced: the item of a sync error was synced with a CRM record
// before; it cannot be linked to another one.
var ErrAlreadySynced = errors.New("idmap: the item is already synced with a CRM record")

func allowKey(mapID int64) string { return "duplicate.allow." + strconv.FormatInt(mapID, 10) }

// mappedError returns sync error id and its mapping; ErrInvalid when the
// error belongs to no mapped item (a malformed object).
func (t *Tx) mappedError(ctx context.Context, id int64) (SyncError, Mapping, error) {
	e, err := t.SyncErrorByID(ctx, id)
	if err != nil {
		return SyncError{}, Mapping{}, err
	}
	if e.MapID == 0 {
		return SyncError{}, Mapping{}, fmt.Errorf("idmap: sync error %d (%s) is not about a synced item: %w", id, e.Item, ErrInvalid)
	}
	m, err := t.Get(ctx, e.MapID)
	if err != nil {
		return SyncError{}, Mapping{}, err
	}
	return e, m, nil
}

// AllowDuplicate records that the item of sync error id may be created in
// CRM even when duplicate detection finds matches, and asks for another
// attempt (RetrySyncError). The choice holds until the record is created.
func (t *Tx) AllowDuplicate(ctx context.Context, id int64) error {
	_, m, err := t.mappedError(ctx, id)
	if err != nil {
		return err
	}
	if err := t.SetSetting(ctx, allowKey(m.MapID), "1"); err != nil {
		return err
	}
	return t.RetrySyncError(ctx, id)
}

// DuplicateAllowed reports whether AllowDuplicate was chosen for mapping
// mapID.
func (o ops) DuplicateAllowed(ctx context.Context, mapID int64) (bool, error) {
	_, err := o.Setting(ctx, allowKey(mapID))
	if errors.Is(err, ErrNoSetting) {
		return false, nil
	}
	return err == nil, err
}

// ClearDuplicateAllowed forgets the AllowDuplicate choice of mapID (its
// record was created); a missing one is not an error.
func (t *Tx) ClearDuplicateAllowed(ctx context.Context, mapID int64) error {
	if _, err := t.q.ExecContext(ctx, "DELETE FROM setting WHERE key=?", allowKey(mapID)); err != nil {
		return fmt.Errorf("idmap: clear duplicate choice: %w", err)
	}
	return nil
}

// ErrorItem returns the mapping of sync error id, for a caller that checks
// the CRM side before LinkSyncError.
func (t *Tx) ErrorItem(ctx context.Context, id int64) (Mapping, error) {
	_, m, err := t.mappedError(ctx, id)
	return m, err
}

// LinkSyncError links the item of sync error id to the existing CRM record
// crmID (of the item's entity) instead of creating a new one, and asks for
// another attempt: the next cycle finds both sides without a snapshot and
// merges them (a field set on one side only is kept; one set on both takes
// the later side's value). retire is the mapping that held crmID until now
// and whose PIM object the caller removed (the record's older copy on the
// PIM side), or 0: it is deleted. ErrAlreadySynced when the item has a
// snapshot (it was synced before); ErrDuplicate when crmID is mapped to
// another item than retire.
func (t *Tx) LinkSyncError(ctx context.Context, id int64, crmID crm.ID, retire int64) (Mapping, error) {
	_, m, err := t.mappedError(ctx, id)
	if err != nil {
		return Mapping{}, err
	}
	if _, err := t.Snapshot(ctx, m.MapID); err == nil {
		return Mapping{}, fmt.Errorf("idmap: link %s to %s(%s): %w", m.Entry, m.CRMEntity, crmID, ErrAlreadySynced)
	} else if !errors.Is(err, ErrNoSnapshot) {
		return Mapping{}, err
	}
	if other, err := t.ByCRM(ctx, m.CRMEntity, crmID); err == nil && other.MapID != m.MapID {
		if other.MapID != retire {
			return Mapping{}, fmt.Errorf("idmap: link %s to %s(%s): the record is already synced with %s: %w", m.Entry, m.CRMEntity, crmID, other.Entry, ErrDuplicate)
		}
		if err := t.Delete(ctx, other.MapID); err != nil {
			return Mapping{}, err
		}
	} else if err != nil && !errors.Is(err, ErrUnmapped) {
		return Mapping{}, err
	}
	m.CRMID, m.Linked, m.DeletedLocally = crmID, true, false
	if err := t.Update(ctx, m); err != nil {
		return Mapping{}, err
	}
	if err := t.ClearDuplicateAllowed(ctx, m.MapID); err != nil {
		return Mapping{}, err
	}
	return m, t.RetrySyncError(ctx, id)
}
