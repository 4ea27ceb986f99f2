package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pimbridge/pimbridge/config"
	"github.com/pimbridge/pimbridge/crm/crmclient"
	"github.com/pimbridge/pimbridge/ctl"
	"github.com/pimbridge/pimbridge/offline"
)

// newStatusCmd is `pimbridge status [--json]`: the offline engine's client
// state, queue, last runs and the API address to use now.
func newStatusCmd(g *globals) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "status",
		Short: "Show the client state, offline queue, last runs and the API to use now",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			env, err := g.openOffline(ctx, false, nil)
			if err != nil {
				return err
			}
			defer env.engine.Close()
			// The server is asked (last runs, version check) only when a
			// password is configured.
			var remote offline.Remote
			if pw, err := readSecret("crm", env.cfg.CRM.SecretRef); err == nil {
				c, err := crmclient.New(env.cfg.CRM.URL, &crmclient.Options{User: env.cfg.CRM.User, Password: pw, HTTPClient: g.httpClient("crm", g.logger())})
				if err != nil {
					return err
				}
				remote = c
			}
			st, err := env.engine.Status(ctx, remote, env.cfg.Offline.Listen)
			if err != nil {
				return err
			}
			st.LocalServing = answers(ctx, strings.TrimPrefix(st.LocalURL, "http://"))
			daemon, derr := daemonStatus(ctx, env.cfg)
			if asJSON {
				enc := json.NewEncoder(g.stdout)
				enc.SetIndent("", "  ")
				out := struct {
					offline.Status
					Daemon      *ctl.Status `json:"daemon"` // null when no daemon runs
					DaemonError string      `json:"daemon_error,omitempty"`
				}{Status: st, Daemon: daemon}
				if derr != nil {
					out.DaemonError = derr.Error()
				}
				return enc.Encode(out)
			}
			fmt.Fprintf(g.stdout, "state          %s\n", st.State)
			fmt.Fprintf(g.stdout, "offline        %v\n", st.Offline)
			fmt.Fprintf(g.stdout, "server uri     %s\n", st.ServerURI)
			if st.Offline && !st.LocalServing {
				fmt.Fprintf(g.stdout, "local api      not serving: start `pimbridge daemon` (or `pimbridge set-offline --serve`) to serve it there\n")
			}
			fmt.Fprintf(g.stdout, "queue length   %d\n", st.QueueLength)
			fmt.Fprintf(g.stdout, "sync errors    %d\n", st.SyncErrors)
			fmt.Fprintf(g.stdout, "last offline   %s\n", st.LastGoOffline)
			fmt.Fprintf(g.stdout, "last online    %s\n", st.LastGoOnline)
			if st.LastError != "" {
				fmt.Fprintf(g.stdout, "last error     %s\n", st.LastError)
			}
			if st.Version != "" {
				fmt.Fprintf(g.stdout, "version check  %s\n", st.Version)
			}
			switch {
			case derr != nil:
				fmt.Fprintf(g.stdout, "daemon         unknown: %v\n", derr)
			case daemon == nil:
				fmt.Fprintf(g.stdout, "daemon         not running\n")
			default:
				fmt.Fprintf(g.stdout, "daemon         running (pid %d since %s), %d full cycles\n", daemon.PID, daemon.Started.UTC().Format("2006-01-02 15:04:05Z"), daemon.Cycles)
				if daemon.LastError != "" {
					fmt.Fprintf(g.stdout, "daemon error   %s\n", daemon.LastError)
				}
			}
			for i, r := range st.Runs {
				if i == 5 {
					break
				}
				fmt.Fprintf(g.stdout, "run            %s  %d batches  %d bytes\n", r.Finished.Format("2006-01-02 15:04:05Z"), r.Batches, r.Bytes)
			}
			return nil
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

// daemonStatus asks the daemon running on cfg's state dir for its status;
// nil when none runs.
func daemonStatus(ctx context.Context, cfg *config.Config) (*ctl.Status, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := dialDaemon(ctx, cfg)
	if err != nil || c == nil {
		return nil, err
	}
	defer c.Close()
	st, err := c.Status(ctx)
	if err != nil {
		return nil, err
	}
	return &st, nil
}

// answers reports whether something accepts connections at addr.
func answers(ctx context.Context, addr string) bool {
	d := net.Dialer{Timeout: 2 * time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return false
	}
	c.Close()
	return true
}
