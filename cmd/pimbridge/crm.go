package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/pimbridge/pimbridge/crm/crmstore"
	"github.com/spf13/cobra"
)

// newCRMCmd is `pimbridge crm`: the CRM server and its administration.
func newCRMCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "crm",
		Short: "Run and administer the CRM server",
	}
	cf := &crmFlags{}
	c.PersistentFlags().IntVar(&cf.bcryptCost, "bcrypt-cost", 10, "bcrypt cost of new password hashes (4-31)")
	c.AddCommand(newCRMServeCmd(g, cf), newCRMUserCmd(g, cf), newCRMRoleCmd(g, cf), newCRMMigrateCmd(g, cf))
	return c
}

// crmFlags are the flags every crm subcommand has.
type crmFlags struct {
	bcryptCost int
}

// defaultDBPath is $XDG_DATA_HOME/pimbridge/crm.db (XDG_DATA_HOME defaults
// to ~/.local/share).
func defaultDBPath() (string, error) {
	dir := os.Getenv("XDG_DATA_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("no --db given and no home directory: %w", err)
		}
		dir = filepath.Join(home, ".local", "share")
	}
	return filepath.Join(dir, "pimbridge", "crm.db"), nil
}

// openStore opens the CRM database at path (default location when empty),
// creating its directory; a postgres:// URL opens PostgreSQL. The path it
// returns is for messages: a URL's password is masked.
func openStore(ctx context.Context, cf *crmFlags, path string, log *slog.Logger) (*crmstore.Store, string, error) {
	if path == "" {
		var err error
		if path, err = defaultDBPath(); err != nil {
			return nil, "", err
		}
	}
	if !crmstore.IsPostgresURL(path) {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, "", fmt.Errorf("create data directory: %w", err)
		}
	}
	if cf.bcryptCost < 4 || cf.bcryptCost > 31 {
		return nil, "", usageErr(fmt.Errorf("--bcrypt-cost %d out of range 4-31", cf.bcryptCost))
	}
	st, err := crmstore.Open(ctx, path, &crmstore.Options{Logger: log, BcryptCost: cf.bcryptCost})
	if err != nil {
		return nil, "", err
	}
	return st, crmstore.Redact(path), nil
}

// quietLogger drops everything below warnings (for admin commands).
func quietLogger(g *globals) *slog.Logger {
	return slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}
