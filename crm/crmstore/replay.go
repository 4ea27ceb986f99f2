package crmstore

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmserver"
)

// ReplayAnswer implements crmserver.Tx.
func (t *txn) ReplayAnswer(ctx context.Context, user crm.ID, key string) (crmserver.ReplayAnswer, bool, error) {
	var a crmserver.ReplayAnswer
	var h string
	var rec int64
	err := t.q.QueryRowContext(ctx, "SELECT reqhash, status, headers, body, recorded FROM replay_keys WHERE userid = ? AND key = ?",
		user.String(), key).Scan(&a.Hash, &a.Status, &h, &a.Body, &rec)
	if err == errNoRows {
		return a, false, nil
	}
	if err != nil {
		return a, false, fmt.Errorf("crmstore: replay key: %w", err)
	}
	if err := json.Unmarshal([]byte(h), &a.Header); err != nil {
		return a, false, fmt.Errorf("crmstore: replay key %q: headers: %w", key, err)
	}
	a.Recorded = time.UnixMilli(rec)
	return a, true, nil
}

// SetReplayAnswer implements crmserver.Tx.
func (t *txn) SetReplayAnswer(ctx context.Context, user crm.ID, key string, a crmserver.ReplayAnswer, expireBefore time.Time) error {
	h, err := json.Marshal(a.Header)
	if err != nil {
		return fmt.Errorf("crmstore: replay key %q: headers: %w", key, err)
	}
	if _, err := t.q.ExecContext(ctx, "DELETE FROM replay_keys WHERE recorded < ?", expireBefore.UnixMilli()); err != nil {
		return fmt.Errorf("crmstore: replay keys: prune: %w", err)
	}
	if _, err := t.q.ExecContext(ctx, "INSERT OR REPLACE INTO replay_keys (userid, key, reqhash, status, headers, body, recorded) VALUES (?, ?, ?, ?, ?, ?, ?)",
		user.String(), key, a.Hash, a.Status, string(h), a.Body, a.Recorded.UnixMilli()); err != nil {
		return fmt.Errorf("crmstore: replay key %q: %w", key, err)
	}
	return nil
}
