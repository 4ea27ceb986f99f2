package davserver

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
	_ "modernc.org/sqlite" // the "sqlite" database/sql driver
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Collection kinds as stored in the collections table.
const (
	kindAddressBook = "addressbook"
	kindCalendar    = "calendar"
)

// store is the SQLite persistence of the server. Every write runs in one
// immediate transaction that also bumps the collection's change counter.
type store struct {
	db  *sql.DB
	now func() time.Time

	mu       sync.Mutex
	verified map[string][32]byte // user -> sha256 of the last password that passed bcrypt
}

type collection struct {
	ID          int64
	Owner       string
	Kind        string
	Name        string
	DisplayName string
	Description string
	Components  []string
	Counter     int64
	Purged      int64
}

type object struct {
	Name    string
	UID     string
	ETag    string
	Data    []byte // nil for a tombstone
	ModSeq  int64
	ModTime time.Time
}

func dsn(path string) string {
	u := url.URL{Scheme: "file", OmitHost: true, Path: path}
	q := "_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_txlock=immediate"
	return u.String() + "?" + q
}

func openStore(ctx context.Context, path string) (*store, error) {
	var db *sql.DB
	var err error
	if path == "" {
		// A private in-memory database lives in one connection.
		db, err = sql.Open("sqlite", "file::memory:?_pragma=foreign_keys(1)&_txlock=immediate")
		if err == nil {
			db.SetMaxOpenConns(1)
		}
	} else {
		db, err = sql.Open("sqlite", dsn(path))
		if err == nil {
			db.SetMaxOpenConns(4)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("davserver: open %s: %w", path, err)
	}
	s := &store{db: db, now: time.Now, verified: map[string][32]byte{}}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

func (s *store) close() error { return s.db.Close() }

func (s *store) migrate(ctx context.Context) error {
	names, err := fs.Glob(migrationFS, "migrations/*.sql")
	if err != nil {
		return fmt.Errorf("davserver: migrate: %w", err)
	}
	sort.Strings(names)
	var version int
	if err := s.db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return fmt.Errorf("davserver: migrate: %w", err)
	}
	if version > len(names) {
		return fmt.Errorf("davserver: migrate: database schema %d is newer than this program (%d): %w", version, len(names), ErrSchemaTooNew)
	}
	for i := version; i < len(names); i++ {
		body, err := migrationFS.ReadFile(names[i])
		if err != nil {
			return fmt.Errorf("davserver: migrate: %w", err)
		}
		tx, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("davserver: migrate: %w", err)
		}
		if _, err := tx.ExecContext(ctx, string(body)); err != nil {
			tx.Rollback()
			return fmt.Errorf("davserver: migrate %s: %w", names[i], err)
		}
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", i+1)); err != nil {
			tx.Rollback()
			return fmt.Errorf("davserver: migrate %s: %w", names[i], err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("davserver: migrate %s: %w", names[i], err)
		}
	}
	return nil
}

// --- users ---

func (s *store) addUser(ctx context.Context, name, password string, cost int) error {
	if !validName(name) {
		return fmt.Errorf("davserver: add user %q: %w", name, ErrInvalidName)
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), cost)
	if err != nil {
		return fmt.Errorf("davserver: add user %q: %w", name, err)
	}
	_, err = s.db.ExecContext(ctx,
		`INSERT INTO users (name, pwhash) VALUES (?, ?)
		 ON CONFLICT (name) DO UPDATE SET pwhash = excluded.pwhash`, name, hash)
	if err != nil {
		return fmt.Errorf("davserver: add user %q: %w", name, err)
	}
	s.mu.Lock()
	delete(s.verified, name)
	s.mu.Unlock()
	return nil
}

// checkUser reports whether password is the user's. A password that passed
// bcrypt once is remembered as a SHA-256 digest (compared in constant time)
// so that a sync burst does not pay bcrypt on every request.
func (s *store) checkUser(ctx context.Context, name, password string) (bool, error) {
	sum := sha256.Sum256([]byte(password))
	s.mu.Lock()
	cached, ok := s.verified[name]
	s.mu.Unlock()
	if ok && subtle.ConstantTimeCompare(cached[:], sum[:]) == 1 {
		return true, nil
	}
	var hash []byte
	err := s.db.QueryRowContext(ctx, `SELECT pwhash FROM users WHERE name = ?`, name).Scan(&hash)
	if errors.Is(err, sql.ErrNoRows) {
		// Spend comparable time so that unknown users are not distinguishable.
		_ = bcrypt.CompareHashAndPassword(dummyHash, []byte(password))
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("davserver: check user: %w", err)
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(password)) != nil {
		return false, nil
	}
	s.mu.Lock()
	s.verified[name] = sum
	s.mu.Unlock()
	return true, nil
}

