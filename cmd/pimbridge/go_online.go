package main

import (
	"bufio"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/pimbridge/pimbridge/offline"
)

// newGoOnlineCmd is `pimbridge go-online`: replay the offline queue, then
// refresh the replica (GoOnline, docs/offline.md).
func newGoOnlineCmd(g *globals) *cobra.Command {
	var onError string
	var allowDup bool
	c := &cobra.Command{
		Use:   "go-online",
		Short: "Replay the offline queue to the CRM server and go online",
		Long: `Replay the writes made offline, in order, through the CRM server (its security,
business logic, workflows and plug-ins apply). A network failure stops the
replay; run go-online again to resume. Rejected requests become sync errors:
--on-error=stay-offline (default without a terminal) keeps them to fix and
retry, retry sends them once more, discard drops them. On a terminal without
--on-error you are asked. Exit code 3 when sync errors remain.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			// --allow-duplicates overrides sync.duplicates for this run.
			o := offline.ReplayOptions{AllowDuplicates: allowDup || cfg.Sync.Duplicates == "allow"}
			if onError != "" {
				d, err := offline.ParseOnError(onError)
				if err != nil {
					return usageErr(err)
				}
				o.OnError = d
			} else if isTerminal(g.stdout) {
				o.Prompt = func(errs []offline.Rejection) offline.OnError { return prompt(g, errs) }
			}
			env, err := g.openOffline(ctx, true, nil)
			if err != nil {
				return err
			}
			defer env.engine.Close()
			o.Cred = env.cred
			rep, err := env.engine.GoOnline(ctx, env.remote, o)
			fmt.Fprintf(g.stdout, "replayed %d, rejected %d\n", rep.Replayed, rep.Rejected)
			if errors.Is(err, offline.ErrSyncErrors) {
				for _, e := range rep.Errors {
					fmt.Fprintf(g.stdout, "  error %d: %s %s %s: %d %s\n", e.ID, e.Row.Command, e.Row.ObjectType, e.Row.ObjectID, e.Status, e.Message)
				}
				return &codeError{code: exitItemErrors, err: err}
			}
			return err
		},
	}
	c.Flags().StringVar(&onError, "on-error", "", "what to do with rejected requests: stay-offline, retry or discard")
	c.Flags().BoolVar(&allowDup, "allow-duplicates", false, "create records even when duplicate detection finds matches (this run; sync.duplicates = \"allow\" always does)")
	return c
}

func prompt(g *globals, errs []offline.Rejection) offline.OnError {
	fmt.Fprintf(g.stdout, "%d request(s) were rejected by the server:\n", len(errs))
	for _, e := range errs {
		fmt.Fprintf(g.stdout, "  %s %s %s: %s\n", e.Row.Command, e.Row.ObjectType, e.Row.ObjectID, e.Message)
	}
	fmt.Fprint(g.stdout, "[s]tay offline and fix, [r]etry, [d]iscard the changes? ")
	line, _ := bufio.NewReader(g.stdin).ReadString('\n')
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "r", "retry":
		return offline.Retry
	case "d", "discard":
		return offline.Discard
	}
	return offline.StayOffline
}
