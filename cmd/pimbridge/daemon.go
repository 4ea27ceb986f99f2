package main

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/pimbridge/pimbridge/bridge"
	"github.com/pimbridge/pimbridge/bridge/mailtrack"
	"github.com/pimbridge/pimbridge/crm/crmserver"
	"github.com/pimbridge/pimbridge/ctl"
	"github.com/pimbridge/pimbridge/internal/obs"
	"github.com/pimbridge/pimbridge/offline"
)

func newDaemonCmd(g *globals) *cobra.Command {
	var confirm bool
	cmd := &cobra.Command{
		Use:   "daemon",
		Short: "Sync on a schedule and apply PIM-side track, update and untrack between cycles",
		Long: "Run a full cycle every client.interval and a light pass every client.poll (track, update and untrack\n" +
			"applied at once; deletions wait for the full cycle), and track e-mail as soon as IMAP IDLE reports it.\n" +
			"With metrics.listen set, serves Prometheus /metrics and /healthz there. SIGHUP re-reads log.level from the\n" +
			"config file. SIGTERM or SIGINT finishes the write in progress and stops.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			defer g.reloadLevelOnHUP(ctx)() // SIGHUP: log.level from the config file again
			page := newUIBackend(g)
			stopUI, err := g.startUI(ctx, page) // the web page outlives the rewirings
			if err != nil {
				return err
			}
			defer stopUI()
			for {
				rewire, err := g.daemonOnce(ctx, confirm, page)
				if !rewire || ctx.Err() != nil {
					return err
				}
			}
		},
	}
	cmd.Flags().BoolVar(&confirm, "confirm-deletes", false, "apply deletions beyond sync.mass_delete_threshold")
	return cmd
}

// daemonOnce wires the bridge for the current online/offline state and runs
// it until ctx ends or the state flips (go-offline, go-online in another
// process), in which case it returns rewire = true.
func (g *globals) daemonOnce(ctx context.Context, confirm bool, page *uiBackend) (rewire bool, err error) {
	env, err := g.openBridge(ctx, "", newCycleProgress(g.stderr).report)
	if err != nil {
		return false, err
	}
	defer env.Close()
	env.page = page
	if err := env.withMail(ctx); err != nil {
		return false, err
	}
	if env.endpoint.engine != nil && !env.endpoint.offline {
		env.refresh = g.refreshOnce
	}
	dctx, cancel := context.WithCancel(ctx)
	defer cancel()
	flipped := make(chan struct{})
	go func() { // ends with dctx
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-dctx.Done():
				return
			case <-page.rewireWanted():
				env.log.Info("pimbridge: the web page took the client offline; rewiring")
				close(flipped)
				cancel()
				return
			case <-t.C:
				if env.endpoint.stateChanged(dctx) {
					env.log.Info("pimbridge: the client went offline or online; rewiring")
					close(flipped)
					cancel()
					return
				}
			}
		}
	}()
	err = runDaemon(dctx, env, confirm, nil)
	select {
	case <-flipped:
		return true, nil
	default:
		return false, err
	}
}

