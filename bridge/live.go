package bridge

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/idmap"
	"github.com/pimbridge/pimbridge/reconcile"
)

// Live sync (docs/sync-protocol.md, The change feed): Run holds the CRM change feed open and runs a light
// pass that pulls the CRM changes of the entities the feed names.
//
// Bursts coalesce: a feed-driven pass starts once the feed has been quiet
// for Schedule.LiveDebounce, but no later than Schedule.LiveMax after the
// first change it carries (debounce); Run makes one pass at a time, and
// changes that arrive during a pass are merged into the next one. While
// the feed is down (or the server has none), light passes on client.poll
// pull the CRM changes instead, so the poll stays the fallback.

// Feed is the CRM change feed; *crmclient.Client implements it.
type Feed interface {
	WaitChanges(ctx context.Context, subID, cursor string, wait time.Duration) (crm.FeedAnswer, error)
}

// Live defaults.
const (
	defaultLiveDebounce = 50 * time.Millisecond
	defaultLiveMax      = time.Second
	defaultFastPoll     = 5 * time.Second
	defaultFastFor      = 2 * time.Minute
	feedRetryMin        = time.Second
	feedRetryMax        = 30 * time.Second
)

// debounce decides when a feed-driven pass starts: quiet after the last
// wake, and at most max after the first one since the last pass.
type debounce struct {
	quiet, max time.Duration
	first      time.Time // the first wake since the last pass; zero: none
}

// wake notes a feed wake at now and returns how long from now the pass
// should wait.
func (d *debounce) wake(now time.Time) time.Duration {
	if d.first.IsZero() {
		d.first = now
	}
	return max(0, min(d.quiet, d.first.Add(d.max).Sub(now)))
}

// fired notes that the pass starts.
func (d *debounce) fired() { d.first = time.Time{} }

// liveQueue gathers the entities the feed named since the last pass.
type liveQueue struct {
	mu      sync.Mutex
	ents    []string
	n       uint64            // answers that named a change
	last    map[string]uint64 // the last answer (n) that named each entity
	wake    chan struct{}     // one pending signal
	healthy atomic.Bool       // the last wait answered
}

func newLiveQueue() *liveQueue { return &liveQueue{wake: make(chan struct{}, 1)} }

func (q *liveQueue) add(ents []string) {
	q.mu.Lock()
	q.n++
	if q.last == nil {
		q.last = map[string]uint64{}
	}
	for _, e := range ents {
		q.last[e] = q.n
		if !slices.Contains(q.ents, e) {
			q.ents = append(q.ents, e)
		}
	}
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *liveQueue) take() []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := q.ents
	q.ents = nil
	return out
}

// liveRemoval reports whether a light pass that pulled CRM changes applies
// a pending pair that appliesNow defers: a deletion in CRM (a tombstone)
// with no removal on the PIM side. reconcile's deletion rules decide what
// it does (delete the PIM object, or keep it unlinked); a record that left
// the filter and PIM-side deletions still wait for the full cycle.
func liveRemoval(p idmap.Pending) bool {
	return p.CRMChange == idmap.ChangeDeleted && (p.PIMChange == idmap.ChangeNone || p.PIMChange == idmap.ChangeModified)
}

// liveGuard is the mass-deletion guard of a light pass: it lets n removals
// in col through when, with those light passes let through since the last
// full cycle, they stay under the guard's share of the collection as it was
// then (total now plus those), so a mass deletion cannot slip through in
// slices. Held ones wait for the full cycle, whose guard judges them.
// Called under b.mu.
func (b *Bridge) liveGuard(g reconcile.Guard, col string, n, total int) bool {
	done := b.liveRemoved[col]
	if err := g.Check(col, done+n, total+done); err != nil {
		b.log.Info("bridge: CRM deletions held for the full cycle by the mass-deletion guard", "collection", col, "deletes", n, "since_full_cycle", done, "total", total)
		return false
	}
	if b.liveRemoved == nil {
		b.liveRemoved = map[string]int{}
	}
	b.liveRemoved[col] += n
	return true
}

// mark returns the feed's position, for changedSince.
func (q *liveQueue) mark() uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n
}

// changedSince reports whether the feed named entity after mark.
func (q *liveQueue) changedSince(entity string, mark uint64) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.last[entity] > mark
}

