package bridge

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/idmap"
	"github.com/pimbridge/pimbridge/mapping"
	"github.com/pimbridge/pimbridge/pim"
)

// cursorAccount is the account part of DAV cursors in idmap.
const cursorAccount = "dav"

func ownerOf(rec crm.Record) crm.ID {
	if r, ok := rec.Attrs["ownerid"].(crm.Ref); ok {
		return r.ID
	}
	return crm.ID{}
}

func modifiedOn(rec crm.Record, fallback time.Time) time.Time {
	if t, ok := rec.Attrs["modifiedon"].(time.Time); ok && !t.IsZero() {
		return t
	}
	return fallback
}

// crmIntake reads the outlook subscription's batches for the lane's
// entities that are sent PIM-ward and records them as pending changes.
// Each batch's changes commit before PostSync acknowledges it.
func (b *Bridge) crmIntake(ctx context.Context, cs *cycleState, subID string, l *lane) error {
	for _, ent := range l.entities {
		if !b.opts.Settings.sendsToPIM(ent) || cs.only != nil && !slices.Contains(cs.only, ent) {
			continue
		}
		ot, _ := idmap.ObjectTypeOf(ent)
		// The subscription's initial full set of ent: the ids it holds.
		var seen map[crm.ID]bool
		mark := ""
		if cs.plan == nil {
			v, err := b.initialMark(ctx, ent)
			if err != nil {
				return err
			}
			if v == subID {
				mark, seen = v, map[crm.ID]bool{}
			}
		}
		var lastBatch uint64
		for {
			if err := ctx.Err(); err != nil {
				return err
			}
			batch, err := cs.crm.NextBatch(ctx, subID, ent, b.opts.BatchSize)
			if err != nil {
				return fmt.Errorf("bridge: %s batch: %w", ent, err)
			}
			if batch.Header.Result == crm.BatchEmpty || batch.ID == lastBatch {
				if seen != nil && batch.Header.Result == crm.BatchEmpty {
					if err := b.absentFromFullSet(ctx, l, ent, seen); err != nil {
						return fmt.Errorf("bridge: %s full set: %w", ent, err)
					}
				}
				break // the same batch again: it was not acknowledged (a dry run)
			}
			lastBatch = batch.ID
			if len(batch.Upserts)+len(batch.Deletes)+len(batch.Left) == 0 {
				// A batch sent again after a lost acknowledgement whose rows
				// all moved on: acknowledge it, or the server sends it again
				// forever and nothing newer of the entity ever comes.
				if _, err := cs.crm.PostSync(ctx, subID, batch.ID); err != nil {
					return fmt.Errorf("bridge: postsync %s: %w", ent, err)
				}
				continue
			}
			for _, rec := range batch.Upserts {
				if seen != nil {
					seen[rec.ID] = true
				}
			}
			for _, id := range append(slices.Clone(batch.Deletes), batch.Left...) {
				if seen != nil {
					seen[id] = true
				}
			}
			now := b.now()
			err = b.opts.Cache.Tx(ctx, func(tx *idmap.Tx) error {
				if mark != "" {
					// Acknowledged from here on: a cut now means the
					// full set must come again.
					if err := tx.SetSetting(ctx, initialKey(ent), mark+partialMark); err != nil {
						return err
					}
				}
				for _, rec := range batch.Upserts {
					rec.Entity = ent
					cs.crmSeen[rec.ID] = rec
					m, err := tx.ByCRM(ctx, ent, rec.ID)
					switch {
					case errors.Is(err, idmap.ErrUnmapped):
						m, err = tx.Insert(ctx, idmap.Mapping{
							CRMEntity: ent, CRMID: rec.ID, ObjectType: ot, Linked: true, OwnerID: ownerOf(rec),
							Entry: idmap.EntryID{Collection: l.col.Href(), Href: l.col.ObjectHref(rec.ID.String() + l.ext)},
						})
						if errors.Is(err, idmap.ErrDuplicate) {
							b.log.Warn("bridge: href already mapped", "entity", ent, "id", rec.ID)
							continue
						}
						if err != nil {
							return err
						}
						if _, err := tx.RecordChange(ctx, m.MapID, idmap.SideCRM, idmap.ChangeCreated, modifiedOn(rec, now)); err != nil {
							return err
						}
					case err != nil:
						return err
					case !m.Linked || m.DeletedLocally:
					default:
						if _, err := tx.RecordChange(ctx, m.MapID, idmap.SideCRM, idmap.ChangeModified, modifiedOn(rec, now)); err != nil {
							return err
						}
					}
				}
				// A delete row is a deletion in CRM (a tombstone); a left
				// row is a record that left the user's view (reassigned,
				// out of the filter; docs/sync-rules.md).
				removed := func(ids []crm.ID, kind idmap.ChangeKind) error {
					for _, id := range ids {
						m, err := tx.ByCRM(ctx, ent, id)
						if errors.Is(err, idmap.ErrUnmapped) {
							continue
						}
						if err != nil {
							return err
						}
						if !m.Linked || m.DeletedLocally {
							continue
						}
						if _, err := tx.RecordChange(ctx, m.MapID, idmap.SideCRM, kind, now); err != nil {
							return err
						}
					}
					return nil
				}
				if err := removed(batch.Deletes, idmap.ChangeDeleted); err != nil {
					return err
				}
				return removed(batch.Left, idmap.ChangeLeftFilter)
			})
			if err != nil {
				return fmt.Errorf("bridge: record %s batch: %w", ent, err)
			}
			if _, err := cs.crm.PostSync(ctx, subID, batch.ID); err != nil {
				return fmt.Errorf("bridge: postsync %s: %w", ent, err)
			}
		}
	}
	return nil
}

