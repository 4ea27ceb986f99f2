// Package crmstore is the SQLite store of the CRM server: it implements
// crmserver.Store over one database file (modernc.org/sqlite, pure Go).
//
// It imports crm and crmserver only; nothing but cmd and tests import it.
//
// On-disk layout (one file plus SQLite's -wal and -shm):
//   - migrations/NNNN_*.sql, embedded and applied in order inside one
//     transaction each; PRAGMA user_version holds the last one applied.
//     Rules: never edit an applied migration, add a new number instead.
//   - e_<entity>: one table per entity, one column per attribute, created
//     and extended (ALTER TABLE ADD COLUMN) from the metadata at Open and
//     when an admin adds a custom attribute. Column "id" is the primary
//     key (WITHOUT ROWID: records are clustered by id, which makes the
//     id-ordered joins of sync batches sequential); lookups use two columns, "<attr>" (id) and "<attr>__type"
//     (target logical name); datetimes are INTEGER Unix seconds (UTC);
//     party lists are JSON text and also indexed in activityparty; binary
//     is a BLOB.
//   - seq: the single global version sequence; every write takes the next
//     value as the record's versionnumber, so versions are strictly
//     increasing in commit order (write transactions are BEGIN IMMEDIATE).
//   - tombstones: (entity, id, version) of deleted records.
//   - users, roles, user_roles, tokens (bcrypt password hashes; only
//     SHA-256 of tokens), subscriptions, syncentry, batches, syncinfo,
//     localfilters, primaries: see migrations/0001_init.sql.
//   - replay_keys: (user, key) of replayed writes with their answer, kept
//     crmserver.ReplayKeyTTL: see migrations/0004_replay_keys.sql.
//
// # Sync
//
// SyncEntry rows are (subscription, entity, object id, state, version,
// gen). Prepare bumps the subscription's generation and marks rows 1 or 2
// with it; incremental prepares read only records above the subscription's
// cursor (the highest version merged) and newer tombstones. A batch is not
// written row by row: it is the range of pending rows up to the max-th in
// (state, object id) order among those marked by a generation <= the one
// current when it was cut. Rows marked again later leave the batch (they
// changed and go out in a later one) and none can join it, so an
// unacknowledged batch can be sent again as it was, and postsync updates
// exactly its rows: 1 -> 0 when the record still has the version sent, 2
// removed. Dense batches read their records with one range scan of the
// entity table merged with the batch's ids; sparse ones with lookups.
package crmstore

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmserver"
	"github.com/pimbridge/pimbridge/internal/fileperm"
	_ "modernc.org/sqlite" // database/sql driver "sqlite"
)

//go:embed migrations/*.sql migrations/postgres/*.sql
var migrations embed.FS

// Options configure Open. The zero value is usable.
type Options struct {
	// Logger receives store events; nil means slog.Default().
	Logger *slog.Logger
	// BcryptCost is the cost of new password hashes; 0 means
	// bcrypt.DefaultCost. Tests use bcrypt.MinCost.
	BcryptCost int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// MaxOpenConns bounds the connection pool; 0 means 4.
	MaxOpenConns int
}

// Store is the SQLite store. It is safe for concurrent use.
type Store struct {
	db  *sql.DB
	x   querier // db, on PostgreSQL through pgQuerier
	pg  bool    // PostgreSQL (see dialect.go, postgres.go)
	dsn string
	// schema is the PostgreSQL schema (current_schema()) that keys the
	// store's locks and channels.
	schema string
	listener
	log  *slog.Logger
	now  func() time.Time
	cost int

	dummyOnce sync.Once
	dummy     []byte // see dummyHash

	mu   sync.RWMutex
	meta *crm.Metadata

	stmts *stmtCache
}

var _ crmserver.Store = (*Store)(nil)

// Open opens (creating if needed) the database at path, applies migrations
// and creates the entity tables. A path that is a postgres:// or
// postgresql:// URL opens a PostgreSQL database instead (see postgres.go);
// anything else is a SQLite file.
func Open(ctx context.Context, path string, opts *Options) (*Store, error) {
	if opts == nil {
		opts = &Options{}
	}
	s := &Store{log: opts.Logger, now: opts.Now, cost: opts.BcryptCost}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	var db *sql.DB
	var err error
	if IsPostgresURL(path) {
		db, err = s.openPostgres(path, opts)
	} else {
		db, err = s.openSQLite(path, opts)
	}
	if err != nil {
		return nil, err
	}
	s.db = db
	s.x = s.on(db)
	s.stmts = newStmtCache(db)
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	if err := s.loadMetadata(ctx); err != nil {
		db.Close()
		return nil, err
	}
	if err := s.ensureRoles(ctx); err != nil {
		db.Close()
		return nil, err
	}
	if s.pg {
		s.startListener()
	}
	return s, nil
}

