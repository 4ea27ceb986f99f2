// Package crmmigrate moves the whole state of a CRM server from one store
// to another (`pimbridge crm migrate`, e.g. SQLite to PostgreSQL) and
// verifies the copy row by row.
//
// It copies tables in the store-neutral form of crmserver.DumpTable: the
// metadata first (so that the target creates the tables of custom
// entities and attributes), then users, roles, tokens, subscriptions,
// SyncEntry rows, batches and the rest, then every entity's records, and
// the id counters last. The copy is atomic: the target writes everything
// in one transaction, so a failed or interrupted run leaves it empty and
// is simply run again (it is not resumable half-way). A second pass then
// reads both stores again and compares every row, column by column; a
// difference fails the run naming the entity (or table), the key and the
// field.
//
// The source must not be served while it is copied: the copy is one
// consistent snapshot, and writes made after it are not carried over.
//
// It imports crm/crmserver only; cmd wires the stores.
package crmmigrate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/pimbridge/pimbridge/crm/crmserver"
)

// ErrMismatch is wrapped by every *MismatchError.
var ErrMismatch = errors.New("crmmigrate: copy differs from the source")

// Source is a store that can be read in the store-neutral form.
type Source interface {
	// Export runs fn over one consistent snapshot.
	Export(ctx context.Context, fn func(crmserver.DumpReader) error) error
}

// Target is a store that can be loaded (and read back for the check).
type Target interface {
	Source
	// Import runs fn in one transaction over an empty store; nothing is
	// kept unless fn returns nil.
	Import(ctx context.Context, fn func(crmserver.DumpWriter) error) error
}

// Progress is one step of a run.
type Progress struct {
	Phase string // "copy" or "verify"
	Table crmserver.DumpTable
	Done  int64 // rows of Table done so far
	Total int64 // rows of Table
}

// Options tune a run. The zero value is usable.
type Options struct {
	// ChunkRows is the number of rows written per call; 0 means 1000.
	ChunkRows int
	// Progress, when set, is called after every chunk and at the end of
	// each table.
	Progress func(Progress)
}

// TableReport counts the rows of one table.
type TableReport struct {
	Table string
	Rows  int64
}

// Report says what a run did.
type Report struct {
	Tables         []TableReport
	Rows, Verified int64
	Copy, Verify   time.Duration
}

// MismatchError is a row of the copy that differs from the source.
type MismatchError struct {
	Table  string // table name
	Entity string // entity logical name of a record table, else ""
	Key    string // the row's key, columns joined by "/"
	Field  string // the column that differs; "" when the row is missing or extra
	Source any    // the source's value (nil for a row only in the target)
	Target any    // the target's value (nil for a row missing in the target)
	Reason string // "missing in target", "only in target", "differs"
}

func (e *MismatchError) Error() string {
	what := e.Table
	if e.Entity != "" {
		what = e.Entity
	}
	if e.Field == "" {
		return fmt.Sprintf("crmmigrate: verify: %s %s: %s", what, e.Key, e.Reason)
	}
	return fmt.Sprintf("crmmigrate: verify: %s %s: field %s: source %s, target %s", what, e.Key, e.Field, show(e.Source), show(e.Target))
}

func (e *MismatchError) Unwrap() error { return ErrMismatch }

func show(v any) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case []byte:
		return fmt.Sprintf("%q", x)
	case string:
		return fmt.Sprintf("%q", x)
	}
	return fmt.Sprintf("%v", v)
}

// metaTables are copied first, before the target creates its record
// tables; then firstTables in this order (references before their
// referrers); then every other table in name order.
var (
	metaTables  = []string{"meta", "custom_entities", "custom_attributes"}
	firstTables = []string{"seq", "users", "roles", "user_roles", "tokens", "subscriptions", "subscription_specs", "syncentry", "batches", "syncinfo"}
)

func order(ts []crmserver.DumpTable) (meta, rest []crmserver.DumpTable) {
	rank := func(name string) int {
		if i := slices.Index(metaTables, name); i >= 0 {
			return i
		}
		if i := slices.Index(firstTables, name); i >= 0 {
			return 100 + i
		}
		return 1000
	}
	ts = slices.Clone(ts)
	slices.SortStableFunc(ts, func(a, b crmserver.DumpTable) int {
		if d := rank(a.Name) - rank(b.Name); d != 0 {
			return d
		}
		return strings.Compare(a.Name, b.Name)
	})
	for _, t := range ts {
		if slices.Contains(metaTables, t.Name) {
			meta = append(meta, t)
		} else {
			rest = append(rest, t)
		}
	}
	return meta, rest
}

// Migrate copies everything from src into dst (which must be empty) and
// then verifies the copy (see Verify).
func Migrate(ctx context.Context, src Source, dst Target, opts *Options) (Report, error) {
	if opts == nil {
		opts = &Options{}
	}
	chunk := opts.ChunkRows
	if chunk <= 0 {
		chunk = 1000
	}
	var rep Report
	start := time.Now()
	err := src.Export(ctx, func(r crmserver.DumpReader) error {
		tables, err := r.Tables(ctx)
		if err != nil {
			return err
		}
		counters, err := r.Counters(ctx)
		if err != nil {
			return err
		}
		meta, rest := order(tables)
		return dst.Import(ctx, func(w crmserver.DumpWriter) error {
			for _, t := range meta {
				if err := copyTable(ctx, r, w, t, chunk, opts.Progress, &rep); err != nil {
					return err
				}
			}
			if err := w.Schema(ctx); err != nil {
				return err
			}
			for _, t := range rest {
				if err := copyTable(ctx, r, w, t, chunk, opts.Progress, &rep); err != nil {
					return err
				}
			}
			return w.SetCounters(ctx, counters)
		})
	})
	rep.Copy = time.Since(start)
	if err != nil {
		return rep, fmt.Errorf("crmmigrate: copy: %w", err)
	}
	start = time.Now()
	n, err := Verify(ctx, src, dst, opts)
	rep.Verified, rep.Verify = n, time.Since(start)
	return rep, err
}

func copyTable(ctx context.Context, r crmserver.DumpReader, w crmserver.DumpWriter, t crmserver.DumpTable, chunk int, progress func(Progress), rep *Report) error {
	total, err := r.Count(ctx, t)
	if err != nil {
		return err
	}
	var done int64
	buf := make([][]any, 0, chunk)
	flush := func() error {
		if len(buf) == 0 {
			return nil
		}
		if err := w.Write(ctx, t, buf); err != nil {
			return err
		}
		done += int64(len(buf))
		buf = buf[:0]
		if progress != nil {
			progress(Progress{Phase: "copy", Table: t, Done: done, Total: total})
		}
		return nil
	}
	err = r.Rows(ctx, t, func(vals []any) error {
		buf = append(buf, cloneRow(vals))
		if len(buf) == chunk {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return fmt.Errorf("table %s: %w", t.Name, err)
	}
	if done == 0 && progress != nil {
		progress(Progress{Phase: "copy", Table: t, Total: total})
	}
	rep.Tables = append(rep.Tables, TableReport{Table: t.Name, Rows: done})
	rep.Rows += done
	return nil
}

// cloneRow copies a row whose slices the reader may reuse.
func cloneRow(vals []any) []any {
	out := make([]any, len(vals))
	for i, v := range vals {
		if b, ok := v.([]byte); ok {
			v = bytes.Clone(b)
		}
		out[i] = v
	}
	return out
}
