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
	// pimModified is the PIM object's own modification time (zero when it
	// carries none).
	pimModified time.Time
	base        reconcile.Fields
	hasBase     bool
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
	if pr.pimExists {
		info, err := mapping.Inspect(pr.obj.Data)
		// An unreadable object is not taken for untracked: mapping it
		// reports the error as a sync error instead.
		pr.tracked = !b.opts.Settings.TrackByCategory || err != nil || info.HasCategory(b.opts.Settings.category())
		pr.pimModified = info.Modified
	}
	snap, err := b.opts.Cache.Snapshot(ctx, m.MapID)
	if err == nil && pendingCreate(m, snap) && cs.found[m.MapID] {
		err = idmap.ErrNoSnapshot // a re-link, as with no snapshot
	} else if err == nil && pendingCreate(m, snap) && !pr.pimExists {
		// A create on the PIM side whose outcome the bridge never learned:
		// if the object is not there, it was never written (unless the
		// server reported its removal: the user deleted it).
		if p.PIMChange == idmap.ChangeNone {
			if obj, gerr := cs.col(l).Get(ctx, m.Entry.Href); gerr == nil {
				pr.obj, pr.pimExists = obj, true
				info, ierr := mapping.Inspect(obj.Data)
				pr.tracked = !b.opts.Settings.TrackByCategory || ierr != nil || info.HasCategory(b.opts.Settings.category())
				pr.pimModified = info.Modified
			} else if !errors.Is(gerr, pim.ErrNotFound) {
				return nil, fmt.Errorf("bridge: read %s: %w", m.Entry.Href, gerr)
			}
		}
		if !pr.pimExists && p.PIMChange != idmap.ChangeDeleted {
			err = idmap.ErrNoSnapshot
		}
	}
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

// pendingCreate reports whether snap is the base createOnPIM stored
// before its write, with no reply since: neither the mapping nor the
// snapshot has an ETag.
func pendingCreate(m idmap.Mapping, snap idmap.Snapshot) bool {
	return m.ETag == "" && snap.ETag == "" && len(snap.Raw) > 0
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
	obs := reconcile.Observation{
		HasBase: pr.hasBase, Base: pr.base, PIMBase: pr.pimBase,
		CRMExists: pr.crmExists, CRM: crmF,
		PIMExists: pr.pimExists, Tracked: pr.tracked, PIM: pimF,
		TrackedFromPIM:      pr.m.TrackedFromPIM,
		CRMReport:           crmReport(p.CRMChange),
		PIMDeletionReported: p.PIMChange == idmap.ChangeDeleted,
	}
	if !pr.hasBase && pr.crmExists && pr.pimExists && pr.tracked && obs.CRMReport == reconcile.CRMReportNone {
		if genF, err := b.generated(pr); err == nil {
			obs.Generated = genF
		}
	}
	d := reconcile.Deltas(obs)
	if d.PIMStandsForRecord {
		pr.rec = pimRec
	}
	pimF = d.PIM
	kind, _ := reconcile.KindOf(pr.m.CRMEntity)
	in := reconcile.PairInput{Kind: kind, Cell: d.Cell, CRMEvent: d.CRMEvent, PIMEvent: d.PIMEvent}
	in.Fields.Base = d.Base
	in.Fields.CRM, in.Fields.PIM = d.CRM, d.PIM
	in.Fields.CRMTime = modifiedOn(pr.rec, p.CRMTime)
	in.Fields.PIMTime = p.PIMTime
	if pr.pimExists {
		if !pr.pimModified.IsZero() {
			in.Fields.PIMTime = pr.pimModified
		}
	}
	in.Facts = b.facts(cs, pr, pimRec)
	if in.CRMEvent == reconcile.LeftFilter && !pr.crmExists {
		// A record the user can no longer read is no longer theirs.
		in.Facts.UserIsOwner, in.Facts.UserIsOrganizer = false, false
		in.Facts.TrackedFromPIM = in.Facts.TrackedFromPIM || d.UnknownOrigin
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

// crmReport is what the CRM sync reported of a pair beyond an edit.
func crmReport(c idmap.ChangeKind) reconcile.CRMReport {
	switch c {
	case idmap.ChangeDeleted:
		return reconcile.CRMReportDeleted
	case idmap.ChangeLeftFilter:
		return reconcile.CRMReportLeftFilter
	}
	return reconcile.CRMReportNone
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
	if b.opts.Settings.TrackByCategory {
		o.Categories = []string{b.opts.Settings.category()}
	}
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
	// What is written is the pair's base even if the reply is lost: a
	// snapshot with no ETag (pendingCreate), so that a later edit of the
	// object counts as a PIM edit, not a side of a base-less link.
	if err := b.opts.Cache.Tx(ctx, func(tx *idmap.Tx) error {
		return tx.PutSnapshot(ctx, pr.m.MapID, idmap.Snapshot{Fields: plan.Snapshot.MarshalSnapshot(), Raw: data})
	}); err != nil {
		return err
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
		if cs.found == nil {
			cs.found = map[int64]bool{}
		}
		cs.found[pr.m.MapID] = true
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
