package mailtrack

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmclient"
	"github.com/pimbridge/pimbridge/idmap"
	"github.com/pimbridge/pimbridge/internal/retry"
	"github.com/pimbridge/pimbridge/mapping"
	"github.com/pimbridge/pimbridge/pim/imapmail"
)

// done is a pending change worked off, to be completed once the keyword
// is on the message.
type done struct {
	p     idmap.Pending
	mp    idmap.Mapping
	s     state
	write bool // write s
	// unlink, deleted: how the pair ends.
	unlink, deleted bool
	newID           crm.ID // the email's id when it differs from mp.CRMID
	alias           string // key to alias to newID
	keyword         bool   // the message must carry the keyword
	// tracked: the CRM email was created or linked; regarding: the
	// regarding of an existing email was set (Stats.Tracked, .Regarding).
	tracked, regarding bool
}

// permanentError marks a failure that no retry can fix (a message the
// mapping and the fallback both reject): it becomes a sync error at once.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// apply works off the due pending changes of e-mail mappings: CRM first,
// then the keyword on IMAP (batched per folder), then one transaction
// completing them. Each step is idempotent, so a crash anywhere repeats it.
func (t *Tracker) apply(ctx context.Context) (Stats, error) {
	var st Stats
	due, err := t.opts.Cache.Due(ctx, t.now(), 0)
	if err != nil {
		return st, fmt.Errorf("mailtrack: apply: %w", err)
	}
	var ds []done
	type failure struct {
		p   idmap.Pending
		mp  idmap.Mapping
		err error
	}
	var fails []failure
	for _, p := range due {
		if ctx.Err() != nil {
			break
		}
		mp, err := t.opts.Cache.Get(ctx, p.MapID)
		if err != nil {
			if errors.Is(err, idmap.ErrUnmapped) {
				continue
			}
			return st, fmt.Errorf("mailtrack: apply: %w", err)
		}
		if mp.ObjectType != idmap.ObjectEmail || !mp.Entry.IsMail() {
			continue // another bridge's pair
		}
		var d done
		switch p.PIMChange {
		case idmap.ChangeCreated, idmap.ChangeModified:
			d, err = t.track(ctx, p, mp)
		case idmap.ChangeUntracked:
			d, err = t.untrack(ctx, p, mp)
		default:
			d = done{p: p, mp: mp}
		}
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			fails = append(fails, failure{p, mp, err})
			continue
		}
		ds = append(ds, d)
	}
	// The keyword on everything tracked, one STORE per folder.
	batch := map[folderKey][]uint32{}
	for fk, uids := range t.needKeyword {
		batch[fk] = append(batch[fk], uids...)
	}
	for _, d := range ds {
		if d.keyword && !d.unlink {
			fk := folderKey{d.mp.Entry.Collection, d.mp.Entry.UIDValidity}
			if !t.haveKeyword[fk][d.mp.Entry.UID] {
				batch[fk] = append(batch[fk], d.mp.Entry.UID)
			}
		}
	}
	kwFailed := map[folderKey]error{}
	for fk, uids := range batch {
		slices.Sort(uids)
		uids = slices.Compact(uids)
		err := t.opts.Mailbox.SetKeyword(ctx, fk.mailbox, fk.uidValidity, uids, t.keyword)
		if err != nil && !errors.Is(err, imapmail.ErrUIDValidity) && !errors.Is(err, imapmail.ErrNoMailbox) {
			kwFailed[fk] = err
			t.log.Warn("mailtrack: set keyword", "folder", fk.mailbox, "err", err)
			continue
		}
		delete(t.needKeyword, fk)
		if t.haveKeyword[fk] == nil {
			t.haveKeyword[fk] = map[uint32]bool{}
		}
		for _, u := range uids {
			t.haveKeyword[fk][u] = true
		}
		st.Keywords += len(uids)
	}
	var firstErr error
	err = t.opts.Cache.Tx(ctx, func(x *idmap.Tx) error {
		for _, d := range ds {
			if err := kwFailed[folderKey{d.mp.Entry.Collection, d.mp.Entry.UIDValidity}]; err != nil && d.keyword {
				if _, err := x.Fail(ctx, d.p.MapID, d.p.Seq, t.failure(d.mp, err), t.opts.Retry); err != nil && !errors.Is(err, idmap.ErrStale) {
					return err
				}
				continue
			}
			if err := t.finish(ctx, x, d, &st); err != nil {
				return err
			}
		}
		for _, f := range fails {
			if retry.Transient(f.err) {
				// The connection broke (IMAP or CRM): no attempt spent,
				// the change stays due for the next cycle.
				st.Failed++
				if firstErr == nil {
					firstErr = f.err
				}
				continue
			}
			pol := t.opts.Retry
			var pe *permanentError
			if errors.As(f.err, &pe) {
				pol.MaxAttempts = 1
			}
			t.log.Warn("mailtrack: track failed", "item", f.mp.Entry.String(), "err", f.err)
			if _, err := x.Fail(ctx, f.p.MapID, f.p.Seq, t.failure(f.mp, f.err), pol); err != nil && !errors.Is(err, idmap.ErrStale) {
				return err
			}
			st.Failed++
		}
		return nil
	})
	if err != nil {
		return st, fmt.Errorf("mailtrack: apply: %w", err)
	}
	if ctx.Err() != nil {
		return st, ctx.Err()
	}
	// Item failures are retried and then reported as sync errors; only a
	// broken connection fails the cycle (so that Run backs off).
	return st, firstErr
}

