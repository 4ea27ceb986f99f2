package bridge

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/idmap"
)

// A subscription that starts over (a new or lost cache, or a switch of the
// CRM endpoint: go-offline, go-online) sends every record of the filter
// again but knows nothing of what the old one sent: a record deleted or
// moved out of the user's view meanwhile comes as no delete or left row.
// The pairs keep their snapshots (the full set arrives as modifications
// merged against them), and once an entity's full set is wholly read, a
// mapped record missing from it left the user's view: a left-filter change
// (docs/sync-rules.md, Left the filter). Only a delete row of the subscription
// reports a deletion; the record cannot tell it apart, since a record the
// user may no longer read is not found either. The pair's apply re-reads
// the record and judges the removal by the deletion table: an item tracked
// from the PIM side stays there, unlinked. Going back to an endpoint whose
// subscription the cache left with its full set read resumes it instead
// (resume): it reports deletions as such, and its first pass judges only
// the pairs linked on the other endpoint (settingAbsentFloor).

// initialKey is the cache setting of an entity whose initial full set of
// the subscription it names has not been wholly read yet; partialMark
// follows the id once a batch of it was acknowledged.
func initialKey(ent string) string { return "outlook.initial." + ent }

const partialMark = "/partial"

// initialEntities are the entities the bridge reads from the subscription.
func (b *Bridge) initialEntities() []string {
	var out []string
	for _, l := range b.lanes {
		for _, ent := range l.entities {
			if b.opts.Settings.sendsToPIM(ent) {
				out = append(out, ent)
			}
		}
	}
	return out
}

func (b *Bridge) initialMark(ctx context.Context, ent string) (string, error) {
	v, err := b.opts.Cache.Setting(ctx, initialKey(ent))
	if errors.Is(err, idmap.ErrNoSetting) {
		return "", nil
	}
	return v, err
}

// initialCut reports whether an entity's initial full set of subID was
// cut off after part of it was acknowledged: the rest alone cannot tell
// which mapped records are missing, so the subscription starts over.
func (b *Bridge) initialCut(ctx context.Context, subID string) (bool, error) {
	for _, ent := range b.initialEntities() {
		v, err := b.initialMark(ctx, ent)
		if err != nil {
			return false, err
		}
		if v == subID+partialMark {
			floor, err := b.absentFloor(ctx)
			if err != nil || floor == 0 {
				return err == nil, err
			}
			// A resumed subscription's first pass cut off: starting
			// over would lose the deletions it reports; its pairs
			// linked elsewhere go unjudged instead.
			b.log.Info("bridge: resumed subscription's first pass cut off", "subscription", subID)
			return false, b.opts.Cache.Tx(ctx, func(tx *idmap.Tx) error {
				for _, ent := range b.initialEntities() {
					if err := tx.SetSetting(ctx, initialKey(ent), ""); err != nil {
						return err
					}
				}
				return nil
			})
		}
	}
	return false, nil
}

func (b *Bridge) absentFloor(ctx context.Context) (int64, error) {
	v, err := b.opts.Cache.Setting(ctx, settingAbsentFloor)
	if errors.Is(err, idmap.ErrNoSetting) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n, _ := strconv.ParseInt(v, 10, 64)
	return n, nil
}

// settingAbsentFloor is the map id at or below which absentFromFullSet
// judges no pair: 0 after a restart (a full set), the map id at which a
// resumed subscription was left after a resume.
const settingAbsentFloor = "outlook.absent.floor"

// markInitial records that every entity's full set of subID is to come.
func (b *Bridge) markInitial(ctx context.Context, tx *idmap.Tx, subID string) error {
	if err := tx.SetSetting(ctx, settingAbsentFloor, "0"); err != nil {
		return err
	}
	for _, ent := range b.initialEntities() {
		if err := tx.SetSetting(ctx, initialKey(ent), subID); err != nil {
			return err
		}
	}
	return nil
}

