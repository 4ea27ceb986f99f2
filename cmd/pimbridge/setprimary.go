package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newSetPrimaryCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "set-primary",
		Short: "Make this bridge the user's synchronizing (primary) client",
		Long: "Claim the primary role for client.id: only the primary syncs contacts, tasks and appointments; the\n" +
			"previous primary is refused by the server from now on.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			env, err := g.openBridge(ctx, "", nil)
			if err != nil {
				return err
			}
			defer env.Close()
			p, err := env.bridge.ClaimPrimary(ctx)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(g.stdout, "client %q is now the primary client (generation %d)\n", p.ClientID, p.Generation)
			return err
		},
	}
}
