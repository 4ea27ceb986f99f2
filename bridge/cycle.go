package bridge

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/idmap"
	"github.com/pimbridge/pimbridge/internal/retry"
	"github.com/pimbridge/pimbridge/pim"
	"github.com/pimbridge/pimbridge/reconcile"
)

// cycleState is what one cycle knows: the clients it writes through, the
// records and objects it already read, and its figures.
type cycleState struct {
	only     []string // CRM entities a light pass pulls; nil: all (full cycle)
	feedMark uint64   // the change feed's position before the CRM intake (live.go)
	crm      CRM
	cols     map[*lane]Collection
	me       crm.ID
	crmSeen  map[crm.ID]crm.Record
	pimSeen  map[string]pim.Object
	found    map[int64]bool // pairs whose PIM create met an object there: no pending base
	accounts map[crm.ID]string
	stats    Stats
	plan     *[]PlannedWrite // dry run: the decisions
	written  map[*lane]bool  // lanes whose collection the cycle wrote to
}

func (cs *cycleState) col(l *lane) Collection {
	if c, ok := cs.cols[l]; ok {
		return c
	}
	return l.col
}

func (cs *cycleState) note(pr *pair, plan reconcile.PairPlan) {
	if cs.plan == nil {
		return
	}
	w := PlannedWrite{Entity: pr.m.CRMEntity, ID: pr.m.CRMID, Href: pr.m.Entry.Href, Outcome: plan.Outcome.String()}
	if plan.Merge != nil {
		w.ToCRM, w.ToPIM = plan.Merge.ToCRM, plan.Merge.ToPIM
	}
	if plan.Deletion != nil {
		w.Action = plan.Deletion.Action.String()
		w.Rule = plan.Deletion.Rule.Name()
	}
	*cs.plan = append(*cs.plan, w)
}

// PlannedWrite is what a dry run decided for one pair.
type PlannedWrite struct {
	Entity  string           `json:"entity"`
	ID      crm.ID           `json:"id"`
	Href    string           `json:"href"`
	Outcome string           `json:"outcome"`
	ToCRM   reconcile.Fields `json:"to_crm,omitempty"`
	ToPIM   reconcile.Fields `json:"to_pim,omitempty"`
	Action  string           `json:"deletion,omitempty"`
	Rule    string           `json:"rule,omitempty"`
}

// Cycle runs one cycle over every configured item type: the full cycle of
// docs/sync-rules.md, or a light watch pass (opts.Light). A secondary
// bridge syncs none of these types and returns at once with Stats.Primary
// false. Errors: *FatalError (ErrNoPrivilege, ErrNotPrimary, bad
// credentials); a *reconcile.MassDeleteError when the guard held deletions
// back (everything else was applied); ErrItemErrors when items failed
// (they are sync errors); other errors when a server could not be reached
// (nothing is lost: the pending changes stay and the next cycle retries).
func (b *Bridge) Cycle(ctx context.Context, opts CycleOptions) (Stats, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.cycle(ctx, opts, nil, nil)
}

// DryRun runs a full cycle that writes nothing to either server and does not
// acknowledge CRM batches, and returns what each pair would get. It writes
// to the cache, so give the bridge a copy of the cache (CopyCache).
func (b *Bridge) DryRun(ctx context.Context, opts CycleOptions) ([]PlannedWrite, Stats, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var plan []PlannedWrite
	st, err := b.cycle(ctx, opts, &plan, func(c CRM, cols map[*lane]Collection) (CRM, map[*lane]Collection) {
		out := map[*lane]Collection{}
		for _, l := range b.lanes {
			out[l] = &dryCollection{Collection: l.col}
		}
		return &dryCRM{CRM: c}, out
	})
	if plan == nil {
		plan = []PlannedWrite{}
	}
	return plan, st, err
}