func (s *Store) openSQLite(path string, opts *Options) (*sql.DB, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("crmstore: open %s: %w", path, err)
	}
	path = abs
	if err := fileperm.Private(path); err != nil {
		return nil, fmt.Errorf("crmstore: %w", err)
	}
	u := url.URL{Scheme: "file", Path: path}
	dsn := u.String() + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_pragma=cache_size(-32768)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("crmstore: open %s: %w", path, err)
	}
	n := opts.MaxOpenConns
	if n <= 0 {
		n = 4
	}
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	return db, nil
}

// Close closes the database.
func (s *Store) Close() error {
	s.stopListener()
	s.stmts.close()
	err := s.db.Close()
	s.stmts.wg.Wait()
	return err
}

// DB returns the underlying database, for benchmarks and tools that compare
// against plain SQL.
func (s *Store) DB() *sql.DB { return s.db }

func (s *Store) migrate(ctx context.Context) error {
	if s.pg {
		return s.migratePostgres(ctx)
	}
	var cur int
	if err := s.x.QueryRowContext(ctx, "PRAGMA user_version").Scan(&cur); err != nil {
		return fmt.Errorf("crmstore: read schema version: %w", err)
	}
	names, err := migrations.ReadDir("migrations")
	if err != nil {
		return fmt.Errorf("crmstore: migrations: %w", err)
	}
	sort.Slice(names, func(i, j int) bool { return names[i].Name() < names[j].Name() })
	for _, f := range names {
		if f.IsDir() {
			continue // postgres/: the PostgreSQL set
		}
		var num int
		if _, err := fmt.Sscanf(f.Name(), "%04d_", &num); err != nil {
			return fmt.Errorf("crmstore: migration name %q: %w", f.Name(), err)
		}
		if num <= cur {
			continue
		}
		body, err := migrations.ReadFile("migrations/" + f.Name())
		if err != nil {
			return fmt.Errorf("crmstore: migration %s: %w", f.Name(), err)
		}
		tx, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("crmstore: migration %s: %w", f.Name(), err)
		}
		if _, err := tx.ExecContext(ctx, string(body)); err != nil {
			tx.Rollback()
			return fmt.Errorf("crmstore: migration %s: %w", f.Name(), err)
		}
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", num)); err != nil {
			tx.Rollback()
			return fmt.Errorf("crmstore: migration %s: %w", f.Name(), err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("crmstore: migration %s: %w", f.Name(), err)
		}
		s.log.Info("crmstore: applied migration", "migration", f.Name())
	}
	return nil
}

// loadMetadata builds the metadata from crm.Builtin() plus the stored custom
// attributes, and makes sure every entity table has every column.
func (s *Store) loadMetadata(ctx context.Context) error {
	m, err := buildMetadata(ctx, s.x)
	if err != nil {
		return err
	}
	tx, err := s.beginWrite(ctx)
	if err != nil {
		return fmt.Errorf("crmstore: schema: %w", err)
	}
	defer tx.Rollback()
	for _, e := range m.Entities {
		if err := s.ensureTable(ctx, tx, e); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("crmstore: schema: %w", err)
	}
	s.mu.Lock()
	s.meta = m
	s.mu.Unlock()
	return nil
}