func (t *Tracker) failure(mp idmap.Mapping, err error) idmap.Failure {
	return idmap.Failure{Item: "imap:" + t.account + ":" + mp.Entry.String(), Message: err.Error()}
}

// finish records the outcome of one change in the completing transaction.
func (t *Tracker) finish(ctx context.Context, x *idmap.Tx, d done, st *Stats) error {
	mp := d.mp
	if d.newID != (crm.ID{}) && d.newID != mp.CRMID {
		mp.CRMID = d.newID
		if err := x.Update(ctx, mp); errors.Is(err, idmap.ErrDuplicate) {
			// Another pair of this bridge already holds that email: this
			// one is a second copy of it.
			return x.Delete(ctx, mp.MapID)
		} else if err != nil {
			return err
		}
		if d.alias != "" {
			if err := x.SetSetting(ctx, t.settingKey("alias/"+d.alias), d.newID.String()); err != nil {
				return err
			}
		}
	}
	if d.write {
		if err := writeState(ctx, x, mp.MapID, d.s); err != nil {
			return err
		}
	}
	if err := x.Complete(ctx, mp.MapID, d.p.Seq); err != nil {
		if errors.Is(err, idmap.ErrStale) || errors.Is(err, idmap.ErrNoPending) {
			return nil // a newer change is due next
		}
		return err
	}
	if d.tracked {
		st.Tracked++
	}
	if d.regarding {
		st.Regarding++
	}
	switch {
	case d.deleted:
		if err := x.MarkDeletedLocally(ctx, mp.MapID); err != nil {
			return err
		}
		st.Deleted++
	case d.unlink:
		if err := x.Unlink(ctx, mp.MapID); err != nil {
			return err
		}
		st.Untracked++
	}
	return nil
}

