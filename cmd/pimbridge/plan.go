package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/pimbridge/pimbridge/bridge"
)

func newPlanCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "plan",
		Short: "Dry run: print what each side would get; nothing is written",
		Long: "Run a cycle that reads both sides and decides, but writes nothing to CRM, the PIM servers or the cache\n" +
			"(it works on a copy of the cache) and acknowledges no CRM batch.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			tmp, err := os.MkdirTemp("", "pimbridge-plan-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(tmp)
			copyFile := filepath.Join(tmp, "cache.db")
			if err := bridge.CopyCache(cachePath(cfg), copyFile); err != nil {
				return fmt.Errorf("plan: copy the cache: %w", err)
			}
			env, err := g.openBridge(ctx, copyFile, nil)
			if err != nil {
				return err
			}
			defer env.Close()
			plan, st, err := env.bridge.DryRun(ctx, bridge.CycleOptions{})
			if asJSON {
				enc := json.NewEncoder(g.stdout)
				enc.SetIndent("", "  ")
				if jerr := enc.Encode(map[string]any{"writes": plan, "stats": st}); jerr != nil {
					return jerr
				}
				return err
			}
			for _, w := range plan {
				line := fmt.Sprintf("%-26s %s(%s) %s", w.Outcome, w.Entity, w.ID, w.Href)
				if w.Action != "" {
					line += " -> " + w.Action + " [" + w.Rule + "]"
				}
				fmt.Fprintln(g.stdout, line)
				for _, k := range w.ToCRM.Names() {
					fmt.Fprintf(g.stdout, "    to CRM  %s = %s\n", k, w.ToCRM[k])
				}
				for _, k := range w.ToPIM.Names() {
					fmt.Fprintf(g.stdout, "    to PIM  %s = %s\n", k, w.ToPIM[k])
				}
			}
			fmt.Fprintf(g.stdout, "plan: CRM would get %d creates, %d updates, %d deletes; PIM would get %d creates, %d updates, %d deletes\n",
				st.ToCRM.Created, st.ToCRM.Updated, st.ToCRM.Deleted, st.ToPIM.Created, st.ToPIM.Updated, st.ToPIM.Deleted)
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the plan as JSON")
	return cmd
}