// buildMetadata reads crm.Builtin() plus the stored custom entities and
// attributes.
func buildMetadata(ctx context.Context, q querier) (*crm.Metadata, error) {
	m := crm.Builtin()
	if err := q.QueryRowContext(ctx, "SELECT version FROM meta WHERE id = 1").Scan(&m.Version); err != nil {
		return nil, fmt.Errorf("crmstore: metadata version: %w", err)
	}
	if err := loadCustomEntities(ctx, q, m); err != nil {
		return nil, err
	}
	rows, err := q.QueryContext(ctx, "SELECT entity, def FROM custom_attributes ORDER BY seq")
	if err != nil {
		return nil, fmt.Errorf("crmstore: custom attributes: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var ent, def string
		if err := rows.Scan(&ent, &def); err != nil {
			return nil, fmt.Errorf("crmstore: custom attributes: %w", err)
		}
		var a crm.Attribute
		if err := json.Unmarshal([]byte(def), &a); err != nil {
			return nil, fmt.Errorf("crmstore: custom attribute %s: %w", ent, err)
		}
		e, err := m.Entity(ent)
		if err != nil {
			return nil, fmt.Errorf("crmstore: custom attribute: %w", err)
		}
		e.Attributes = append(e.Attributes, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("crmstore: custom attributes: %w", err)
	}
	m.RebuildRelationships()
	return m, nil
}

// table returns the quoted table name of an entity. Names come from
// metadata only and match [a-z][a-z0-9_]*.
func table(e *crm.Entity) string { return `"e_` + e.Name + `"` }

func q(name string) string { return `"` + name + `"` }

// columns returns the SQL columns of an attribute.
// checkColumnName refuses a custom attribute name that is, or could become,
// one of the table's internal columns: "id" (the key column), a lookup's
// "<name>__type", or any name with "__", which is kept for such columns.
func checkColumnName(e *crm.Entity, name string) error {
	if strings.Contains(name, "__") {
		return &crm.AttributeError{Entity: e.Name, Attribute: name, Err: fmt.Errorf("%w: names with \"__\" are reserved for internal columns", crm.ErrInvalidArgument)}
	}
	for i := range e.Attributes {
		if slices.Contains(columns(&e.Attributes[i]), name) {
			return &crm.AttributeError{Entity: e.Name, Attribute: name, Err: fmt.Errorf("%w: %q is an internal column of %s", crm.ErrInvalidArgument, name, e.Name)}
		}
	}
	return nil
}

func columns(a *crm.Attribute) []string {
	switch a.Type {
	case crm.TypeUniqueID:
		return []string{"id"}
	case crm.TypeLookup:
		return []string{a.Name, a.Name + "__type"}
	}
	return []string{a.Name}
}

func sqlType(a *crm.Attribute) string {
	switch a.Type {
	case crm.TypeInteger, crm.TypeBigInt, crm.TypePicklist, crm.TypeState, crm.TypeStatus,
		crm.TypeBoolean, crm.TypeDateTime, crm.TypeDateOnly:
		return "INTEGER"
	case crm.TypeDecimal, crm.TypeMoney:
		return "REAL"
	case crm.TypeBinary:
		return "BLOB"
	}
	return "TEXT"
}

func (s *Store) ensureTable(ctx context.Context, tx querier, e *crm.Entity) error {
	create := ` (id TEXT PRIMARY KEY, versionnumber INTEGER NOT NULL) WITHOUT ROWID`
	info := "SELECT name FROM pragma_table_info(?)"
	if s.pg {
		create = ` (id TEXT COLLATE "C" PRIMARY KEY, versionnumber BIGINT NOT NULL)`
		info = "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = ?"
	}
	if _, err := tx.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS "+table(e)+create); err != nil {
		return fmt.Errorf("crmstore: create table %s: %w", e.Name, err)
	}
	have := map[string]bool{}
	rows, err := tx.QueryContext(ctx, info, "e_"+e.Name)
	if err != nil {
		return fmt.Errorf("crmstore: table info %s: %w", e.Name, err)
	}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return fmt.Errorf("crmstore: table info %s: %w", e.Name, err)
		}
		have[n] = true
	}
	rows.Close()
	for i := range e.Attributes {
		a := &e.Attributes[i]
		for j, c := range columns(a) {
			if have[c] {
				continue
			}
			typ := sqlType(a)
			if j == 1 {
				typ = "TEXT"
			}
			if s.pg {
				typ = pgType(typ)
			}
			if _, err := tx.ExecContext(ctx, "ALTER TABLE "+table(e)+" ADD COLUMN "+q(c)+" "+typ); err != nil {
				return fmt.Errorf("crmstore: add column %s.%s: %w", e.Name, c, err)
			}
			have[c] = true
		}
	}
	idx := []string{"versionnumber", "ownerid"}
	switch e.Name {
	case crm.EntityContact:
		idx = append(idx, "emailaddress1 COLLATE NOCASE", "emailaddress2 COLLATE NOCASE", "emailaddress3 COLLATE NOCASE")
	case crm.EntityAccount:
		idx = append(idx, "name COLLATE NOCASE")
	}
	for _, c := range idx {
		name := "e_" + e.Name + "_" + strings.Fields(c)[0]
		if _, err := tx.ExecContext(ctx, "CREATE INDEX IF NOT EXISTS "+q(name)+" ON "+table(e)+" ("+c+")"); err != nil {
			return fmt.Errorf("crmstore: index %s: %w", name, err)
		}
	}
	return nil
}

// Metadata returns the current metadata; callers must not modify it.
func (s *Store) Metadata(ctx context.Context) (*crm.Metadata, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.meta, nil
}

