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
	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/idmap"
)

func newErrorsCmd(g *globals) *cobra.Command {
	var asJSON, allowDup bool
	cmd := &cobra.Command{
		Use:   "errors [list|retry ID [--allow-duplicate]|discard ID|link ID CRM-ID]",
		Short: "List, retry, discard or link the items that failed to sync",
		Long: `List the items that failed to sync, retry or discard one, or resolve a duplicate:
an item created on the PIM side that CRM's duplicate detection matched (with
sync.duplicates = "ask") is created anyway by "retry ID --allow-duplicate", or
linked to the existing record by "link ID CRM-ID" and merged with it at the
next sync (a field set on one side only is kept; one set on both takes the
later side's value).`,
		Args: cobra.MaximumNArgs(3),
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
			if allowDup && op != "retry" {
				return usageErr(fmt.Errorf("errors %s: --allow-duplicate goes with retry", op))
			}
			if op == "link" {
				return g.linkSyncError(ctx, cfg, args[1:])
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
					return usageErr(fmt.Errorf("errors %s needs the error ID (only)", op))
				}
				id, err := strconv.ParseInt(args[1], 10, 64)
				if err != nil {
					return usageErr(fmt.Errorf("errors %s: %q is not an error ID", op, args[1]))
				}
				if allowDup {
					op = "allow-duplicate"
				}
				if err := changeSyncError(ctx, cfg, cache, op, id); err != nil {
					return err
				}
				verb := "will be retried at the next sync"
				if allowDup {
					verb = "will be created in CRM at the next sync, duplicates or not"
				}
				if op == "discard" {
					verb = "discarded"
				}
				_, err = fmt.Fprintf(g.stdout, "sync error %d %s\n", id, verb)
				return err
			}
			return usageErr(fmt.Errorf("errors: unknown action %q (want list, retry, discard or link)", op))
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "list as JSON")
	cmd.Flags().BoolVar(&allowDup, "allow-duplicate", false, "with retry: create the item in CRM although duplicate detection finds matches")
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
		switch op {
		case "retry":
			return c.RetryError(ctx, id)
		case "allow-duplicate":
			return c.AllowDuplicate(ctx, id)
		}
		return c.DiscardError(ctx, id)
	}
	return cache.Tx(ctx, func(tx *idmap.Tx) error {
		switch op {
		case "retry":
			return tx.RetrySyncError(ctx, id)
		case "allow-duplicate":
			return tx.AllowDuplicate(ctx, id)
		}
		return tx.DiscardSyncError(ctx, id)
	})
}

// linkSyncError is `errors link ID CRM-ID`: through the daemon when one
// runs on this state dir, else with a bridge of its own (it reads the CRM
// record to check that it exists).
func (g *globals) linkSyncError(ctx context.Context, cfg *config.Config, args []string) error {
	if len(args) != 2 {
		return usageErr(fmt.Errorf("errors link needs the error ID and the CRM record's ID"))
	}
	id, err := strconv.ParseInt(args[0], 10, 64)
	if err != nil {
		return usageErr(fmt.Errorf("errors link: %q is not an error ID", args[0]))
	}
	crmID, err := crm.ParseID(args[1])
	if err != nil {
		return usageErr(fmt.Errorf("errors link: %q is not a CRM record ID: %w", args[1], err))
	}
	c, err := dialDaemon(ctx, cfg)
	if err != nil {
		return err
	}
	if c != nil {
		defer c.Close()
		err = c.LinkError(ctx, id, crmID)
	} else {
		var env *bridgeEnv
		if env, err = g.openBridge(ctx, "", nil); err != nil {
			return err
		}
		defer env.Close()
		err = env.bridge.LinkSyncError(ctx, id, crmID)
	}
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(g.stdout, "sync error %d: linked to %s; merged at the next sync\n", id, crmID)
	return err
}
