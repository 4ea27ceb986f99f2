package main

import (
	"errors"

	"github.com/spf13/cobra"

	"github.com/pimbridge/pimbridge/bridge"
)

func newDaemonCmd(g *globals) *cobra.Command {
	var confirm bool
	cmd := &cobra.Command{
		Use:   "daemon",
		Short: "Sync on a schedule and apply PIM-side track, update and untrack between cycles",
		Long: "Run a full cycle every client.interval and a light pass every client.poll (track, update and untrack\n" +
			"applied at once; deletions wait for the full cycle). SIGTERM or SIGINT finishes the write in progress and stops.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			env, err := g.openBridge(ctx, "", progressPrinter(g.stderr))
			if err != nil {
				return err
			}
			defer env.Close()
			s := bridge.Schedule{Interval: env.cfg.Client.Interval.Duration, Poll: env.cfg.Client.Poll.Duration, ConfirmDeletes: confirm}
			env.log.Info("pimbridge: daemon started", "client", env.cfg.Client.ID, "interval", s.Interval, "poll", s.Poll)
			err = env.bridge.Run(ctx, s, func(light bool, st bridge.Stats, err error) {
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
			})
			env.log.Info("pimbridge: daemon stopped")
			return err
		},
	}
	cmd.Flags().BoolVar(&confirm, "confirm-deletes", false, "apply deletions beyond sync.mass_delete_threshold")
	return cmd
}