// AddAttribute adds a custom attribute (column) to an entity and bumps the
// metadata version.
func (s *Store) AddAttribute(ctx context.Context, entity string, a crm.Attribute) (*crm.Metadata, error) {
	// The write lock before the metadata lock: a write transaction holding
	// the former reads the metadata.
	tx, err := s.beginWrite(ctx)
	if err != nil {
		return nil, fmt.Errorf("crmstore: add attribute: %w", err)
	}
	defer tx.Rollback()
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.meta.Clone()
	e, err := m.Entity(entity)
	if err != nil {
		return nil, err
	}
	a.Custom, a.System, a.Targets = true, false, nil
	if a.Type != crm.TypePicklist {
		a.Options = nil
	}
	if err := crm.ValidateCustomAttribute(e, a); err != nil {
		return nil, err
	}
	if err := checkColumnName(e, a.Name); err != nil {
		return nil, err
	}
	def, err := json.Marshal(a)
	if err != nil {
		return nil, fmt.Errorf("crmstore: add attribute: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO custom_attributes (entity, name, def, seq)
		VALUES (?, ?, ?, (SELECT coalesce(max(seq), 0) + 1 FROM custom_attributes))`, e.Name, a.Name, string(def)); err != nil {
		return nil, fmt.Errorf("crmstore: add attribute: %w", err)
	}
	e.Attributes = append(e.Attributes, a)
	if err := s.ensureTable(ctx, tx, e); err != nil {
		return nil, err
	}
	if err := tx.QueryRowContext(ctx, "UPDATE meta SET version = version + 1 WHERE id = 1 RETURNING version").Scan(&m.Version); err != nil {
		return nil, fmt.Errorf("crmstore: add attribute: %w", err)
	}
	if err := s.metaChanged(ctx, tx); err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("crmstore: add attribute: %w", err)
	}
	s.meta = m
	s.log.Info("crmstore: custom attribute added", "entity", e.Name, "attribute", a.Name, "metadata_version", m.Version)
	return m, nil
}

// View runs fn in a read transaction.
func (s *Store) View(ctx context.Context, fn func(crmserver.Tx) error) error {
	if s.pg {
		tx, err := s.db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
		if err != nil {
			return fmt.Errorf("crmstore: view: %w", err)
		}
		defer tx.Rollback()
		return fn(&txn{s: s, q: pgQuerier{tx}})
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("crmstore: view: %w", err)
	}
	defer conn.Close()
	// A deferred read transaction gives a consistent snapshot without
	// taking the write lock (the DSN's _txlock applies to BeginTx only).
	if _, err := conn.ExecContext(ctx, "BEGIN DEFERRED"); err != nil {
		return fmt.Errorf("crmstore: view: %w", err)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
	return fn(&txn{s: s, q: conn})
}

// Update runs fn in one write transaction. Write transactions are
// serialized: SQLite's BEGIN IMMEDIATE, PostgreSQL's write lock (see
// beginWrite), so that fn sees every earlier commit and version numbers
// commit in order on every node.
func (s *Store) Update(ctx context.Context, fn func(crmserver.Tx) error) error {
	if s.pg {
		return s.updatePostgres(ctx, fn)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("crmstore: begin: %w", err)
	}
	defer tx.Rollback()
	if err := fn(&txn{s: s, q: stmtTx{Tx: tx, c: s.stmts}}); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("crmstore: commit: %w", err)
	}
	return nil
}

// querier is what *sql.Tx and *sql.Conn share.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func nextVersion(ctx context.Context, q querier) (int64, error) {
	var v int64
	if err := q.QueryRowContext(ctx, "UPDATE seq SET v = v + 1 WHERE id = 1 RETURNING v").Scan(&v); err != nil {
		return 0, fmt.Errorf("crmstore: next version: %w", err)
	}
	return v, nil
}

// CurrentVersion returns the highest version number handed out so far.
func (s *Store) CurrentVersion(ctx context.Context) (int64, error) {
	var v int64
	if err := s.x.QueryRowContext(ctx, "SELECT v FROM seq WHERE id = 1").Scan(&v); err != nil {
		return 0, fmt.Errorf("crmstore: version: %w", err)
	}
	return v, nil
}

var errNoRows = sql.ErrNoRows

func notFound(err error, what string) error {
	if errors.Is(err, errNoRows) {
		return fmt.Errorf("%w: %s", crm.ErrNotFound, what)
	}
	return fmt.Errorf("crmstore: %s: %w", what, err)
}

func unix(t time.Time) int64 { return t.UTC().Unix() }

func fromUnix(n int64) time.Time { return time.Unix(n, 0).UTC() }

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
