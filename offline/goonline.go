package offline

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmclient"
	"github.com/pimbridge/pimbridge/crm/crmserver"
	"github.com/pimbridge/pimbridge/internal/retry"
)

// OnError is what GoOnline does when the replay leaves sync errors (seed
// 001's Data Synchronization Error dialog).
type OnError string

// The three choices.
const (
	// StayOffline keeps the client offline with the errors listed, so that
	// the user can fix the data and retry them (the default).
	StayOffline OnError = "stay-offline"
	// Retry sends the rejected requests once more (after a fix on the
	// server, e.g. a privilege granted back); what fails again stays a
	// sync error and the client stays offline.
	Retry OnError = "retry"
	// Discard drops the rejected changes and finishes going online.
	Discard OnError = "discard"
)

// ParseOnError parses a --on-error value.
func ParseOnError(s string) (OnError, error) {
	switch OnError(s) {
	case StayOffline, Retry, Discard:
		return OnError(s), nil
	}
	return "", fmt.Errorf("%w: on-error %q (want stay-offline, retry or discard)", crm.ErrInvalidArgument, s)
}

// ReplayOptions configure GoOnline.
type ReplayOptions struct {
	// Cred is the user's login, for the incremental GoOffline after replay.
	Cred Credentials
	// AllowDuplicates is the user's duplicate-detection choice: true
	// suppresses duplicate detection on the replayed requests (create the
	// duplicate anyway); false lets the server reject duplicates, which
	// become sync errors. A request queued with suppression keeps it.
	AllowDuplicates bool
	// OnError decides what happens with sync errors; "" asks Prompt, and
	// without Prompt means StayOffline.
	OnError OnError
	// Prompt, when set and OnError is "", is asked with the sync errors.
	Prompt func(errs []Rejection) OnError

	replayPrefix string // of the replay keys (set by the engine)
}

// ReplayReport describes one GoOnline.
type ReplayReport struct {
	Replayed int         // queue rows the server accepted
	Rejected int         // queue rows that became sync errors in this run
	Errors   []Rejection // sync errors left after the run
	Decision OnError     // what was done with them ("" when there were none)
	Refresh  Report      // the incremental GoOffline after the replay
}

// Rejection (a sync error) is a queued request the server definitively rejected.
type Rejection struct {
	ID       int64     `json:"id"`
	Row      QueueRow  `json:"request"`
	Status   int       `json:"status"`
	Code     string    `json:"code"`
	Message  string    `json:"message"`
	Occurred time.Time `json:"occurred"`
}

// GoOnline replays the offline queue to the server in row order, each
// request with the current auth, the duplicate-detection choice and a
// CallerOrigin header carrying the time it was queued; the rows of an
// atomicity group go as one $batch atomicity group. A row leaves the queue
// only when the server accepted it or rejected it for good (a 4xx other
// than 408, 425 and 429; it becomes a sync error). A network failure or a
// 5xx stops the replay with ErrServerUnavailable; the next GoOnline resumes
// at the first unplayed row. After a clean replay an incremental GoOffline
// refreshes the replica and the client is Online.
func (e *Engine) GoOnline(ctx context.Context, r Remote, o ReplayOptions) (ReplayReport, error) {
	e.run.Lock()
	defer e.run.Unlock()
	var rep ReplayReport
	if err := e.setState(ctx, GoingOnline); err != nil {
		return rep, err
	}
	err := e.goOnline(ctx, r, o, &rep)
	switch {
	case err == nil:
		e.setState(ctx, Online)
		setState(ctx, e.replica.DB(), keyLastOnline, e.stamp())
	case errors.Is(err, ErrSyncErrors):
		e.setState(ctx, SyncError)
	case errors.Is(err, ErrServerUnavailable):
		e.setState(ctx, ServerUnavailable)
	case errors.Is(err, ErrClientVersion):
		e.setState(ctx, ClientVersionLower)
	case errors.Is(err, ErrServerVersion):
		e.setState(ctx, ClientVersionHigher)
	default:
		e.setState(ctx, Offline)
	}
	e.setError(ctx, err)
	return rep, err
}

