package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/schollz/progressbar/v3"

	"github.com/pimbridge/pimbridge/config"
	"github.com/pimbridge/pimbridge/crm/crmclient"
	"github.com/pimbridge/pimbridge/offline"
)

// offlineEnv is what the offline subcommands share: the config, the
// engine over the user's replica, the server client and the credentials.
type offlineEnv struct {
	cfg    *config.Config
	engine *offline.Engine
	remote *crmclient.Client
	cred   offline.Credentials
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && isatty.IsTerminal(f.Fd())
}

// replicaPath is <state_dir>/offline-<user>.db.
func replicaPath(cfg *config.Config) string {
	user := cfg.CRM.User
	if user == "" {
		user = "default"
	}
	return filepath.Join(cfg.Client.StateDir, "offline-"+user+".db")
}

// openOffline loads the config and opens the engine. needPassword is false
// for commands that never call the server.
func (g *globals) openOffline(ctx context.Context, needPassword bool, progress func(offline.Progress)) (*offlineEnv, error) {
	cfg, err := g.loadConfig()
	if err != nil {
		return nil, err
	}
	env := &offlineEnv{cfg: cfg, cred: offline.Credentials{User: cfg.CRM.User}}
	if needPassword {
		if env.cred.Password, err = readSecret("crm", cfg.CRM.SecretRef); err != nil {
			return nil, err
		}
	}
	if env.remote, err = crmclient.New(cfg.CRM.URL, &crmclient.Options{User: cfg.CRM.User, Password: env.cred.Password, HTTPClient: g.httpClient("crm", g.logger())}); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Client.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("create state directory: %w", err)
	}
	o := cfg.Offline
	retries := o.MaxRetryCount
	if retries == 0 {
		retries = -1 // max_retry_count = 0 means no retry (the engine's zero is its default, 3)
	}
	env.engine, err = offline.Open(ctx, &offline.Options{
		Path: replicaPath(cfg), ClientID: cfg.Client.ID, Logger: g.quietLogger(slog.LevelWarn), Progress: progress,
		Batch: offline.BatchSettings{RowsBatchSize: o.RowsBatchSize, MinBatchTime: o.MinBatchTime.Duration, MaxBatchTime: o.MaxBatchTime.Duration,
			IncreaseRate: o.IncreaseRate, DecreaseRate: o.DecreaseRate, MaxRetryCount: retries},
	})
	if err != nil {
		return nil, err
	}
	return env, nil
}

// progressBar returns a Progress callback drawing rows, rate and ETA on a
// terminal, or nil elsewhere.
func progressBar(w io.Writer) (func(offline.Progress), func()) {
	if !isTerminal(w) {
		return nil, func() {}
	}
	var bar *progressbar.ProgressBar
	return func(p offline.Progress) {
			if bar == nil {
				bar = progressbar.NewOptions64(p.Total, progressbar.OptionSetWriter(w), progressbar.OptionSetDescription("go-offline"),
					progressbar.OptionShowCount(), progressbar.OptionShowIts(), progressbar.OptionSetItsString("rows"),
					progressbar.OptionSetPredictTime(true), progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionClearOnFinish())
			}
			bar.Describe(p.Entity)
			bar.Set64(p.Done)
		}, func() {
			if bar != nil {
				bar.Finish()
			}
		}
}

// serveLocal serves the local API until ctx ends (for --serve).
func serveLocal(ctx context.Context, g *globals, env *offlineEnv) error {
	return env.engine.Serve(ctx, env.cfg.Offline.Listen, func(a net.Addr) {
		fmt.Fprintf(g.stderr, "offline: local API on http://%s (same credentials as the CRM server); Ctrl-C to stop\n", a)
	})
}
