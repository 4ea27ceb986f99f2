package bridge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmclient"
	"github.com/pimbridge/pimbridge/idmap"
	"github.com/pimbridge/pimbridge/mapping"
	"github.com/pimbridge/pimbridge/pim"
	"github.com/pimbridge/pimbridge/reconcile"
)

// errReread asks applyPair to read both sides again and merge anew (a 412
// on either side, or an object that appeared or vanished meanwhile).
var errReread = errors.New("bridge: re-read and merge again")

// maxRereads bounds the re-read/merge loop of one pair in one cycle.
const maxRereads = 5

// itemError is a failure of one pair: it becomes a sync error.
type itemError struct {
	Field string
	Err   error
}

func (e *itemError) Error() string { return e.Err.Error() }
func (e *itemError) Unwrap() error { return e.Err }

// pair is everything read about one mapped pair.
type pair struct {
	m         idmap.Mapping
	p         idmap.Pending
	l         *lane
	rec       crm.Record // current CRM record, when crmExists
	crmExists bool
	obj       pim.Object // current PIM object, when pimExists
	pimExists bool
	tracked   bool // the PIM object is tracked (in the collection / has the category)
	base      reconcile.Fields
	hasBase   bool
	// pimBase is the mapped fields of the PIM object as the last sync left
	// it (the snapshot's raw bytes), which can differ from base where the
	// PIM form adds a default (PRIORITY) or drops precision.
	pimBase reconcile.Fields
	defects []mapping.Defect // of the PIM object, as pimRecord read it
}

func (b *Bridge) applyPair(ctx context.Context, cs *cycleState, l *lane, p idmap.Pending) error {
	for i := 0; i < maxRereads; i++ {
		err := b.applyOnce(ctx, cs, l, p, i > 0)
		if !errors.Is(err, errReread) {
			return err
		}
		cs.stats.Retried++
	}
	return &itemError{Err: fmt.Errorf("bridge: the item kept changing during %d attempts; will try again", maxRereads)}
}

func (b *Bridge) read(ctx context.Context, cs *cycleState, l *lane, p idmap.Pending, fresh bool) (*pair, error) {
	m, err := b.opts.Cache.Get(ctx, p.MapID)
	if err != nil {
		return nil, err
	}
	pr := &pair{m: m, p: p, l: l}
	if !m.Linked || m.DeletedLocally {
		return pr, nil
	}
	// CRM side.
	if rec, ok := cs.crmSeen[m.CRMID]; ok && !fresh {
		pr.rec, pr.crmExists = b.newest(ctx, cs, rec, m.CRMEntity), true
	} else {
		rec, err := cs.crm.Get(ctx, m.CRMEntity, m.CRMID)
		switch {
		case err == nil:
			pr.rec, pr.crmExists = rec, true
		case errors.Is(err, crm.ErrNotFound), errors.Is(err, crm.ErrForbidden) && !isFatal(err):
		default:
			return nil, fmt.Errorf("bridge: read %s(%s): %w", m.CRMEntity, m.CRMID, err)
		}
	}
	if pr.crmExists {
		pr.rec.Entity = m.CRMEntity
	}
	// PIM side. A CRM record whose object was never written has nothing to
	// read: the create's If-None-Match finds one that exists after all.
	if obj, ok := cs.pimSeen[m.Entry.Href]; ok && !fresh {
		pr.obj, pr.pimExists = obj, true
	} else if m.ETag != "" || p.PIMChange != idmap.ChangeNone || fresh {
		obj, err := cs.col(l).Get(ctx, m.Entry.Href)
		switch {
		case err == nil:
			pr.obj, pr.pimExists = obj, true
		case errors.Is(err, pim.ErrNotFound):
		default:
			return nil, fmt.Errorf("bridge: read %s: %w", m.Entry.Href, err)
		}
	}
	pr.tracked = pr.pimExists && (!b.opts.Settings.TrackByCategory || hasCategory(pr.obj.Data, b.opts.Settings.category()))
	snap, err := b.opts.Cache.Snapshot(ctx, m.MapID)
	switch {
	case err == nil:
		pr.base, err = reconcile.UnmarshalSnapshot(snap.Fields)
		if err != nil {
			return nil, err
		}
		pr.hasBase = true
		pr.pimBase = pr.base
		if len(snap.Raw) > 0 {
			if rec, err := pr.withObj(snap.Raw).pimRecord(); err == nil {
				if f, err := fieldsOf(rec); err == nil {
					pr.pimBase = f
				}
			}
		}
	case errors.Is(err, idmap.ErrNoSnapshot):
	default:
		return nil, err
	}
	return pr, nil
}

