package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"github.com/spf13/cobra"

	"github.com/pimbridge/pimbridge/bridge"
	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmclient"
	"github.com/pimbridge/pimbridge/ctl"
	"github.com/pimbridge/pimbridge/idmap"
	"github.com/pimbridge/pimbridge/offline"
	"github.com/pimbridge/pimbridge/reconcile"
	"github.com/pimbridge/pimbridge/ui"
)

// newUICmd is `pimbridge ui [--open]`: the address of the daemon's web
// page, carrying the access key.
func newUICmd(g *globals) *cobra.Command {
	var open bool
	c := &cobra.Command{
		Use:   "ui",
		Short: "Print (or --open) the address of the daemon's web page, signed in",
		Long: `Print the address of the web page that pimbridge daemon serves on ui.listen
(status, sync errors to resolve, the plan of the next cycle, going offline and
online). The address carries the access key kept in <state_dir>/ui.key: opening
it signs the browser in. Keep it to yourself.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			key, err := ui.LoadOrCreateKey(cfg.Client.StateDir)
			if err != nil {
				return err
			}
			addr := cfg.UI.Listen
			if b, err := os.ReadFile(filepath.Join(cfg.Client.StateDir, ui.AddrFile)); err == nil {
				addr = strings.TrimSpace(string(b)) // where the running daemon serves it
			} else if addr == "" {
				return fmt.Errorf("ui: ui.listen is off in the config")
			} else {
				fmt.Fprintln(g.stderr, "pimbridge: no daemon serves the page now; start `pimbridge daemon`")
			}
			u := ui.URL(addr, key)
			fmt.Fprintln(g.stdout, u)
			if open {
				return openBrowser(u)
			}
			return nil
		},
	}
	c.Flags().BoolVar(&open, "open", false, "open the page in the desktop's browser")
	return c
}

func openBrowser(u string) error {
	name := "xdg-open"
	if runtime.GOOS == "darwin" {
		name = "open"
	}
	if err := exec.Command(name, u).Start(); err != nil {
		return fmt.Errorf("ui: open the browser: %w", err)
	}
	return nil
}

// startUI serves the web page on ui.listen for the whole daemon (across
// its rewirings); the returned stop ends it. A listen address in use is a
// warning, not a reason to stop the daemon.
func (g *globals) startUI(ctx context.Context, b *uiBackend) (stop func(), err error) {
	cfg, err := g.loadConfig()
	if err != nil {
		return nil, err
	}
	log := g.logger()
	if cfg.UI.Listen == "" {
		return func() {}, nil
	}
	key, err := ui.LoadOrCreateKey(cfg.Client.StateDir)
	if err != nil {
		return nil, err
	}
	srv, err := ui.New(&ui.Options{Backend: b, Key: key, Logger: log})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.UI.Listen)
	if err != nil {
		log.Warn("pimbridge: no web page: ui.listen cannot be served", "listen", cfg.UI.Listen, "err", err)
		return func() {}, nil
	}
	addrFile := filepath.Join(cfg.Client.StateDir, ui.AddrFile)
	if err := os.WriteFile(addrFile, []byte(ln.Addr().String()+"\n"), 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	uctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { // ends when stop cancels uctx
		defer close(done)
		if err := srv.Serve(uctx, ln); err != nil {
			log.Error("pimbridge: web page stopped", "err", err)
		}
	}()
	log.Info("pimbridge: web page on http://"+ln.Addr().String()+"/ (`pimbridge ui --open` signs you in)", "listen", ln.Addr().String())
	return func() {
		cancel()
		<-done
		os.Remove(addrFile)
	}, nil
}

// uiBackend is ui.Backend over the running daemon: the control socket's
// daemonCtl of the current wiring, and the offline commands' code paths.
type uiBackend struct {
	g      *globals
	rewire chan struct{} // buffered 1: the wiring should be redone
	mu     sync.Mutex
	dc     *daemonCtl // nil while the daemon rewires
}

func newUIBackend(g *globals) *uiBackend { return &uiBackend{g: g, rewire: make(chan struct{}, 1)} }

// rewireWanted receives when the page changed the client state in a way
// the daemon's own watch does not see (the first go-offline: the daemon
// was wired without a replica). Nil (never ready) on a nil backend.
func (u *uiBackend) rewireWanted() <-chan struct{} {
	if u == nil {
		return nil
	}
	return u.rewire
}

var _ ui.Backend = (*uiBackend)(nil)

// set is called by runDaemon with its daemonCtl, and with nil when it ends.
func (u *uiBackend) set(dc *daemonCtl) {
	u.mu.Lock()
	u.dc = dc
	u.mu.Unlock()
}

func (u *uiBackend) cur() (*daemonCtl, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.dc == nil {
		return nil, ui.ErrNotRunning
	}
	return u.dc, nil
}

func (u *uiBackend) Status(ctx context.Context) (ui.Status, error) {
	dc, err := u.cur()
	if err != nil {
		return ui.Status{}, err
	}
	env := dc.env
	dc.mu.Lock()
	st := ui.Status{ClientID: env.cfg.Client.ID, State: offline.Online.String(), Cycles: dc.cycles, Started: dc.started, LastCycle: dc.lastCycle,
		LastError: dc.lastErr, Email: env.tracker != nil, Offline: env.endpoint.offline}
	if dc.lastStats != nil {
		s := *dc.lastStats
		st.Last, st.Primary = &s, s.Primary
	}
	dc.mu.Unlock()
	if !st.LastCycle.IsZero() {
		st.NextCycle = st.LastCycle.Add(env.cfg.Client.Interval.Duration)
	}
	if eng := env.endpoint.engine; eng != nil {
		os, err := eng.Status(ctx, nil, env.cfg.Offline.Listen)
		if err != nil {
			return st, err
		}
		st.State, st.Offline, st.QueueLength, st.OfflineErrors = os.State.String(), os.Offline, os.QueueLength, os.SyncErrors
	}
	errs, err := env.cache.SyncErrors(ctx)
	st.SyncErrors = len(errs)
	return st, err
}

func (u *uiBackend) SyncNow(ctx context.Context) error {
	dc, err := u.cur()
	if err != nil {
		return err
	}
	_, err = dc.SyncNow(ctx, ctl.SyncOptions{}) // the cycle's own outcome shows on the status page
	return err
}

func (u *uiBackend) SyncErrors(ctx context.Context) ([]idmap.SyncError, error) {
	dc, err := u.cur()
	if err != nil {
		return nil, err
	}
	return dc.env.cache.SyncErrors(ctx)
}

func (u *uiBackend) RetryError(ctx context.Context, id int64) error {
	dc, err := u.cur()
	if err != nil {
		return err
	}
	return dc.RetryError(ctx, id)
}

func (u *uiBackend) DiscardError(ctx context.Context, id int64) error {
	dc, err := u.cur()
	if err != nil {
		return err
	}
	return dc.DiscardError(ctx, id)
}

func (u *uiBackend) AllowDuplicate(ctx context.Context, id int64) error {
	dc, err := u.cur()
	if err != nil {
		return err
	}
	return dc.AllowDuplicate(ctx, id)
}

func (u *uiBackend) LinkError(ctx context.Context, id int64, crmID crm.ID) error {
	dc, err := u.cur()
	if err != nil {
		return err
	}
	return dc.LinkError(ctx, id, crmID)
}

// Search looks up records of the error's entity (contacts when the item
// has no mapping) whose name, e-mail or subject contains q.
func (u *uiBackend) Search(ctx context.Context, id int64, q string) ([]ui.Match, error) {
	dc, err := u.cur()
	if err != nil {
		return nil, err
	}
	errs, err := dc.env.cache.SyncErrors(ctx)
	if err != nil {
		return nil, err
	}
	entity := crm.EntityContact
	for _, e := range errs {
		if e.ID == id && e.MapID != 0 {
			if m, err := dc.env.cache.Get(ctx, e.MapID); err == nil && m.CRMEntity != "" {
				entity = m.CRMEntity
			}
		}
	}
	lit := "'" + strings.ReplaceAll(q, "'", "''") + "'"
	filter := "contains(subject," + lit + ")"
	if entity == crm.EntityContact {
		filter = "contains(firstname," + lit + ") or contains(lastname," + lit + ") or contains(emailaddress1," + lit + ")"
	}
	recs, err := dc.env.crm.QueryAll(ctx, entity, crmclient.Query{Filter: filter, Top: 20})
	if err != nil {
		return nil, err
	}
	out := make([]ui.Match, 0, len(recs))
	for _, r := range recs {
		label := strings.TrimSpace(fmt.Sprint(r.Attrs["subject"]))
		if entity == crm.EntityContact {
			label = strings.TrimSpace(fmt.Sprintf("%v %v", orEmpty(r.Attrs["firstname"]), orEmpty(r.Attrs["lastname"])))
			if e := orEmpty(r.Attrs["emailaddress1"]); e != "" {
				label += " <" + e + ">"
			}
		}
		out = append(out, ui.Match{ID: r.ID, Label: label})
	}
	return out, nil
}

func orEmpty(v any) string {
	if v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

// Plan is `pimbridge plan` (a dry run on a copy of the cache); when the
// mass-deletion guard holds deletions back, a second dry run with them
// confirmed lists their items.
func (u *uiBackend) Plan(ctx context.Context) (ui.Plan, error) {
	if _, err := u.cur(); err != nil {
		return ui.Plan{}, err
	}
	writes, st, err := u.dryRun(ctx, false)
	p := ui.Plan{Writes: writes, Stats: st}
	held := massDeletes(err)
	if len(held) == 0 {
		if err != nil && !errors.Is(err, bridge.ErrItemErrors) {
			p.Err = err.Error()
		}
		return p, nil
	}
	all, _, cerr := u.dryRun(ctx, true)
	if cerr != nil && !errors.Is(cerr, bridge.ErrItemErrors) {
		p.Err = cerr.Error()
	}
	for _, me := range held {
		h := ui.Held{Collection: me.Collection, Deletes: me.Deletes, Total: me.Total, Threshold: me.Threshold}
		for _, w := range all {
			if w.Action != "" && strings.HasPrefix(w.Href, me.Collection) {
				h.Items = append(h.Items, w)
			}
		}
		p.Held = append(p.Held, h)
	}
	return p, nil
}

func (u *uiBackend) dryRun(ctx context.Context, confirm bool) ([]bridge.PlannedWrite, bridge.Stats, error) {
	cfg, err := u.g.loadConfig()
	if err != nil {
		return nil, bridge.Stats{}, err
	}
	tmp, err := os.MkdirTemp("", "pimbridge-plan-")
	if err != nil {
		return nil, bridge.Stats{}, err
	}
	defer os.RemoveAll(tmp)
	copyFile := filepath.Join(tmp, "cache.db")
	if err := bridge.CopyCache(cachePath(cfg), copyFile); err != nil {
		return nil, bridge.Stats{}, fmt.Errorf("plan: copy the cache: %w", err)
	}
	env, err := u.g.openBridge(ctx, copyFile, nil)
	if err != nil {
		return nil, bridge.Stats{}, err
	}
	defer env.Close()
	return env.bridge.DryRun(ctx, bridge.CycleOptions{ConfirmDeletes: confirm})
}

// massDeletes collects the guard's errors in err's tree.
func massDeletes(err error) []*reconcile.MassDeleteError {
	if err == nil {
		return nil
	}
	if me, ok := err.(*reconcile.MassDeleteError); ok {
		return []*reconcile.MassDeleteError{me}
	}
	switch x := err.(type) {
	case interface{ Unwrap() []error }:
		var out []*reconcile.MassDeleteError
		for _, e := range x.Unwrap() {
			out = append(out, massDeletes(e)...)
		}
		return out
	case interface{ Unwrap() error }:
		return massDeletes(x.Unwrap())
	}
	return nil
}

func (u *uiBackend) ConfirmDeletes(ctx context.Context) (bridge.Stats, error) {
	dc, err := u.cur()
	if err != nil {
		return bridge.Stats{}, err
	}
	res, err := dc.SyncNow(ctx, ctl.SyncOptions{ConfirmDeletes: true})
	return res.Stats, errors.Join(err, res.Err)
}

// GoOffline is `pimbridge go-offline`; the daemon rewires itself onto the
// replica when it sees the state change.
func (u *uiBackend) GoOffline(ctx context.Context, progress func(offline.Progress)) (offline.Report, error) {
	env, err := u.g.openOffline(ctx, true, progress)
	if err != nil {
		return offline.Report{}, err
	}
	defer env.engine.Close()
	rep, err := env.engine.GoOffline(ctx, env.remote, env.cred)
	if err == nil {
		select {
		case u.rewire <- struct{}{}:
		default: // one is already asked for
		}
	}
	return rep, err
}

// GoOnline is `pimbridge go-online --on-error=onError`.
func (u *uiBackend) GoOnline(ctx context.Context, onError offline.OnError) (offline.ReplayReport, error) {
	env, err := u.g.openOffline(ctx, true, nil)
	if err != nil {
		return offline.ReplayReport{}, err
	}
	defer env.engine.Close()
	o := offline.ReplayOptions{AllowDuplicates: env.cfg.Sync.Duplicates == "allow", OnError: onError, Cred: env.cred}
	return env.engine.GoOnline(ctx, env.remote, o)
}

func (u *uiBackend) QueueLength(ctx context.Context) (int64, error) {
	dc, err := u.cur()
	if err != nil {
		return 0, err
	}
	if eng := dc.env.endpoint.engine; eng != nil {
		return eng.QueueLength(ctx)
	}
	return 0, nil
}

func (u *uiBackend) OfflineErrors(ctx context.Context) ([]offline.Rejection, error) {
	dc, err := u.cur()
	if err != nil {
		return nil, err
	}
	if eng := dc.env.endpoint.engine; eng != nil {
		return eng.Errors(ctx)
	}
	return nil, nil
}
