package crmstore

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmserver"
)

// PostgreSQL backend: the same tables and the same SQL (dialect.go) on a
// PostgreSQL database that several server processes ("nodes") share.
//
// What SQLite got from its single writer, PostgreSQL gets from one write
// lock: every write transaction (Update, schema changes, BulkInsert) first
// takes a transaction-level advisory lock (lockWrite), held to commit.
// So write transactions run one at a time across all nodes, each sees
// every earlier commit (READ COMMITTED), and version numbers, taken from
// the seq row inside them, commit in version order: a prepare that reads
// the version head under the same lock has every lower version committed
// and visible, and a sync client never skips a change that commits late
// with a lower version. The same serialization keeps duplicate detection,
// idempotent creates (create hashes, replay keys), batch cutting and
// acknowledgement, and token revocation as they are on SQLite. Reads
// (View, logins) do not take the lock and run in parallel on every node.
//
// Migrations are migrations/postgres/NNNN_*.sql, numbered like the SQLite
// ones (a test keeps the two sets in step), applied under another advisory
// lock so that nodes starting together apply each once; schema_version
// holds the last number applied.
//
// Each node LISTENs on two channels: pimbridge_feed carries the writes a
// commit made (for crmserver's change feed, crmserver.SharedFeed), and
// pimbridge_meta tells the other nodes to reload the metadata after a
// customization.

// Advisory lock kinds and notification channels. Locks and channels are
// per database in PostgreSQL; the store keys them by its schema
// (current_schema(), e.g. set with options=-csearch_path=NAME in the URL),
// so that stores in different schemas of one database stay apart.
const (
	lockWrite   = "write"
	lockMigrate = "migrate"
	chanFeed    = "pimbridge_feed"
	chanMeta    = "pimbridge_meta"
)

// lockKey returns the advisory lock key of a kind in the store's schema.
func (s *Store) lockKey(kind string) int64 {
	h := fnv.New64a()
	h.Write([]byte("pimbridge:" + kind + ":" + s.schema))
	return int64(h.Sum64())
}

// channel returns the quoted notification channel name in the store's
// schema.
func (s *Store) channel(name string) string {
	return name + "_" + s.schema
}

// IsPostgresURL reports whether a --db value names a PostgreSQL database.
func IsPostgresURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// Redact returns a --db value fit for logs and messages: a URL's password
// is masked; a file path is returned as it is.
func Redact(dsn string) string {
	if !IsPostgresURL(dsn) {
		return dsn
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return "postgres://(unparsable URL)"
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.String()
}

func (s *Store) openPostgres(dsn string, opts *Options) (*sql.DB, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("crmstore: open postgres: %w", err)
	}
	s.pg, s.dsn = true, dsn
	var b [6]byte
	_, _ = rand.Read(b[:])
	s.node = hex.EncodeToString(b[:])
	db := stdlib.OpenDB(*cfg)
	n := opts.MaxOpenConns
	if n <= 0 {
		n = 16
	}
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	db.SetConnMaxIdleTime(5 * time.Minute)
	return db, nil
}

// pgType maps a SQLite column type to PostgreSQL's.
func pgType(t string) string {
	switch t {
	case "INTEGER":
		return "BIGINT"
	case "REAL":
		return "DOUBLE PRECISION"
	case "BLOB":
		return "BYTEA"
	}
	return `TEXT COLLATE "C"`
}