// withObj returns a copy of pr holding raw as its PIM object.
func (pr *pair) withObj(raw []byte) *pair {
	c := *pr
	c.obj = pim.Object{Data: raw}
	return &c
}

// pimRecord maps the PIM object of a pair to its CRM fields.
func (pr *pair) pimRecord() (crm.Record, error) {
	res, err := mapping.MapObject(pr.l.contentType(), pr.obj.Data, nil)
	if err != nil {
		return crm.Record{}, &itemError{Err: err}
	}
	if len(res) == 0 {
		return crm.Record{}, &itemError{Err: fmt.Errorf("%w: no contact, task or event in the object", mapping.ErrMalformed)}
	}
	rec := res[0].Record
	pr.defects = res[0].Defects
	for _, r := range res {
		if r.Record.ID == pr.m.CRMID {
			rec, pr.defects = r.Record, r.Defects
		}
	}
	for _, f := range mapping.DefectFields(pr.defects) {
		rec.Attrs[f] = pr.rec.Attrs[f] // the CRM cannot hold the PIM value: left as it was
	}
	rec.Entity, rec.ID = pr.m.CRMEntity, pr.m.CRMID
	return rec, nil
}

func (b *Bridge) applyOnce(ctx context.Context, cs *cycleState, l *lane, p idmap.Pending, fresh bool) error {
	pr, err := b.read(ctx, cs, l, p, fresh)
	if err != nil {
		return err
	}
	if !pr.m.Linked || pr.m.DeletedLocally {
		return b.complete(ctx, pr, nil)
	}
	var crmF, pimF reconcile.Fields
	var pimRec crm.Record
	if pr.crmExists {
		if crmF, err = fieldsOf(pr.rec); err != nil {
			return &itemError{Err: err}
		}
	}
	if pr.pimExists {
		if pimRec, err = pr.pimRecord(); err != nil {
			return err
		}
		if len(pr.defects) > 0 {
			b.log.Info("bridge: PIM object read with defects", "item", pr.m.Entry.Href, "defects", pr.defects)
		}
		if pimF, err = fieldsOf(pimRec); err != nil {
			return &itemError{Err: err}
		}
	}
	kind, _ := reconcile.KindOf(pr.m.CRMEntity)
	leftFilter := pr.crmExists && (p.CRMChange == idmap.ChangeDeleted || p.CRMChange == idmap.ChangeLeftFilter)
	in := reconcile.PairInput{Kind: kind}
	unknownOrigin := false // a re-linked object whose record cannot be read
	switch {
	case pr.hasBase:
		in.Cell.HasBase = true
		in.Fields.Base = pr.base
		switch ev := crmRemoval(p, pr.crmExists); {
		case ev != 0:
			in.Cell.CRM, in.CRMEvent = reconcile.Deleted, ev
		case !crmF.Equal(pr.base):
			in.Cell.CRM = reconcile.Modified
		}
		switch {
		case !pr.pimExists:
			in.Cell.PIM, in.PIMEvent = reconcile.Deleted, reconcile.PIMDeleted
		case !pr.tracked:
			in.Cell.PIM, in.PIMEvent = reconcile.Deleted, reconcile.PIMUntracked
		default:
			// Only what the PIM side changed since the last sync counts
			// as a PIM edit; the rest is the base's value.
			adj := pr.base.Clone()
			for _, k := range unionNames(pimF, pr.pimBase) {
				if pimF[k] != pr.pimBase[k] {
					adj[k] = pimF[k]
				}
			}
			pimF = adj.Compact()
			if !pimF.Equal(pr.base) {
				in.Cell.PIM = reconcile.Modified
			}
		}
	case pr.crmExists && !pr.pimExists && p.PIMChange == idmap.ChangeDeleted:
		// No snapshot, but the server reported the removal of the object
		// at the pair's href: a write whose outcome the bridge never
		// learned (a create with its reply lost, or cut by a kill) did
		// happen, and the user deleted the object. A PIM deletion, judged
		// by the deletion table against the record as it is, not an
		// object never written to create again.
		in.Cell = reconcile.Cell{HasBase: true, PIM: reconcile.Deleted}
		in.PIMEvent = reconcile.PIMDeleted
		if ev := crmRemoval(p, true); ev != 0 {
			in.Cell.CRM, in.CRMEvent = reconcile.Deleted, ev
		}
		in.Fields.Base = crmF
	case !pr.crmExists && pr.pimExists && !pr.m.TrackedFromPIM:
		// The object names a CRM record (X-CRM-ID) that cannot be read, and
		// there is no snapshot (the cache was lost): a removal in CRM,
		// judged on the PIM values. Unless a tombstone said so it left the
		// filter, and since nothing tells whether the user tracked it from
		// the PIM side, it is treated as tracked: kept there, unlinked.
		in.Cell = reconcile.Cell{HasBase: true, CRM: reconcile.Deleted}
		in.CRMEvent = crmRemoval(p, false)
		unknownOrigin = in.CRMEvent == reconcile.LeftFilter
		in.Fields.Base = pimF
		pr.rec = pimRec
	default:
		if pr.crmExists && pr.pimExists && pr.tracked && !leftFilter {
			// Re-linking (no snapshot): a PIM value that is what the CRM
			// record itself would be written as (format defaults such as
			// PRIORITY included) is not a PIM edit.
			if genF, err := b.generated(pr); err == nil {
				adj := reconcile.Fields{}
				for _, k := range unionNames(pimF, genF) {
					if pimF[k] == genF[k] {
						adj[k] = crmF[k]
					} else {
						adj[k] = pimF[k]
					}
				}
				pimF = adj.Compact()
			}
		}
		if pr.crmExists && !leftFilter {
			in.Cell.CRM = reconcile.New
		}
		if pr.pimExists && pr.tracked {
			in.Cell.PIM = reconcile.New
		}
	}
	in.Fields.CRM, in.Fields.PIM = crmF, pimF
	in.Fields.CRMTime = modifiedOn(pr.rec, p.CRMTime)
	in.Fields.PIMTime = p.PIMTime
	if pr.pimExists {
		if t := modTime(pr.obj.Data); !t.IsZero() {
			in.Fields.PIMTime = t
		}
	}
	in.Facts = b.facts(cs, pr, pimRec)
	if in.CRMEvent == reconcile.LeftFilter && !pr.crmExists {
		// A record the user can no longer read is no longer theirs.
		in.Facts.UserIsOwner, in.Facts.UserIsOrganizer = false, false
		in.Facts.TrackedFromPIM = in.Facts.TrackedFromPIM || unknownOrigin
	}
	plan := reconcile.Reconcile(in)
	if plan.Merge != nil {
		cs.stats.Conflicts += len(plan.Merge.Conflicts)
	}
	cs.note(pr, plan)
	if b.log.Enabled(ctx, slog.LevelDebug) {
		args := []any{"href", pr.m.Entry.Href, "cell", in.Cell.String(), "outcome", plan.Outcome.String(), "base", in.Fields.Base, "crm", crmF, "pim", pimF}
		if plan.Merge != nil {
			args = append(args, "to_crm", plan.Merge.ToCRM, "to_pim", plan.Merge.ToPIM)
		}
		b.log.Debug("bridge: pair", args...)
	}
	switch plan.Outcome {
	case reconcile.Nothing:
		if pr.hasBase && pr.pimExists && pr.crmExists {
			if err := b.ensurePIM(ctx, cs, pr); err != nil {
				return err
			}
		}
		cs.stats.Unchanged++
		return b.complete(ctx, pr, nil)
	case reconcile.CreateOnPIM:
		return b.createOnPIM(ctx, cs, pr, plan.Merge)
	case reconcile.CreateInCRM:
		return b.createInCRM(ctx, cs, pr, plan.Merge)
	case reconcile.Link, reconcile.UpdatePIM, reconcile.UpdateCRM, reconcile.MergeBoth:
		if plan.Outcome == reconcile.Link {
			cs.stats.Linked++
		}
		return b.merge(ctx, cs, pr, plan.Merge)
	case reconcile.Forget:
		return b.remove(ctx, pr, func(tx *idmap.Tx) error { return tx.Delete(ctx, pr.m.MapID) })
	case reconcile.Invalid:
		return &itemError{Err: fmt.Errorf("bridge: inconsistent cache for %s (%s)", pr.m.Entry.Href, in.Cell)}
	}
	if plan.Deletion != nil {
		return b.applyDeletion(ctx, cs, pr, plan.Deletion.Action)
	}
	return nil
}

