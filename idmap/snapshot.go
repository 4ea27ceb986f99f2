package idmap

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Snapshot is the OriginalXML of one pair (docs/sync-rules.md): the canonical bytes of
// the last-synced mapped fields (idmap does not look inside), the raw PIM
// object as the server last sent or accepted it, and that object's ETag.
type Snapshot struct {
	Fields  []byte
	Raw     []byte
	ETag    string
	Updated time.Time // set by PutSnapshot
}

// Snapshot returns the snapshot of mapID, or ErrNoSnapshot.
func (o ops) Snapshot(ctx context.Context, mapID int64) (Snapshot, error) {
	var (
		s   Snapshot
		upd int64
	)
	err := o.q.QueryRowContext(ctx, "SELECT fields, raw, etag, updated FROM snapshot WHERE map_id=?", mapID).
		Scan(&s.Fields, &s.Raw, &s.ETag, &upd)
	if errors.Is(err, sql.ErrNoRows) {
		return Snapshot{}, fmt.Errorf("idmap: snapshot %d: %w", mapID, ErrNoSnapshot)
	}
	if err != nil {
		return Snapshot{}, fmt.Errorf("idmap: snapshot %d: %w", mapID, err)
	}
	if s.Fields == nil {
		s.Fields = []byte{}
	}
	if s.Raw == nil {
		s.Raw = []byte{}
	}
	s.Updated = time.Unix(0, upd).UTC()
	return s, nil
}

// PutSnapshot replaces the snapshot of mapID; ErrUnmapped if there is no
// such mapping.
func (t *Tx) PutSnapshot(ctx context.Context, mapID int64, s Snapshot) error {
	fields, raw := s.Fields, s.Raw
	if fields == nil {
		fields = []byte{}
	}
	if raw == nil {
		raw = []byte{}
	}
	_, err := t.q.ExecContext(ctx, `INSERT INTO snapshot (map_id, fields, raw, etag, updated) VALUES (?,?,?,?,?)
		ON CONFLICT (map_id) DO UPDATE SET fields=excluded.fields, raw=excluded.raw, etag=excluded.etag,
		updated=excluded.updated`, mapID, fields, raw, s.ETag, t.now().UTC().UnixNano())
	if err != nil {
		if _, gerr := t.Get(ctx, mapID); errors.Is(gerr, ErrUnmapped) {
			return fmt.Errorf("idmap: put snapshot %d: %w", mapID, ErrUnmapped)
		}
		return fmt.Errorf("idmap: put snapshot %d: %w", mapID, err)
	}
	return nil
}
