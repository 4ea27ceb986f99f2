package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pimbridge/pimbridge/crm/crmmigrate"
	"github.com/pimbridge/pimbridge/crm/crmstore"
	"github.com/spf13/cobra"
)

type crmMigrateCmd struct {
	g        *globals
	cf       *crmFlags
	from, to string
	chunk    int
}

func newCRMMigrateCmd(g *globals, cf *crmFlags) *cobra.Command {
	m := &crmMigrateCmd{g: g, cf: cf}
	c := &cobra.Command{
		Use:   "migrate --from SOURCE --to TARGET",
		Short: "Copy a CRM server's whole data to another database, verified row by row",
		Long: `Copy everything a CRM server stores — metadata with custom entities,
attributes and relationships, the records of every entity, tombstones and
the version counter, users with their password hashes, roles, tokens,
subscriptions with their sync state and open batches, local data filters,
primary-client fencing, replay keys — from SOURCE to TARGET, then read both
again and compare every row; a difference fails naming the entity, the id
and the field.

A database is "sqlite:FILE" (or a plain file path) or a postgres:// URL.
TARGET must be empty (never served). The copy is one transaction: a failed
or interrupted run leaves TARGET empty, and is simply run again. Stop the
server on SOURCE first: writes made during the copy are not carried over.
Sync clients, tokens and passwords keep working against the new database.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return m.run(cmd.Context()) },
	}
	f := c.Flags()
	f.StringVar(&m.from, "from", "", "source database (sqlite:FILE or postgres://...)")
	f.StringVar(&m.to, "to", "", "target database, empty (sqlite:FILE or postgres://...)")
	f.IntVar(&m.chunk, "chunk", 1000, "rows per insert batch")
	return c
}

// migrateStore is a store crm migrate can read and load.
type migrateStore interface {
	crmmigrate.Target
	Close() error
}

// openMigrateStore opens "sqlite:FILE", a plain path, or a postgres:// URL.
// A source must exist.
func (m *crmMigrateCmd) openMigrateStore(ctx context.Context, spec string, mustExist bool) (migrateStore, error) {
	if spec == "" {
		return nil, usageErr(errors.New("--from and --to are required"))
	}
	path := strings.TrimPrefix(spec, "sqlite:")
	switch {
	case crmstore.IsPostgresURL(spec):
		path = spec
	case mustExist:
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("source %s: %w", path, err)
		}
	default:
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("create data directory: %w", err)
		}
	}
	st, err := crmstore.Open(ctx, path, &crmstore.Options{Logger: quietLogger(m.g), BcryptCost: m.cf.bcryptCost})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", redactDSN(spec), err)
	}
	return st, nil
}

// redactDSN drops the password of a database URL for messages.
func redactDSN(s string) string {
	if i := strings.Index(s, "://"); i >= 0 {
		if at := strings.LastIndex(s, "@"); at > i {
			cred := s[i+3 : at]
			if c := strings.Index(cred, ":"); c >= 0 {
				return s[:i+3] + cred[:c] + ":xxxxx" + s[at:]
			}
		}
	}
	return s
}

func (m *crmMigrateCmd) run(ctx context.Context) error {
	if m.from == "" || m.to == "" {
		return usageErr(errors.New("--from and --to are required"))
	}
	if m.chunk < 1 {
		return usageErr(fmt.Errorf("--chunk %d: must be at least 1", m.chunk))
	}
	src, err := m.openMigrateStore(ctx, m.from, true)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := m.openMigrateStore(ctx, m.to, false)
	if err != nil {
		return err
	}
	defer dst.Close()
	pr := &migrateProgress{w: m.g.stderr}
	rep, err := crmmigrate.Migrate(ctx, src, dst, &crmmigrate.Options{ChunkRows: m.chunk, Progress: pr.report})
	if err != nil {
		if errors.Is(err, crmstore.ErrNotEmpty) {
			return fmt.Errorf("target %s holds data already; migrate needs an empty database: %w", redactDSN(m.to), err)
		}
		return err
	}
	fmt.Fprintf(m.g.stdout, "migrated %d rows in %d tables in %s; verified %d rows in %s\n",
		rep.Rows, len(rep.Tables), rep.Copy.Round(time.Millisecond), rep.Verified, rep.Verify.Round(time.Millisecond))
	return nil
}

// migrateProgress prints a line per table and per tenth of a large one.
type migrateProgress struct {
	w     io.Writer
	table string
	tenth int64
}

func (p *migrateProgress) report(x crmmigrate.Progress) {
	name := x.Table.Name
	if x.Table.Entity != "" {
		name = x.Table.Entity + " records"
	}
	if x.Table.Name != p.table {
		p.table, p.tenth = x.Table.Name, -1
	}
	t := int64(10)
	if x.Total > 0 {
		t = x.Done * 10 / x.Total
	}
	if t == p.tenth || (t < 10 && x.Total < 10000) {
		return
	}
	p.tenth = t
	fmt.Fprintf(p.w, "pimbridge: migrate: %s %s: %d of %d rows\n", x.Phase, name, x.Done, x.Total)
}
