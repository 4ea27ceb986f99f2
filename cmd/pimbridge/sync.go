package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/pimbridge/pimbridge/bridge"
	"github.com/pimbridge/pimbridge/bridge/mailtrack"
)

func newSyncCmd(g *globals) *cobra.Command {
	var (
		confirm, asJSON bool
		target          string
	)
	cmd := &cobra.Command{
		Use:   "sync",
		Short: "Run one full sync cycle between CRM and the PIM servers (and/or refresh the offline replica)",
		Long: "Run one full sync cycle: CRM changes from the outlook subscription, PIM changes since the last cycle,\n" +
			"then every pending pair merged and written, and tracked e-mail. --target offline refreshes the offline\n" +
			"replica instead (an incremental GoOffline that stays online); --target addressbook fills the carddav.directory\n" +
			"book with the CRM accounts and users; all does everything.\n" +
			"Exit code 3 means some items failed (see `pimbridge errors`).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if target != "pim" && target != "offline" && target != "addressbook" && target != "all" {
				return usageErr(fmt.Errorf("--target %q: want pim, addressbook, offline or all", target))
			}
			var pimErr, offErr error
			if target != "offline" {
				pimErr = g.syncPIM(ctx, target, confirm, asJSON)
			}
			if target == "offline" || target == "all" {
				offErr = g.refreshReplica(ctx)
			}
			var ce *codeError
			if offErr == nil && errors.As(pimErr, &ce) {
				return pimErr // exit 3 (item errors) survives
			}
			return errors.Join(pimErr, offErr)
		},
	}
	cmd.Flags().BoolVar(&confirm, "confirm-deletes", false, "apply deletions beyond sync.mass_delete_threshold")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the cycle's figures as JSON")
	cmd.Flags().StringVar(&target, "target", "pim", "what to synchronize: pim (CardDAV/CalDAV/IMAP), addressbook (the carddav.directory book), offline (the replica) or all")
	return cmd
}

// syncPIM runs one bridge cycle and one e-mail cycle: in the daemon when
// one runs on this state dir (through ctl), else in this process.
func (g *globals) syncPIM(ctx context.Context, target string, confirm, asJSON bool) error {
	cfg, err := g.loadConfig()
	if err != nil {
		return err
	}
	if target == "addressbook" && (cfg.CardDAV.URL == "" || cfg.CardDAV.Directory == "") {
		return usageErr(fmt.Errorf("--target addressbook: set carddav.url and carddav.directory (the address book for the CRM accounts and users)"))
	}
	if ran, err := g.syncViaDaemon(ctx, cfg, confirm, asJSON); ran || err != nil {
		return err
	}
	env, err := g.openBridge(ctx, "", newCycleProgress(g.stderr).report)
	if err != nil {
		return err
	}
	defer env.Close()
	if target == "addressbook" {
		return syncDirectoryOnly(ctx, g.stdout, env, asJSON)
	}
	if err := env.withMail(ctx); err != nil {
		return err
	}
	st, err := env.bridge.Cycle(ctx, bridge.CycleOptions{ConfirmDeletes: confirm})
	if target == "all" {
		err = syncDirectory(ctx, env, &st, err)
	}
	var (
		mst  mailtrack.Stats
		merr error
	)
	if env.tracker != nil {
		mst, merr = env.tracker.Cycle(ctx)
	}
	return finishSync(g.stdout, st, err, env.tracker != nil, mst, merr, asJSON)
}

// finishSync prints a cycle's figures and maps its errors to the exit
// code: 3 when items failed and nothing else did.
func finishSync(w io.Writer, st bridge.Stats, err error, withMail bool, mst mailtrack.Stats, merr error, asJSON bool) error {
	if perr := printStats(w, st, withMail, mst, asJSON); perr != nil {
		return perr
	}
	if err == nil && merr == nil && mst.Failed > 0 {
		err = fmt.Errorf("%d e-mail messages failed: %w", mst.Failed, bridge.ErrItemErrors)
	}
	err = errors.Join(err, merr)
	if merr == nil && errors.Is(err, bridge.ErrItemErrors) {
		return &codeError{code: exitItemErrors, err: err}
	}
	return err
}

// refreshReplica runs an incremental GoOffline that leaves the client
// online.
func (g *globals) refreshReplica(ctx context.Context) error {
	progress, done := progressBar(g.stderr)
	env, err := g.openOffline(ctx, true, progress)
	if err != nil {
		return err
	}
	defer env.engine.Close()
	rep, err := env.engine.Refresh(ctx, env.remote, env.cred)
	done()
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(g.stdout, "offline replica: %d rows in %d batches in %s\n", rep.Rows, rep.Batches, rep.Duration.Round(1e6))
	return err
}

func printStats(w io.Writer, st bridge.Stats, withMail bool, mst mailtrack.Stats, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		out := struct {
			bridge.Stats
			Email *mailtrack.Stats `json:"email,omitempty"`
		}{Stats: st}
		if withMail {
			out.Email = &mst
		}
		return enc.Encode(out)
	}
	if withMail {
		if _, err := fmt.Fprintf(w, "e-mail: %d tracked, %d regarding set, %d untracked, %d deleted on IMAP, %d failed\n",
			mst.Tracked, mst.Regarding, mst.Untracked, mst.Deleted, mst.Failed); err != nil {
			return err
		}
	}
	if err := printDirectory(w, st.Directory); err != nil {
		return err
	}
	if !st.Primary {
		_, err := fmt.Fprintln(w, "secondary client: contacts, tasks and appointments are synced by the primary (run set-primary to take over)")
		return err
	}
	_, err := fmt.Fprintf(w, "to CRM: %d created, %d updated, %d deleted; to PIM: %d created, %d updated, %d deleted; %d linked, %d unlinked, %d failed, %d malformed, %d pending (%s)\n",
		st.ToCRM.Created, st.ToCRM.Updated, st.ToCRM.Deleted, st.ToPIM.Created, st.ToPIM.Updated, st.ToPIM.Deleted,
		st.Linked, st.Unlinked, st.Failed, st.Malformed, st.Pending, st.Duration.Round(1e6))
	return err
}
