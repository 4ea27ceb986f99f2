package bridge

import (
	"context"

	"github.com/pimbridge/pimbridge/idmap"
	"github.com/pimbridge/pimbridge/pim"
	"github.com/pimbridge/pimbridge/pim/davext"
)

// Fetcher is the optional ability of a Collection to read many objects in
// one request (a multiget). Without it a pass reads each pair's object
// with its own Get.
type Fetcher interface {
	// Fetch returns the objects at hrefs that exist, with raw data and
	// ETag; a missing one is left out.
	Fetch(ctx context.Context, hrefs []string) ([]pim.Object, error)
}

// prefetchPairs is how many due pairs one prefetch covers: an object read
// ahead waits at most that many pairs' writes before its own.
const prefetchPairs = 50

// dueItem is a pending pair a cycle applies, with its mapping and lane.
type dueItem struct {
	p idmap.Pending
	m idmap.Mapping
	l *lane
}

// prefetch reads the PIM objects that the next pairs (up to prefetchPairs)
// would each read with a Get (read's rule: mapped, linked, not yet seen by
// the cycle) with one Fetch per collection into cs.pimSeen, and returns
// how many pairs it covered. An object may change after it was read: the
// write's If-Match finds that out, as for the objects of the PIM intake. A
// failed Fetch only costs the Gets it meant to save.
func (b *Bridge) prefetch(ctx context.Context, cs *cycleState, next []dueItem) int {
	n := min(len(next), prefetchPairs)
	byLane := map[*lane]map[string]string{} // normalized href -> href
	for _, it := range next[:n] {
		if !it.m.Linked || it.m.DeletedLocally || it.m.ETag == "" && it.p.PIMChange == idmap.ChangeNone {
			continue
		}
		if _, ok := cs.pimSeen[it.m.Entry.Href]; ok {
			continue
		}
		if byLane[it.l] == nil {
			byLane[it.l] = map[string]string{}
		}
		byLane[it.l][davext.NormalizeHref(it.m.Entry.Href)] = it.m.Entry.Href
	}
	for l, want := range byLane {
		f, ok := cs.col(l).(Fetcher)
		if !ok || len(want) < 2 {
			continue
		}
		hrefs := make([]string, 0, len(want))
		for _, h := range want {
			hrefs = append(hrefs, h)
		}
		objs, err := f.Fetch(ctx, hrefs)
		if err != nil {
			b.log.Debug("bridge: prefetch failed; reading one by one", "collection", l.col.Href(), "err", err)
			continue
		}
		for _, o := range objs {
			if h, ok := want[davext.NormalizeHref(o.Href)]; ok && o.ETag != "" && len(o.Data) > 0 {
				o.Href = h
				cs.pimSeen[h] = o
			}
		}
	}
	return n
}
