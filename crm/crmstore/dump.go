package crmstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmserver"
)

// ErrNotEmpty is returned by Import when the store already holds data.
var ErrNotEmpty = errors.New("crmstore: store is not empty")

// tableName is what a dumped table may be called (identifiers are quoted
// into SQL).
var tableName = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// Export runs fn over one consistent read snapshot of the whole store in
// the store-neutral form of crmserver.DumpTable.
func (s *Store) Export(ctx context.Context, fn func(crmserver.DumpReader) error) error {
	if s.pg {
		tx, err := s.db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
		if err != nil {
			return fmt.Errorf("crmstore: export: %w", err)
		}
		defer tx.Rollback()
		return fn(dumpReader{q: pgQuerier{tx}, pg: true})
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("crmstore: export: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN DEFERRED"); err != nil {
		return fmt.Errorf("crmstore: export: %w", err)
	}
	// A read-only snapshot: ending it cannot lose anything.
	defer func() { _, _ = conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK") }()
	return fn(dumpReader{q: conn})
}

type dumpReader struct {
	q  querier
	pg bool
}

func (r dumpReader) Tables(ctx context.Context) ([]crmserver.DumpTable, error) {
	return dumpTables(ctx, r.q, r.pg)
}

func dumpTables(ctx context.Context, q querier, pg bool) ([]crmserver.DumpTable, error) {
	var names []string
	if pg {
		var err error
		if names, err = pgDumpTables(ctx, q); err != nil {
			return nil, err
		}
		slices.Sort(names)
	} else {
		var err error
		if names, err = sqliteTables(ctx, q); err != nil {
			return nil, err
		}
	}
	var out []crmserver.DumpTable
	for _, n := range names {
		t, err := dumpTable(ctx, q, n, pg)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

func sqliteTables(ctx context.Context, q querier) ([]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\_%' ESCAPE '\' ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("crmstore: tables: %w", err)
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return nil, fmt.Errorf("crmstore: tables: %w", err)
		}
		names = append(names, n)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("crmstore: tables: %w", err)
	}
	return names, nil
}

// dumpTable describes one table from its schema.
func dumpTable(ctx context.Context, q querier, name string, pg bool) (crmserver.DumpTable, error) {
	t := crmserver.DumpTable{Name: name}
	if !tableName.MatchString(name) {
		return t, fmt.Errorf("%w: table name %q", crm.ErrInvalidArgument, name)
	}
	if e, ok := strings.CutPrefix(name, "e_"); ok {
		t.Entity = e
	}
	if pg {
		var err error
		t.Columns, t.Key, err = pgColumns(ctx, q, name)
		if err == nil && len(t.Columns) == 0 {
			err = fmt.Errorf("%w: table %q", crm.ErrNotFound, name)
		}
		return t, err
	}
	rows, err := q.QueryContext(ctx, "SELECT name, pk FROM pragma_table_info(?) ORDER BY cid", name)
	if err != nil {
		return t, fmt.Errorf("crmstore: table %s: %w", name, err)
	}
	defer rows.Close()
	var pks []string
	var pkPos []int
	for rows.Next() {
		var c string
		var pk int
		if err := rows.Scan(&c, &pk); err != nil {
			return t, fmt.Errorf("crmstore: table %s: %w", name, err)
		}
		t.Columns = append(t.Columns, c)
		if pk > 0 {
			pks = append(pks, c)
			pkPos = append(pkPos, pk)
		}
	}
	if err := rows.Err(); err != nil {
		return t, fmt.Errorf("crmstore: table %s: %w", name, err)
	}
	if len(t.Columns) == 0 {
		return t, fmt.Errorf("%w: table %q", crm.ErrNotFound, name)
	}
	t.Key = make([]string, len(pks))
	for i, c := range pks {
		t.Key[pkPos[i]-1] = c
	}
	return t, nil
}

func (r dumpReader) Count(ctx context.Context, t crmserver.DumpTable) (int64, error) {
	if !tableName.MatchString(t.Name) {
		return 0, fmt.Errorf("%w: table name %q", crm.ErrInvalidArgument, t.Name)
	}
	var n int64
	if err := r.q.QueryRowContext(ctx, "SELECT count(*) FROM "+q(t.Name)).Scan(&n); err != nil {
		return 0, fmt.Errorf("crmstore: count %s: %w", t.Name, err)
	}
	return n, nil
}

func (r dumpReader) Rows(ctx context.Context, t crmserver.DumpTable, fn func(vals []any) error) error {
	if !tableName.MatchString(t.Name) {
		return fmt.Errorf("%w: table name %q", crm.ErrInvalidArgument, t.Name)
	}
	cols := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		cols[i] = q(c)
	}
	order := make([]string, len(t.Key))
	for i, c := range t.Key {
		order[i] = q(c)
		if !r.pg { // PostgreSQL's text columns are COLLATE "C" already
			order[i] += " COLLATE BINARY"
		}
	}
	query := "SELECT " + strings.Join(cols, ", ") + " FROM " + q(t.Name)
	if len(order) > 0 {
		query += " ORDER BY " + strings.Join(order, ", ")
	}
	rows, err := r.q.QueryContext(ctx, query)
	if err != nil {
		return fmt.Errorf("crmstore: rows of %s: %w", t.Name, err)
	}
	defer rows.Close()
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return fmt.Errorf("crmstore: rows of %s: %w", t.Name, err)
		}
		if err := fn(vals); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("crmstore: rows of %s: %w", t.Name, err)
	}
	return nil
}