func (e *Engine) goOnline(ctx context.Context, r Remote, o ReplayOptions, rep *ReplayReport) error {
	if err := e.replay(ctx, r, o, rep); err != nil {
		return err
	}
	errs, err := e.Errors(ctx)
	if err != nil {
		return err
	}
	if len(errs) > 0 {
		d := o.OnError
		if d == "" && o.Prompt != nil {
			d = o.Prompt(errs)
		}
		if d == "" {
			d = StayOffline
		}
		rep.Decision = d
		switch d {
		case Discard:
			if err := e.DiscardErrors(ctx); err != nil {
				return err
			}
		case Retry:
			if _, err := e.retryErrors(ctx, r, o.AllowDuplicates); err != nil {
				return err
			}
		}
		if rep.Errors, err = e.Errors(ctx); err != nil {
			return err
		}
		if len(rep.Errors) > 0 {
			return fmt.Errorf("%w: %d rejected request(s); see pimbridge errors", ErrSyncErrors, len(rep.Errors))
		}
	}
	if err := e.setState(ctx, Syncing); err != nil {
		return err
	}
	rep.Refresh, err = e.goOffline(ctx, r, o.Cred)
	return err
}

// replay sends the queue. Consecutive rows outside groups go up to
// ReplayChunk rows and ReplayChunkBytes of bodies at a time in one $batch
// without atomicity group (each part applies or fails on its own, in
// order); a group goes as one atomicity group.
func (e *Engine) replay(ctx context.Context, r Remote, o ReplayOptions, rep *ReplayReport) error {
	db := e.replica.DB()
	r = e.withToken(ctx, r)
	var err error
	if o.replayPrefix, err = e.replayPrefix(ctx); err != nil {
		return err
	}
	var after int64
	for {
		rows, err := queueRows(ctx, db, after, e.opts.ReplayChunk)
		if err != nil {
			return err
		}
		if len(rows) == 0 {
			return nil
		}
		unit := rows[:1]
		if g := rows[0].GroupID; g != "" {
			n := 1
			for n < len(rows) && rows[n].GroupID == g {
				n++
			}
			if n == len(rows) && len(rows) == e.opts.ReplayChunk {
				// The group may go on past this page: read it whole.
				all, err := groupRows(ctx, db, g)
				if err != nil {
					return err
				}
				unit = all
			} else {
				unit = rows[:n]
			}
		} else {
			n, size := 1, len(rows[0].Body)
			for n < len(rows) && rows[n].GroupID == "" && size+len(rows[n].Body) <= e.opts.ReplayChunkBytes {
				size += len(rows[n].Body)
				n++
			}
			unit = rows[:n]
		}
		after = unit[len(unit)-1].RowNumber
		var outcome []rowOutcome
		if unit[0].GroupID != "" {
			outcome, err = e.sendGroup(ctx, r, unit, o)
		} else {
			outcome, err = e.sendLone(ctx, r, unit, o)
		}
		// Settle what the server answered before stopping on an error.
		if serr := e.settle(ctx, outcome, rep); serr != nil {
			return serr
		}
		if err != nil {
			return err
		}
	}
}

func groupRows(ctx context.Context, db *sql.DB, gid string) ([]QueueRow, error) {
	rows, err := db.QueryContext(ctx, "SELECT "+queueCols+" FROM offline_queue WHERE groupid = ? ORDER BY rownum", gid)
	if err != nil {
		return nil, fmt.Errorf("offline: queue: %w", err)
	}
	defer rows.Close()
	var out []QueueRow
	for rows.Next() {
		q, err := scanQueueRow(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, q)
	}
	return out, rows.Err()
}

// rowOutcome is the server's verdict on one row: accepted, or rejected
// with an error.
type rowOutcome struct {
	row      QueueRow
	accepted bool
	status   int
	code     string
	message  string
}

func (e *Engine) replayHeader(q QueueRow, o ReplayOptions) map[string]string {
	h := map[string]string{}
	for k := range q.Header {
		h[k] = q.Header.Get(k)
	}
	if o.AllowDuplicates {
		h[crm.HeaderSuppressDuplicates] = "true"
	}
	h[crm.HeaderCallerOrigin] = crm.CallerOrigin{Kind: "Offline", QueuedAt: q.ActionDate}.String()
	if o.replayPrefix != "" {
		h[crmserver.HeaderReplayID] = o.replayPrefix + "/" + strconv.FormatInt(q.RowNumber, 10)
	}
	return h
}

