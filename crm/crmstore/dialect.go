package crmstore

import (
	"context"
	"database/sql"
	"errors"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// The store's SQL is written once, in SQLite's dialect, and run on
// PostgreSQL through pgQuerier, which rewrites each statement text once
// (cached) into PostgreSQL's:
//
//   - ? placeholders become $1, $2, ...;
//   - INDEXED BY hints are dropped (PostgreSQL plans by itself);
//   - INSERT OR IGNORE becomes INSERT ... ON CONFLICT DO NOTHING, and
//     INSERT OR REPLACE an upsert on the table's key (pgKeys);
//   - the column "user" (a reserved word there) is quoted;
//   - group_concat(x) is string_agg(x, ','), two-argument max() greatest(),
//     LIMIT -1 LIMIT ALL, and LIKE ILIKE (SQLite's LIKE ignores ASCII case);
//   - bool arguments are bound as 0/1: every flag column is an integer on
//     both backends, so that the scanning code is shared.
//
// COLLATE NOCASE is the same text on both: the PostgreSQL migrations create
// a nondeterministic ICU collation named nocase. Text columns are COLLATE
// "C" there, so that ORDER BY and comparisons of ids and strings are
// bytewise as in SQLite (batches merge ids in Go string order).
// Statements whose text cannot be shared (schema, migrations, the version
// head) branch on Store.pg.

// pgKeys are the conflict targets of the tables written with INSERT OR
// REPLACE; entity tables (e_*) are keyed by id.
var pgKeys = map[string][]string{
	"tombstones":  {"entity", "id"},
	"create_hash": {"entity", "id"},
	"replay_keys": {"userid", "key"},
}

var (
	reIndexedBy   = regexp.MustCompile(`\s+INDEXED BY \w+`)
	reUser        = regexp.MustCompile(`\buser\b`)
	reGroupConcat = regexp.MustCompile(`group_concat\(([^)]*)\)`)
	reMax2        = regexp.MustCompile(`\bmax\((\w+), \?\)`)
	reOrReplace   = regexp.MustCompile(`^\s*INSERT OR REPLACE INTO ("?[\w]+"?) \(([^)]*)\)`)
	reLike        = regexp.MustCompile(`\bLIKE \?`)
)

var pgTexts sync.Map // SQLite text -> PostgreSQL text

// pgText returns the PostgreSQL form of a SQLite statement text.
func pgText(query string) string {
	if v, ok := pgTexts.Load(query); ok {
		return v.(string)
	}
	s := reIndexedBy.ReplaceAllString(query, "")
	s = reGroupConcat.ReplaceAllString(s, "string_agg($1, ',')")
	s = reMax2.ReplaceAllString(s, "greatest($1, ?)")
	s = strings.ReplaceAll(s, "LIMIT -1", "LIMIT ALL")
	s = reLike.ReplaceAllString(s, "ILIKE ?")
	if strings.Contains(s, "INSERT OR IGNORE INTO") {
		s = strings.Replace(s, "INSERT OR IGNORE INTO", "INSERT INTO", 1) + " ON CONFLICT DO NOTHING"
	}
	if m := reOrReplace.FindStringSubmatch(s); m != nil {
		tbl := strings.Trim(m[1], `"`)
		keys := pgKeys[tbl]
		if strings.HasPrefix(tbl, "e_") {
			keys = []string{"id"}
		}
		var sets []string
		for _, c := range strings.Split(m[2], ",") {
			c = strings.TrimSpace(c)
			if !slicesContains(keys, strings.Trim(c, `"`)) {
				sets = append(sets, c+" = EXCLUDED."+c)
			}
		}
		s = strings.Replace(s, "INSERT OR REPLACE INTO", "INSERT INTO", 1) +
			" ON CONFLICT (" + strings.Join(keys, ", ") + ") DO UPDATE SET " + strings.Join(sets, ", ")
	}
	s = reUser.ReplaceAllString(s, `"user"`)
	s = strings.ReplaceAll(s, `""user""`, `"user"`)
	s = rebind(s)
	pgTexts.Store(query, s)
	return s
}

func slicesContains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// rebind numbers the ? placeholders outside quoted text.
func rebind(s string) string {
	var b strings.Builder
	n := 0
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '?':
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// pgArgs binds bools as integers.
func pgArgs(args []any) []any {
	for i, a := range args {
		if b, ok := a.(bool); ok {
			out := append([]any(nil), args...)
			out[i] = int64(0)
			if b {
				out[i] = int64(1)
			}
			return pgArgs(out)
		}
	}
	return args
}

// pgQuerier runs SQLite-dialect statements on PostgreSQL.
type pgQuerier struct{ q querier }

func (p pgQuerier) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return p.q.ExecContext(ctx, pgText(query), pgArgs(args)...)
}

func (p pgQuerier) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return p.q.QueryContext(ctx, pgText(query), pgArgs(args)...)
}

func (p pgQuerier) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return p.q.QueryRowContext(ctx, pgText(query), pgArgs(args)...)
}

// pgTx is the querier of a PostgreSQL write transaction.
type pgTx struct {
	pgQuerier
	tx *sql.Tx
}

// on returns the querier for q on the store's backend.
func (s *Store) on(q querier) querier {
	if s.pg {
		return pgQuerier{q}
	}
	return q
}

// isUniqueErr reports a unique-key violation on either backend, by its
// error code (never by message text).
func isUniqueErr(err error) bool {
	if err == nil {
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "23505" // unique_violation
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		c := se.Code()
		return c == sqlite3.SQLITE_CONSTRAINT_UNIQUE || c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

// isRetryable reports a PostgreSQL serialization failure or deadlock: the
// transaction may be run again.
func isRetryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}
