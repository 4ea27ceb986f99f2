package bridge

import (
	"context"
	"errors"
	"fmt"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmclient"
	"github.com/pimbridge/pimbridge/idmap"
	"github.com/pimbridge/pimbridge/pim"
)

// Duplicates found when an item new on the PIM side is created in CRM
// (docs/sync-rules.md, Duplicates): with sync.duplicates = "allow" the record is created anyway;
// with "ask" the item becomes a sync error that the user resolves with
// AllowDuplicate (create it anyway) or LinkSyncError (merge it into the
// existing record). Nothing the user typed is dropped: the PIM item stays
// as it is until one of them.

// createOptions are the write options of a create in CRM for pr: duplicate
// detection off when the user allows duplicates, in general or for this
// item.
func (b *Bridge) createOptions(ctx context.Context, pr *pair) (*crmclient.WriteOptions, error) {
	allow := b.opts.Settings.AllowDuplicates
	if !allow {
		var err error
		if allow, err = b.opts.Cache.DuplicateAllowed(ctx, pr.m.MapID); err != nil {
			return nil, err
		}
	}
	if !allow {
		return nil, nil
	}
	return &crmclient.WriteOptions{SuppressDuplicateDetection: true}, nil
}

// duplicateError is the sync error of an item whose create found
// duplicates: it names them and the two ways out.
func duplicateError(pr *pair, err error) error {
	return &itemError{Err: fmt.Errorf("bridge: create %s from %s: %w; to create it anyway run `pimbridge errors retry ID --allow-duplicate`, "+
		"to merge it into the existing record `pimbridge errors link ID CRM-ID` (ID from `pimbridge errors`)", pr.m.CRMEntity, pr.m.Entry.Href, err)}
}

// AllowDuplicate resolves sync error id by creating its item in CRM at the
// next cycle even though duplicate detection finds matches.
// idmap.ErrNoSyncError when there is no such error.
func (b *Bridge) AllowDuplicate(ctx context.Context, id int64) error {
	return b.opts.Cache.Tx(ctx, func(tx *idmap.Tx) error { return tx.AllowDuplicate(ctx, id) })
}

// Errors of LinkSyncError.
var (
	// ErrNoRecord: the CRM record named to link a sync error's item to
	// does not exist or the user cannot read it.
	ErrNoRecord = errors.New("bridge: no such CRM record")
	// ErrUnsyncedCopy: the record's copy on the PIM side changed since the
	// last sync; linking would drop that change.
	ErrUnsyncedCopy = errors.New("bridge: the record's copy on the PIM side has changes not synced yet; run pimbridge sync, then link again")
)

// LinkSyncError resolves sync error id by linking its PIM item to the
// existing CRM record crmID instead of creating one; the next cycle merges
// the two (a field set on one side only survives on both; a field set on
// both takes the value of the side changed later). When the record is
// already on the PIM side as another object, that copy (synced, unchanged
// since) is removed there, so the person is one item on each side.
// ErrNoRecord when the user cannot read such a record of the item's
// entity; ErrUnsyncedCopy; idmap.ErrAlreadySynced and idmap.ErrNoSyncError
// from the cache.
func (b *Bridge) LinkSyncError(ctx context.Context, id int64, crmID crm.ID) error {
	var m idmap.Mapping
	err := b.opts.Cache.Tx(ctx, func(tx *idmap.Tx) error {
		var err error
		m, err = tx.ErrorItem(ctx, id)
		return err
	})
	if err != nil {
		return err
	}
	if _, err := b.opts.CRM.Get(ctx, m.CRMEntity, crmID); err != nil {
		if errors.Is(err, crm.ErrNotFound) || errors.Is(err, crm.ErrForbidden) {
			return fmt.Errorf("bridge: link %s to %s(%s): %w", m.Entry.Href, m.CRMEntity, crmID, ErrNoRecord)
		}
		return fmt.Errorf("bridge: link %s: read %s(%s): %w", m.Entry.Href, m.CRMEntity, crmID, err)
	}
	var retire int64
	other, err := b.opts.Cache.ByCRM(ctx, m.CRMEntity, crmID)
	switch {
	case err == nil && other.MapID != m.MapID:
		if err := b.retireCopy(ctx, other); err != nil {
			return fmt.Errorf("bridge: link %s to %s(%s): %w", m.Entry.Href, m.CRMEntity, crmID, err)
		}
		retire = other.MapID
	case err != nil && !errors.Is(err, idmap.ErrUnmapped):
		return err
	}
	return b.opts.Cache.Tx(ctx, func(tx *idmap.Tx) error {
		_, err := tx.LinkSyncError(ctx, id, crmID, retire)
		return err
	})
}

// retireCopy removes the PIM object of mapping m, the older copy of a
// record another item is being linked to. It must hold nothing the CRM
// record lacks: no pending PIM change, and the ETag of the last sync.
func (b *Bridge) retireCopy(ctx context.Context, m idmap.Mapping) error {
	if p, err := b.opts.Cache.PendingFor(ctx, m.MapID); err == nil && p.PIMChange != idmap.ChangeNone {
		return fmt.Errorf("%s: %w", m.Entry.Href, ErrUnsyncedCopy)
	} else if err != nil && !errors.Is(err, idmap.ErrNoPending) {
		return err
	}
	if !m.Linked || m.DeletedLocally || m.Entry.Href == "" {
		return nil
	}
	var col Collection
	for _, l := range b.lanes {
		if l.col.Href() == m.Entry.Collection {
			col = l.col
		}
	}
	if col == nil {
		return nil
	}
	obj, err := col.Get(ctx, m.Entry.Href)
	if errors.Is(err, pim.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if m.ETag != "" && obj.ETag != m.ETag {
		return fmt.Errorf("%s: %w", m.Entry.Href, ErrUnsyncedCopy)
	}
	err = col.Delete(ctx, m.Entry.Href, obj.ETag)
	if errors.Is(err, pim.ErrPreconditionFailed) {
		return fmt.Errorf("%s: %w", m.Entry.Href, ErrUnsyncedCopy)
	}
	if err != nil && !errors.Is(err, pim.ErrNotFound) {
		return err
	}
	return nil
}
