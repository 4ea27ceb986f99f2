package bridge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/idmap"
	"github.com/pimbridge/pimbridge/mapping"
	"github.com/pimbridge/pimbridge/pim"
)

// The directory (Sync(AddressBook) over the addressbook
// subscription): the CRM accounts and users the user can read, one way,
// into an address book of their own (Options.Directory), so that any mail
// client autocompletes them. CRM owns every card there: a PIM-side edit is
// overwritten from CRM and never sent to CRM, a card deleted on the PIM
// side is written again, and a record deleted in CRM (or no longer
// readable, inactive, disabled) loses its card. Cards the user added that
// name no CRM record are left alone. Cards are named entity-id.vcf
// (mapping.DirectoryCardName), so the book needs no mapping table: its
// state is the addressbook subscription on the server and one PIM cursor.

// DirectoryStats are the figures of one directory pass.
type DirectoryStats struct {
	Created     int           `json:"created"`
	Updated     int           `json:"updated"`
	Deleted     int           `json:"deleted"`
	Overwritten int           `json:"overwritten"` // PIM-side edits and deletions undone
	Failed      int           `json:"failed"`
	Duration    time.Duration `json:"duration_ns"`
}

// ErrNoDirectory: SyncDirectory on a bridge without Options.Directory.
var ErrNoDirectory = errors.New("bridge: no directory address book configured (carddav.directory)")

const (
	// settingDirectorySub, followed by the book's href, records the
	// addressbook subscription that book was filled from (another book
	// starts the subscription over).
	settingDirectorySub = "addressbook.subscription."
	// cursorDirectory is the account part of the directory's PIM cursor.
	cursorDirectory = "directory"
	// directoryRounds bounds the passes that undo PIM-side edits made
	// while the pass ran.
	directoryRounds = 3
)

// dirPass is one directory pass: the collection, what it wrote, and the
// cards whose PIM side changed and that must be checked against CRM.
type dirPass struct {
	col     Collection
	st      DirectoryStats
	written map[string]string      // href -> ETag of our write ("" unknown)
	suspect map[string]*pim.Object // href -> object (nil: deleted on the PIM side)
}

// SyncDirectory runs one pass of the directory address book. It needs no
// privilege beyond read rights and runs on secondary clients too (the
// cards are the same whoever writes them). Errors: ErrNoDirectory; a
// failure to reach either server (nothing acknowledged is lost: a batch is
// acknowledged only once its cards are written); ErrItemErrors when some
// cards could not be written (logged).
func (b *Bridge) SyncDirectory(ctx context.Context) (DirectoryStats, error) {
	col := b.opts.Directory
	if col == nil {
		return DirectoryStats{}, ErrNoDirectory
	}
	b.dirMu.Lock()
	defer b.dirMu.Unlock()
	start := b.now()
	p := &dirPass{col: col, written: map[string]string{}, suspect: map[string]*pim.Object{}}
	finish := func(err error) (DirectoryStats, error) {
		p.st.Duration = b.now().Sub(start)
		if err == nil && p.st.Failed > 0 {
			err = fmt.Errorf("%w: %d directory cards failed (see the log)", ErrItemErrors, p.st.Failed)
		}
		return p.st, err
	}
	sub, fresh, err := b.directorySubscription(ctx)
	if err != nil {
		return finish(err)
	}
	cursor := ""
	if !fresh {
		if cursor, err = b.opts.Cache.Cursor(ctx, cursorDirectory, col.Href()); err != nil && !errors.Is(err, idmap.ErrNoCursor) {
			return finish(err)
		}
	}
	// PIM side first: what the user changed since the last pass.
	cursor, err = b.directoryChanges(ctx, p, cursor)
	if err != nil {
		return finish(err)
	}
	// CRM side: the addressbook subscription's batches.
	if _, err := b.opts.CRM.Prepare(ctx, sub.ID); err != nil {
		return finish(fmt.Errorf("bridge: directory: prepare: %w", classifyFatal(err)))
	}
	for _, ent := range mapping.DirectoryEntities {
		if err := b.directoryBatches(ctx, p, sub.ID, ent); err != nil {
			return finish(err)
		}
	}
	// Undo what the user changed on the PIM side, then read our own writes
	// back so that the next pass does not take them for the user's; an
	// edit made meanwhile is undone in another round.
	for round := 0; round < directoryRounds; round++ {
		if err := b.directoryRestore(ctx, p); err != nil {
			return finish(err)
		}
		if cursor, err = b.directoryChanges(ctx, p, cursor); err != nil {
			return finish(err)
		}
		if len(p.suspect) == 0 {
			break
		}
	}
	err = b.opts.Cache.Tx(ctx, func(tx *idmap.Tx) error { return tx.SetCursor(ctx, cursorDirectory, col.Href(), cursor) })
	return finish(err)
}

