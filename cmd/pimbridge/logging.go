package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/pimbridge/pimbridge/config"
	"github.com/pimbridge/pimbridge/ctl"
	"github.com/pimbridge/pimbridge/internal/trace"
)

// secrets holds every secret this process read (readSecret registers
// them); the log writer scrubs them from each line, whatever logged it.
// It is process-wide because secrets are too.
var secrets trace.Redactor

// logState is the process's log level and trace settings, shared by every
// logger, HTTP client and IMAP connection a command wires, so that SIGHUP
// changes all of them at once.
type logState struct {
	verbose     int  // -v count
	traceBodies bool // --trace-bodies
	level       slog.LevelVar
}

// applyLevel sets the level from log.level and -v (each -v one step
// louder); --trace-bodies implies trace.
func (g *globals) applyLevel(cfg *config.Config) error {
	base, err := trace.ParseLevel(cfg.Log.Level)
	if err != nil {
		return &config.FieldError{Field: "log.level", Value: cfg.Log.Level, Err: err}
	}
	g.applyVerbose(base)
	return nil
}

// applyVerbose sets the level to base raised by -v (and --trace-bodies).
func (g *globals) applyVerbose(base slog.Level) {
	l := trace.Raise(base, g.log.verbose)
	if g.log.traceBodies {
		l = trace.LevelTrace
	}
	g.log.level.Set(l)
}

// logger is the process logger at the shared level: text on a terminal,
// JSON otherwise, registered secrets scrubbed.
func (g *globals) logger() *slog.Logger { return newLeveledLogger(g.stderr, &g.log.level) }

// quietLogger is logger at floor or louder: the offline engine logs only
// warnings unless -v or log.level asks for more than info.
func (g *globals) quietLogger(floor slog.Level) *slog.Logger {
	return newLeveledLogger(g.stderr, quietLevel{&g.log.level, floor})
}

type quietLevel struct {
	v     *slog.LevelVar
	floor slog.Level
}

func (q quietLevel) Level() slog.Level {
	if l := q.v.Level(); l < slog.LevelInfo {
		return l
	}
	return q.floor
}

// newLogger returns a logger at a fixed level (see newLeveledLogger).
func newLogger(w io.Writer, level slog.Level) *slog.Logger { return newLeveledLogger(w, level) }

func newLeveledLogger(w io.Writer, level slog.Leveler) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: trace.ReplaceAttr}
	if isTerminal(w) {
		return slog.New(slog.NewTextHandler(secrets.Writer(w), opts))
	}
	return slog.New(slog.NewJSONHandler(secrets.Writer(w), opts))
}

// traceOptions are the trace settings of one protocol side.
func (g *globals) traceOptions(side string, log *slog.Logger) trace.Options {
	return trace.Options{Logger: log, Side: side, Bodies: g.log.traceBodies, Redactor: &secrets}
}

// httpClient is the HTTP client of one side (crm, carddav, caldav): a
// pooled transport with a 60 s timeout, traced at trace level.
func (g *globals) httpClient(side string, log *slog.Logger) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 16
	return &http.Client{Timeout: 60 * time.Second, Transport: trace.NewTransport(tr, g.traceOptions(side, log))}
}

// reloadLevelOnHUP re-reads log.level from the config file on every
// SIGHUP until ctx ends or the returned stop is called.
func (g *globals) reloadLevelOnHUP(ctx context.Context) (stop func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGHUP)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { // ends with ctx
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case <-ch:
				g.reloadLevel()
			}
		}
	}()
	return func() {
		signal.Stop(ch)
		cancel()
		<-done
	}
}

// reloadLevel applies log.level from the config file as it is now; a bad
// file keeps the level and says why.
func (g *globals) reloadLevel() {
	log := g.logger()
	cfg, err := g.loadConfig()
	if err != nil {
		log.Error("pimbridge: SIGHUP: config not reloaded; log level unchanged", "err", err)
		return
	}
	// loadConfig applied it already.
	log.Warn("pimbridge: log level set", "log_level", trace.LevelName(g.log.level.Level()), "config", cfg.Log.Level, "verbose", g.log.verbose)
}

var _ ctl.LogLeveler = (*daemonCtl)(nil)

// SetLogLevel serves `pimbridge log-level`: the level by name, exactly
// (the daemon's -v no longer counts), until the next SIGHUP or call.
func (d *daemonCtl) SetLogLevel(_ context.Context, level string) (string, error) {
	st := d.env.logState
	if st == nil {
		return "", fmt.Errorf("log-level: this daemon has no adjustable level")
	}
	if level != "" {
		l, err := trace.ParseLevel(level)
		if err != nil {
			return "", err
		}
		st.level.Set(l)
		d.env.log.Warn("pimbridge: log level set through the control socket", "log_level", trace.LevelName(l))
	}
	return trace.LevelName(st.level.Level()), nil
}

func newLogLevelCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "log-level [error|warn|info|debug|trace]",
		Short: "Show or set the running daemon's log level (until its next SIGHUP, which re-reads log.level)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			level := ""
			if len(args) == 1 {
				if _, err := trace.ParseLevel(args[0]); err != nil {
					return usageErr(err)
				}
				level = args[0]
			}
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			c, err := dialDaemon(ctx, cfg)
			if err != nil {
				return err
			}
			if c == nil {
				return fmt.Errorf("log-level: no daemon is running on %s", cfg.Client.StateDir)
			}
			defer c.Close()
			now, err := c.SetLogLevel(ctx, level)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(g.stdout, now)
			return err
		},
	}
}
