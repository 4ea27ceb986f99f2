package mailtrack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmclient"
	"github.com/pimbridge/pimbridge/idmap"
	"github.com/pimbridge/pimbridge/pim/imapmail"
)

// detect reads the changes of one folder and records, in one transaction
// with the folder's new cursor, what is to be done: new mappings with a
// pending "created", "untracked" changes, re-linked UIDs and messages
// gone from IMAP. Nothing is sent to CRM here.
func (t *Tracker) detect(ctx context.Context, folder string) (Stats, error) {
	var st Stats
	var cur imapmail.Cursor
	old, err := t.opts.Cache.Cursor(ctx, t.account, folder)
	if err != nil && !errors.Is(err, idmap.ErrNoCursor) {
		return st, err
	}
	if err := cur.UnmarshalBinary([]byte(old)); err != nil {
		t.log.Warn("mailtrack: unreadable cursor; full read", "folder", folder, "err", err)
		cur = imapmail.Cursor{}
	}
	cs, err := t.opts.Mailbox.Changes(ctx, folder, cur)
	if err != nil {
		return st, fmt.Errorf("mailtrack: changes %s: %w", folder, err)
	}
	st.Folders, st.Changed = 1, len(cs.Messages)
	next, err := cs.Cursor.MarshalBinary()
	if err != nil {
		return st, err
	}
	if len(cs.Messages) == 0 && len(cs.Expunged) == 0 && !cs.Resync && bytes.Equal(next, []byte(old)) {
		return st, nil // nothing changed: no write
	}
	replies, err := t.replies(ctx, folder, cs)
	if err != nil {
		return st, err
	}
	_, isReg := t.regardingOf(folder)
	skip := folder == t.drafts
	uv := cs.Cursor.UIDValidity
	var needKw []uint32
	var tx Stats
	err = t.opts.Cache.Tx(ctx, func(x *idmap.Tx) error {
		tx = Stats{}
		needKw = needKw[:0]
		for i := range cs.Messages {
			m := &cs.Messages[i]
			if skip || m.Draft() {
				continue // drafts are never tracked
			}
			e := idmap.EntryID{Collection: folder, UIDValidity: uv, UID: m.UID}
			key := messageKey(m.MessageID, m.Header)
			hasKw := m.HasFlag(t.keyword)
			mp, found, err := t.lookup(ctx, x, key)
			if err != nil {
				return err
			}
			if found && mp.Entry != e && mp.Entry.Collection == folder && mp.Entry.UIDValidity != uv {
				// UIDVALIDITY changed: the same message under its new UID.
				mp.Entry = e
				if err := x.Update(ctx, mp); err != nil {
					return err
				}
				tx.Relinked++
				if mp.Linked && !mp.DeletedLocally && !hasKw {
					needKw = append(needKw, m.UID) // restore it: tracking is never lost
					hasKw = true
				}
			}
			want := hasKw || replies[m.UID] ||
				(isReg && m.New && !(cs.Resync && found && !mp.Linked))
			if !want {
				if found && mp.Entry == e && mp.Linked && !mp.DeletedLocally {
					p, err := x.PendingFor(ctx, mp.MapID)
					if err == nil && p.PIMChange == idmap.ChangeCreated {
						continue // not tracked yet: the keyword comes with it
					}
					if _, err := x.RecordChange(ctx, mp.MapID, idmap.SidePIM, idmap.ChangeUntracked, t.now()); err != nil {
						return err
					}
				}
				continue
			}
			if !hasKw {
				needKw = append(needKw, m.UID)
			}
			switch {
			case !found:
				mp, err = x.Insert(ctx, idmap.Mapping{CRMEntity: crm.EntityEmail, CRMID: EmailID(key, 0), Entry: e,
					ObjectType: idmap.ObjectEmail, Linked: true, TrackedFromPIM: true})
				if errors.Is(err, idmap.ErrDuplicate) {
					// The UID is mapped under another key (its header
					// changed?): leave that pair as it is.
					t.log.Warn("mailtrack: message mapped under another key", "item", e.String(), "key", key)
					continue
				}
				if err != nil {
					return err
				}
				if err := writeState(ctx, x, mp.MapID, state{Key: key}); err != nil {
					return err
				}
				if _, err := x.RecordChange(ctx, mp.MapID, idmap.SidePIM, idmap.ChangeCreated, t.now()); err != nil {
					return err
				}
			case mp.Entry == e:
				if !mp.Linked || mp.DeletedLocally {
					mp.Linked, mp.DeletedLocally = true, false
					if err := x.Update(ctx, mp); err != nil {
						return err
					}
					if _, err := x.RecordChange(ctx, mp.MapID, idmap.SidePIM, idmap.ChangeCreated, t.now()); err != nil {
						return err
					}
				}
			case isReg || !mp.Linked || mp.DeletedLocally:
				// Filed into a Regarding folder (moved or copied), or a
				// new copy of an untracked or deleted message: the pair
				// follows this copy.
				kind := idmap.ChangeModified
				if !mp.Linked || mp.DeletedLocally {
					kind = idmap.ChangeCreated
				}
				mp.Entry, mp.Linked, mp.DeletedLocally = e, true, false
				if err := x.Update(ctx, mp); errors.Is(err, idmap.ErrDuplicate) {
					continue
				} else if err != nil {
					return err
				}
				tx.Relinked++
				if _, err := x.RecordChange(ctx, mp.MapID, idmap.SidePIM, kind, t.now()); err != nil {
					return err
				}
			default:
				// Another copy of a message tracked elsewhere (INBOX and
				// Sent, two folders): one CRM email, nothing to do.
			}
		}
		for _, uid := range cs.Expunged {
			mp, err := x.ByPIM(ctx, idmap.EntryID{Collection: folder, UIDValidity: cur.UIDValidity, UID: uid})
			if errors.Is(err, idmap.ErrUnmapped) {
				continue
			}
			if err != nil {
				return err
			}
			if mp.Linked && !mp.DeletedLocally {
				// Deleted on IMAP: the CRM email stays (deletion rules).
				if err := x.MarkDeletedLocally(ctx, mp.MapID); err != nil {
					return err
				}
				tx.Deleted++
			}
		}
		if cs.Resync {
			// Mappings still on the old UIDVALIDITY: their messages are gone.
			ms, err := x.List(ctx, idmap.ListFilter{Collection: folder, ObjectType: idmap.ObjectEmail, LinkedOnly: true})
			if err != nil {
				return err
			}
			for _, mp := range ms {
				if mp.Entry.UIDValidity != uv {
					if err := x.MarkDeletedLocally(ctx, mp.MapID); err != nil {
						return err
					}
					tx.Deleted++
				}
			}
		}
		return x.SetCursor(ctx, t.account, folder, string(next))
	})
	if err != nil {
		return st, fmt.Errorf("mailtrack: detect %s: %w", folder, err)
	}
	st.add(tx)
	fk := folderKey{folder, uv}
	if len(needKw) > 0 {
		t.needKeyword[fk] = append(t.needKeyword[fk], needKw...)
	}
	have := t.haveKeyword[fk]
	if have == nil {
		have = map[uint32]bool{}
		t.haveKeyword[fk] = have
	}
	for i := range cs.Messages {
		if m := &cs.Messages[i]; m.HasFlag(t.keyword) {
			have[m.UID] = true
		} else {
			delete(have, m.UID)
		}
	}
	return st, nil
}