// runDaemon runs the bridge's schedule and the e-mail tracker side by side
// until ctx ends, with the metrics endpoint when metrics.listen is set, and
// serves the control socket (<state_dir>/ctl.sock) so that `sync` and
// `errors retry|discard` reach this process. Another daemon answering on
// that socket stops it before anything runs. ready, if not nil, is called
// once after the first full cycle of both.
func runDaemon(ctx context.Context, env *bridgeEnv, confirm bool, ready func()) error {
	// One daemon per state directory, even where the socket cannot be
	// made (a path too long); the lock also makes the stale-socket cleanup
	// in Listen race-free.
	lock, err := ctl.Lock(env.cfg.Client.StateDir)
	if err != nil {
		return err
	}
	defer lock.Release()
	ctlLn, err := ctl.Listen(ctx, ctlPath(env.cfg), &ctl.Options{Logger: env.log})
	switch {
	case errors.Is(err, ctl.ErrPathTooLong):
		// Run as before ctl existed: `sync` will run its own cycle.
		env.log.Warn("pimbridge: no control socket; `pimbridge sync` cannot reach this daemon", "err", err)
		ctlLn = nil
	case err != nil:
		return err
	default:
		defer ctlLn.Close()
	}

	metrics := obs.New(nil)
	if addr := env.cfg.Metrics.Listen; addr != "" {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return err
		}
		srv := crmserver.HTTPServer(metrics.Handler(), crmserver.Timeouts{}, env.log)
		go func() { _ = srv.Serve(ln) }() // ends when Shutdown below closes it
		defer srv.Shutdown(context.Background())
		env.log.Info("pimbridge: metrics on http://" + ln.Addr().String() + "/metrics")
	}

	var (
		readyOnce sync.Once
		mu        sync.Mutex
		waiting   = 1 // first full cycles still to come
	)
	if env.tracker != nil {
		waiting++
	}
	firstDone := func() {
		mu.Lock()
		waiting--
		done := waiting == 0
		mu.Unlock()
		if done && ready != nil {
			readyOnce.Do(ready)
		}
	}
	reportMail := func(st mailtrack.Stats, err error) {
		recordMail(metrics, st, err)
		if err != nil {
			env.log.Error("pimbridge: e-mail cycle failed", "err", err)
		} else if st.Tracked+st.Untracked+st.Regarding+st.Failed > 0 {
			env.log.Info("pimbridge: e-mail cycle done", "tracked", st.Tracked, "untracked", st.Untracked, "regarding", st.Regarding, "failed", st.Failed)
		}
	}
	if env.endpoint.engine != nil {
		// One daemon per state dir (the lock above): a Syncing mark is
		// from a daemon that died mid-cycle.
		if err := env.endpoint.engine.PIMSyncReset(ctx); err != nil {
			env.log.Warn("pimbridge: client state not reset", "err", err)
		}
	}
	dc := &daemonCtl{env: env, confirm: confirm, waiter: &cycleWaiter{}, reportMail: reportMail, started: time.Now()}
	dc.reportBridge = func(light bool, st bridge.Stats, err error) {
		recordBridge(metrics, light, st, err)
		if !light {
			env.pimSyncState(ctx, false, err)
		}
		dc.cycleDone(light, st, err)
		args := []any{"light", light, "primary", st.Primary, "to_crm", st.ToCRM, "to_pim", st.ToPIM, "failed", st.Failed, "pending", st.Pending, "duration", st.Duration}
		switch {
		case err == nil:
			if !light || st.ToCRM != (bridge.Counter{}) || st.ToPIM != (bridge.Counter{}) {
				env.log.Info("pimbridge: cycle done", args...)
			}
		case errors.Is(err, bridge.ErrItemErrors):
			env.log.Warn("pimbridge: cycle done with item errors (see pimbridge errors)", args...)
		default:
			env.log.Error("pimbridge: cycle failed", append(args, "err", err)...)
		}
	}

	if env.page != nil { // the web page drives this wiring until it ends
		env.page.set(dc)
		defer env.page.set(nil)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var ctlErr error
	sockPath := ""
	if ctlLn != nil {
		sockPath = ctlLn.Path()
		wg.Add(1)
		go func() { // ends when ctx ends
			defer wg.Done()
			ctlErr = ctlLn.Serve(ctx, dc)
		}()
	}
	if env.refresh != nil {
		wg.Add(1)
		go func() { // ends when ctx ends
			defer wg.Done()
			refreshLoop(ctx, env, metrics)
		}()
	}
	var mailErr error
	if env.tracker != nil {
		wg.Add(1)
		go func() { // ends when ctx ends (Run returns after its watcher)
			defer wg.Done()
			first := true
			mailErr = env.tracker.Run(ctx, env.cfg.Client.Interval.Duration, func(st mailtrack.Stats, err error) {
				reportMail(st, err)
				if first {
					first = false
					firstDone()
				}
			})
		}()
	}

	s := bridge.Schedule{Interval: env.cfg.Client.Interval.Duration, Poll: env.cfg.Client.Poll.Duration, ConfirmDeletes: confirm, Live: env.cfg.Client.Live,
		FastPoll: env.cfg.Client.FastPoll.Duration, FastFor: env.cfg.Client.FastFor.Duration,
		Starting: func(light bool) {
			dc.waiter.starting(light)
			if !light {
				env.pimSyncState(ctx, true, nil)
			}
		}}
	env.log.Info("pimbridge: daemon started", "client", env.cfg.Client.ID, "interval", s.Interval, "poll", s.Poll, "live", s.Live, "email", env.tracker != nil, "ctl", sockPath)
	first := true
	err = env.bridge.Run(ctx, s, func(light bool, st bridge.Stats, err error) {
		dc.reportBridge(light, st, err)
		dc.waiter.done(light, st, err)
		if first && !light {
			first = false
			firstDone()
		}
	})
	dc.waiter.stop()
	cancel()
	wg.Wait()
	env.log.Info("pimbridge: daemon stopped")
	if errors.Is(mailErr, context.Canceled) {
		mailErr = nil
	}
	return errors.Join(err, mailErr, ctlErr)
}

