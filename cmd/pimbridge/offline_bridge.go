package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/pimbridge/pimbridge/config"
	"github.com/pimbridge/pimbridge/crm/crmserver"
	"github.com/pimbridge/pimbridge/offline"
)

// crmEndpoint is where the bridge talks to CRM: the server, or — while the
// client is offline (go-offline, set-offline) — the offline engine's local
// API, served in-process at offline.listen, the address `status` names, so
// that the daemon's bridge and every other tool share one local server.
// Writes made there go to the replica and the offline queue, and reach the
// server on go-online (the PIM sync keeps working
// offline).
type crmEndpoint struct {
	url     string
	offline bool
	engine  *offline.Engine // nil when the user never went offline
	stop    func() error
}

func openCRMEndpoint(ctx context.Context, cfg *config.Config, log *slog.Logger) (*crmEndpoint, error) {
	ep := &crmEndpoint{url: cfg.CRM.URL, stop: func() error { return nil }}
	path := replicaPath(cfg)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return ep, nil
	}
	eng, err := offline.Open(ctx, &offline.Options{Path: path, ClientID: cfg.Client.ID, Logger: log})
	if err != nil {
		return nil, err
	}
	ep.engine = eng
	ep.stop = eng.Close
	st, err := eng.State(ctx)
	if err != nil {
		eng.Close()
		return nil, err
	}
	if !st.IsOffline() {
		return ep, nil
	}
	ln, err := listenLocal(cfg.Offline.Listen, log)
	if err != nil {
		eng.Close()
		return nil, err
	}
	h := eng.Handler()
	srv := crmserver.HTTPServer(h, crmserver.Timeouts{}, log)
	if ew, ok := h.(interface{ EndWaits() }); ok {
		srv.RegisterOnShutdown(ew.EndWaits) // change-feed long-polls end at once
	}
	go func() { _ = srv.Serve(ln) }() // ends at Shutdown in stop
	ep.url, ep.offline = "http://"+ln.Addr().String(), true
	ep.stop = func() error {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return errors.Join(srv.Shutdown(sctx), eng.Close())
	}
	log.Info("pimbridge: the client is offline; syncing against the local replica", "state", st.String(), "local", ep.url)
	return ep, nil
}

// stateChanged reports whether the client went offline or online since the
// endpoint was opened (the daemon then rewires itself).
func (ep *crmEndpoint) stateChanged(ctx context.Context) bool {
	if ep.engine == nil {
		return false
	}
	st, err := ep.engine.State(ctx)
	return err == nil && st.IsOffline() != ep.offline
}

// listenLocal binds the local API at addr (offline.listen; "" means
// offline.DefaultListen). When another process already serves it there (a
// daemon, or go-offline --serve, that a one-off command runs beside), that
// process is the local API the user's tools reach, and this one serves its
// own bridge on a free loopback port instead.
func listenLocal(addr string, log *slog.Logger) (net.Listener, error) {
	if addr == "" {
		addr = offline.DefaultListen
	}
	ln, err := net.Listen("tcp", addr)
	if err == nil {
		return ln, nil
	}
	if !errors.Is(err, syscall.EADDRINUSE) {
		return nil, fmt.Errorf("offline: local API on %s (offline.listen): %w", addr, err)
	}
	log.Warn("pimbridge: offline.listen is served by another process; this one uses a private port", "listen", addr)
	ln, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("offline: local API: %w", err)
	}
	return ln, nil
}
