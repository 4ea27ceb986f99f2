package crmserver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pimbridge/pimbridge/crm"
)

// Change feed: a long-poll on a subscription (docs/sync-protocol.md).
//
//	GET /api/sync/subscriptions/{id}/changes?cursor=C&wait=25s
//	    -> {"cursor":"C2","changed":bool,"entities":["contact",...],"reset":bool}
//
// The answer comes at once when a write in the subscription's scope
// committed after cursor C, else after wait (default 25 s, at most 60 s)
// with changed=false: a heartbeat short enough for reverse proxies. A
// client passes the cursor of each answer to the next wait, so a commit
// between two waits is never lost. No cursor answers at once with the
// current one. A cursor of another server run (a restart) or one older
// than the retained log answers at once with reset=true and every entity
// of the scope: the client makes one pass.
//
// Long-poll rather than server-sent events: one plain request per change
// or heartbeat goes through every proxy and needs no framing; the cursor
// makes a cut connection harmless.
//
// Scope is entity-level: the entities the subscription kind carries that
// the user may read. Where the user's read scope is own, only writes to
// records the user owned before or after the write count, so the feed
// never signals another user's private change. Local data filters are not
// applied (a change outside the filter only costs a light pass).
//
// Cost: one broadcaster. Every commit bumps a counter and closes the
// current channel (replacing it); waiters sleep on that channel, so an
// idle client costs a connection and a goroutine, no polling.

// Feed limits.
const (
	feedDefaultWait = 25 * time.Second
	feedMaxWait     = 60 * time.Second
	feedLogSize     = 8192 // events kept for waiters that come back late
)

// feedEvent is one committed write: its entity and its owners before and
// after (zero when none).
type feedEvent struct {
	seq      uint64
	entity   string
	owners   [2]crm.ID
	anyOwner bool // owners unknown (another node's commit, see SharedFeed)
}

// feed is the broadcaster.
type feed struct {
	epoch   string
	stop    chan struct{} // closed by EndWaits
	stopped sync.Once

	mu     sync.Mutex
	seq    uint64
	wake   chan struct{} // closed and replaced on every commit
	events []feedEvent   // the last feedLogSize, seq ascending
}

func newFeed() *feed {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return &feed{epoch: hex.EncodeToString(b[:]), wake: make(chan struct{}), stop: make(chan struct{})}
}

// publish records the events of one commit and wakes every waiter.
func (f *feed) publish(evs []feedEvent) {
	if len(evs) == 0 {
		return
	}
	f.mu.Lock()
	for _, e := range evs {
		f.seq++
		e.seq = f.seq
		f.events = append(f.events, e)
	}
	if n := len(f.events) - feedLogSize; n > 0 {
		f.events = append(f.events[:0:0], f.events[n:]...)
	}
	close(f.wake)
	f.wake = make(chan struct{})
	f.mu.Unlock()
}

func (f *feed) cursor(seq uint64) string { return f.epoch + "-" + strconv.FormatUint(seq, 10) }

// feedScope decides which events a waiter may see.
type feedScope struct {
	user     crm.ID
	entities map[string]Scope // read scope per carried entity, none left out
}

func (sc feedScope) matches(e feedEvent) bool {
	s, ok := sc.entities[e.entity]
	switch {
	case !ok:
		return false
	case s == ScopeOwn:
		return e.anyOwner || e.owners[0] == sc.user || e.owners[1] == sc.user
	}
	return true
}

func (sc feedScope) all() []string {
	out := make([]string, 0, len(sc.entities))
	for n := range sc.entities {
		out = append(out, n)
	}
	return out
}

// check answers from the log: ok is false when nothing in scope happened
// after the cursor; wake is the channel to wait on then.
func (f *feed) check(cursor string, sc feedScope) (a crm.FeedAnswer, ok bool, wake <-chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a = crm.FeedAnswer{Cursor: f.cursor(f.seq), Entities: []string{}}
	if cursor == "" {
		return a, true, nil
	}
	epoch, n, _ := strings.Cut(cursor, "-")
	after, err := strconv.ParseUint(n, 10, 64)
	oldest := f.seq + 1
	if len(f.events) > 0 {
		oldest = f.events[0].seq
	}
	if err != nil || epoch != f.epoch || after > f.seq || after+1 < oldest {
		a.Changed, a.Reset, a.Entities = true, true, sc.all()
		return a, true, nil
	}
	seen := map[string]bool{}
	for i := len(f.events) - 1; i >= 0 && f.events[i].seq > after; i-- {
		e := f.events[i]
		if !seen[e.entity] && sc.matches(e) {
			seen[e.entity] = true
			a.Entities = append(a.Entities, e.entity)
		}
	}
	if len(a.Entities) > 0 {
		a.Changed = true
		return a, true, nil
	}
	return a, false, f.wake
}

// wait blocks until a change in scope commits after cursor, ctx ends or
// d passes; the last gives a heartbeat answer (changed=false).
func (f *feed) wait(ctx context.Context, cursor string, sc feedScope, d time.Duration) crm.FeedAnswer {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		a, ok, wake := f.check(cursor, sc)
		if ok {
			return a
		}
		select {
		case <-wake:
		case <-t.C:
			return a
		case <-ctx.Done():
			return a
		case <-f.stop:
			return a
		}
	}
}