// crmRemoval is the CRM side's removal of a pair, or 0. Only a deletion the
// sync protocol reported (a tombstone) whose record is gone is a deletion in
// CRM; a record that left the user's view, that is still readable after a
// delete row (a server without left-filter rows), or that the user can no
// longer read with no tombstone reported has left the filter (DESIGN.md
// section 4 step 5): what was tracked from the PIM side then stays there.
func crmRemoval(p idmap.Pending, crmExists bool) reconcile.Event {
	switch {
	case p.CRMChange == idmap.ChangeDeleted && !crmExists:
		return reconcile.CRMDeleted
	case p.CRMChange == idmap.ChangeDeleted, p.CRMChange == idmap.ChangeLeftFilter, !crmExists:
		return reconcile.LeftFilter
	}
	return 0
}

func (b *Bridge) facts(cs *cycleState, pr *pair, pimRec crm.Record) reconcile.Facts {
	f := reconcile.Facts{TrackedFromPIM: pr.m.TrackedFromPIM, UntrackDeletesInCRM: b.opts.Settings.UntrackDeletesInCRM}
	rec := pr.rec
	if !pr.crmExists && pr.hasBase {
		// Deleted in CRM: the facts as of the last sync.
		if attrs, err := attrsOf(pr.m.CRMEntity, pr.base); err == nil {
			rec = crm.Record{Entity: pr.m.CRMEntity, Attrs: attrs}
		}
	}
	if rec.Attrs == nil {
		rec = pimRec
	}
	owner := ownerOf(pr.rec)
	if owner == (crm.ID{}) {
		owner = pr.m.OwnerID
	}
	f.UserIsOwner = owner == cs.me || (owner == (crm.ID{}) && pr.m.TrackedFromPIM)
	if ps, ok := pr.rec.Attrs["organizer"].([]crm.Party); ok {
		for _, p := range ps {
			if p.Party != nil && p.Party.ID == cs.me {
				f.UserIsOrganizer = true
			}
		}
	}
	if sc, ok := rec.Attrs["statecode"].(int64); ok {
		f.State, _ = reconcile.StateOf(sc)
	}
	if t, ok := rec.Attrs["scheduledstart"].(time.Time); ok {
		f.StartInFuture = t.After(b.now())
	}
	return f
}

