package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/pimbridge/pimbridge/config"
	"github.com/pimbridge/pimbridge/idmap"
)

func newErrorsCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "errors [list|retry ID|discard ID]",
		Short: "List, retry or discard the items that failed to sync",
		Args:  cobra.MaximumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			op := "list"
			if len(args) > 0 {
				op = args[0]
			}
			if _, err := os.Stat(cachePath(cfg)); err != nil && op == "list" {
				if asJSON {
					_, err := fmt.Fprintln(g.stdout, "[]")
					return err
				}
				_, err := fmt.Fprintln(g.stdout, "no sync errors (no sync has run yet)")
				return err
			}
			cache, err := idmap.Open(ctx, cachePath(cfg))
			if err != nil {
				return err
			}
			defer cache.Close()
			switch op {
			case "list":
				if len(args) > 1 {
					return usageErr(fmt.Errorf("errors list takes no argument"))
				}
				errs, err := cache.SyncErrors(ctx)
				if err != nil {
					return err
				}
				if asJSON {
					if errs == nil {
						errs = []idmap.SyncError{}
					}
					enc := json.NewEncoder(g.stdout)
					enc.SetIndent("", "  ")
					return enc.Encode(errs)
				}
				if len(errs) == 0 {
					_, err := fmt.Fprintln(g.stdout, "no sync errors")
					return err
				}
				tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tITEM\tFIELD\tATTEMPTS\tRETRY\tMESSAGE")
				for _, e := range errs {
					fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%v\t%s\n", e.ID, e.Item, e.Field, e.Attempts, e.Retry, e.Message)
				}
				return tw.Flush()
			case "retry", "discard":
				if len(args) != 2 {
					return usageErr(fmt.Errorf("errors %s needs the error ID", op))
				}
				id, err := strconv.ParseInt(args[1], 10, 64)
				if err != nil {
					return usageErr(fmt.Errorf("errors %s: %q is not an error ID", op, args[1]))
				}
				if err := changeSyncError(ctx, cfg, cache, op, id); err != nil {
					return err
				}
				verb := "will be retried at the next sync"
				if op == "discard" {
					verb = "discarded"
				}
				_, err = fmt.Fprintf(g.stdout, "sync error %d %s\n", id, verb)
				return err
			}
			return usageErr(fmt.Errorf("errors: unknown action %q (want list, retry or discard)", op))
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "list as JSON")
	return cmd
}

// changeSyncError retries or discards a sync error: through the daemon when
// one runs on this state dir (it owns the cache), else in the cache here.
func changeSyncError(ctx context.Context, cfg *config.Config, cache *idmap.Store, op string, id int64) error {
	c, err := dialDaemon(ctx, cfg)
	if err != nil {
		return err
	}
	if c != nil {
		defer c.Close()
		if op == "retry" {
			return c.RetryError(ctx, id)
		}
		return c.DiscardError(ctx, id)
	}
	return cache.Tx(ctx, func(tx *idmap.Tx) error {
		if op == "retry" {
			return tx.RetrySyncError(ctx, id)
		}
		return tx.DiscardSyncError(ctx, id)
	})
}
