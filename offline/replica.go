package offline

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"

	"github.com/pimbridge/pimbridge/crm"
)

const schema = `
CREATE TABLE IF NOT EXISTS offline_state (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS offline_batches (
	id INTEGER PRIMARY KEY, entity TEXT NOT NULL, rows INTEGER NOT NULL,
	applied_seq INTEGER NOT NULL, acked_seq INTEGER);
CREATE TABLE IF NOT EXISTS offline_fetches (
	seq INTEGER PRIMARY KEY AUTOINCREMENT, batch INTEGER NOT NULL, entity TEXT NOT NULL,
	rows INTEGER NOT NULL, resent INTEGER NOT NULL, fetched_on INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS offline_queue (
	rownum INTEGER PRIMARY KEY AUTOINCREMENT, objectid TEXT NOT NULL, objecttype TEXT NOT NULL,
	actiondate TEXT NOT NULL, command TEXT NOT NULL, method TEXT NOT NULL, url TEXT NOT NULL,
	headers TEXT NOT NULL, body BLOB, groupid TEXT NOT NULL DEFAULT '', state INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS offline_errors (
	id INTEGER PRIMARY KEY AUTOINCREMENT, rownum INTEGER NOT NULL, objectid TEXT NOT NULL,
	objecttype TEXT NOT NULL, actiondate TEXT NOT NULL, command TEXT NOT NULL, method TEXT NOT NULL,
	url TEXT NOT NULL, headers TEXT NOT NULL, body BLOB, groupid TEXT NOT NULL, status INTEGER NOT NULL,
	code TEXT NOT NULL, message TEXT NOT NULL, occurred TEXT NOT NULL);
`

// State keys of offline_state.
const (
	keyState        = "client_state"
	keySubscription = "subscription"
	keyMetaVersion  = "server_metadata_version"
	keyUserID       = "user_id"
	keyUserName     = "user_name"
	keyRoles        = "roles"
	keyRoleDefs     = "role_definitions"
	keyPasswordHash = "password_hash"
	keyLastOffline  = "last_go_offline"
	keyLastOnline   = "last_go_online"
	keyLastError    = "last_error"
	keyServerURL    = "server_url"
	keyRefresh      = "refresh_interval"
	keyReplayPrefix = "replay_prefix"
)

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func initSchema(ctx context.Context, db *sql.DB) error {
	if _, err := db.ExecContext(ctx, schema+restoreSchema); err != nil {
		return fmt.Errorf("offline: create tables: %w", err)
	}
	return nil
}

func getState(ctx context.Context, q execer, k string) (string, error) {
	var v string
	err := q.QueryRowContext(ctx, "SELECT v FROM offline_state WHERE k = ?", k).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("offline: read %s: %w", k, err)
	}
	return v, nil
}

func setState(ctx context.Context, q execer, kv ...string) error {
	for i := 0; i+1 < len(kv); i += 2 {
		if _, err := q.ExecContext(ctx, "INSERT INTO offline_state (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v", kv[i], kv[i+1]); err != nil {
			return fmt.Errorf("offline: write %s: %w", kv[i], err)
		}
	}
	return nil
}

func getInt(ctx context.Context, q execer, k string) (int64, error) {
	v, err := getState(ctx, q, k)
	if err != nil || v == "" {
		return 0, err
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("offline: %s: %w", k, err)
	}
	return n, nil
}

func getID(ctx context.Context, q execer, k string) (crm.ID, error) {
	v, err := getState(ctx, q, k)
	if err != nil || v == "" {
		return crm.ID{}, err
	}
	return crm.ParseID(v)
}