func (b *Bridge) cycle(ctx context.Context, opts CycleOptions, plan *[]PlannedWrite, wrap func(CRM, map[*lane]Collection) (CRM, map[*lane]Collection)) (Stats, error) {
	start := b.now()
	cs := &cycleState{crmSeen: map[crm.ID]crm.Record{}, pimSeen: map[string]pim.Object{}, accounts: map[crm.ID]string{}, plan: plan, cols: map[*lane]Collection{}, written: map[*lane]bool{}}
	finish := func(err error) (Stats, error) {
		cs.stats.Duration = b.now().Sub(start)
		if n, cerr := b.opts.Cache.CountPending(ctx); cerr == nil {
			cs.stats.Pending = n
		}
		return cs.stats, err
	}
	who, err := b.opts.CRM.WhoAmI(ctx)
	if err != nil {
		return finish(fmt.Errorf("bridge: whoami: %w", classifyFatal(err)))
	}
	if !slices.ContainsFunc(who.Privileges, func(p string) bool { return strings.EqualFold(p, "SyncToOutlook") }) {
		return finish(&FatalError{Err: fmt.Errorf("%w (user %s)", ErrNoPrivilege, who.Name)})
	}
	cs.me = who.UserID
	c, primary, err := b.role(ctx)
	if err != nil {
		return finish(err)
	}
	cs.stats.Primary = primary
	if !primary {
		b.log.Info("bridge: secondary client: contacts, tasks and appointments are left to the primary", "client", b.opts.ClientID)
		return finish(nil)
	}
	cs.crm = c
	if wrap != nil {
		cs.crm, cs.cols = wrap(c, cs.cols)
	}
	sub, err := b.subscribe(ctx, cs.crm, plan != nil)
	if err != nil {
		return finish(err)
	}
	if err := b.retryMalformed(ctx); err != nil {
		return finish(err)
	}
	if !opts.Light || len(opts.CRMEntities) > 0 {
		if opts.Light {
			cs.only = opts.CRMEntities
		}
		if q := b.live.Load(); q != nil {
			cs.feedMark = q.mark()
		}
		if _, err := cs.crm.Prepare(ctx, sub.ID); err != nil {
			if errors.Is(err, crm.ErrForbidden) {
				return finish(&FatalError{Err: fmt.Errorf("%w: %v", ErrNoPrivilege, err)})
			}
			return finish(fmt.Errorf("bridge: prepare: %w", classifyFatal(err)))
		}
		for _, l := range b.lanes {
			if err := b.crmIntake(ctx, cs, sub.ID, l); err != nil {
				return finish(classifyFatal(err))
			}
		}
	}
	for _, l := range b.lanes {
		if opts.Light && opts.PIMCollections != nil && !slices.Contains(opts.PIMCollections, l.col.Href()) {
			continue
		}
		if err := b.pimIntake(ctx, cs, l); err != nil {
			return finish(classifyFatal(err))
		}
	}
	guardErr, err := b.applyDue(ctx, cs, opts)
	if err != nil {
		return finish(err)
	}
	// Move the cursors past the cycle's own writes: a server may leave out
	// of a later delta an object that was created and deleted after the
	// token, so a token from before our creates would hide their deletion.
	for _, l := range b.lanes {
		if cs.written[l] {
			if err := b.pimIntake(ctx, cs, l); err != nil {
				return finish(classifyFatal(err))
			}
		}
	}
	if !opts.Light {
		if err := b.verify(ctx, cs); err != nil {
			return finish(err)
		}
	}
	if guardErr != nil {
		return finish(guardErr)
	}
	if cs.stats.Failed > 0 || cs.stats.Malformed > 0 {
		return finish(fmt.Errorf("%w: %d failed, %d malformed (see pimbridge errors)", ErrItemErrors, cs.stats.Failed, cs.stats.Malformed))
	}
	return finish(nil)
}

