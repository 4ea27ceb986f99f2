package crmstore

import (
	"context"
	"database/sql"
	"sync"
)

// stmtCacheSize bounds the statements kept prepared (query texts vary with
// entities, column lists and filter shapes).
const stmtCacheSize = 512

// stmtCache keeps prepared statements by query text. Preparing is about
// 40% of the CPU of a small write with modernc's SQLite (its parser), and
// database/sql prepares every ExecContext/QueryContext anew. A transaction
// uses a cached statement through Tx.StmtContext, which reuses the
// statement already prepared on the transaction's connection (or prepares
// it there once). A statement missing from the cache is run unprepared and
// prepared in the background, never while the transaction waits: that
// would need a second connection of the pool from inside a transaction.
type stmtCache struct {
	db      *sql.DB
	mu      sync.Mutex
	m       map[string]*sql.Stmt
	pending map[string]bool
	closed  bool
	wg      sync.WaitGroup
}

func newStmtCache(db *sql.DB) *stmtCache {
	return &stmtCache{db: db, m: map[string]*sql.Stmt{}, pending: map[string]bool{}}
}

// get returns the cached statement of query, or nil after starting its
// preparation.
func (c *stmtCache) get(query string) *sql.Stmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st := c.m[query]; st != nil {
		return st
	}
	if c.closed || c.pending[query] || len(c.m)+len(c.pending) >= stmtCacheSize {
		return nil
	}
	c.pending[query] = true
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		st, err := c.db.PrepareContext(context.Background(), query)
		c.mu.Lock()
		defer c.mu.Unlock()
		delete(c.pending, query)
		if err != nil {
			return // a statement SQLite refuses fails again when run
		}
		if c.closed {
			st.Close()
			return
		}
		c.m[query] = st
	}()
	return nil
}

// close closes the cached statements; call it before closing the DB.
func (c *stmtCache) close() {
	c.mu.Lock()
	c.closed = true
	for _, st := range c.m {
		st.Close()
	}
	c.m = map[string]*sql.Stmt{}
	c.mu.Unlock()
}

// stmtTx is the querier of a write transaction, running statements
// through the cache.
type stmtTx struct {
	*sql.Tx
	c *stmtCache
}

func (t stmtTx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := t.c.get(query); st != nil {
		return t.Tx.StmtContext(ctx, st).ExecContext(ctx, args...)
	}
	return t.Tx.ExecContext(ctx, query, args...)
}

func (t stmtTx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := t.c.get(query); st != nil {
		return t.Tx.StmtContext(ctx, st).QueryContext(ctx, args...)
	}
	return t.Tx.QueryContext(ctx, query, args...)
}

func (t stmtTx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := t.c.get(query); st != nil {
		return t.Tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
	}
	return t.Tx.QueryRowContext(ctx, query, args...)
}

// sqlTx returns the *sql.Tx behind a querier of Update.
func sqlTx(q querier) (*sql.Tx, bool) {
	switch x := q.(type) {
	case stmtTx:
		return x.Tx, true
	case *sql.Tx:
		return x, true
	case pgTx:
		return x.tx, true
	}
	return nil, false
}