func (s *Store) migratePostgres(ctx context.Context) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("crmstore: migrate: %w", err)
	}
	defer tx.Rollback()
	if err := tx.QueryRowContext(ctx, "SELECT current_schema()").Scan(&s.schema); err != nil {
		return fmt.Errorf("crmstore: migrate: %w", err)
	}
	if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", s.lockKey(lockMigrate)); err != nil {
		return fmt.Errorf("crmstore: migrate: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (id BIGINT PRIMARY KEY CHECK (id = 1), v BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("crmstore: migrate: %w", err)
	}
	var cur int
	if err := tx.QueryRowContext(ctx, "SELECT coalesce(max(v), 0) FROM schema_version").Scan(&cur); err != nil {
		return fmt.Errorf("crmstore: read schema version: %w", err)
	}
	names, err := migrations.ReadDir("migrations/postgres")
	if err != nil {
		return fmt.Errorf("crmstore: migrations: %w", err)
	}
	sort.Slice(names, func(i, j int) bool { return names[i].Name() < names[j].Name() })
	for _, f := range names {
		var num int
		if _, err := fmt.Sscanf(f.Name(), "%04d_", &num); err != nil {
			return fmt.Errorf("crmstore: migration name %q: %w", f.Name(), err)
		}
		if num <= cur {
			continue
		}
		body, err := migrations.ReadFile("migrations/postgres/" + f.Name())
		if err != nil {
			return fmt.Errorf("crmstore: migration %s: %w", f.Name(), err)
		}
		if _, err := tx.ExecContext(ctx, string(body)); err != nil {
			return fmt.Errorf("crmstore: migration postgres/%s: %w", f.Name(), err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_version (id, v) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET v = EXCLUDED.v`, num); err != nil {
			return fmt.Errorf("crmstore: migration %s: %w", f.Name(), err)
		}
		s.log.Info("crmstore: applied migration", "migration", "postgres/"+f.Name())
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("crmstore: migrate: %w", err)
	}
	return nil
}

// writeTx is a write transaction outside Update (schema changes, bulk
// inserts), holding the write lock on PostgreSQL.
type writeTx struct {
	querier
	tx *sql.Tx
	pg bool
}

func (w *writeTx) Commit() error   { return w.tx.Commit() }
func (w *writeTx) Rollback() error { return w.tx.Rollback() }

// PrepareContext prepares a SQLite-dialect statement on the transaction.
func (w *writeTx) PrepareContext(ctx context.Context, query string) (*sql.Stmt, error) {
	if w.pg {
		query = pgText(query)
	}
	return w.tx.PrepareContext(ctx, query)
}

// beginWrite starts a write transaction; on PostgreSQL it takes the write
// lock first.
func (s *Store) beginWrite(ctx context.Context) (*writeTx, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	if s.pg {
		if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", s.lockKey(lockWrite)); err != nil {
			tx.Rollback()
			return nil, err
		}
	}
	return &writeTx{querier: s.on(tx), tx: tx, pg: s.pg}, nil
}

// updatePostgres is Update on PostgreSQL: fn runs under the write lock
// and is run again (a few times) after a deadlock or serialization
// failure, which the lock makes rare (single-statement writes outside it).
func (s *Store) updatePostgres(ctx context.Context, fn func(crmserver.Tx) error) error {
	for attempt := 0; ; attempt++ {
		tx, err := s.beginWrite(ctx)
		if err != nil {
			return fmt.Errorf("crmstore: begin: %w", err)
		}
		err = fn(&txn{s: s, q: pgTx{pgQuerier: pgQuerier{tx.tx}, tx: tx.tx}})
		if err == nil {
			err = tx.Commit()
			if err == nil {
				return nil
			}
			err = fmt.Errorf("crmstore: commit: %w", err)
		}
		tx.Rollback()
		if !isRetryable(err) || attempt == 4 {
			return err
		}
		s.log.Debug("crmstore: write transaction retried", "attempt", attempt+1, "err", err)
	}
}

// notifyTx sends a notification on channel when tx commits.
func notifyTx(ctx context.Context, q querier, channel, payload string) error {
	if _, err := q.ExecContext(ctx, "SELECT pg_notify(?, ?)", channel, payload); err != nil {
		return fmt.Errorf("crmstore: notify: %w", err)
	}
	return nil
}

// feedMsg is the payload on chanFeed: the sending node and the events.
type feedMsg struct {
	Node   string      `json:"n"`
	Events [][3]string `json:"e"` // entity, owner before, owner after
}

// maxNotify keeps a payload under PostgreSQL's 8000-byte limit.
const maxNotify = 7000

// AnnounceTx implements crmserver.SharedFeed: on PostgreSQL it sends the
// events of a write transaction to the other nodes, delivered only if tx
// commits. On SQLite (one process) it does nothing.
func (s *Store) AnnounceTx(ctx context.Context, tx crmserver.Tx, evs []crmserver.FeedEvent) error {
	if !s.pg || len(evs) == 0 {
		return nil
	}
	t, ok := tx.(*txn)
	if !ok {
		return fmt.Errorf("%w: crmstore: announce: not a crmstore transaction", crm.ErrInvalidArgument)
	}
	seen := map[[3]string]bool{}
	msg := feedMsg{Node: s.node}
	size := 0
	flush := func() error {
		if len(msg.Events) == 0 {
			return nil
		}
		b, err := json.Marshal(msg)
		if err != nil {
			return fmt.Errorf("crmstore: announce: %w", err)
		}
		msg.Events, size = nil, 0
		return notifyTx(ctx, t.q, s.channel(chanFeed), string(b))
	}
	for _, e := range evs {
		k := [3]string{e.Entity, idText(e.Owners[0]), idText(e.Owners[1])}
		if seen[k] {
			continue
		}
		seen[k] = true
		if size+len(k[0])+len(k[1])+len(k[2])+12 > maxNotify {
			if err := flush(); err != nil {
				return err
			}
		}
		msg.Events = append(msg.Events, k)
		size += len(k[0]) + len(k[1]) + len(k[2]) + 12
	}
	return flush()
}

func idText(id crm.ID) string {
	if id == (crm.ID{}) {
		return ""
	}
	return id.String()
}

// HearCommits implements crmserver.SharedFeed: fn is called, from the
// store's listener goroutine, with the events other nodes committed. On
// SQLite it is never called.
func (s *Store) HearCommits(fn func([]crmserver.FeedEvent)) {
	s.lmu.Lock()
	s.hear = append(s.hear, fn)
	s.lmu.Unlock()
}

// listener state of a PostgreSQL store.
type listener struct {
	node   string
	lmu    sync.Mutex
	hear   []func([]crmserver.FeedEvent)
	cancel context.CancelFunc
	done   chan struct{}
}

// startListener runs the LISTEN loop until Close. A lost connection is
// opened again; commits announced while it was down are reported to the
// feed as a change of every entity, so that no waiter misses one.
func (s *Store) startListener() {
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel, s.done = cancel, make(chan struct{})
	ready := make(chan struct{})
	go func() {
		defer close(s.done)
		first := true
		for ctx.Err() == nil {
			err := s.listen(ctx, func() {
				if first {
					first = false
					close(ready)
				} else {
					s.hearAll()
				}
			})
			if ctx.Err() != nil {
				return
			}
			s.log.Warn("crmstore: listen: connection lost; reconnecting", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
	}
}

func (s *Store) stopListener() {
	if s.cancel != nil {
		s.cancel()
		<-s.done
	}
}

func (s *Store) listen(ctx context.Context, up func()) error {
	conn, err := pgx.Connect(ctx, s.dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	for _, ch := range []string{chanFeed, chanMeta} {
		if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{s.channel(ch)}.Sanitize()); err != nil {
			return err
		}
	}
	up()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		switch n.Channel {
		case s.channel(chanMeta):
			if n.Payload == s.node {
				continue
			}
			if err := s.reloadMetadata(ctx); err != nil {
				s.log.Error("crmstore: reload metadata", "err", err)
			}
			s.hearAll()
		case s.channel(chanFeed):
			var m feedMsg
			if err := json.Unmarshal([]byte(n.Payload), &m); err != nil || m.Node == s.node {
				continue
			}
			evs := make([]crmserver.FeedEvent, 0, len(m.Events))
			for _, e := range m.Events {
				ev := crmserver.FeedEvent{Entity: e[0]}
				ev.Owners[0], _ = crm.ParseID(e[1])
				ev.Owners[1], _ = crm.ParseID(e[2])
				evs = append(evs, ev)
			}
			s.tell(evs)
		}
	}
}

// hearAll reports a change of every entity with every owner unknown:
// waiters of every scope wake and make a pass.
func (s *Store) hearAll() {
	m, _ := s.Metadata(context.Background())
	var evs []crmserver.FeedEvent
	for _, e := range m.Entities {
		evs = append(evs, crmserver.FeedEvent{Entity: e.Name, AnyOwner: true})
	}
	s.tell(evs)
}

func (s *Store) tell(evs []crmserver.FeedEvent) {
	s.lmu.Lock()
	fns := slices.Clone(s.hear)
	s.lmu.Unlock()
	for _, fn := range fns {
		fn(evs)
	}
}

// reloadMetadata reads the metadata again after another node changed it.
func (s *Store) reloadMetadata(ctx context.Context) error {
	return s.loadMetadata(ctx)
}

// metaChanged tells the other nodes to reload the metadata once tx
// commits.
func (s *Store) metaChanged(ctx context.Context, q querier) error {
	if !s.pg {
		return nil
	}
	return notifyTx(ctx, q, s.channel(chanMeta), s.node)
}