func (r dumpReader) Counters(ctx context.Context) (map[string]int64, error) {
	if r.pg {
		return pgCounters(ctx, r.q)
	}
	rows, err := r.q.QueryContext(ctx, "SELECT name, seq FROM sqlite_sequence ORDER BY name")
	if err != nil {
		return nil, fmt.Errorf("crmstore: counters: %w", err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var n string
		var v int64
		if err := rows.Scan(&n, &v); err != nil {
			return nil, fmt.Errorf("crmstore: counters: %w", err)
		}
		out[n] = v
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("crmstore: counters: %w", err)
	}
	return out, nil
}

// Import runs fn in one write transaction over a store that holds nothing
// yet (no user, no record, version counter 0; ErrNotEmpty otherwise): the
// rows fn writes replace the fresh store's defaults (roles, metadata
// version), and either all of them commit or none. The in-memory metadata
// is reloaded afterwards.
func (s *Store) Import(ctx context.Context, fn func(crmserver.DumpWriter) error) error {
	tx, err := s.beginWrite(ctx)
	if err != nil {
		return fmt.Errorf("crmstore: import: %w", err)
	}
	defer tx.Rollback()
	tables, err := dumpTables(ctx, tx, s.pg)
	if err != nil {
		return err
	}
	for _, t := range tables {
		switch t.Name {
		case "roles", "meta", "seq":
			continue // defaults of a fresh store, replaced below
		}
		var n int64
		if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM "+q(t.Name)).Scan(&n); err != nil {
			return fmt.Errorf("crmstore: import: %w", err)
		}
		if n > 0 {
			return fmt.Errorf("%w: table %s has %d rows", ErrNotEmpty, t.Name, n)
		}
	}
	var v int64
	if err := tx.QueryRowContext(ctx, "SELECT v FROM seq WHERE id = 1").Scan(&v); err != nil {
		return fmt.Errorf("crmstore: import: %w", err)
	}
	if v != 0 {
		return fmt.Errorf("%w: version counter at %d", ErrNotEmpty, v)
	}
	for _, n := range []string{"roles", "meta", "seq"} {
		if _, err := tx.ExecContext(ctx, "DELETE FROM "+q(n)); err != nil {
			return fmt.Errorf("crmstore: import: %w", err)
		}
	}
	w := &dumpWriter{s: s, tx: tx, known: map[string]crmserver.DumpTable{}}
	for _, t := range tables {
		w.known[t.Name] = t
	}
	if err := fn(w); err != nil {
		return err
	}
	if err := s.metaChanged(ctx, tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("crmstore: import: commit: %w", err)
	}
	return s.loadMetadata(ctx)
}

type dumpWriter struct {
	s     *Store
	tx    *writeTx
	known map[string]crmserver.DumpTable
}

func (w *dumpWriter) Write(ctx context.Context, t crmserver.DumpTable, rows [][]any) error {
	have, ok := w.known[t.Name]
	if !ok {
		return fmt.Errorf("%w: table %q is unknown to this store", crm.ErrNotFound, t.Name)
	}
	cols := make([]string, len(t.Columns))
	marks := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		if !containsStr(have.Columns, c) {
			return fmt.Errorf("%w: column %s.%s is unknown to this store", crm.ErrNotFound, t.Name, c)
		}
		cols[i], marks[i] = q(c), "?"
	}
	stmt, err := w.tx.PrepareContext(ctx, "INSERT INTO "+q(t.Name)+" ("+strings.Join(cols, ", ")+") VALUES ("+strings.Join(marks, ", ")+")")
	if err != nil {
		return fmt.Errorf("crmstore: import %s: %w", t.Name, err)
	}
	defer stmt.Close()
	for _, r := range rows {
		if _, err := stmt.ExecContext(ctx, r...); err != nil {
			return fmt.Errorf("crmstore: import %s: %w", t.Name, err)
		}
	}
	return nil
}

func containsStr(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (w *dumpWriter) Schema(ctx context.Context) error {
	m, err := buildMetadata(ctx, w.tx)
	if err != nil {
		return err
	}
	for _, e := range m.Entities {
		if err := w.s.ensureTable(ctx, w.tx, e); err != nil {
			return err
		}
	}
	tables, err := dumpTables(ctx, w.tx, w.s.pg)
	if err != nil {
		return err
	}
	for _, t := range tables {
		w.known[t.Name] = t
	}
	return nil
}

func (w *dumpWriter) SetCounters(ctx context.Context, c map[string]int64) error {
	if w.s.pg {
		return pgSetCounters(ctx, w.tx, c)
	}
	for _, name := range sortedKeys(c) {
		res, err := w.tx.ExecContext(ctx, "UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = ?", c[name], name)
		if err != nil {
			return fmt.Errorf("crmstore: import counters: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			if _, err := w.tx.ExecContext(ctx, "INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", name, c[name]); err != nil {
				return fmt.Errorf("crmstore: import counters: %w", err)
			}
		}
	}
	return nil
}