// absentFromFullSet records a left-filter change for every mapped,
// once-synced record of ent in lane l that the subscription's full set
// (seen) left out, and clears the entity's mark.
func (b *Bridge) absentFromFullSet(ctx context.Context, l *lane, ent string, seen map[crm.ID]bool) error {
	ot, _ := idmap.ObjectTypeOf(ent)
	ms, err := b.opts.Cache.List(ctx, idmap.ListFilter{Collection: l.col.Href(), ObjectType: ot, LinkedOnly: true})
	if err != nil {
		return err
	}
	floor, err := b.absentFloor(ctx)
	if err != nil {
		return err
	}
	var out []int64
	for _, m := range ms {
		if m.CRMEntity != ent || seen[m.CRMID] || m.MapID <= floor {
			continue
		}
		// A pair never synced (no snapshot) may have no record yet (a
		// PIM item whose create is pending): nothing to judge it by.
		if _, err := b.opts.Cache.Snapshot(ctx, m.MapID); errors.Is(err, idmap.ErrNoSnapshot) {
			continue
		} else if err != nil {
			return err
		}
		b.log.Info("bridge: mapped record missing from the subscription's full set", "entity", ent, "id", m.CRMID)
		out = append(out, m.MapID)
	}
	now := b.now()
	return b.opts.Cache.Tx(ctx, func(tx *idmap.Tx) error {
		for _, id := range out {
			if _, err := tx.RecordChange(ctx, id, idmap.SideCRM, idmap.ChangeLeftFilter, now); err != nil {
				return err
			}
		}
		return tx.SetSetting(ctx, initialKey(ent), "")
	})
}

// settingLeftSubs lists the subscriptions this cache left at an endpoint
// switch with every entity's full set wholly read (space-separated, the
// latest last). Going back to one resumes it: the endpoint reports every
// change since the cache's last acknowledged batch, deletions included,
// where a restart's full set can only take a missing record for one that
// left the view.
const settingLeftSubs = "outlook.left"

const maxLeftSubs = 4

// leftSubs returns the subscriptions left, each with the highest map id
// at the time (the pairs linked since may be unknown to it).
func (b *Bridge) leftSubs(ctx context.Context) (map[string]int64, []string, error) {
	v, err := b.opts.Cache.Setting(ctx, settingLeftSubs)
	if errors.Is(err, idmap.ErrNoSetting) {
		return map[string]int64{}, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	hw := map[string]int64{}
	var order []string
	for _, f := range strings.Fields(v) {
		id, n, _ := strings.Cut(f, "@")
		hw[id], _ = strconv.ParseInt(n, 10, 64)
		order = append(order, id)
	}
	return hw, order, nil
}

// maxMapID is the highest map id of the linked pairs of every lane.
func (b *Bridge) maxMapID(ctx context.Context) (int64, error) {
	var hw int64
	for _, l := range b.lanes {
		ms, err := b.opts.Cache.List(ctx, idmap.ListFilter{Collection: l.col.Href(), LinkedOnly: true})
		if err != nil {
			return 0, err
		}
		for _, m := range ms {
			hw = max(hw, m.MapID)
		}
	}
	return hw, nil
}

// switchSubs records, in tx, that the cache leaves subscription old (when
// its full sets were wholly read) for cur, which is no longer one to
// resume once it is read from.
func (b *Bridge) switchSubs(ctx context.Context, tx *idmap.Tx, old, cur string) error {
	hw, left, err := b.leftSubs(ctx)
	if err != nil {
		return err
	}
	left = slices.DeleteFunc(left, func(s string) bool { return s == cur || s == old })
	if old != "" && old != cur {
		if hw[old], err = b.maxMapID(ctx); err != nil {
			return err
		}
		done := true
		for _, ent := range b.initialEntities() {
			v, err := b.initialMark(ctx, ent)
			if err != nil {
				return err
			}
			if v == old || v == old+partialMark {
				done = false
			}
		}
		if done {
			left = append(left, old)
		}
	}
	if len(left) > maxLeftSubs {
		left = left[len(left)-maxLeftSubs:]
	}
	var out []string
	for _, id := range left {
		out = append(out, id+"@"+strconv.FormatInt(hw[id], 10))
	}
	return tx.SetSetting(ctx, settingLeftSubs, strings.Join(out, " "))
}

// resume switches the cache from subscription old back to cur when cur is
// one it left with its full sets read, and reports whether cur must start
// over instead.
func (b *Bridge) resume(ctx context.Context, old, cur string) (restart bool, err error) {
	hw, left, err := b.leftSubs(ctx)
	if err != nil || !slices.Contains(left, cur) {
		return true, err
	}
	b.log.Info("bridge: resuming the subscription of this endpoint", "subscription", cur)
	// The pairs linked since the cache left cur came from the other
	// endpoint: their records were made or changed since cur's last
	// batch, so its next pass lists each one still in the filter. One it
	// leaves out (cur never held it, so it reports no removal) left the
	// filter: absentFromFullSet judges those pairs only.
	return false, b.opts.Cache.Tx(ctx, func(tx *idmap.Tx) error {
		if err := b.markInitial(ctx, tx, cur); err != nil {
			return err
		}
		if err := tx.SetSetting(ctx, settingAbsentFloor, strconv.FormatInt(hw[cur], 10)); err != nil {
			return err
		}
		if err := b.switchSubs(ctx, tx, old, cur); err != nil {
			return err
		}
		return tx.SetSetting(ctx, settingSubscription, cur)
	})
}
