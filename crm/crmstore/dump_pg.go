package crmstore

import (
	"context"
	"database/sql"
	"fmt"
)

// PostgreSQL side of Export and Import (dump.go): the catalog queries
// differ, the tables and their names do not (migrations/postgres).

// pgDumpTables lists the tables of a PostgreSQL store (schema_version, the
// migration bookkeeping, is not state).
func pgDumpTables(ctx context.Context, q querier) ([]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT table_name FROM information_schema.tables
		WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' AND table_name <> 'schema_version'`)
	if err != nil {
		return nil, fmt.Errorf("crmstore: tables: %w", err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, fmt.Errorf("crmstore: tables: %w", err)
		}
		names = append(names, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("crmstore: tables: %w", err)
	}
	return names, nil
}

// pgColumns returns the columns of a table in order and its primary key.
func pgColumns(ctx context.Context, q querier, name string) (cols, key []string, err error) {
	rows, err := q.QueryContext(ctx, `SELECT column_name FROM information_schema.columns
		WHERE table_schema = current_schema() AND table_name = ? ORDER BY ordinal_position`, name)
	if err != nil {
		return nil, nil, fmt.Errorf("crmstore: table %s: %w", name, err)
	}
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			rows.Close()
			return nil, nil, fmt.Errorf("crmstore: table %s: %w", name, err)
		}
		cols = append(cols, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("crmstore: table %s: %w", name, err)
	}
	rows, err = q.QueryContext(ctx, `SELECT a.attname FROM pg_index i
		JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
		WHERE i.indrelid = CAST(? AS regclass) AND i.indisprimary
		ORDER BY array_position(CAST(i.indkey AS int2[]), a.attnum)`, q2(name))
	if err != nil {
		return nil, nil, fmt.Errorf("crmstore: key of %s: %w", name, err)
	}
	defer rows.Close()
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return nil, nil, fmt.Errorf("crmstore: key of %s: %w", name, err)
		}
		key = append(key, c)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("crmstore: key of %s: %w", name, err)
	}
	return cols, key, nil
}

// q2 quotes a table name for a regclass cast.
func q2(name string) string { return `"` + name + `"` }

// pgSequence returns the sequence behind a table's id column ("" when
// none).
func pgSequence(ctx context.Context, q querier, table string) (string, error) {
	var seq sql.NullString
	if err := q.QueryRowContext(ctx, "SELECT pg_get_serial_sequence(?, 'id')", q2(table)).Scan(&seq); err != nil {
		return "", fmt.Errorf("crmstore: sequence of %s: %w", table, err)
	}
	return seq.String, nil
}

// pgCounters are the id sequences' last values by table name, as SQLite's
// sqlite_sequence has them (0 for an unused sequence).
func pgCounters(ctx context.Context, q querier) (map[string]int64, error) {
	names, err := pgDumpTables(ctx, q)
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for _, n := range names {
		cols, _, err := pgColumns(ctx, q, n)
		if err != nil {
			return nil, err
		}
		if !containsStr(cols, "id") {
			continue
		}
		seq, err := pgSequence(ctx, q, n)
		if err != nil || seq == "" {
			if err != nil {
				return nil, err
			}
			continue
		}
		var v int64
		if err := q.QueryRowContext(ctx, "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM "+seq).Scan(&v); err != nil {
			return nil, fmt.Errorf("crmstore: counter %s: %w", n, err)
		}
		if v > 0 {
			out[n] = v
		}
	}
	return out, nil
}

// pgSetCounters raises every id sequence to the given value and to the
// highest id its table holds (rows were written with their ids).
func pgSetCounters(ctx context.Context, q querier, c map[string]int64) error {
	names, err := pgDumpTables(ctx, q)
	if err != nil {
		return err
	}
	for _, n := range names {
		cols, _, err := pgColumns(ctx, q, n)
		if err != nil {
			return err
		}
		if !containsStr(cols, "id") {
			continue
		}
		seq, err := pgSequence(ctx, q, n)
		if err != nil {
			return err
		}
		if seq == "" {
			continue
		}
		var hi int64
		if err := q.QueryRowContext(ctx, "SELECT coalesce(max(id), 0) FROM "+q2(n)).Scan(&hi); err != nil {
			return fmt.Errorf("crmstore: import counters: %w", err)
		}
		hi = max(hi, c[n])
		if hi == 0 {
			continue
		}
		if _, err := q.ExecContext(ctx, "SELECT setval(CAST(? AS regclass), ?, true)", seq, hi); err != nil {
			return fmt.Errorf("crmstore: import counters %s: %w", n, err)
		}
	}
	return nil
}