// opts returns the mapping options of a pair (ORG from the parent account).
func (b *Bridge) mapOpts(ctx context.Context, cs *cycleState, pr *pair) *mapping.Options {
	o := &mapping.Options{Now: b.now}
	if !pr.l.vcard || !b.opts.Settings.UpdateCompany || !pr.crmExists {
		return o
	}
	ref, ok := pr.rec.Attrs["parentcustomerid"].(crm.Ref)
	if !ok {
		return o
	}
	name := ref.Name
	if name == "" {
		if n, ok := cs.accounts[ref.ID]; ok {
			name = n
		} else if acc, err := cs.crm.Get(ctx, ref.Entity, ref.ID, "name"); err == nil {
			name, _ = acc.Attrs["name"].(string)
			cs.accounts[ref.ID] = name
		}
	}
	if name != "" {
		o.Company, o.SetCompany = name, true
	}
	return o
}

func (b *Bridge) patch(pr *pair, raw []byte, rec crm.Record, o *mapping.Options) ([]byte, error) {
	if pr.l.vcard {
		return mapping.PatchVCard(raw, rec, o)
	}
	return mapping.PatchICal(raw, rec, o)
}

// putPIM writes data over the pair's object with If-Match.
func (b *Bridge) putPIM(ctx context.Context, cs *cycleState, pr *pair, data []byte) error {
	etag, err := cs.col(pr.l).Update(ctx, pr.m.Entry.Href, pr.obj.ETag, data)
	if errors.Is(err, pim.ErrPreconditionFailed) || errors.Is(err, pim.ErrNotFound) {
		return errReread
	}
	if err != nil {
		return fmt.Errorf("bridge: update %s: %w", pr.m.Entry.Href, err)
	}
	pr.obj = pim.Object{Href: pr.m.Entry.Href, ETag: etag, Data: data}
	delete(cs.pimSeen, pr.m.Entry.Href)
	cs.written[pr.l] = true
	return nil
}