// replies returns the new messages of the Sent folder that reply to a
// tracked message (TrackReplies): their In-Reply-To or References name a
// message tracked here, or an email CRM already has.
func (t *Tracker) replies(ctx context.Context, folder string, cs *imapmail.ChangeSet) (map[uint32]bool, error) {
	if !t.opts.TrackReplies || folder != t.sent {
		return nil, nil
	}
	out := map[uint32]bool{}
	for _, m := range cs.Messages {
		if !m.New || m.Draft() || m.HasFlag(t.keyword) {
			continue
		}
		refs := append(slices.Clone(m.InReplyTo), m.References...)
		for _, r := range refs {
			mp, ok, err := t.lookup(ctx, t.opts.Cache, messageKey(r, nil))
			if err != nil {
				return nil, err
			}
			if ok && mp.Linked {
				out[m.UID] = true
				break
			}
		}
		if out[m.UID] || len(m.InReplyTo) == 0 {
			continue
		}
		id := NormalizeMessageID(m.InReplyTo[0])
		if id == "" {
			continue
		}
		rs, err := t.opts.CRM.QueryAll(ctx, crm.EntityEmail, crmclient.Query{
			Select: []string{"activityid"}, Filter: "messageid eq " + odataString("<"+id+">"), Top: 1})
		if err != nil {
			return nil, fmt.Errorf("mailtrack: reply lookup: %w", err)
		}
		out[m.UID] = len(rs) > 0
	}
	return out, nil
}