// track makes sure the CRM email of a tracked message exists with the
// right regarding.
func (t *Tracker) track(ctx context.Context, p idmap.Pending, mp idmap.Mapping) (done, error) {
	d := done{p: p, mp: mp, keyword: true, write: true}
	s, err := readState(ctx, t.opts.Cache, mp.MapID)
	if err != nil {
		return d, err
	}
	d.s = s
	folder := mp.Entry.Collection
	reg, isReg := t.regardingOf(folder)
	if s.Synced && p.PIMChange == idmap.ChangeModified {
		// Moved: only the regarding can have changed.
		if !isReg || (s.Regarding != nil && s.Regarding.Entity == reg.Entity && s.Regarding.ID == reg.ID) {
			return d, nil
		}
		_, err := t.opts.CRM.Update(ctx, crm.Record{Entity: crm.EntityEmail, ID: mp.CRMID,
			Attrs: map[string]any{"regardingobjectid": reg}}, nil)
		if errors.Is(err, crm.ErrNotFound) {
			// Deleted in CRM: the message stays; the pair is unlinked.
			d.unlink, d.keyword = true, false
			d.s.Synced = false
			return d, nil
		}
		if err != nil {
			return d, fmt.Errorf("set regarding: %w", err)
		}
		d.s.Regarding = &reg
		d.regarding = true
		return d, nil
	}
	raw, err := t.opts.Mailbox.FetchMessage(ctx, folder, mp.Entry.UIDValidity, mp.Entry.UID)
	if errors.Is(err, imapmail.ErrNotFound) || errors.Is(err, imapmail.ErrUIDValidity) || errors.Is(err, imapmail.ErrNoMailbox) {
		// Gone before it was tracked; a copy elsewhere re-links it.
		d.deleted, d.keyword = true, false
		return d, nil
	}
	if err != nil {
		return d, fmt.Errorf("fetch: %w", err)
	}
	outgoing := folder == t.sent
	em, err := mapping.MessageToCRM(raw, outgoing, &mapping.Options{MaxAttachmentSize: t.opts.AttachmentSizeLimit})
	if err != nil {
		t.log.Info("mailtrack: message does not parse; tracking best-effort fields", "item", mp.Entry.String(), "err", err)
		em = bestEffort(raw, outgoing)
	} else if len(em.Defects) > 0 {
		t.log.Info("mailtrack: message read with defects", "item", mp.Entry.String(), "defects", em.Defects)
	}
	a := em.Record.Attrs
	if isReg {
		a["regardingobjectid"] = reg
		if !outgoing && t.fromOwn(a) {
			a["directioncode"] = true
		}
	}
	if err := t.resolveParties(ctx, a); err != nil {
		return d, err
	}
	for k, v := range a {
		if v == nil {
			delete(a, k)
		}
	}
	key := s.Key
	msgid, _ := a["messageid"].(string)
	id, gen := mp.CRMID, s.Gen
	if !s.Synced && msgid != "" {
		rs, err := t.opts.CRM.QueryAll(ctx, crm.EntityEmail, crmclient.Query{
			Select: []string{"activityid"}, Filter: "messageid eq " + odataString(msgid), Top: 1})
		if err != nil {
			return d, fmt.Errorf("look up message-id: %w", err)
		}
		if len(rs) > 0 {
			id = rs[0].ID
		}
	}
	created := false
	for tries := 0; ; tries++ {
		if tries > 8 {
			return d, fmt.Errorf("create email: ids of %d generations taken", gen)
		}
		rec := crm.Record{Entity: crm.EntityEmail, ID: id, Attrs: a}
		_, err := t.opts.CRM.Create(ctx, rec, nil)
		if err == nil {
			created = true
			break
		}
		if errors.Is(err, crm.ErrConflict) {
			cur, gerr := t.opts.CRM.Get(ctx, crm.EntityEmail, id, "regardingobjectid")
			if gerr == nil {
				// Tracked already (another folder or bridge): link to it.
				if isReg {
					if r, _ := cur.Attrs["regardingobjectid"].(crm.Ref); r.ID != reg.ID {
						if _, err := t.opts.CRM.Update(ctx, crm.Record{Entity: crm.EntityEmail, ID: id,
							Attrs: map[string]any{"regardingobjectid": reg}}, nil); err != nil {
							return d, fmt.Errorf("set regarding: %w", err)
						}
					}
				}
				break
			}
			if !errors.Is(gerr, crm.ErrNotFound) {
				return d, fmt.Errorf("read email: %w", gerr)
			}
			err = gerr
		}
		if errors.Is(err, crm.ErrNotFound) {
			// This id was used and deleted in CRM: the next generation.
			gen++
			id = EmailID(key, gen)
			continue
		}
		var ae *crm.AttributeError
		if errors.As(err, &ae) || errors.Is(err, crm.ErrInvalidArgument) {
			return d, &permanentError{fmt.Errorf("create email: %w", err)}
		}
		return d, fmt.Errorf("create email: %w", err)
	}
	if created {
		for i, att := range em.Attachments {
			att.ID = attachmentID(id, i)
			att.Attrs["objectid"] = crm.Ref{Entity: crm.EntityEmail, ID: id}
			if _, err := t.opts.CRM.Create(ctx, att, nil); err != nil && !errors.Is(err, crm.ErrConflict) {
				return d, fmt.Errorf("create attachment %d: %w", i, err)
			}
		}
	}
	if id != mp.CRMID {
		d.newID = id
		if id != EmailID(key, 0) {
			d.alias = key
		}
	}
	d.s.Synced, d.s.Gen = true, gen
	d.tracked = true
	d.s.Regarding = nil
	if isReg {
		d.s.Regarding = &reg
	}
	return d, nil
}

// untrack ends a pair whose message lost the keyword: the CRM email is
// deleted only with UntrackDeletesInCRM.
func (t *Tracker) untrack(ctx context.Context, p idmap.Pending, mp idmap.Mapping) (done, error) {
	d := done{p: p, mp: mp, unlink: true}
	if t.opts.UntrackDeletesInCRM {
		err := t.opts.CRM.Delete(ctx, crm.EntityEmail, mp.CRMID, nil)
		if err != nil && !errors.Is(err, crm.ErrNotFound) {
			return d, fmt.Errorf("delete email: %w", err)
		}
		s, err := readState(ctx, t.opts.Cache, mp.MapID)
		if err != nil {
			return d, err
		}
		s.Synced, s.Regarding = false, nil
		d.s, d.write = s, true
	}
	return d, nil
}

// fromOwn reports whether the message's sender is one of OwnAddresses.
func (t *Tracker) fromOwn(a map[string]any) bool {
	from, _ := a["sender"].(string)
	for _, own := range t.opts.OwnAddresses {
		if from != "" && strings.EqualFold(own, from) {
			return true
		}
	}
	return false
}