// retryMalformed makes the next listing a full one when the user asked to
// retry an item that has no mapping (a malformed object).
func (b *Bridge) retryMalformed(ctx context.Context) error {
	errs, err := b.opts.Cache.RetryRequested(ctx)
	if err != nil || len(errs) == 0 {
		return err
	}
	return b.opts.Cache.Tx(ctx, func(tx *idmap.Tx) error {
		for _, e := range errs {
			if e.MapID != 0 {
				continue
			}
			for _, l := range b.lanes {
				if err := tx.DeleteCursor(ctx, cursorAccount, l.col.Href()); err != nil {
					return err
				}
			}
			if err := tx.ClearSyncError(ctx, e.Item); err != nil {
				return err
			}
		}
		return nil
	})
}

func isRemoval(p idmap.Pending) bool {
	return p.PIMChange == idmap.ChangeDeleted || p.CRMChange == idmap.ChangeDeleted || p.CRMChange == idmap.ChangeLeftFilter
}

// appliesNow reports whether a light (watch) pass applies a pending pair:
// what the immediate-sync table (reconcile.WhenApplied) says for the
// user's action on a contact, task or appointment on the primary — track,
// update, untrack at once, deletions at the next full cycle. A removal on
// the CRM side (deleted, left the filter) waits for the full cycle too,
// except a tombstone in a pass that pulled CRM changes (liveRemoval).
func appliesNow(p idmap.Pending) bool {
	if p.CRMChange == idmap.ChangeDeleted || p.CRMChange == idmap.ChangeLeftFilter {
		return false
	}
	act := reconcile.ActUpdate
	switch p.PIMChange {
	case idmap.ChangeCreated:
		act = reconcile.ActTrack
	case idmap.ChangeUntracked:
		act = reconcile.ActUntrack
	case idmap.ChangeDeleted:
		act = reconcile.ActDelete
	}
	return reconcile.WhenApplied(act, reconcile.ClassNonEmail, true) == reconcile.Immediately
}

// maxTransient is how many transient failures in a row end a cycle (the
// server is down; the next cycle retries).
const maxTransient = 3

// applyDue applies every due pending pair. It returns the mass-deletion
// guard's error separately: the other pairs are still applied.
func (b *Bridge) applyDue(ctx context.Context, cs *cycleState, opts CycleOptions) (guardErr, err error) {
	due, err := b.opts.Cache.Due(ctx, b.now(), 0)
	if err != nil {
		return nil, err
	}
	byCol := map[string]*lane{}
	for _, l := range b.lanes {
		byCol[l.col.Href()] = l
	}
	var items []dueItem
	removals := map[string]int{}
	for _, p := range due {
		m, err := b.opts.Cache.Get(ctx, p.MapID)
		if err != nil {
			return nil, err
		}
		l := byCol[m.Entry.Collection]
		if l == nil {
			continue
		}
		if opts.Light && !appliesNow(p) && (len(opts.CRMEntities) == 0 || !liveRemoval(p)) {
			cs.stats.Deferred++
			continue
		}
		if isRemoval(p) {
			removals[l.col.Href()]++
		}
		items = append(items, dueItem{p, m, l})
	}
	if !opts.Light {
		b.liveRemoved = nil // the full cycle judges anew
	}
	blocked := map[string]bool{}
	g := b.guard(opts.ConfirmDeletes)
	for col, n := range removals {
		total, err := b.opts.Cache.Count(ctx, idmap.ListFilter{Collection: col, LinkedOnly: true})
		if err != nil {
			return nil, err
		}
		if opts.Light {
			blocked[col] = !b.liveGuard(g, col, n, total)
			continue
		}
		if gerr := g.Check(col, n, total); gerr != nil {
			blocked[col] = true
			guardErr = errors.Join(guardErr, fmt.Errorf("bridge: %w; run again with --confirm-deletes to apply them", gerr))
			b.log.Warn("bridge: mass deletion held back", "collection", col, "deletes", n, "total", total)
		}
	}
	cp := newColProgress(b.opts.CollectionProgress)
	for _, it := range items {
		cp.add(it.l.col.Href())
	}
	cp.start()
	transient, fetched := 0, 0
	for i, it := range items {
		if err := ctx.Err(); err != nil {
			return guardErr, err
		}
		if i == fetched {
			fetched += b.prefetch(ctx, cs, items[i:])
		}
		if b.opts.Progress != nil {
			b.opts.Progress(i, len(items))
		}
		if blocked[it.l.col.Href()] && isRemoval(it.p) {
			cs.stats.Deferred++
			cp.step(it.l.col.Href())
			continue
		}
		// A started pair finishes its writes even when ctx is cancelled
		// (SIGTERM finishes the current write, then stops).
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		err := b.applyPair(wctx, cs, it.l, it.p)
		cancel()
		cp.step(it.l.col.Href())
		if err == nil {
			transient = 0
			continue
		}
		err = classifyFatal(err)
		var fe *FatalError
		switch {
		case errors.As(err, &fe):
			return guardErr, err
		case retry.Transient(err):
			transient++
			b.log.Warn("bridge: transient failure; the pair stays pending", "item", it.m.Entry.Href, "err", err)
			if transient >= maxTransient {
				return guardErr, fmt.Errorf("bridge: servers unreachable, cycle stopped (pending changes kept): %w", err)
			}
		default:
			if ferr := b.fail(ctx, cs, it.m, it.p, err); ferr != nil {
				return guardErr, ferr
			}
		}
	}
	if b.opts.Progress != nil && len(items) > 0 {
		b.opts.Progress(len(items), len(items))
	}
	return guardErr, nil
}