var dummyHash, _ = bcrypt.GenerateFromPassword([]byte("pimbridge-dummy"), bcrypt.MinCost)

// --- collections ---

func (s *store) createCollection(ctx context.Context, c collection) error {
	if !validName(c.Name) {
		return fmt.Errorf("davserver: create collection %q: %w", c.Name, ErrInvalidName)
	}
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM users WHERE name = ?`, c.Owner).Scan(&n); err != nil {
		return fmt.Errorf("davserver: create collection: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("davserver: create collection: user %q: %w", c.Owner, ErrNotFound)
	}
	// A new collection's counter starts above every deleted collection's, so
	// tokens of a previous collection at the same path are refused.
	_, err := s.db.ExecContext(ctx,
		`INSERT INTO collections (owner, kind, name, displayname, description, components, counter, purged)
		 SELECT ?, ?, ?, ?, ?, ?, f, f FROM (SELECT coalesce((SELECT value + 1 FROM meta WHERE key = 'counter_floor'), 0) AS f)
		 WHERE true ON CONFLICT DO NOTHING`,
		c.Owner, c.Kind, c.Name, c.DisplayName, c.Description, strings.Join(c.Components, ","))
	if err != nil {
		return fmt.Errorf("davserver: create collection %q: %w", c.Name, err)
	}
	return nil
}

const collectionCols = `id, owner, kind, name, displayname, description, components, counter, purged`

func scanCollection(sc interface{ Scan(...any) error }) (collection, error) {
	var c collection
	var comps string
	err := sc.Scan(&c.ID, &c.Owner, &c.Kind, &c.Name, &c.DisplayName, &c.Description, &comps, &c.Counter, &c.Purged)
	if comps != "" {
		c.Components = strings.Split(comps, ",")
	}
	return c, err
}

func (s *store) getCollection(ctx context.Context, owner, kind, name string) (collection, error) {
	row := s.db.QueryRowContext(ctx, `SELECT `+collectionCols+` FROM collections WHERE owner = ? AND kind = ? AND name = ?`, owner, kind, name)
	c, err := scanCollection(row)
	if errors.Is(err, sql.ErrNoRows) {
		return c, fmt.Errorf("davserver: collection %s/%s/%s: %w", owner, kind, name, ErrNotFound)
	}
	if err != nil {
		return c, fmt.Errorf("davserver: get collection: %w", err)
	}
	return c, nil
}

func (s *store) listCollections(ctx context.Context, owner, kind string) ([]collection, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+collectionCols+` FROM collections WHERE owner = ? AND kind = ? ORDER BY name`, owner, kind)
	if err != nil {
		return nil, fmt.Errorf("davserver: list collections: %w", err)
	}
	defer rows.Close()
	var out []collection
	for rows.Next() {
		c, err := scanCollection(rows)
		if err != nil {
			return nil, fmt.Errorf("davserver: list collections: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

func (s *store) deleteCollection(ctx context.Context, id int64) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("davserver: delete collection: %w", err)
	}
	defer tx.Rollback()
	var counter int64
	err = tx.QueryRowContext(ctx, `DELETE FROM collections WHERE id = ? RETURNING counter`, id).Scan(&counter)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("davserver: delete collection: %w", ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("davserver: delete collection: %w", err)
	}
	_, err = tx.ExecContext(ctx,
		`INSERT INTO meta (key, value) VALUES ('counter_floor', ?)
		 ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)`, counter)
	if err != nil {
		return fmt.Errorf("davserver: delete collection: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("davserver: delete collection: %w", err)
	}
	return nil
}

// --- objects ---

func contentETag(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:16])
}

func (s *store) getObject(ctx context.Context, collID int64, name string) (object, error) {
	var o object
	var ms int64
	err := s.db.QueryRowContext(ctx,
		`SELECT name, uid, etag, data, modseq, modtime FROM objects
		 WHERE collection_id = ? AND name = ? AND data IS NOT NULL`, collID, name).
		Scan(&o.Name, &o.UID, &o.ETag, &o.Data, &o.ModSeq, &ms)
	if errors.Is(err, sql.ErrNoRows) {
		return o, fmt.Errorf("davserver: object %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return o, fmt.Errorf("davserver: get object: %w", err)
	}
	o.ModTime = time.UnixMilli(ms)
	return o, nil
}

// listObjects returns the live objects of a collection, by name.
func (s *store) listObjects(ctx context.Context, collID int64) ([]object, error) {
	return s.queryObjects(ctx,
		`SELECT name, uid, etag, data, modseq, modtime FROM objects
		 WHERE collection_id = ? AND data IS NOT NULL ORDER BY name`, collID)
}

func (s *store) queryObjects(ctx context.Context, q string, args ...any) ([]object, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("davserver: list objects: %w", err)
	}
	defer rows.Close()
	var out []object
	for rows.Next() {
		var o object
		var ms int64
		if err := rows.Scan(&o.Name, &o.UID, &o.ETag, &o.Data, &o.ModSeq, &ms); err != nil {
			return nil, fmt.Errorf("davserver: list objects: %w", err)
		}
		o.ModTime = time.UnixMilli(ms)
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("davserver: list objects: %w", err)
	}
	return out, nil
}

// conditions are the HTTP preconditions of a write: If-Match and
// If-None-Match, each "" (absent), "*" or a list of entity tags.
type conditions struct {
	IfMatch     string
	IfNoneMatch string
}

// check applies RFC 9110 §13.1.1-2 to the current entity tag ("" when the
// resource does not exist).
func (c conditions) check(current string) error {
	if c.IfMatch != "" && !etagListMatches(c.IfMatch, current) {
		return ErrPreconditionFailed
	}
	if c.IfNoneMatch != "" && etagListMatches(c.IfNoneMatch, current) {
		return ErrPreconditionFailed
	}
	return nil
}

func etagListMatches(list, current string) bool {
	if current == "" {
		return false
	}
	if strings.TrimSpace(list) == "*" {
		return true
	}
	for _, t := range strings.Split(list, ",") {
		t = strings.TrimSpace(t)
		t = strings.TrimPrefix(t, "W/")
		if uq, err := strconv.Unquote(t); err == nil {
			t = uq
		}
		if t == current {
			return true
		}
	}
	return false
}

// putObject stores data verbatim under name. It reports whether the object
// was created. An identical re-PUT changes nothing (no counter bump).
func (s *store) putObject(ctx context.Context, collID int64, name, uid string, data []byte, cond conditions) (object, bool, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return object{}, false, fmt.Errorf("davserver: put object: %w", err)
	}
	defer tx.Rollback()

	var cur object
	var ms int64
	err = tx.QueryRowContext(ctx,
		`SELECT name, uid, etag, data, modseq, modtime FROM objects WHERE collection_id = ? AND name = ? AND data IS NOT NULL`,
		collID, name).Scan(&cur.Name, &cur.UID, &cur.ETag, &cur.Data, &cur.ModSeq, &ms)
	exists := err == nil
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return object{}, false, fmt.Errorf("davserver: put object: %w", err)
	}
	if err := cond.check(cur.ETag); err != nil {
		return object{}, false, fmt.Errorf("davserver: put object %q: %w", name, err)
	}
	if uid != "" {
		var other string
		err := tx.QueryRowContext(ctx,
			`SELECT name FROM objects WHERE collection_id = ? AND uid = ? AND name <> ? AND data IS NOT NULL LIMIT 1`,
			collID, uid, name).Scan(&other)
		if err == nil {
			return object{}, false, &UIDConflictError{UID: uid, Name: other}
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return object{}, false, fmt.Errorf("davserver: put object: %w", err)
		}
	}
	if exists && bytes.Equal(cur.Data, data) {
		cur.ModTime = time.UnixMilli(ms)
		return cur, false, nil
	}
	seq, err := bumpCounter(ctx, tx, collID)
	if err != nil {
		return object{}, false, err
	}
	o := object{Name: name, UID: uid, ETag: contentETag(data), Data: data, ModSeq: seq, ModTime: s.now().Truncate(time.Millisecond)}
	_, err = tx.ExecContext(ctx,
		`INSERT INTO objects (collection_id, name, uid, etag, data, modseq, modtime) VALUES (?, ?, ?, ?, ?, ?, ?)
		 ON CONFLICT (collection_id, name) DO UPDATE SET uid = excluded.uid, etag = excluded.etag,
		   data = excluded.data, modseq = excluded.modseq, modtime = excluded.modtime`,
		collID, name, uid, o.ETag, data, seq, o.ModTime.UnixMilli())
	if err != nil {
		return object{}, false, fmt.Errorf("davserver: put object: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return object{}, false, fmt.Errorf("davserver: put object: %w", err)
	}
	return o, !exists, nil
}

// deleteObject turns the object into a tombstone.
func (s *store) deleteObject(ctx context.Context, collID int64, name string, cond conditions) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("davserver: delete object: %w", err)
	}
	defer tx.Rollback()
	var etag string
	err = tx.QueryRowContext(ctx,
		`SELECT etag FROM objects WHERE collection_id = ? AND name = ? AND data IS NOT NULL`, collID, name).Scan(&etag)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("davserver: delete object %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("davserver: delete object: %w", err)
	}
	if err := cond.check(etag); err != nil {
		return fmt.Errorf("davserver: delete object %q: %w", name, err)
	}
	seq, err := bumpCounter(ctx, tx, collID)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx,
		`UPDATE objects SET data = NULL, etag = '', uid = '', modseq = ?, modtime = ? WHERE collection_id = ? AND name = ?`,
		seq, s.now().UnixMilli(), collID, name)
	if err != nil {
		return fmt.Errorf("davserver: delete object: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("davserver: delete object: %w", err)
	}
	return nil
}

func bumpCounter(ctx context.Context, tx *sql.Tx, collID int64) (int64, error) {
	var seq int64
	err := tx.QueryRowContext(ctx, `UPDATE collections SET counter = counter + 1 WHERE id = ? RETURNING counter`, collID).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("davserver: collection %d: %w", collID, ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("davserver: bump counter: %w", err)
	}
	return seq, nil
}

// changes returns the objects changed after token (live ones with data,
// deleted ones as tombstones), oldest change first, at most limit of them
// (limit <= 0: all), and the token that covers what was returned. A token of
// initialSync means an initial sync: live objects only. ErrInvalidSyncToken is returned
// for a token newer than the counter or older than the purge mark.
func (s *store) changes(ctx context.Context, collID, token int64, limit int) ([]object, int64, bool, error) {
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, 0, false, fmt.Errorf("davserver: changes: %w", err)
	}
	defer tx.Rollback()
	var counter, purged int64
	if err := tx.QueryRowContext(ctx, `SELECT counter, purged FROM collections WHERE id = ?`, collID).Scan(&counter, &purged); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, 0, false, fmt.Errorf("davserver: changes: %w", ErrNotFound)
		}
		return nil, 0, false, fmt.Errorf("davserver: changes: %w", err)
	}
	if token > counter || (token >= 0 && token < purged) {
		return nil, 0, false, fmt.Errorf("davserver: changes since %d (have %d..%d): %w", token, purged, counter, ErrInvalidSyncToken)
	}
	q := `SELECT name, uid, etag, data, modseq, modtime FROM objects WHERE collection_id = ? AND modseq > ?`
	if token == initialSync {
		q += ` AND data IS NOT NULL`
	}
	q += ` ORDER BY modseq`
	args := []any{collID, token}
	if limit > 0 {
		q += ` LIMIT ?`
		args = append(args, limit+1)
	}
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, 0, false, fmt.Errorf("davserver: changes: %w", err)
	}
	defer rows.Close()
	var out []object
	for rows.Next() {
		var o object
		var ms int64
		if err := rows.Scan(&o.Name, &o.UID, &o.ETag, &o.Data, &o.ModSeq, &ms); err != nil {
			return nil, 0, false, fmt.Errorf("davserver: changes: %w", err)
		}
		o.ModTime = time.UnixMilli(ms)
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, false, fmt.Errorf("davserver: changes: %w", err)
	}
	if limit > 0 && len(out) > limit {
		out = out[:limit]
		return out, out[len(out)-1].ModSeq, true, nil
	}
	return out, counter, false, nil
}

// purgeTombstones forgets every tombstone of the collection; sync tokens
// older than the newest purged one become invalid.
func (s *store) purgeTombstones(ctx context.Context, collID int64) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("davserver: purge: %w", err)
	}
	defer tx.Rollback()
	var maxSeq sql.NullInt64
	if err := tx.QueryRowContext(ctx, `SELECT max(modseq) FROM objects WHERE collection_id = ? AND data IS NULL`, collID).Scan(&maxSeq); err != nil {
		return fmt.Errorf("davserver: purge: %w", err)
	}
	if !maxSeq.Valid {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM objects WHERE collection_id = ? AND data IS NULL`, collID); err != nil {
		return fmt.Errorf("davserver: purge: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE collections SET purged = max(purged, ?) WHERE id = ?`, maxSeq.Int64, collID); err != nil {
		return fmt.Errorf("davserver: purge: %w", err)
	}
	return tx.Commit()
}

// validObjectName accepts any single path segment without control
// characters.
func validObjectName(s string) bool {
	if s == "" || s == "." || s == ".." || len(s) > 255 || strings.Contains(s, "/") {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// validName accepts user, collection and object names that are one safe
// path segment.
func validName(s string) bool {
	if s == "" || s == "." || s == ".." || len(s) > 255 {
		return false
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case strings.ContainsRune("-_.@+=~", r):
		default:
			return false
		}
	}
	return true
}
