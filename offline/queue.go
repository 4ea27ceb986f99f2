package offline

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/pimbridge/pimbridge/crm"
)

// QueueRow is one row of the offline queue (the Offline Queue table).
type QueueRow struct {
	RowNumber  int64       `json:"rownumber"`
	ObjectID   crm.ID      `json:"objectid"`
	ObjectType string      `json:"objecttypecode"`
	ActionDate time.Time   `json:"actiondate"`
	Command    string      `json:"command"` // Create, Update or Delete
	Method     string      `json:"method"`
	URL        string      `json:"url"` // path and query, e.g. /api/data/contacts
	Header     http.Header `json:"headers,omitempty"`
	Body       []byte      `json:"body,omitempty"`
	GroupID    string      `json:"groupid,omitempty"` // atomicity group (start/stop markers)
	State      int         `json:"state"`
}

func insertQueueRow(ctx context.Context, q execer, r QueueRow) error {
	h, err := json.Marshal(r.Header)
	if err != nil {
		return fmt.Errorf("offline: queue: %w", err)
	}
	_, err = q.ExecContext(ctx, `INSERT INTO offline_queue (objectid, objecttype, actiondate, command, method, url, headers, body, groupid, state)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0)`, r.ObjectID.String(), r.ObjectType, r.ActionDate.UTC().Format(time.RFC3339Nano),
		r.Command, r.Method, r.URL, string(h), r.Body, r.GroupID)
	if err != nil {
		return fmt.Errorf("offline: queue: %w", err)
	}
	return nil
}

const queueCols = "rownum, objectid, objecttype, actiondate, command, method, url, headers, body, groupid, state"

func scanQueueRow(sc interface{ Scan(...any) error }) (QueueRow, error) {
	var r QueueRow
	var id, at, h string
	if err := sc.Scan(&r.RowNumber, &id, &r.ObjectType, &at, &r.Command, &r.Method, &r.URL, &h, &r.Body, &r.GroupID, &r.State); err != nil {
		return r, fmt.Errorf("offline: queue: %w", err)
	}
	var err error
	if r.ObjectID, err = crm.ParseID(id); err != nil {
		return r, fmt.Errorf("offline: queue row %d: %w", r.RowNumber, err)
	}
	if r.ActionDate, err = time.Parse(time.RFC3339Nano, at); err != nil {
		return r, fmt.Errorf("offline: queue row %d: %w", r.RowNumber, err)
	}
	if err := json.Unmarshal([]byte(h), &r.Header); err != nil {
		return r, fmt.Errorf("offline: queue row %d: %w", r.RowNumber, err)
	}
	return r, nil
}

// Queue returns the pending queue rows in row order (at most limit; 0:
// all).
func (e *Engine) Queue(ctx context.Context, limit int) ([]QueueRow, error) {
	return queueRows(ctx, e.replica.DB(), 0, limit)
}

func queueRows(ctx context.Context, db *sql.DB, after int64, limit int) ([]QueueRow, error) {
	if limit <= 0 {
		limit = -1
	}
	rows, err := db.QueryContext(ctx, "SELECT "+queueCols+" FROM offline_queue WHERE rownum > ? ORDER BY rownum LIMIT ?", after, limit)
	if err != nil {
		return nil, fmt.Errorf("offline: queue: %w", err)
	}
	defer rows.Close()
	var out []QueueRow
	for rows.Next() {
		r, err := scanQueueRow(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// QueueLength returns the number of pending queue rows.
func (e *Engine) QueueLength(ctx context.Context) (int64, error) {
	var n int64
	if err := e.replica.DB().QueryRowContext(ctx, "SELECT count(*) FROM offline_queue").Scan(&n); err != nil {
		return 0, fmt.Errorf("offline: queue length: %w", err)
	}
	return n, nil
}