// ensurePIM writes what the PIM object must carry besides the merged
// fields: X-CRM-ID (and X-CRM-ENTITY) and the one-way ORG.
func (b *Bridge) ensurePIM(ctx context.Context, cs *cycleState, pr *pair) error {
	data, err := b.patch(pr, pr.obj.Data, crm.Record{Entity: pr.m.CRMEntity, ID: pr.m.CRMID, Attrs: map[string]any{}}, b.mapOpts(ctx, cs, pr))
	if err != nil {
		return &itemError{Err: err}
	}
	if bytes.Equal(data, pr.obj.Data) {
		return nil
	}
	if err := b.putPIM(ctx, cs, pr, data); err != nil {
		return err
	}
	cs.stats.updatedOnPIM(pr.m.CRMEntity)
	return nil
}

func (b *Bridge) createOnPIM(ctx context.Context, cs *cycleState, pr *pair, plan *reconcile.Plan) error {
	o := b.mapOpts(ctx, cs, pr)
	var data []byte
	var err error
	if pr.l.vcard {
		data, err = mapping.NewVCard(pr.rec, o)
	} else {
		data, err = mapping.NewICal(pr.rec, o)
	}
	if err != nil {
		return &itemError{Err: err}
	}
	if b.opts.Settings.TrackByCategory {
		data = addCategory(data, b.opts.Settings.category())
	}
	name := pr.m.CRMID.String() + pr.l.ext
	ref, err := cs.col(pr.l).Create(ctx, name, data)
	if errors.Is(err, pim.ErrPreconditionFailed) || errors.Is(err, pim.ErrUIDConflict) {
		// It is there already (an earlier run wrote it, or another bridge):
		// link to it.
		obj, gerr := cs.col(pr.l).Get(ctx, pr.m.Entry.Href)
		if gerr != nil {
			return &itemError{Err: fmt.Errorf("bridge: create %s: %w", pr.m.Entry.Href, err)}
		}
		cs.pimSeen[obj.Href] = obj
		return errReread
	}
	if err != nil {
		return fmt.Errorf("bridge: create %s: %w", pr.m.Entry.Href, err)
	}
	cs.stats.createdOnPIM(pr.m.CRMEntity)
	cs.written[pr.l] = true
	return b.commit(ctx, pr, plan.Snapshot, data, ref.ETag, ref.Href)
}

