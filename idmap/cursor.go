package idmap

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// Cursor returns the cursor of (account, collection): an opaque string
// such as an RFC 6578 sync-token or an IMAP UIDVALIDITY/HIGHESTMODSEQ
// state. ErrNoCursor if none was stored.
func (o ops) Cursor(ctx context.Context, account, collection string) (string, error) {
	var v string
	err := o.q.QueryRowContext(ctx, "SELECT value FROM cursor WHERE account=? AND collection=?", account, collection).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("idmap: cursor %s %s: %w", account, collection, ErrNoCursor)
	}
	if err != nil {
		return "", fmt.Errorf("idmap: cursor: %w", err)
	}
	return v, nil
}

// SetCursor stores the cursor of (account, collection). Store it in the
// same Tx as the changes it covers.
func (t *Tx) SetCursor(ctx context.Context, account, collection, value string) error {
	_, err := t.q.ExecContext(ctx, `INSERT INTO cursor (account, collection, value, updated) VALUES (?,?,?,?)
		ON CONFLICT (account, collection) DO UPDATE SET value=excluded.value, updated=excluded.updated`,
		account, collection, value, t.now().UTC().UnixNano())
	if err != nil {
		return fmt.Errorf("idmap: set cursor: %w", err)
	}
	return nil
}

// DeleteCursor forgets the cursor of (account, collection), forcing a full
// listing next time (e.g. after an invalid sync-token or a UIDVALIDITY
// change). Deleting a missing cursor is not an error.
func (t *Tx) DeleteCursor(ctx context.Context, account, collection string) error {
	if _, err := t.q.ExecContext(ctx, "DELETE FROM cursor WHERE account=? AND collection=?", account, collection); err != nil {
		return fmt.Errorf("idmap: delete cursor: %w", err)
	}
	return nil
}

// Setting returns the value of key, or ErrNoSetting.
func (o ops) Setting(ctx context.Context, key string) (string, error) {
	var v string
	err := o.q.QueryRowContext(ctx, "SELECT value FROM setting WHERE key=?", key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("idmap: setting %q: %w", key, ErrNoSetting)
	}
	if err != nil {
		return "", fmt.Errorf("idmap: setting %q: %w", key, err)
	}
	return v, nil
}

// SetSetting stores value under key.
func (t *Tx) SetSetting(ctx context.Context, key, value string) error {
	if key == "" {
		return fmt.Errorf("idmap: set setting: empty key: %w", ErrInvalid)
	}
	_, err := t.q.ExecContext(ctx, `INSERT INTO setting (key, value) VALUES (?,?)
		ON CONFLICT (key) DO UPDATE SET value=excluded.value`, key, value)
	if err != nil {
		return fmt.Errorf("idmap: set setting %q: %w", key, err)
	}
	return nil
}