// fail records an item failure: a sync error the user sees at once and a
// retry with backoff (parked after the policy's attempts).
func (b *Bridge) fail(ctx context.Context, cs *cycleState, m idmap.Mapping, p idmap.Pending, err error) error {
	cs.stats.failed(m.CRMEntity)
	field := ""
	var ie *itemError
	if errors.As(err, &ie) {
		field = ie.Field
	}
	var ae *crm.AttributeError
	if field == "" && errors.As(err, &ae) {
		field = ae.Attribute
	}
	item := m.Entry.Href
	b.log.Warn("bridge: item failed", "item", item, "field", field, "err", err)
	return b.opts.Cache.Tx(ctx, func(tx *idmap.Tx) error {
		if _, ferr := tx.Fail(ctx, p.MapID, p.Seq, idmap.Failure{Item: item, Field: field, Message: err.Error()}, b.opts.Retry); ferr != nil && !errors.Is(ferr, idmap.ErrNoPending) {
			return ferr
		}
		_, perr := tx.PutSyncError(ctx, idmap.SyncError{MapID: m.MapID, Item: item, Field: field, Message: err.Error()})
		return perr
	})
}

func isFatal(err error) bool {
	var fe *FatalError
	return errors.As(err, &fe) || errors.Is(err, crm.ErrStalePrimary) || errors.Is(err, crm.ErrUnauthenticated) || errors.Is(err, pim.ErrUnauthorized)
}

