package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

// newGoOfflineCmd is `pimbridge go-offline`: fill or refresh the replica
// and go offline (GoOffline, docs/offline.md).
func newGoOfflineCmd(g *globals) *cobra.Command {
	var serve bool
	c := &cobra.Command{
		Use:   "go-offline",
		Short: "Download the CRM data to the local replica and go offline",
		Long: `Download the user's CRM data (local data filters and security applied by the
server) into the local replica in dynamically sized batches, then switch to
offline mode. A broken run resumes where it stopped: acknowledged batches are
not downloaded again. Batching settings come from the [offline] table.
With --serve, the local API is then served on [offline] listen until Ctrl-C.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			progress, done := progressBar(g.stderr)
			env, err := g.openOffline(ctx, true, progress)
			if err != nil {
				return err
			}
			defer env.engine.Close()
			rep, err := env.engine.GoOffline(ctx, env.remote, env.cred)
			done()
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "offline: %d rows in %d batches (%d bytes) in %s; %d schema change(s)\n",
				rep.Rows, rep.Batches, rep.Bytes, rep.Duration.Round(1e6), len(rep.Schema))
			if serve {
				return serveLocal(ctx, g, env)
			}
			return nil
		},
	}
	c.Flags().BoolVar(&serve, "serve", false, "serve the local API after going offline")
	return c
}

// newSetOfflineCmd is `pimbridge set-offline`: offline mode without
// synchronizing.
func newSetOfflineCmd(g *globals) *cobra.Command {
	var serve bool
	c := &cobra.Command{
		Use:   "set-offline",
		Short: "Go offline without synchronizing the replica",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			env, err := g.openOffline(ctx, false, nil)
			if err != nil {
				return err
			}
			defer env.engine.Close()
			if err := env.engine.SetOffline(ctx); err != nil {
				return err
			}
			fmt.Fprintln(g.stdout, "offline")
			if serve {
				return serveLocal(ctx, g, env)
			}
			return nil
		},
	}
	c.Flags().BoolVar(&serve, "serve", false, "serve the local API")
	return c
}