func (b *Bridge) createInCRM(ctx context.Context, cs *cycleState, pr *pair, plan *reconcile.Plan) error {
	attrs, err := attrsOf(pr.m.CRMEntity, plan.ToCRM)
	if err != nil {
		return &itemError{Err: err}
	}
	for k, v := range attrs {
		if v == nil {
			delete(attrs, k)
		}
	}
	wo, err := b.createOptions(ctx, pr)
	if err != nil {
		return err
	}
	rec, err := cs.crm.Create(ctx, crm.Record{Entity: pr.m.CRMEntity, ID: pr.m.CRMID, Attrs: attrs}, wo)
	if errors.Is(err, crm.ErrDuplicate) {
		return duplicateError(pr, err)
	}
	if errors.Is(err, crm.ErrConflict) {
		// Created by an earlier attempt with other values: merge with it.
		return errReread
	}
	if err != nil {
		return fmt.Errorf("bridge: create %s: %w", pr.m.CRMEntity, err)
	}
	cs.stats.createdInCRM(pr.m.CRMEntity)
	if wo != nil {
		if err := b.opts.Cache.Tx(ctx, func(tx *idmap.Tx) error { return tx.ClearDuplicateAllowed(ctx, pr.m.MapID) }); err != nil {
			return err
		}
	}
	pr.rec, pr.crmExists = rec, true
	pr.rec.Entity = pr.m.CRMEntity
	// The record now holds what the bridge sent, made from the PIM object
	// as read: that is the snapshot until the X-CRM-ID write-back confirms
	// it. Should the write-back meet a 412 (the user edited the object
	// meanwhile) or be cut, the re-read judges the PIM object against it
	// (its differing fields are PIM edits), not as a re-link where the
	// bridge's own create would count as the later CRM edit.
	if err := b.putSnapshot(ctx, pr, plan.Snapshot, pr.obj.Data); err != nil {
		return err
	}
	if err := b.ensurePIM(ctx, cs, pr); err != nil {
		return err
	}
	return b.commit(ctx, pr, plan.Snapshot, pr.obj.Data, pr.obj.ETag, "")
}

// merge applies the steps of a merge plan, later side first, storing the
// snapshot after each step.
func (b *Bridge) merge(ctx context.Context, cs *cycleState, pr *pair, plan *reconcile.Plan) error {
	var refused []string // fields CRM did not take (closed or not writable)
	for i, st := range plan.Steps {
		attrs, err := attrsOf(pr.m.CRMEntity, st.Fields)
		if err != nil {
			return &itemError{Err: err}
		}
		switch st.Dir {
		case reconcile.ToPIM:
			data, err := b.patch(pr, pr.obj.Data, crm.Record{Entity: pr.m.CRMEntity, ID: pr.m.CRMID, Attrs: attrs}, b.mapOpts(ctx, cs, pr))
			if err != nil {
				return &itemError{Err: err}
			}
			if !bytes.Equal(data, pr.obj.Data) {
				if err := b.putPIM(ctx, cs, pr, data); err != nil {
					return err
				}
				cs.stats.updatedOnPIM(pr.m.CRMEntity)
			}
		case reconcile.ToCRM:
			rec, err := cs.crm.Update(ctx, crm.Record{Entity: pr.m.CRMEntity, ID: pr.m.CRMID, Attrs: attrs}, &crmclient.WriteOptions{IfMatch: pr.rec.Version})
			if errors.Is(err, crm.ErrPreconditionFailed) || errors.Is(err, crm.ErrNotFound) {
				return errReread
			}
			if errors.Is(err, crm.ErrReadOnly) || errors.Is(err, crm.ErrForbidden) {
				// A completed or canceled activity takes no edits in CRM, and
				// a record the user reads but may not write (a colleague's,
				// linked with `errors link`) takes none from this user: the
				// PIM edit stays on the PIM side only.
				b.log.Warn("bridge: PIM edit not sent to CRM (record closed or not writable by this user)", "item", pr.m.Entry.Href, "fields", st.Fields.Names(), "err", err)
				refused = append(refused, st.Fields.Names()...)
				break
			}
			if err != nil {
				field := ""
				var ae *crm.AttributeError
				if errors.As(err, &ae) {
					field = ae.Attribute
				}
				return &itemError{Field: field, Err: fmt.Errorf("bridge: update %s(%s): %w", pr.m.CRMEntity, pr.m.CRMID, err)}
			}
			rec.Entity = pr.m.CRMEntity
			pr.rec = rec
			delete(cs.crmSeen, pr.m.CRMID)
			cs.stats.updatedInCRM(pr.m.CRMEntity)
		}
		raw, err := b.pendingRaw(ctx, cs, pr, st.Snapshot, plan.Steps[i+1:])
		if err != nil {
			return err
		}
		if err := b.putSnapshot(ctx, pr, unsent(st.Snapshot, refused, pr), raw); err != nil {
			return err
		}
	}
	if err := b.ensurePIM(ctx, cs, pr); err != nil {
		return err
	}
	return b.commit(ctx, pr, unsent(plan.Snapshot, refused, pr), pr.obj.Data, pr.obj.ETag, "")
}