// pimIntake reads the collection's changes since the stored cursor and
// records them as pending changes, with the new cursor in the same
// transaction. An empty cursor (first run, expired token) lists everything:
// known objects missing from that listing count as deleted.
func (b *Bridge) pimIntake(ctx context.Context, cs *cycleState, l *lane) error {
	col := cs.col(l)
	cursor, err := b.opts.Cache.Cursor(ctx, cursorAccount, l.col.Href())
	if err != nil && !errors.Is(err, idmap.ErrNoCursor) {
		return err
	}
	changed, deleted, next, err := col.Changes(ctx, cursor)
	if errors.Is(err, pim.ErrTokenExpired) && cursor != "" {
		b.log.Info("bridge: sync token expired; listing the collection", "collection", l.col.Href())
		cursor = ""
		changed, deleted, next, err = col.Changes(ctx, "")
	}
	if err != nil {
		return fmt.Errorf("bridge: changes of %s: %w", l.col.Href(), err)
	}
	full := cursor == ""
	now := b.now()
	byCategory := b.opts.Settings.TrackByCategory
	cat := b.opts.Settings.category()
	return b.opts.Cache.Tx(ctx, func(tx *idmap.Tx) error {
		if full {
			if err := tx.ResetVisited(ctx, l.col.Href()); err != nil {
				return err
			}
		}
		record := func(m idmap.Mapping, kind idmap.ChangeKind, at time.Time) error {
			_, err := tx.RecordChange(ctx, m.MapID, idmap.SidePIM, kind, at)
			return err
		}
		for _, obj := range changed {
			cs.pimSeen[obj.Href] = obj
			entry := idmap.EntryID{Collection: l.col.Href(), Href: obj.Href}
			m, err := tx.ByPIM(ctx, entry)
			if err == nil {
				if full {
					if err := tx.SetVisited(ctx, m.MapID); err != nil {
						return err
					}
				}
				if !m.Linked || m.DeletedLocally || (obj.ETag != "" && obj.ETag == m.ETag) {
					continue
				}
				info, ierr := mapping.Inspect(obj.Data)
				kind := idmap.ChangeModified
				if byCategory && ierr == nil && !info.HasCategory(cat) {
					// An unreadable object is not taken for untracked: its
					// mapping reports the error as a sync error instead.
					kind = idmap.ChangeUntracked
				}
				at := info.Modified
				if at.IsZero() {
					at = now
				}
				if err := record(m, kind, at); err != nil {
					return err
				}
				continue
			}
			if !errors.Is(err, idmap.ErrUnmapped) {
				return err
			}
			if len(obj.Data) == 0 {
				cs.stats.malformed("")
				if _, perr := tx.PutSyncError(ctx, idmap.SyncError{Item: obj.Href, Message: "the server could not return the object (it may be malformed on the server)"}); perr != nil {
					return perr
				}
				continue
			}
			res, err := mapping.MapObject(l.contentType(), obj.Data, nil)
			if err == nil && len(res) == 0 {
				err = fmt.Errorf("%w: no contact, task or event in the object", mapping.ErrMalformed)
			}
			if err != nil {
				cs.stats.malformed("")
				if _, perr := tx.PutSyncError(ctx, idmap.SyncError{Item: obj.Href, Message: err.Error()}); perr != nil {
					return perr
				}
				continue
			}
			rec := res[0].Record
			if !l.holds(rec.Entity) {
				cs.stats.malformed(rec.Entity)
				if _, perr := tx.PutSyncError(ctx, idmap.SyncError{Item: obj.Href, Field: "X-CRM-ENTITY", Message: fmt.Sprintf("a %s does not belong in %s", rec.Entity, l.col.Href())}); perr != nil {
					return perr
				}
				continue
			}
			info, _ := mapping.Inspect(obj.Data) // it mapped, so it parses
			if byCategory && !info.HasCategory(cat) {
				continue
			}
			if err := tx.ClearSyncError(ctx, obj.Href); err != nil {
				return err
			}
			at := info.Modified
			if at.IsZero() {
				at = now
			}
			ot, _ := idmap.ObjectTypeOf(rec.Entity)
			if rec.ID != (crm.ID{}) {
				// The object carries X-CRM-ID: re-link (lost cache, or a CRM
				// record whose PIM object is written but not yet recorded).
				m, err := tx.ByCRM(ctx, rec.Entity, rec.ID)
				if err == nil {
					if m.Entry.Href != obj.Href {
						if m.ETag != "" && m.Linked {
							b.log.Warn("bridge: a second PIM object carries the same CRM id; left alone", "href", obj.Href, "id", rec.ID)
							continue
						}
						m.Entry = entry
						m.ETag = ""
						if err := tx.Update(ctx, m); err != nil {
							return err
						}
					}
					if full {
						if err := tx.SetVisited(ctx, m.MapID); err != nil {
							return err
						}
					}
					if m.Linked && !m.DeletedLocally {
						if err := record(m, idmap.ChangeCreated, at); err != nil {
							return err
						}
					}
					continue
				}
				if !errors.Is(err, idmap.ErrUnmapped) {
					return err
				}
				m, err = tx.Insert(ctx, idmap.Mapping{CRMEntity: rec.Entity, CRMID: rec.ID, Entry: entry, ObjectType: ot, Linked: true})
				if err != nil {
					return err
				}
				if full {
					if err := tx.SetVisited(ctx, m.MapID); err != nil {
						return err
					}
				}
				if err := record(m, idmap.ChangeCreated, at); err != nil {
					return err
				}
				continue
			}
			// A new tracked PIM item: its CRM id is chosen here and recorded
			// before the create, so a retried POST is idempotent.
			m, err = tx.Insert(ctx, idmap.Mapping{CRMEntity: rec.Entity, CRMID: crm.NewID(), Entry: entry, ObjectType: ot, Linked: true, TrackedFromPIM: true})
			if err != nil {
				return err
			}
			if full {
				if err := tx.SetVisited(ctx, m.MapID); err != nil {
					return err
				}
			}
			if err := record(m, idmap.ChangeCreated, at); err != nil {
				return err
			}
		}
		// gone records the removal of a mapped object. One the bridge never
		// saw written (no ETag) counts only when the server reported its
		// removal: it was written after all (a create whose reply was lost)
		// and the user deleted it. Missing from a full listing, it may
		// never have been written.
		gone := func(m idmap.Mapping, reported bool) error {
			if !m.Linked || m.DeletedLocally || m.ETag == "" && !reported {
				return nil
			}
			return record(m, idmap.ChangeDeleted, now)
		}
		for _, href := range deleted {
			m, err := tx.ByPIM(ctx, idmap.EntryID{Collection: l.col.Href(), Href: href})
			if errors.Is(err, idmap.ErrUnmapped) {
				continue
			}
			if err != nil {
				return err
			}
			if err := gone(m, true); err != nil {
				return err
			}
		}
		if full {
			ms, err := tx.Unvisited(ctx, l.col.Href())
			if err != nil {
				return err
			}
			for _, m := range ms {
				if err := gone(m, false); err != nil {
					return err
				}
			}
		}
		return tx.SetCursor(ctx, cursorAccount, l.col.Href(), next)
	})
}
