package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/pimbridge/pimbridge/bridge"
	"github.com/pimbridge/pimbridge/config"
	"github.com/pimbridge/pimbridge/pim/davcontacts"
)

// withDirectory adds the directory address book (carddav.directory) to the
// bridge's options when it is configured.
func (g *globals) withDirectory(cfg *config.Config, opts *bridge.Options, log *slog.Logger) error {
	if cfg.CardDAV.URL == "" || cfg.CardDAV.Directory == "" {
		return nil
	}
	c, err := g.davClient(cfg.CardDAV.URL, cfg.CardDAV.User, "carddav", cfg.CardDAV.SecretRef, log)
	if err != nil {
		return err
	}
	opts.Directory = davcontacts.New(c, cfg.CardDAV.Directory)
	return nil
}

// syncDirectory runs the directory pass after a bridge cycle (sync
// --target all) when a directory is configured; its figures go into st and
// its error joins the cycle's.
func syncDirectory(ctx context.Context, env *bridgeEnv, st *bridge.Stats, cycleErr error) error {
	if env.cfg.CardDAV.Directory == "" {
		return cycleErr
	}
	dst, err := env.bridge.SyncDirectory(ctx)
	st.Directory = &dst
	return errors.Join(cycleErr, err)
}

// syncDirectoryOnly is `sync --target addressbook` in this process.
func syncDirectoryOnly(ctx context.Context, w io.Writer, env *bridgeEnv, asJSON bool) error {
	dst, err := env.bridge.SyncDirectory(ctx)
	var perr error
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		perr = enc.Encode(struct {
			Directory bridge.DirectoryStats `json:"directory"`
		}{dst})
	} else {
		perr = printDirectory(w, &dst)
	}
	if perr != nil {
		return perr
	}
	if errors.Is(err, bridge.ErrItemErrors) {
		return &codeError{code: exitItemErrors, err: err}
	}
	return err
}

// printDirectory prints the directory line of a sync summary; nothing when
// no directory pass ran.
func printDirectory(w io.Writer, d *bridge.DirectoryStats) error {
	if d == nil {
		return nil
	}
	_, err := fmt.Fprintf(w, "directory: %d created, %d updated, %d deleted, %d PIM-side edits undone, %d failed\n",
		d.Created, d.Updated, d.Deleted, d.Overwritten, d.Failed)
	return err
}