// newest returns the record rec (as a batch of this cycle carried it) or,
// when the feed has named its entity since just before the cycle read its
// batches (a burst goes on), the record as CRM holds it now: the pass then
// writes the newest version, and the next one finds nothing left to
// write, instead of every pass of a burst writing each object again. Any
// error keeps rec (a deletion comes as a tombstone in the next pass).
func (b *Bridge) newest(ctx context.Context, cs *cycleState, rec crm.Record, entity string) crm.Record {
	q := b.live.Load()
	if q == nil || !q.changedSince(entity, cs.feedMark) {
		return rec
	}
	if cur, err := cs.crm.Get(ctx, entity, rec.ID); err == nil {
		return cur
	}
	return rec
}

// crmEntities lists the CRM entities the bridge syncs to PIM.
func (b *Bridge) crmEntities() []string {
	var out []string
	for _, l := range b.lanes {
		out = append(out, l.entities...)
	}
	return out
}

// watchFeed long-polls the feed of the outlook subscription until ctx
// ends, adding what it names to q. On an error it retries with the same
// cursor (so nothing committed meanwhile is lost) after a growing pause,
// and marks the feed down so that the poll pulls CRM changes.
func (b *Bridge) watchFeed(ctx context.Context, f Feed, q *liveQueue, wait time.Duration) {
	var subID, cursor string
	pause := feedRetryMin
	again := true // a vanished subscription may be taken again at once
	for ctx.Err() == nil {
		var err error
		if subID == "" {
			var sub crm.Subscription
			if sub, err = b.opts.CRM.Subscribe(ctx, b.opts.ClientID, crm.KindOutlook); err == nil {
				subID = sub.ID
			}
		}
		var a crm.FeedAnswer
		if err == nil {
			a, err = f.WaitChanges(ctx, subID, cursor, wait)
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if errors.Is(err, crm.ErrNotFound) && subID != "" && again {
				// The cycle started the subscription over (a new cache
				// does at once): subscribe again now, keeping the cursor.
				subID, again = "", false
				continue
			}
			if q.healthy.Swap(false) || pause == feedRetryMin {
				b.log.Warn("bridge: CRM change feed down; the poll pulls CRM changes until it is back", "err", err, "retry", pause)
			}
			if errors.Is(err, crm.ErrNotFound) {
				subID = "" // the cycle started the subscription over
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(pause):
			}
			pause = min(2*pause, feedRetryMax)
			continue
		}
		if !q.healthy.Swap(true) {
			b.log.Info("bridge: CRM change feed open", "subscription", subID)
		}
		pause, again = feedRetryMin, true
		if a.Changed {
			q.add(a.Entities)
		}
		cursor = a.Cursor
	}
}

// pimChanged returns the PIM collections in which a cycle saw a PIM-side
// change (it wrote one to CRM).
func (b *Bridge) pimChanged(st Stats) []string {
	var out []string
	for _, l := range b.lanes {
		for _, e := range l.entities {
			if es := st.ByEntity[e]; es != nil && es.ToCRM != (Counter{}) {
				out = append(out, l.col.Href())
				break
			}
		}
	}
	return out
}

// fastPoll schedules the light passes: every collection each poll period,
// and a collection in which a PIM-side change was seen every fast period
// for a window after the change (each new change extends it).
type fastPoll struct {
	every, fast, window time.Duration
	regular             time.Time            // the next pass over every collection
	hot                 map[string]time.Time // collection -> end of its window
}

func newFastPoll(now time.Time, every, fast, window time.Duration) *fastPoll {
	return &fastPoll{every: every, fast: fast, window: window, regular: now.Add(every), hot: map[string]time.Time{}}
}

// saw notes a PIM-side change in cols at now.
func (f *fastPoll) saw(now time.Time, cols []string) {
	for _, c := range cols {
		f.hot[c] = now.Add(f.window)
	}
}

// next returns how long from now the next pass is due.
func (f *fastPoll) next(now time.Time) time.Duration {
	d := f.regular.Sub(now)
	for _, until := range f.hot {
		if now.Before(until) {
			d = min(d, f.fast)
		}
	}
	return max(0, d)
}

// due returns the collections a pass at now lists: nil (every one) when
// the regular poll is due, else those in their window; ok is false when
// none is due.
func (f *fastPoll) due(now time.Time) (cols []string, ok bool) {
	if !now.Before(f.regular) {
		f.regular = now.Add(f.every)
		return nil, true
	}
	for c, until := range f.hot {
		if now.Before(until) {
			cols = append(cols, c)
		} else {
			delete(f.hot, c)
		}
	}
	slices.Sort(cols)
	return cols, len(cols) > 0
}