// replayPrefix returns the prefix of this replica's replay keys: the
// client id and a random id made once per replica, so that a key (prefix
// and queue row number; row numbers are never reused in a replica) names
// one queued request for good, also across a new replica of the same
// client. The server applies a key once (crmserver.HeaderReplayID): a
// replay whose answer was lost after the server applied it is answered,
// not applied again, when the next GoOnline sends it.
func (e *Engine) replayPrefix(ctx context.Context) (string, error) {
	db := e.replica.DB()
	p, err := getState(ctx, db, keyReplayPrefix)
	if err != nil || p != "" {
		return p, err
	}
	client := e.opts.ClientID
	if len(client) > 64 {
		client = client[:64]
	}
	p = client + "." + crm.NewID().String()
	if err := setState(ctx, db, keyReplayPrefix, p); err != nil {
		return "", err
	}
	return p, nil
}

func (e *Engine) batchRequest(q QueueRow, o ReplayOptions, group string) crm.BatchRequest {
	br := crm.BatchRequest{ID: strconv.FormatInt(q.RowNumber, 10), Method: q.Method, URL: q.URL,
		Headers: e.replayHeader(q, o), AtomicityGroup: group}
	if len(q.Body) > 0 {
		br.Body = json.RawMessage(q.Body)
	}
	return br
}

func verdict(q QueueRow, status int, body []byte) rowOutcome {
	if status >= 200 && status <= 299 || q.Method == http.MethodDelete && status == http.StatusNotFound {
		// A delete of a record that is gone reached its goal (also when an
		// earlier replay applied it and the answer was lost).
		return rowOutcome{row: q, accepted: true, status: status}
	}
	out := rowOutcome{row: q, status: status}
	var eb struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if json.Unmarshal(body, &eb) == nil && eb.Error.Code != "" {
		out.code, out.message = eb.Error.Code, eb.Error.Message
	} else {
		out.code, out.message = "http_"+strconv.Itoa(status), string(body)
	}
	return out
}

func (e *Engine) sendLone(ctx context.Context, r Remote, rows []QueueRow, o ReplayOptions) ([]rowOutcome, error) {
	if len(rows) == 1 {
		q := rows[0]
		h := http.Header{}
		for k, v := range e.replayHeader(q, o) {
			h.Set(k, v)
		}
		resp, err := r.Do(ctx, q.Method, q.URL, h, q.Body)
		if err != nil {
			return nil, unavailable(fmt.Errorf("offline: replay row %d: %w", q.RowNumber, err))
		}
		if retry.TransientStatus(resp.Status) {
			return nil, fmt.Errorf("%w: replay row %d: status %d", ErrServerUnavailable, q.RowNumber, resp.Status)
		}
		return []rowOutcome{verdict(q, resp.Status, resp.Body)}, nil
	}
	reqs := make([]crm.BatchRequest, len(rows))
	for i, q := range rows {
		reqs[i] = e.batchRequest(q, o, "")
	}
	resps, err := r.Batch(ctx, reqs)
	var ae *crmclient.APIError
	if errors.As(err, &ae) && ae.Code == "request_too_large" {
		// The server takes less than ReplayChunkBytes: halve the chunk.
		half := len(rows) / 2
		out, err := e.sendLone(ctx, r, rows[:half], o)
		if err != nil {
			return out, err
		}
		rest, err := e.sendLone(ctx, r, rows[half:], o)
		return append(out, rest...), err
	}
	if err != nil {
		return nil, unavailable(fmt.Errorf("offline: replay rows %d-%d: %w", rows[0].RowNumber, rows[len(rows)-1].RowNumber, err))
	}
	byID := map[string]crm.BatchResponse{}
	for _, b := range resps {
		byID[b.ID] = b
	}
	var out []rowOutcome
	for _, q := range rows {
		b, ok := byID[strconv.FormatInt(q.RowNumber, 10)]
		if !ok || retry.TransientStatus(b.Status) {
			// Parts run in order: settle what came before and stop here.
			return out, fmt.Errorf("%w: replay row %d: status %d", ErrServerUnavailable, q.RowNumber, b.Status)
		}
		out = append(out, verdict(q, b.Status, b.Body))
	}
	return out, nil
}