// verify is the verification job (the reconciliation job), run after
// every full cycle: a few mapped items per collection, oldest VerifiedTime
// first; those gone from the PIM server get a PIM deletion for the next
// cycle (a deletion the change feed missed).
func (b *Bridge) verify(ctx context.Context, cs *cycleState) error {
	n := b.opts.Settings.VerifyPerCycle
	if n < 0 {
		return nil
	}
	if n == 0 {
		n = reconcile.DefaultVerifyBatch
	}
	now := b.now()
	for _, l := range b.lanes {
		// Every full cycle, every collection: a multiget of n hrefs costs
		// little beside the cycle's own delta (on a 10k Radicale address
		// book, 35 ms against 2.3 s for a no-change sync-collection).
		ms, err := b.opts.Cache.OldestVerified(ctx, l.col.Href(), n)
		if err != nil {
			return err
		}
		var cands []reconcile.VerifyCandidate
		byID := map[int64]idmap.Mapping{}
		for _, m := range ms {
			if m.ETag == "" {
				continue
			}
			cands = append(cands, reconcile.VerifyCandidate{MapID: m.MapID, VerifiedTime: m.VerifiedTime, Linked: m.Linked, DeletedLocally: m.DeletedLocally})
			byID[m.MapID] = m
		}
		ids := reconcile.SelectForVerification(cands, n)
		if len(ids) == 0 {
			continue
		}
		hrefs := make([]string, len(ids))
		for i, id := range ids {
			hrefs[i] = byID[id].Entry.Href
		}
		missing, err := b.missing(ctx, cs.col(l), hrefs)
		if err != nil {
			b.log.Warn("bridge: verification skipped", "collection", l.col.Href(), "err", err)
			continue
		}
		gone := map[string]bool{}
		for _, h := range missing {
			gone[h] = true
		}
		err = b.opts.Cache.Tx(ctx, func(tx *idmap.Tx) error {
			var ok []int64
			for _, id := range ids {
				if gone[byID[id].Entry.Href] {
					if _, err := tx.RecordChange(ctx, id, idmap.SidePIM, idmap.ChangeDeleted, now); err != nil {
						return err
					}
					continue
				}
				ok = append(ok, id)
			}
			cs.stats.Verified += len(ok)
			return tx.SetVerified(ctx, now, ok...)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func (b *Bridge) missing(ctx context.Context, col Collection, hrefs []string) ([]string, error) {
	if v, ok := col.(Verifier); ok {
		return v.Missing(ctx, hrefs)
	}
	var out []string
	for _, h := range hrefs {
		_, err := col.Get(ctx, h)
		if errors.Is(err, pim.ErrNotFound) {
			out = append(out, h)
		} else if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// settingSubscription records the outlook subscription this cache was
// filled from.
const settingSubscription = "outlook.subscription"

// subscribe returns the outlook subscription. A cache that has not been
// filled from it (a new or lost state dir, or another CRM endpoint after
// go-offline or go-online) starts it over, so that the CRM sends every
// record in the filter again: what an old cache acknowledged but never
// applied is not lost with it. The pairs keep their snapshots, and the
// records missing from the full set are found by absentFromFullSet; a full
// set cut off after part of it was acknowledged starts over again.
func (b *Bridge) subscribe(ctx context.Context, c CRM, dry bool) (crm.Subscription, error) {
	sub, err := c.Subscribe(ctx, b.opts.ClientID, crm.KindOutlook)
	if err == nil {
		id, serr := b.opts.Cache.Setting(ctx, settingSubscription)
		restart := serr != nil || id != sub.ID
		if !restart && !dry {
			restart, err = b.initialCut(ctx, sub.ID)
		}
		if restart && serr == nil && id != sub.ID && !dry && err == nil {
			restart, err = b.resume(ctx, id, sub.ID)
		}
		if restart && err == nil {
			if !dry {
				if err = c.DeleteSubscription(ctx, sub.ID); err == nil {
					sub, err = c.Subscribe(ctx, b.opts.ClientID, crm.KindOutlook)
				}
			}
			if err == nil {
				err = b.opts.Cache.Tx(ctx, func(tx *idmap.Tx) error {
					if !dry {
						if err := b.markInitial(ctx, tx, sub.ID); err != nil {
							return err
						}
						if err := b.switchSubs(ctx, tx, id, sub.ID); err != nil {
							return err
						}
					}
					return tx.SetSetting(ctx, settingSubscription, sub.ID)
				})
			}
		}
	}
	if err != nil {
		if errors.Is(err, crm.ErrForbidden) {
			return sub, &FatalError{Err: fmt.Errorf("%w: %v", ErrNoPrivilege, err)}
		}
		return sub, fmt.Errorf("bridge: subscribe: %w", classifyFatal(err))
	}
	return sub, nil
}
