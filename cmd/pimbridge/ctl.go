package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/pimbridge/pimbridge/bridge"
	"github.com/pimbridge/pimbridge/bridge/mailtrack"
	"github.com/pimbridge/pimbridge/config"
	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/ctl"
	"github.com/pimbridge/pimbridge/idmap"
)

// ctlPath is the daemon's control socket in the state dir.
func ctlPath(cfg *config.Config) string { return filepath.Join(cfg.Client.StateDir, ctl.SocketName) }

// dialDaemon connects to the daemon running on cfg's state dir. It returns
// (nil, nil) when none runs, so that the caller works on its own; any other
// failure (a daemon of another version, a hung one) is an error, never a
// reason to open a second bridge on the same cache.
func dialDaemon(ctx context.Context, cfg *config.Config) (*ctl.Client, error) {
	c, err := ctl.Dial(ctx, ctlPath(cfg))
	if errors.Is(err, ctl.ErrNoDaemon) {
		return nil, nil
	}
	return c, err
}

// errDaemonStopping: the daemon stopped before the asked-for cycle ran.
var errDaemonStopping = errors.New("the daemon is stopping")

// cycleOutcome is what a full cycle reported.
type cycleOutcome struct {
	st  bridge.Stats
	err error
}

// cycleWaiter hands the outcome of the next full cycle that STARTS after a
// wait call to that caller: bridge.Run calls starting before each cycle and
// done after it, so a cycle already running when `sync` asked is not the
// one it gets.
type cycleWaiter struct {
	mu       sync.Mutex
	queued   []chan cycleOutcome // asked; their cycle has not started
	attached []chan cycleOutcome // their cycle is running
	stopped  bool
}

// wait registers a caller; the channel receives exactly one outcome (or
// errDaemonStopping). Call it before bridge.Trigger.
func (w *cycleWaiter) wait() <-chan cycleOutcome {
	ch := make(chan cycleOutcome, 1)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		ch <- cycleOutcome{err: errDaemonStopping}
		return ch
	}
	w.queued = append(w.queued, ch)
	return ch
}

// starting is bridge.Schedule.Starting.
func (w *cycleWaiter) starting(light bool) {
	if light {
		return
	}
	w.mu.Lock()
	w.attached = append(w.attached, w.queued...)
	w.queued = nil
	w.mu.Unlock()
}

// done hands a full cycle's outcome to the callers attached to it.
func (w *cycleWaiter) done(light bool, st bridge.Stats, err error) {
	if light {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, ch := range w.attached {
		ch <- cycleOutcome{st: st, err: err}
	}
	w.attached = nil
}

// stop releases every caller still waiting: no cycle will come.
func (w *cycleWaiter) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped = true
	for _, ch := range append(w.queued, w.attached...) {
		ch <- cycleOutcome{err: errDaemonStopping}
	}
	w.queued, w.attached = nil, nil
}

// daemonCtl is what `pimbridge daemon` serves on its control socket.
type daemonCtl struct {
	env     *bridgeEnv
	confirm bool // the daemon's --confirm-deletes
	waiter  *cycleWaiter
	// reportBridge and reportMail log a cycle and count it in the metrics,
	// as for the scheduled ones.
	reportBridge func(light bool, st bridge.Stats, err error)
	reportMail   func(st mailtrack.Stats, err error)
	started      time.Time

	mu        sync.Mutex
	cycles    int
	lastCycle time.Time
	lastErr   string
	lastStats *bridge.Stats // the last full cycle's figures
}

var _ ctl.Daemon = (*daemonCtl)(nil)

// cycleDone records a full cycle for Status.
func (d *daemonCtl) cycleDone(light bool, st bridge.Stats, err error) {
	if light {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.cycles++
	d.lastCycle = time.Now()
	d.lastErr, d.lastStats = "", &st
	if err != nil {
		d.lastErr = err.Error()
	}
}

// SyncNow triggers a full cycle of the daemon's schedule and waits for it,
// then runs an e-mail cycle. With ConfirmDeletes (which the daemon's own
// schedule lacks) it runs that one cycle itself, after any cycle in
// progress.
func (d *daemonCtl) SyncNow(ctx context.Context, opts ctl.SyncOptions) (ctl.SyncResult, error) {
	var out cycleOutcome
	if opts.ConfirmDeletes && !d.confirm {
		st, err := d.env.bridge.Cycle(ctx, bridge.CycleOptions{ConfirmDeletes: true})
		d.reportBridge(false, st, err)
		out = cycleOutcome{st: st, err: err}
	} else {
		ch := d.waiter.wait()
		d.env.bridge.Trigger()
		select {
		case out = <-ch:
		case <-ctx.Done():
			return ctl.SyncResult{}, ctx.Err()
		}
		if errors.Is(out.err, errDaemonStopping) {
			return ctl.SyncResult{}, out.err
		}
	}
	res := ctl.SyncResult{Stats: out.st, Err: out.err}
	if d.env.tracker != nil {
		start := time.Now()
		mst, merr := d.env.tracker.Cycle(ctx) // serialised with the daemon's own e-mail cycles
		mst.Duration = time.Since(start)
		d.reportMail(mst, merr)
		res.Email, res.EmailErr = &mst, merr
	}
	return res, nil
}

// Status describes the daemon.
func (d *daemonCtl) Status(context.Context) (ctl.Status, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return ctl.Status{
		PID:       os.Getpid(),
		ClientID:  d.env.cfg.Client.ID,
		Started:   d.started,
		Offline:   d.env.endpoint != nil && d.env.endpoint.offline,
		Email:     d.env.tracker != nil,
		Cycles:    d.cycles,
		LastCycle: d.lastCycle,
		LastError: d.lastErr,
	}, nil
}

// RetryError flags sync error id for another attempt at the next cycle.
func (d *daemonCtl) RetryError(ctx context.Context, id int64) error {
	return d.env.cache.Tx(ctx, func(tx *idmap.Tx) error { return tx.RetrySyncError(ctx, id) })
}

// DiscardError drops sync error id.
func (d *daemonCtl) DiscardError(ctx context.Context, id int64) error {
	return d.env.cache.Tx(ctx, func(tx *idmap.Tx) error { return tx.DiscardSyncError(ctx, id) })
}

// AllowDuplicate creates the item of sync error id at the next cycle
// although duplicate detection finds matches.
func (d *daemonCtl) AllowDuplicate(ctx context.Context, id int64) error {
	return d.env.bridge.AllowDuplicate(ctx, id)
}

// LinkError links the item of sync error id to the CRM record crmID.
func (d *daemonCtl) LinkError(ctx context.Context, id int64, crmID crm.ID) error {
	return d.env.bridge.LinkSyncError(ctx, id, crmID)
}

// syncViaDaemon asks the running daemon for the cycle and prints its
// figures like syncPIM. ran is false when no daemon runs.
func (g *globals) syncViaDaemon(ctx context.Context, cfg *config.Config, confirm, asJSON bool) (ran bool, err error) {
	c, err := dialDaemon(ctx, cfg)
	if err != nil || c == nil {
		return false, err
	}
	defer c.Close()
	fmt.Fprintln(g.stderr, "pimbridge: the daemon is running; it runs this cycle")
	res, err := c.SyncNow(ctx, ctl.SyncOptions{ConfirmDeletes: confirm})
	if err != nil {
		return true, err
	}
	var mst mailtrack.Stats
	if res.Email != nil {
		mst = *res.Email
	}
	return true, finishSync(g.stdout, res.Stats, res.Err, res.Email != nil, mst, res.EmailErr, asJSON)
}