// recordBridge feeds one bridge cycle into the metrics. Item errors do not
// fail a cycle for /healthz; they are counted.
func recordBridge(m *obs.Metrics, light bool, st bridge.Stats, err error) {
	kind := "pim"
	if light {
		kind = "pim-light"
	}
	if errors.Is(err, bridge.ErrItemErrors) {
		err = nil
	}
	m.CycleDone(kind, st.Duration, err)
	for entity, es := range st.ByEntity {
		for side, c := range map[string]bridge.Counter{"crm": es.ToCRM, "pim": es.ToPIM} {
			m.AddItems(side, "create", entity, c.Created)
			m.AddItems(side, "update", entity, c.Updated)
			m.AddItems(side, "delete", entity, c.Deleted)
		}
		m.AddItems("pim", "unlink", entity, es.Unlinked)
		m.AddItemErrors(entity, es.Failed)
	}
}

func recordMail(m *obs.Metrics, st mailtrack.Stats, err error) {
	m.CycleDone("email", st.Duration, err)
	m.AddItems("crm", "create", "email", st.Tracked)
	m.AddItems("crm", "update", "email", st.Regarding)
	m.AddItems("crm", "unlink", "email", st.Untracked)
	m.AddItemErrors("email", st.Failed)
}

// refreshLoop refreshes the offline replica every offline.refresh while the
// client is online; a refresh refused because the
// client is offline is not an error worth more than a debug line.
func refreshLoop(ctx context.Context, env *bridgeEnv, m *obs.Metrics) {
	t := time.NewTicker(offline.RefreshInterval(env.cfg.Offline.Refresh.Duration))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		start := time.Now()
		queue, err := env.refresh(ctx)
		if ctx.Err() != nil {
			return
		}
		m.SetQueueLength(int(queue))
		if errors.Is(err, errClientOffline) {
			env.log.Debug("pimbridge: replica refresh skipped: the client is offline")
			continue
		}
		m.CycleDone("offline", time.Since(start), err)
		if err != nil {
			env.log.Warn("pimbridge: replica refresh failed", "err", err)
		}
	}
}

// refreshOnce runs one background refresh of the replica and returns the
// offline queue length.
func (g *globals) refreshOnce(ctx context.Context) (int64, error) {
	env, err := g.openOffline(ctx, true, nil)
	if err != nil {
		return 0, err
	}
	defer env.engine.Close()
	q, err := env.engine.QueueLength(ctx)
	if err != nil {
		return 0, err
	}
	st, err := env.engine.State(ctx)
	if err != nil {
		return q, err
	}
	if st.IsOffline() {
		return q, errClientOffline
	}
	_, err = env.engine.Refresh(ctx, env.remote, env.cred)
	return q, err
}

// errClientOffline: the user chose to be offline; no background refresh.
var errClientOffline = errors.New("the client is offline")

// pimSyncState records a full PIM cycle in the client state (Syncing
// while it runs, SyncError when it ended with errors), where the
// user has a replica to keep it in.
func (e *bridgeEnv) pimSyncState(ctx context.Context, starting bool, err error) {
	eng := e.endpoint.engine
	if eng == nil {
		return
	}
	if errors.Is(err, context.Canceled) || ctx.Err() != nil {
		err = nil // stopped, not failed: no SyncError for a cycle cut by shutdown
	}
	var serr error
	if starting {
		serr = eng.PIMSyncStarted(ctx)
	} else {
		serr = eng.PIMSyncDone(ctx, err)
	}
	if serr != nil {
		e.log.Warn("pimbridge: client state not recorded", "err", serr)
	}
}