func (e *Engine) sendGroup(ctx context.Context, r Remote, rows []QueueRow, o ReplayOptions) ([]rowOutcome, error) {
	reqs := make([]crm.BatchRequest, len(rows))
	for i, q := range rows {
		reqs[i] = e.batchRequest(q, o, "g"+q.GroupID)
	}
	resps, err := r.Batch(ctx, reqs)
	if err != nil {
		return nil, unavailable(fmt.Errorf("offline: replay group %s: %w", rows[0].GroupID, err))
	}
	if len(resps) != len(rows) {
		return nil, fmt.Errorf("%w: replay group %s: %d answers for %d requests", ErrServerUnavailable, rows[0].GroupID, len(resps), len(rows))
	}
	var failed *rowOutcome
	out := make([]rowOutcome, len(rows))
	for i, q := range rows {
		if retry.TransientStatus(resps[i].Status) {
			return nil, fmt.Errorf("%w: replay group %s: status %d", ErrServerUnavailable, q.GroupID, resps[i].Status)
		}
		out[i] = verdict(q, resps[i].Status, resps[i].Body)
		if !out[i].accepted && resps[i].Status != http.StatusFailedDependency && failed == nil {
			failed = &out[i]
		}
	}
	if failed != nil {
		// The group applied none of its requests: every row becomes a sync
		// error carrying the failing request's message.
		for i := range out {
			if out[i].accepted || out[i].status == http.StatusFailedDependency {
				out[i] = rowOutcome{row: out[i].row, status: http.StatusFailedDependency, code: "batch_group_failed",
					message: fmt.Sprintf("not applied: request %d of the group failed: %s", failed.row.RowNumber, failed.message)}
			}
		}
	}
	return out, nil
}