// unsent returns snap with the fields CRM refused set to the CRM record's
// values: the PIM value stays a PIM-side change, so a later merge does not
// take the CRM value for a CRM change and overwrite what the user typed.
func unsent(snap reconcile.Fields, refused []string, pr *pair) reconcile.Fields {
	if len(refused) == 0 {
		return snap
	}
	crmF, err := fieldsOf(pr.rec)
	if err != nil {
		return snap
	}
	out := snap.Clone()
	for _, k := range refused {
		out[k] = crmF[k]
	}
	return out.Compact()
}

// pendingRaw returns the raw PIM object to store with an intermediate
// snapshot snap: the PIM object as it now is, with the fields a later step
// has yet to write to CRM set back to snap's (base) values. The raw object
// is what a PIM edit is judged against; were it the object as it is, a PIM
// edit written to the PIM side's own object but not yet to CRM (the CRM
// write cut by a 412 or a crash) would equal it on the re-read and no
// longer count as an edit: CRM would keep the old value.
func (b *Bridge) pendingRaw(ctx context.Context, cs *cycleState, pr *pair, snap reconcile.Fields, rest []reconcile.Step) ([]byte, error) {
	pending := reconcile.Fields{}
	for _, st := range rest {
		if st.Dir != reconcile.ToCRM {
			continue
		}
		for k := range st.Fields {
			pending[k] = snap[k]
		}
	}
	if len(pending) == 0 || !pr.pimExists {
		return pr.obj.Data, nil
	}
	attrs, err := attrsOf(pr.m.CRMEntity, pending)
	if err != nil {
		return nil, &itemError{Err: err}
	}
	raw, err := b.patch(pr, pr.obj.Data, crm.Record{Entity: pr.m.CRMEntity, ID: pr.m.CRMID, Attrs: attrs}, b.mapOpts(ctx, cs, pr))
	if err != nil {
		return nil, &itemError{Err: err}
	}
	return raw, nil
}

func (b *Bridge) putSnapshot(ctx context.Context, pr *pair, f reconcile.Fields, raw []byte) error {
	return b.opts.Cache.Tx(ctx, func(tx *idmap.Tx) error {
		if err := tx.PutSnapshot(ctx, pr.m.MapID, idmap.Snapshot{Fields: f.MarshalSnapshot(), Raw: raw, ETag: pr.obj.ETag}); err != nil {
			return err
		}
		return tx.SetETag(ctx, pr.m.MapID, pr.obj.ETag)
	})
}

// commit stores the final snapshot, raw object, ETag and owner of a pair
// and completes its pending change, in one transaction.
func (b *Bridge) commit(ctx context.Context, pr *pair, f reconcile.Fields, raw []byte, etag, href string) error {
	return b.opts.Cache.Tx(ctx, func(tx *idmap.Tx) error {
		m := pr.m
		m.ETag = etag
		if href != "" {
			m.Entry.Href = href
		}
		if o := ownerOf(pr.rec); o != (crm.ID{}) {
			m.OwnerID = o
		}
		if err := tx.Update(ctx, m); err != nil {
			return err
		}
		if err := tx.PutSnapshot(ctx, m.MapID, idmap.Snapshot{Fields: f.MarshalSnapshot(), Raw: raw, ETag: etag}); err != nil {
			return err
		}
		return completeTx(ctx, tx, pr.p)
	})
}