// directorySubscription returns the addressbook subscription; fresh is true
// when it was started over (a cache that was not filled from it), so the
// CRM sends every record again.
func (b *Bridge) directorySubscription(ctx context.Context) (sub crm.Subscription, fresh bool, err error) {
	sub, err = b.opts.CRM.Subscribe(ctx, b.opts.ClientID, crm.KindAddressBook)
	if err == nil {
		key := settingDirectorySub + b.opts.Directory.Href()
		if id, serr := b.opts.Cache.Setting(ctx, key); serr != nil || id != sub.ID {
			fresh = true
			if err = b.opts.CRM.DeleteSubscription(ctx, sub.ID); err == nil {
				sub, err = b.opts.CRM.Subscribe(ctx, b.opts.ClientID, crm.KindAddressBook)
			}
			if err == nil {
				err = b.opts.Cache.Tx(ctx, func(tx *idmap.Tx) error { return tx.SetSetting(ctx, key, sub.ID) })
			}
		}
	}
	if err != nil {
		return sub, false, fmt.Errorf("bridge: directory: subscribe: %w", classifyFatal(err))
	}
	return sub, fresh, nil
}

// directoryChanges reads the PIM changes since cursor and marks the
// directory cards among them that this pass did not write as suspects.
func (b *Bridge) directoryChanges(ctx context.Context, p *dirPass, cursor string) (string, error) {
	changed, deleted, next, err := p.col.Changes(ctx, cursor)
	if errors.Is(err, pim.ErrTokenExpired) && cursor != "" {
		changed, deleted, next, err = p.col.Changes(ctx, "")
	}
	if err != nil {
		return cursor, fmt.Errorf("bridge: directory: list %s: %w", p.col.Href(), classifyFatal(err))
	}
	for i := range changed {
		o := changed[i]
		if _, _, ok := mapping.ParseDirectoryCardName(o.Href); !ok {
			continue
		}
		if etag, ok := p.written[o.Href]; ok && (etag == "" || etag == o.ETag) {
			continue // our own write
		}
		p.suspect[o.Href] = &o
	}
	for _, h := range deleted {
		if _, ours := p.written[h]; ours {
			continue
		}
		if _, _, ok := mapping.ParseDirectoryCardName(h); ok {
			p.suspect[h] = nil
		}
	}
	return next, nil
}

// directoryBatches applies and acknowledges the batches of one entity.
func (b *Bridge) directoryBatches(ctx context.Context, p *dirPass, subID, ent string) error {
	var last uint64
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		batch, err := b.opts.CRM.NextBatch(ctx, subID, ent, b.opts.BatchSize)
		if err != nil {
			return fmt.Errorf("bridge: directory: %s batch: %w", ent, classifyFatal(err))
		}
		if batch.Header.Result == crm.BatchEmpty || batch.ID == last {
			return nil
		}
		last = batch.ID
		// A batch sent again after a lost acknowledgement may have no rows
		// left; it is acknowledged like any other (see crmIntake).
		for _, rec := range batch.Upserts {
			rec.Entity = ent
			if err := b.directoryPut(ctx, p, rec); err != nil {
				return err
			}
		}
		// A deleted record and one that left the user's view (no longer
		// readable) both lose their card.
		for _, id := range slices.Concat(batch.Deletes, batch.Left) {
			if err := b.directoryRemove(ctx, p, ent, id); err != nil {
				return err
			}
		}
		if _, err := b.opts.CRM.PostSync(ctx, subID, batch.ID); err != nil {
			return fmt.Errorf("bridge: directory: postsync %s: %w", ent, classifyFatal(err))
		}
	}
}