// EndWaits answers every open change-feed wait now, and every later one at
// once, with a heartbeat. Call it when the HTTP server shuts down
// (http.Server.RegisterOnShutdown), so that Shutdown does not wait for
// long-polls; clients reconnect with their cursor.
func (s *Server) EndWaits() {
	if fs, ok := s.store.(*feedStore); ok {
		fs.feed.stopped.Do(func() { close(fs.feed.stop) })
	}
}

func (s *Server) handleChanges(w http.ResponseWriter, r *http.Request, p *Principal, sub crm.Subscription) {
	fs, ok := s.store.(*feedStore)
	if !ok {
		s.writeError(w, r, fmt.Errorf("%w: this server has no change feed", crm.ErrUnavailable))
		return
	}
	d := feedDefaultWait
	if v := r.URL.Query().Get("wait"); v != "" {
		x, err := time.ParseDuration(v)
		if err != nil || x < 0 || x > feedMaxWait {
			s.writeError(w, r, fmt.Errorf("%w: wait must be a duration from 0s to %s", crm.ErrInvalidArgument, feedMaxWait))
			return
		}
		d = x
	}
	m, err := s.store.Metadata(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	sc := feedScope{user: p.UserID, entities: map[string]Scope{}}
	for _, e := range SubscriptionEntities(m, sub.Kind) {
		if x := p.Scope(e.Name, Read); x != ScopeNone {
			sc.entities[e.Name] = x
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, fs.feed.wait(r.Context(), r.URL.Query().Get("cursor"), sc, d))
}

// feedStore is the Store with the broadcaster on its write transactions:
// a committed Update publishes the writes it made.
type feedStore struct {
	Store
	feed *feed
}

// WithFeed returns st with the change feed's broadcaster on its writes.
// New applies it; a caller that runs two servers over one store (the
// offline local API) passes both the same WithFeed(st), so that writes
// through either wake the feed of both.
func WithFeed(st Store) Store {
	if fs, ok := st.(*feedStore); ok {
		return fs
	}
	fs := &feedStore{Store: st, feed: newFeed()}
	if sh, ok := st.(SharedFeed); ok {
		sh.HearCommits(func(evs []FeedEvent) { fs.feed.publish(fromFeedEvents(evs)) })
	}
	return fs
}

func (fs *feedStore) Update(ctx context.Context, fn func(Tx) error) error {
	var evs []feedEvent
	err := fs.Store.Update(ctx, func(tx Tx) error {
		evs = evs[:0] // a retried transaction starts over
		if err := fn(&feedTx{Tx: tx, evs: &evs}); err != nil {
			return err
		}
		if sh, ok := fs.Store.(SharedFeed); ok {
			return sh.AnnounceTx(ctx, tx, toFeedEvents(evs))
		}
		return nil
	})
	if err == nil {
		fs.feed.publish(evs)
	}
	return err
}

// feedTx records the writes of a transaction. Writes undone by a
// savepoint stay recorded: a spurious wake-up costs a light pass, a
// missed one a poll interval.
type feedTx struct {
	Tx
	evs *[]feedEvent
}

func ownerOf(r crm.Record) crm.ID {
	switch v := r.Attrs["ownerid"].(type) {
	case crm.Ref:
		return v.ID
	case *crm.Ref:
		if v != nil {
			return v.ID
		}
	}
	return crm.ID{}
}

// before reads the owner a record has before a write.
func (t *feedTx) before(ctx context.Context, e *crm.Entity, id crm.ID) crm.ID {
	if e.Attr("ownerid") == nil {
		return crm.ID{}
	}
	old, err := t.Tx.Get(ctx, e, id)
	if err != nil {
		return crm.ID{}
	}
	return ownerOf(old)
}

func (t *feedTx) Insert(ctx context.Context, e *crm.Entity, r crm.Record) (crm.Record, error) {
	out, err := t.Tx.Insert(ctx, e, r)
	if err == nil {
		*t.evs = append(*t.evs, feedEvent{entity: e.Name, owners: [2]crm.ID{ownerOf(out)}})
	}
	return out, err
}

func (t *feedTx) Patch(ctx context.Context, e *crm.Entity, id crm.ID, attrs map[string]any) (crm.Record, error) {
	old := t.before(ctx, e, id)
	out, err := t.Tx.Patch(ctx, e, id, attrs)
	if err == nil {
		*t.evs = append(*t.evs, feedEvent{entity: e.Name, owners: [2]crm.ID{old, ownerOf(out)}})
	}
	return out, err
}

func (t *feedTx) Delete(ctx context.Context, e *crm.Entity, id crm.ID) error {
	old := t.before(ctx, e, id)
	err := t.Tx.Delete(ctx, e, id)
	if err == nil {
		*t.evs = append(*t.evs, feedEvent{entity: e.Name, owners: [2]crm.ID{old}})
	}
	return err
}
