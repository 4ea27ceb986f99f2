package idmap

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/pimbridge/pimbridge/internal/fileperm"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Sentinel errors. Compare with errors.Is.
var (
	// ErrUnmapped: no mapping matches the CRM or PIM key asked for.
	ErrUnmapped = errors.New("idmap: unmapped")
	// ErrDuplicate: the CRM key or the PIM key is already mapped.
	ErrDuplicate = errors.New("idmap: already mapped")
	// ErrNoSnapshot: the mapping has no snapshot yet.
	ErrNoSnapshot = errors.New("idmap: no snapshot")
	// ErrNoCursor: no cursor was stored for the (account, collection).
	ErrNoCursor = errors.New("idmap: no cursor")
	// ErrNoSetting: the key has no value.
	ErrNoSetting = errors.New("idmap: no setting")
	// ErrNoPending: the mapping has no pending change.
	ErrNoPending = errors.New("idmap: no pending change")
	// ErrStale: a newer change was recorded after the one being completed;
	// the pending row stays for the next pass.
	ErrStale = errors.New("idmap: pending change superseded")
	// ErrNoSyncError: no sync error has that id.
	ErrNoSyncError = errors.New("idmap: no such sync error")
	// ErrSchemaTooNew: the file was written by a newer pimbridge.
	ErrSchemaTooNew = errors.New("idmap: schema newer than this binary")
	// ErrInvalid: an argument cannot be stored (empty key, bad entry id).
	ErrInvalid = errors.New("idmap: invalid argument")
)

// Options tunes a Store. The zero value is ready to use.
type Options struct {
	// Logger receives migration messages. If nil, slog.Default is used.
	Logger *slog.Logger
	// Now is the clock used for stored times. If nil, time.Now is used.
	Now func() time.Time
	// MaxOpenConns bounds the connection pool. If 0, 4 is used.
	MaxOpenConns int
}

// Store is an open client cache. It is safe for concurrent use; writers
// serialize on SQLite's write lock (BEGIN IMMEDIATE with a busy timeout).
type Store struct {
	db  *sql.DB
	now func() time.Time
	log *slog.Logger
	ops
}

// DSN returns the modernc.org/sqlite data source name for a cache file at
// path: WAL, foreign keys, busy timeout, synchronous=NORMAL and immediate
// write transactions: one writer at a time, no SQLITE_BUSY on upgrade.
func DSN(path string) string {
	esc := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
	return "file:" + esc +
		"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)" +
		"&_pragma=synchronous(NORMAL)&_txlock=immediate"
}

// Open opens (creating if needed) the cache at path with default options
// and brings its schema up to date.
func Open(ctx context.Context, path string) (*Store, error) {
	return OpenOptions(ctx, path, nil)
}

// OpenOptions is Open with options; opts may be nil.
func OpenOptions(ctx context.Context, path string, opts *Options) (*Store, error) {
	if path == "" {
		return nil, fmt.Errorf("idmap: open: empty path: %w", ErrInvalid)
	}
	if opts == nil {
		opts = &Options{}
	}
	if err := fileperm.Private(path); err != nil {
		return nil, fmt.Errorf("idmap: open: %w", err)
	}
	db, err := sql.Open("sqlite", DSN(path))
	if err != nil {
		return nil, fmt.Errorf("idmap: open: %w", err)
	}
	n := opts.MaxOpenConns
	if n <= 0 {
		n = 4
	}
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	s := &Store{db: db, now: opts.Now, log: opts.Logger}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.ops = ops{q: db, now: s.now}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// Close closes the database.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("idmap: close: %w", err)
	}
	return nil
}

// Tx runs fn in one write transaction. If fn returns an error or panics,
// nothing it wrote is kept; otherwise everything commits at once. fn must
// not keep the *Tx after it returns, and must not call Store.Tx itself
// (the inner call would wait for the outer one's write lock until the
// busy timeout).
func (s *Store) Tx(ctx context.Context, fn func(*Tx) error) (err error) {
	stx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("idmap: begin: %w", err)
	}
	done := false
	defer func() {
		if !done {
			_ = stx.Rollback()
		}
	}()
	tx := &Tx{ops: ops{q: stx, now: s.now}}
	if err := fn(tx); err != nil {
		_ = stx.Rollback()
		done = true
		return err
	}
	if err := stx.Commit(); err != nil {
		done = true
		return fmt.Errorf("idmap: commit: %w", err)
	}
	done = true
	return nil
}

// Tx is one write transaction; see Store.Tx. Its read methods see its own
// uncommitted writes.
type Tx struct {
	ops
}

// querier is what *sql.DB and *sql.Tx share.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// ops holds the statements shared by Store (autocommit reads) and Tx.
type ops struct {
	q   querier
	now func() time.Time
}

type migration struct {
	version int
	name    string
	sql     string
}

func migrations() ([]migration, error) {
	ents, err := fs.ReadDir(migrationFS, "migrations")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, e := range ents {
		name := e.Name()
		if !strings.HasSuffix(name, ".sql") {
			continue
		}
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("bad migration name %q", name)
		}
		b, err := migrationFS.ReadFile("migrations/" + name)
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: name, sql: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i, m := range ms {
		if m.version != i+1 {
			return nil, fmt.Errorf("migration %q: want number %d", m.name, i+1)
		}
	}
	return ms, nil
}

// migrate applies every migration newer than the file's user_version, each
// in its own immediate transaction that re-reads the version first, so two
// processes opening the same new file do not both apply it.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := migrations()
	if err != nil {
		return fmt.Errorf("idmap: migrate: %w", err)
	}
	for _, m := range ms {
		err := s.Tx(ctx, func(tx *Tx) error {
			var v int
			if err := tx.q.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
				return err
			}
			if v > len(ms) {
				return fmt.Errorf("file has version %d, binary knows %d: %w", v, len(ms), ErrSchemaTooNew)
			}
			if v >= m.version {
				return nil
			}
			if _, err := tx.q.ExecContext(ctx, m.sql); err != nil {
				return fmt.Errorf("%s: %w", m.name, err)
			}
			if _, err := tx.q.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", m.version)); err != nil {
				return err
			}
			s.log.Debug("idmap: applied migration", "name", m.name)
			return nil
		})
		if err != nil {
			return fmt.Errorf("idmap: migrate: %w", err)
		}
	}
	return nil
}

// SchemaVersion reports the file's schema version (PRAGMA user_version).
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	if err := s.db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return 0, fmt.Errorf("idmap: schema version: %w", err)
	}
	return v, nil
}

func isUnique(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		c := se.Code()
		return c == sqlite3.SQLITE_CONSTRAINT_UNIQUE || c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

// encTime stores t as unix nanoseconds; the zero time is NULL.
func encTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().UnixNano()
}

func decTime(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return time.Unix(0, v.Int64).UTC()
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