// settle removes answered rows from the queue, rejected ones into
// offline_errors, in one transaction.
func (e *Engine) settle(ctx context.Context, outs []rowOutcome, rep *ReplayReport) error {
	if len(outs) == 0 {
		return nil
	}
	tx, err := e.replica.DB().BeginTx(context.WithoutCancel(ctx), nil)
	if err != nil {
		return fmt.Errorf("offline: dequeue: %w", err)
	}
	defer tx.Rollback()
	now := e.stamp()
	for _, o := range outs {
		if !o.accepted {
			q := o.row
			h, _ := json.Marshal(q.Header)
			if _, err := tx.ExecContext(ctx, `INSERT INTO offline_errors (rownum, objectid, objecttype, actiondate, command, method, url, headers, body, groupid, status, code, message, occurred)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, q.RowNumber, q.ObjectID.String(), q.ObjectType, q.ActionDate.UTC().Format(time.RFC3339Nano),
				q.Command, q.Method, q.URL, string(h), q.Body, q.GroupID, o.status, o.code, o.message, now); err != nil {
				return fmt.Errorf("offline: sync error: %w", err)
			}
			e.log.Warn("offline: replay rejected", "row", q.RowNumber, "command", q.Command, "entity", q.ObjectType, "id", q.ObjectID, "status", o.status, "code", o.code, "message", o.message)
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM offline_queue WHERE rownum = ?", o.row.RowNumber); err != nil {
			return fmt.Errorf("offline: dequeue: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("offline: dequeue: %w", err)
	}
	for _, o := range outs {
		if o.accepted {
			rep.Replayed++
		} else {
			rep.Rejected++
		}
	}
	return nil
}

// Errors lists the sync errors, oldest first.
func (e *Engine) Errors(ctx context.Context) ([]Rejection, error) {
	rows, err := e.replica.DB().QueryContext(ctx, `SELECT id, rownum, objectid, objecttype, actiondate, command, method, url, headers, body, groupid, 0,
		status, code, message, occurred FROM offline_errors ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("offline: errors: %w", err)
	}
	defer rows.Close()
	var out []Rejection
	for rows.Next() {
		var se Rejection
		var occ string
		var sc scanRow = func(dst ...any) error {
			return rows.Scan(append([]any{&se.ID}, append(dst, &se.Status, &se.Code, &se.Message, &occ)...)...)
		}
		if se.Row, err = scanQueueRow(sc); err != nil {
			return nil, err
		}
		se.Occurred, _ = time.Parse(time.RFC3339Nano, occ)
		out = append(out, se)
	}
	return out, rows.Err()
}

type scanRow func(dst ...any) error

func (f scanRow) Scan(dst ...any) error { return f(dst...) }

// DiscardErrors drops sync errors (all when no id is given): the changes
// they carried are lost, and the records they touched are marked for
// restoring from the server (see restore.go), which the next GoOffline or
// refresh does, or Restore at once.
func (e *Engine) DiscardErrors(ctx context.Context, ids ...int64) error {
	tx, err := e.replica.DB().BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("offline: discard: %w", err)
	}
	defer tx.Rollback()
	discard := func(where string, args ...any) (int64, error) {
		if _, err := tx.ExecContext(ctx, "INSERT OR IGNORE INTO offline_restore (objecttype, objectid) SELECT objecttype, objectid FROM offline_errors"+where, args...); err != nil {
			return 0, fmt.Errorf("offline: discard: %w", err)
		}
		res, err := tx.ExecContext(ctx, "DELETE FROM offline_errors"+where, args...)
		if err != nil {
			return 0, fmt.Errorf("offline: discard: %w", err)
		}
		return res.RowsAffected()
	}
	if len(ids) == 0 {
		if _, err := discard(""); err != nil {
			return err
		}
	}
	for _, id := range ids {
		n, err := discard(" WHERE id = ?", id)
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("%w: sync error %d", crm.ErrNotFound, id)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("offline: discard: %w", err)
	}
	return nil
}

// Restore puts the server's version of every record whose offline change
// was discarded into the replica (nothing, for a discarded create).
func (e *Engine) Restore(ctx context.Context, r Remote) error {
	e.run.Lock()
	defer e.run.Unlock()
	return e.restoreDiscarded(ctx, e.withToken(ctx, r))
}

// RetryErrors sends rejected requests again (all when no id is given), in
// their original order; those the server accepts leave the list, the others
// stay with the new message. It returns how many were accepted.
func (e *Engine) RetryErrors(ctx context.Context, r Remote, allowDuplicates bool, ids ...int64) (int, error) {
	e.run.Lock()
	defer e.run.Unlock()
	return e.retryErrors(ctx, r, allowDuplicates, ids...)
}

func (e *Engine) retryErrors(ctx context.Context, r Remote, allowDuplicates bool, ids ...int64) (int, error) {
	errs, err := e.Errors(ctx)
	if err != nil {
		return 0, err
	}
	want := map[int64]bool{}
	for _, id := range ids {
		want[id] = true
	}
	o := ReplayOptions{AllowDuplicates: allowDuplicates}
	if o.replayPrefix, err = e.replayPrefix(ctx); err != nil {
		return 0, err
	}
	ok := 0
	db := e.replica.DB()
	for i := 0; i < len(errs); i++ {
		se := errs[i]
		if len(ids) > 0 && !want[se.ID] {
			continue
		}
		unit := []Rejection{se}
		if g := se.Row.GroupID; g != "" {
			for i+1 < len(errs) && errs[i+1].Row.GroupID == g {
				i++
				unit = append(unit, errs[i])
			}
		}
		rows := make([]QueueRow, len(unit))
		for k, u := range unit {
			rows[k] = u.Row
		}
		var outs []rowOutcome
		if rows[0].GroupID != "" {
			outs, err = e.sendGroup(ctx, r, rows, o)
		} else {
			outs, err = e.sendLone(ctx, r, rows, o)
		}
		if err != nil {
			return ok, err
		}
		for k, out := range outs {
			if out.accepted {
				ok++
				_, err = db.ExecContext(ctx, "DELETE FROM offline_errors WHERE id = ?", unit[k].ID)
			} else {
				_, err = db.ExecContext(ctx, "UPDATE offline_errors SET status = ?, code = ?, message = ?, occurred = ? WHERE id = ?",
					out.status, out.code, out.message, e.stamp(), unit[k].ID)
			}
			if err != nil {
				return ok, fmt.Errorf("offline: retry: %w", err)
			}
		}
	}
	return ok, nil
}