func completeTx(ctx context.Context, tx *idmap.Tx, p idmap.Pending) error {
	err := tx.Complete(ctx, p.MapID, p.Seq)
	if errors.Is(err, idmap.ErrStale) || errors.Is(err, idmap.ErrNoPending) {
		return nil // a newer change is due next
	}
	return err
}

func (b *Bridge) complete(ctx context.Context, pr *pair, fn func(*idmap.Tx) error) error {
	return b.opts.Cache.Tx(ctx, func(tx *idmap.Tx) error {
		if fn != nil {
			if err := fn(tx); err != nil {
				return err
			}
		}
		return completeTx(ctx, tx, pr.p)
	})
}

func (b *Bridge) remove(ctx context.Context, pr *pair, fn func(*idmap.Tx) error) error {
	return b.opts.Cache.Tx(ctx, fn)
}

func (b *Bridge) applyDeletion(ctx context.Context, cs *cycleState, pr *pair, act reconcile.Action) error {
	id := pr.m.MapID
	switch act {
	case reconcile.Keep:
		return b.complete(ctx, pr, nil)
	case reconcile.DeleteInCRM:
		if pr.crmExists {
			err := cs.crm.Delete(ctx, pr.m.CRMEntity, pr.m.CRMID, &crmclient.WriteOptions{IfMatch: pr.rec.Version})
			if errors.Is(err, crm.ErrPreconditionFailed) {
				return errReread
			}
			if err != nil && !errors.Is(err, crm.ErrNotFound) {
				return fmt.Errorf("bridge: delete %s(%s): %w", pr.m.CRMEntity, pr.m.CRMID, err)
			}
			cs.stats.deletedInCRM(pr.m.CRMEntity)
		}
		return b.remove(ctx, pr, func(tx *idmap.Tx) error { return tx.Delete(ctx, id) })
	case reconcile.DeleteOnPIM:
		if pr.pimExists {
			err := cs.col(pr.l).Delete(ctx, pr.m.Entry.Href, pr.obj.ETag)
			if errors.Is(err, pim.ErrPreconditionFailed) {
				return errReread
			}
			if err != nil && !errors.Is(err, pim.ErrNotFound) {
				return fmt.Errorf("bridge: delete %s: %w", pr.m.Entry.Href, err)
			}
			cs.stats.deletedOnPIM(pr.m.CRMEntity)
			cs.written[pr.l] = true
		}
		return b.remove(ctx, pr, func(tx *idmap.Tx) error { return tx.Delete(ctx, id) })
	case reconcile.Unlink:
		cs.stats.unlinked(pr.m.CRMEntity)
		return b.remove(ctx, pr, func(tx *idmap.Tx) error { return tx.Unlink(ctx, id) })
	case reconcile.MarkDeletedLocally:
		cs.stats.unlinked(pr.m.CRMEntity)
		return b.remove(ctx, pr, func(tx *idmap.Tx) error { return tx.MarkDeletedLocally(ctx, id) })
	}
	return fmt.Errorf("bridge: unknown deletion action %v", act)
}

// generated returns the fields of the PIM object the pair's CRM record would
// be written as.
func (b *Bridge) generated(pr *pair) (reconcile.Fields, error) {
	var data []byte
	var err error
	if pr.l.vcard {
		data, err = mapping.NewVCard(pr.rec, nil)
	} else {
		data, err = mapping.NewICal(pr.rec, nil)
	}
	if err != nil {
		return nil, err
	}
	rec, err := pr.withObj(data).pimRecord()
	if err != nil {
		return nil, err
	}
	return fieldsOf(rec)
}

func unionNames(a, b reconcile.Fields) []string {
	m := map[string]bool{}
	for k := range a {
		m[k] = true
	}
	for k := range b {
		m[k] = true
	}
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