// directoryRestore writes again, from CRM, the suspect cards: those edited
// or deleted on the PIM side.
func (b *Bridge) directoryRestore(ctx context.Context, p *dirPass) error {
	hrefs := make([]string, 0, len(p.suspect))
	for h := range p.suspect {
		hrefs = append(hrefs, h)
	}
	slices.Sort(hrefs)
	for _, h := range hrefs {
		ent, id, _ := mapping.ParseDirectoryCardName(h)
		rec, err := b.opts.CRM.Get(ctx, ent, id)
		switch {
		case err == nil:
			rec.Entity, rec.ID = ent, id
			before := p.st.Created + p.st.Updated
			if err := b.directoryPut(ctx, p, rec); err != nil {
				return err
			}
			if p.st.Created+p.st.Updated > before {
				p.st.Overwritten++
			}
		case errors.Is(err, crm.ErrNotFound), errors.Is(err, crm.ErrForbidden) && !isFatal(err):
			if err := b.directoryRemove(ctx, p, ent, id); err != nil {
				return err
			}
		default:
			return fmt.Errorf("bridge: directory: read %s(%s): %w", ent, id, classifyFatal(err))
		}
	}
	return nil
}

// directoryPut writes rec's card unless the PIM side already holds the
// same content. A card that cannot be made is counted and logged.
func (b *Bridge) directoryPut(ctx context.Context, p *dirPass, rec crm.Record) error {
	href := p.col.ObjectHref(mapping.DirectoryCardName(rec.Entity, rec.ID))
	delete(p.suspect, href)
	data, listed, err := mapping.DirectoryVCard(rec)
	if err != nil {
		p.st.Failed++
		b.log.Warn("bridge: directory card not written", "entity", rec.Entity, "id", rec.ID, "err", err)
		return nil
	}
	if !listed {
		return b.directoryRemove(ctx, p, rec.Entity, rec.ID)
	}
	for i := 0; i < maxRereads; i++ {
		ref, err := p.col.Create(ctx, mapping.DirectoryCardName(rec.Entity, rec.ID), data)
		if err == nil {
			p.written[ref.Href] = ref.ETag
			p.st.Created++
			return nil
		}
		if !errors.Is(err, pim.ErrPreconditionFailed) && !errors.Is(err, pim.ErrUIDConflict) {
			return fmt.Errorf("bridge: directory: create %s: %w", href, classifyFatal(err))
		}
		obj, err := p.col.Get(ctx, href)
		if errors.Is(err, pim.ErrNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return fmt.Errorf("bridge: directory: read %s: %w", href, classifyFatal(err))
		}
		if sameCard(obj.Data, data) {
			p.written[href] = obj.ETag
			return nil
		}
		etag, err := p.col.Update(ctx, href, obj.ETag, data)
		if errors.Is(err, pim.ErrPreconditionFailed) || errors.Is(err, pim.ErrNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("bridge: directory: update %s: %w", href, classifyFatal(err))
		}
		p.written[href] = etag
		p.st.Updated++
		return nil
	}
	p.st.Failed++
	b.log.Warn("bridge: directory card kept changing; written at the next pass", "href", href)
	return nil
}

// directoryRemove deletes the card of a record gone from the directory.
func (b *Bridge) directoryRemove(ctx context.Context, p *dirPass, ent string, id crm.ID) error {
	href := p.col.ObjectHref(mapping.DirectoryCardName(ent, id))
	delete(p.suspect, href)
	err := p.col.Delete(ctx, href, "")
	if errors.Is(err, pim.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("bridge: directory: delete %s: %w", href, classifyFatal(err))
	}
	p.written[href] = ""
	p.st.Deleted++
	return nil
}

// sameCard compares two cards by their unfolded content lines, in any
// order and with property names in any case (servers such as Radicale
// reorder what they store).
func sameCard(a, b []byte) bool {
	la, lb := cardLines(a), cardLines(b)
	return slices.Equal(la, lb)
}

func cardLines(data []byte) []string {
	data = bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n"))
	data = bytes.ReplaceAll(data, []byte("\n "), nil)
	data = bytes.ReplaceAll(data, []byte("\n\t"), nil)
	var out []string
	for _, l := range strings.Split(string(data), "\n") {
		if l = strings.TrimSpace(l); l == "" {
			continue
		}
		name, value, _ := strings.Cut(l, ":")
		out = append(out, strings.ToUpper(name)+":"+value)
	}
	slices.Sort(out)
	return out
}
