package crmstore

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmserver"
)

const subCols = "id, user, client, kind, cursor, created, lastprepare"

func scanSub(r rowScanner) (crmserver.Subscription, error) {
	var s crmserver.Subscription
	var user string
	var created, last int64
	if err := r.Scan(&s.ID, &user, &s.ClientID, &s.Kind, &s.Cursor, &created, &last); err != nil {
		return s, err
	}
	s.UserID, _ = crm.ParseID(user)
	s.CreatedOn = fromUnix(created)
	if last > 0 {
		s.LastPrepare = fromUnix(last)
	}
	return s, nil
}

// Subscribe returns (creating if needed) the subscription of user, client
// and kind.
func (s *Store) Subscribe(ctx context.Context, user crm.ID, clientID, kind string) (crmserver.Subscription, error) {
	if clientID == "" || len(clientID) > 200 {
		return crmserver.Subscription{}, fmt.Errorf("%w: client id must have 1 to 200 bytes", crm.ErrInvalidArgument)
	}
	if _, err := s.x.ExecContext(ctx, "INSERT OR IGNORE INTO subscriptions (id, user, client, kind, created) VALUES (?, ?, ?, ?, ?)",
		crm.NewID().String(), user.String(), clientID, kind, unix(s.now())); err != nil {
		return crmserver.Subscription{}, fmt.Errorf("crmstore: subscribe: %w", err)
	}
	sub, err := scanSub(s.x.QueryRowContext(ctx, "SELECT "+subCols+" FROM subscriptions WHERE user = ? AND client = ? AND kind = ?", user.String(), clientID, kind))
	if err != nil {
		return sub, notFound(err, "subscription")
	}
	return sub, nil
}

// Subscriptions lists a user's subscriptions.
func (s *Store) Subscriptions(ctx context.Context, user crm.ID) ([]crmserver.Subscription, error) {
	rows, err := s.x.QueryContext(ctx, "SELECT "+subCols+" FROM subscriptions WHERE user = ? ORDER BY created, id", user.String())
	if err != nil {
		return nil, fmt.Errorf("crmstore: subscriptions: %w", err)
	}
	defer rows.Close()
	var out []crmserver.Subscription
	for rows.Next() {
		sub, err := scanSub(rows)
		if err != nil {
			return nil, fmt.Errorf("crmstore: subscriptions: %w", err)
		}
		out = append(out, sub)
	}
	return out, rows.Err()
}

// Subscription returns one of a user's subscriptions.
func (s *Store) Subscription(ctx context.Context, user crm.ID, id string) (crmserver.Subscription, error) {
	sub, err := scanSub(s.x.QueryRowContext(ctx, "SELECT "+subCols+" FROM subscriptions WHERE user = ? AND id = ?", user.String(), id))
	if err != nil {
		return sub, notFound(err, "subscription "+id)
	}
	return sub, nil
}

// DeleteSubscription removes a subscription with its SyncEntry rows.
func (s *Store) DeleteSubscription(ctx context.Context, user crm.ID, id string) error {
	res, err := s.x.ExecContext(ctx, "DELETE FROM subscriptions WHERE user = ? AND id = ?", user.String(), id)
	if err != nil {
		return fmt.Errorf("crmstore: delete subscription: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%w: subscription %s", crm.ErrNotFound, id)
	}
	return nil
}

// Prepare merges matching records into SyncEntry (seed 001's PrepareSync).
//
// For an entity whose spec hash is unchanged and a subscription with a
// cursor, only records with a version above the cursor and tombstones above
// it are looked at (indexes on versionnumber and tombstones.version), so the
// cost follows the changes. Filters with @now are also re-checked against
// the rows the subscription holds, since time moves records out of them.
// Otherwise every record of the entity is evaluated. Every row it marks
// gets the subscription's new prepare generation.
func (s *Store) Prepare(ctx context.Context, sub crmserver.Subscription, specs []crmserver.SyncSpec, me crm.ID, now time.Time) ([]crmserver.PrepareCount, error) {
	var counts []crmserver.PrepareCount
	err := s.Update(ctx, func(tx crmserver.Tx) error {
		t := tx.(*txn)
		var cursor, gen int64
		if err := t.q.QueryRowContext(ctx, "UPDATE subscriptions SET gen = gen + 1 WHERE id = ? RETURNING cursor, gen", sub.ID).Scan(&cursor, &gen); err != nil {
			return notFound(err, "subscription")
		}
		var head int64
		if err := t.q.QueryRowContext(ctx, "SELECT v FROM seq WHERE id = 1").Scan(&head); err != nil {
			return fmt.Errorf("crmstore: prepare: %w", err)
		}
		for _, sp := range specs {
			if err := t.prepareEntity(ctx, sub.ID, sp, cursor, gen, env{me: me, now: now}); err != nil {
				return err
			}
			c := crmserver.PrepareCount{Entity: sp.Entity.Name}
			if err := t.q.QueryRowContext(ctx, "SELECT count(*) FROM syncentry INDEXED BY syncentry_state WHERE sub = ? AND entity = ? AND state = 1", sub.ID, sp.Entity.Name).Scan(&c.InsertCount); err != nil {
				return fmt.Errorf("crmstore: prepare: %w", err)
			}
			if err := t.q.QueryRowContext(ctx, "SELECT count(*) FROM syncentry INDEXED BY syncentry_state WHERE sub = ? AND entity = ? AND state = 2", sub.ID, sp.Entity.Name).Scan(&c.DeleteCount); err != nil {
				return fmt.Errorf("crmstore: prepare: %w", err)
			}
			counts = append(counts, c)
		}
		if _, err := t.q.ExecContext(ctx, "UPDATE subscriptions SET cursor = ?, lastprepare = ? WHERE id = ?", head, unix(s.now()), sub.ID); err != nil {
			return fmt.Errorf("crmstore: prepare: %w", err)
		}
		return nil
	})
	return counts, err
}

const upsertEntry = ` ON CONFLICT (sub, entity, objectid) DO UPDATE SET state = 1, version = excluded.version, gen = excluded.gen
	WHERE syncentry.version != excluded.version OR syncentry.state = 2`

func (t *txn) prepareEntity(ctx context.Context, sub string, sp crmserver.SyncSpec, cursor, gen int64, en env) error {
	e := sp.Entity
	var oldHash string
	err := t.q.QueryRowContext(ctx, "SELECT hash FROM subscription_specs WHERE sub = ? AND entity = ?", sub, e.Name).Scan(&oldHash)
	if err != nil && err != errNoRows {
		return fmt.Errorf("crmstore: prepare %s: %w", e.Name, err)
	}
	full := cursor == 0 || err == errNoRows || oldHash != sp.Hash
	cond, args := "true", []any(nil)
	if sp.Excluded {
		cond = "false"
	} else if sp.Filter != nil {
		if err := e.CheckQuery(crm.Query{Filter: sp.Filter}); err != nil {
			return err
		}
		c, a, err := compileFilter(e, sp.Filter, en)
		if err != nil {
			return err
		}
		cond, args = "coalesce(("+c+"), false)", a
	}
	exec := func(query string, a ...any) error {
		if _, err := t.q.ExecContext(ctx, query, a...); err != nil {
			return fmt.Errorf("crmstore: prepare %s: %w", e.Name, err)
		}
		return nil
	}
	tbl := table(e)
	toDelete := `UPDATE syncentry SET state = 2, gen = ? WHERE sub = ? AND entity = ? AND state != 2 AND objectid `
	if full {
		// Rows no longer in the filter (or gone) become deletes.
		if err := exec(toDelete+`NOT IN (SELECT t.id FROM `+tbl+` t WHERE `+cond+`)`, append([]any{gen, sub, e.Name}, args...)...); err != nil {
			return err
		}
		if err := exec(`INSERT INTO syncentry (sub, entity, objectid, state, version, gen)
			SELECT ?, ?, t.id, 1, t.versionnumber, ? FROM `+tbl+` t WHERE `+cond+upsertEntry, append([]any{sub, e.Name, gen}, args...)...); err != nil {
			return err
		}
	} else {
		if err := exec(`INSERT INTO syncentry (sub, entity, objectid, state, version, gen)
			SELECT ?, ?, t.id, 1, t.versionnumber, ? FROM `+tbl+` t WHERE t.versionnumber > ? AND `+cond+upsertEntry,
			append([]any{sub, e.Name, gen, cursor}, args...)...); err != nil {
			return err
		}
		if err := exec(toDelete+`IN (SELECT t.id FROM `+tbl+` t WHERE t.versionnumber > ? AND NOT `+cond+`)`,
			append([]any{gen, sub, e.Name, cursor}, args...)...); err != nil {
			return err
		}
		if err := exec(toDelete+`IN (SELECT id FROM tombstones WHERE entity = ? AND version > ?)`, gen, sub, e.Name, e.Name, cursor); err != nil {
			return err
		}
		// A record created with a client-chosen id since the last prepare
		// and deleted before this one has no row yet: its creator (a sync
		// client writing its own item to CRM) holds it all the same, so it
		// gets a delete row. A client that never had the id ignores it.
		if !sp.Excluded {
			if err := exec(`INSERT INTO syncentry (sub, entity, objectid, state, version, gen)
				SELECT ?, ?, tb.id, 2, tb.version, ? FROM tombstones tb
				WHERE tb.entity = ? AND tb.version > ? AND tb.id IN (SELECT id FROM create_hash WHERE entity = ?)
				ON CONFLICT (sub, entity, objectid) DO NOTHING`, sub, e.Name, gen, e.Name, cursor, e.Name); err != nil {
				return err
			}
		}
		if hasNow(sp.Filter) {
			if err := exec(toDelete+`IN (SELECT t.id FROM syncentry s JOIN `+tbl+` t ON t.id = s.objectid
				WHERE s.sub = ? AND s.entity = ? AND s.state != 2 AND NOT `+cond+`)`,
				append([]any{gen, sub, e.Name, sub, e.Name}, args...)...); err != nil {
				return err
			}
		}
	}
	return exec(`INSERT INTO subscription_specs (sub, entity, hash) VALUES (?, ?, ?)
		ON CONFLICT (sub, entity) DO UPDATE SET hash = excluded.hash`, sub, e.Name, sp.Hash)
}

func hasNow(x crm.Expr) bool {
	switch x := x.(type) {
	case *crm.Logical:
		return hasNow(x.Left) || hasNow(x.Right)
	case *crm.Not:
		return hasNow(x.X)
	case *crm.Compare:
		return x.Value.Kind == crm.KindNow
	}
	return false
}

// batchRange is an open batch: the pending rows up to (hiState, hiObj) in
// (state, objectid) order that were marked by a prepare of generation <=
// gen. Rows marked again by a later prepare leave it (they changed; a later
// batch carries them), and no row can join it, so the batch can be sent
// again and acknowledged without a per-row batch column.
type batchRange struct {
	id      int64
	hiState int
	hiObj   string
	gen     int64
}

// member returns the SQL condition over syncentry columns (with the table
// alias prefix p, e.g. "s.") and arguments selecting the batch's rows of
// one state; ok is false when the batch holds none of that state.
func (b batchRange) member(p string, state int) (cond string, args []any, ok bool) {
	switch {
	case state < b.hiState:
		return p + "state = ? AND " + p + "gen <= ?", []any{state, b.gen}, true
	case state == b.hiState:
		return p + "state = ? AND " + p + "gen <= ? AND " + p + "objectid <= ?", []any{state, b.gen, b.hiObj}, true
	}
	return "", nil, false
}

// NextBatch cuts (or re-sends) a batch for one entity and encodes it. The
// batch's state-1 rows are checked against req.Spec as they are encoded: a
// record that left the view since prepare is not sent; its row goes to
// state 2 in a newer generation, so it leaves this batch (also when it is
// sent again) and a later batch reports it as removed.
func (s *Store) NextBatch(ctx context.Context, sub crmserver.Subscription, req crmserver.SyncBatchRequest) ([]byte, bool, error) {
	e, max := req.Spec.Entity, req.Max
	if e == nil {
		return nil, false, fmt.Errorf("%w: crmstore: batch without an entity", crm.ErrInvalidArgument)
	}
	if max <= 0 {
		max = 5000
	}
	var payload []byte
	ok := false
	err := s.Update(ctx, func(tx crmserver.Tx) error {
		t := tx.(*txn)
		var b batchRange
		err := t.q.QueryRowContext(ctx, "SELECT id, histate, hiobj, gen FROM batches WHERE sub = ? AND entity = ? AND acked = 0 ORDER BY id LIMIT 1",
			sub.ID, e.Name).Scan(&b.id, &b.hiState, &b.hiObj, &b.gen)
		switch {
		case err == errNoRows:
			// The batch ends at the max-th pending row, or at the last one.
			err := t.q.QueryRowContext(ctx, `SELECT state, objectid FROM syncentry INDEXED BY syncentry_state
				WHERE sub = ? AND entity = ? AND state IN (1, 2) ORDER BY state, objectid LIMIT 1 OFFSET ?`,
				sub.ID, e.Name, max-1).Scan(&b.hiState, &b.hiObj)
			if err == errNoRows {
				err = t.q.QueryRowContext(ctx, `SELECT state, objectid FROM syncentry INDEXED BY syncentry_state
					WHERE sub = ? AND entity = ? AND state IN (1, 2) ORDER BY state DESC, objectid DESC LIMIT 1`,
					sub.ID, e.Name).Scan(&b.hiState, &b.hiObj)
				if err == errNoRows {
					return nil // nothing pending
				}
			}
			if err != nil {
				return fmt.Errorf("crmstore: batch: %w", err)
			}
			if err := t.q.QueryRowContext(ctx, "SELECT gen FROM subscriptions WHERE id = ?", sub.ID).Scan(&b.gen); err != nil {
				return fmt.Errorf("crmstore: batch: %w", err)
			}
			if err := t.q.QueryRowContext(ctx, `INSERT INTO batches (sub, entity, rows, created, histate, hiobj, gen)
				VALUES (?, ?, 0, ?, ?, ?, ?) RETURNING id`, sub.ID, e.Name, unix(s.now()), b.hiState, b.hiObj, b.gen).Scan(&b.id); err != nil {
				return fmt.Errorf("crmstore: batch: %w", err)
			}
		case err != nil:
			return fmt.Errorf("crmstore: batch: %w", err)
		}
		p, n, err := t.encodeBatch(ctx, sub.ID, req, b)
		if err != nil {
			return err
		}
		if _, err := t.q.ExecContext(ctx, "UPDATE batches SET rows = ? WHERE id = ?", n, b.id); err != nil {
			return fmt.Errorf("crmstore: batch: %w", err)
		}
		payload, ok = p, true
		return nil
	})
	return payload, ok, err
}

// viewCond compiles the spec of a batch request into an SQL condition over
// the entity table aliased t (1 when the record is in the view).
func viewCond(req crmserver.SyncBatchRequest) (string, []any, error) {
	sp := req.Spec
	switch {
	case sp.Excluded:
		return "false", nil, nil
	case sp.Filter == nil:
		return "true", nil, nil
	}
	if err := sp.Entity.CheckQuery(crm.Query{Filter: sp.Filter}); err != nil {
		return "", nil, err
	}
	c, a, err := compileFilter(sp.Entity, sp.Filter, env{me: req.Me, now: req.Now})
	if err != nil {
		return "", nil, err
	}
	return "coalesce((" + c + "), false)", a, nil
}

func (t *txn) encodeBatch(ctx context.Context, sub string, req crmserver.SyncBatchRequest, b batchRange) ([]byte, int, error) {
	e := req.Spec.Entity
	cols, attrs := selectList(e, nil)
	wire := make([]crm.Attribute, len(attrs))
	for i, a := range attrs {
		wire[i] = crm.Attribute{Name: a.Name, Type: a.Type}
	}
	enc, err := crm.NewBatchEncoder(uint64(b.id), e.Name, wire)
	if err != nil {
		return nil, 0, err
	}
	view, vargs, err := viewCond(req)
	if err != nil {
		return nil, 0, err
	}
	if cond, args, ok := b.member("s.", crm.SyncStateToDelete); ok {
		// A row whose record still exists left the view (reassigned, out of
		// the filter); one whose record is gone is a deletion (tombstone).
		rows, err := t.q.QueryContext(ctx, "SELECT s.objectid, EXISTS (SELECT 1 FROM "+table(e)+" t WHERE t.id = s.objectid) FROM syncentry s INDEXED BY syncentry_state WHERE s.sub = ? AND s.entity = ? AND "+cond,
			append([]any{sub, e.Name}, args...)...)
		if err != nil {
			return nil, 0, fmt.Errorf("crmstore: batch: %w", err)
		}
		for rows.Next() {
			var s string
			var exists bool
			if err := rows.Scan(&s, &exists); err != nil {
				rows.Close()
				return nil, 0, fmt.Errorf("crmstore: batch: %w", err)
			}
			oid, err := crm.ParseID(s)
			if err != nil {
				rows.Close()
				return nil, 0, fmt.Errorf("crmstore: batch: %w", err)
			}
			if exists && req.LeftRows {
				enc.LeftFilter(oid)
			} else {
				enc.Delete(oid)
			}
		}
		rows.Close()
	}
	cond, args, ok := b.member("", crm.SyncStateToSend)
	if !ok {
		return enc.Payload(), enc.Rows(), nil
	}
	// The batch's state-1 rows in id order, with the version prepare saw.
	rows, err := t.q.QueryContext(ctx, "SELECT objectid, version FROM syncentry INDEXED BY syncentry_state WHERE sub = ? AND entity = ? AND "+cond+
		" ORDER BY objectid", append([]any{sub, e.Name}, args...)...)
	if err != nil {
		return nil, 0, fmt.Errorf("crmstore: batch: %w", err)
	}
	var pend []pending
	for rows.Next() {
		var p pending
		if err := rows.Scan(&p.id, &p.version); err != nil {
			rows.Close()
			return nil, 0, fmt.Errorf("crmstore: batch: %w", err)
		}
		pend = append(pend, p)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("crmstore: batch: %w", err)
	}
	if len(pend) == 0 {
		return enc.Payload(), enc.Rows(), nil
	}
	rd := recordReader{e: e, cols: cols, attrs: attrs, view: view, vargs: vargs, enc: enc, found: make(map[string]bool, len(pend))}
	cp := enc.Checkpoint()
	done := false
	if len(pend) >= mergeMinRows {
		if done, err = t.mergeRecords(ctx, &rd, pend); err != nil {
			return nil, 0, err
		}
		if !done {
			enc.Rollback(cp)
			rd.changed, rd.left = nil, nil
			clear(rd.found)
		}
	}
	if !done {
		if err := t.joinRecords(ctx, &rd, sub, b); err != nil {
			return nil, 0, err
		}
	}
	// A record deleted since prepare has no row to read: its entry goes
	// to state 2 like one that left the view, or batches would be cut for
	// it until the next prepare (a client that reads batches until none
	// is left would never get there). A delete of an id the client never
	// had is ignored by it.
	for _, p := range pend {
		if !rd.found[p.id] {
			rd.left = append(rd.left, p.id)
		}
	}
	// The version sent is remembered, so that postsync can tell a record
	// that changed after this point (it stays 1 and is sent again). It
	// differs from the one prepare saw only for records changed since.
	for _, m := range rd.changed {
		if _, err := t.q.ExecContext(ctx, "UPDATE syncentry SET version = ? WHERE sub = ? AND entity = ? AND objectid = ?", m.version, sub, e.Name, m.id); err != nil {
			return nil, 0, fmt.Errorf("crmstore: batch: %w", err)
		}
	}
	if len(rd.left) > 0 {
		// Out of the view since prepare: state 2 in a generation newer than
		// this batch's, so the row leaves it and the next batch removes it.
		var gen int64
		if err := t.q.QueryRowContext(ctx, "UPDATE subscriptions SET gen = gen + 1 WHERE id = ? RETURNING gen", sub).Scan(&gen); err != nil {
			return nil, 0, fmt.Errorf("crmstore: batch: %w", err)
		}
		for _, id := range rd.left {
			if _, err := t.q.ExecContext(ctx, "UPDATE syncentry SET state = 2, gen = ? WHERE sub = ? AND entity = ? AND objectid = ?", gen, sub, e.Name, id); err != nil {
				return nil, 0, fmt.Errorf("crmstore: batch: %w", err)
			}
		}
	}
	return enc.Payload(), enc.Rows(), nil
}

// recordReader encodes the records of a batch's state-1 rows that are in
// the view, and collects the rows whose version changed since prepare and
// those that left the view.
type recordReader struct {
	e       *crm.Entity
	cols    string
	attrs   []*crm.Attribute
	view    string // SQL condition over t: the record is in the view
	vargs   []any
	enc     *crm.BatchEncoder
	changed []pending
	left    []string
	found   map[string]bool // ids of the batch whose record was read
}

// pending is one state-1 SyncEntry row of a batch.
type pending struct {
	id      string
	version int64
}

// mergeMinRows is the batch size from which records are read by one range
// scan of the entity table merged with the batch's ids (both in id order)
// instead of one lookup per row; mergeSlack bounds the rows that scan may
// read that are not in the batch before it gives up.
var (
	mergeMinRows = 1000
	mergeSlack   = 3
)

// mergeRecords reads the entity table from the batch's first to its last
// id and encodes the rows that are in the batch. A scan that reads more than
// mergeSlack times as many rows as the batch holds (a sparse batch) stops
// with done false.
func (t *txn) mergeRecords(ctx context.Context, rd *recordReader, pend []pending) (done bool, err error) {
	rows, err := t.q.QueryContext(ctx, "SELECT "+rd.cols+", "+rd.view+" FROM "+table(rd.e)+" t WHERE t.id >= ? AND t.id <= ? ORDER BY t.id",
		append(append([]any{}, rd.vargs...), pend[0].id, pend[len(pend)-1].id)...)
	if err != nil {
		return false, fmt.Errorf("crmstore: batch: %w", err)
	}
	defer rows.Close()
	sc := newScanner(rd.e, rd.attrs)
	var inView bool
	sc.ptrs = append(sc.ptrs, &inView)
	vals := make([]any, 0, len(rd.attrs))
	limit := mergeSlack*len(pend) + mergeMinRows
	i, scanned := 0, 0
	for rows.Next() && i < len(pend) {
		scanned++
		if scanned > limit {
			return false, nil
		}
		if err := rows.Scan(sc.ptrs...); err != nil {
			return false, fmt.Errorf("crmstore: batch: %w", err)
		}
		id, _ := sc.vals[0].(string)
		for i < len(pend) && pend[i].id < id {
			i++ // gone since prepare; the next prepare turns it into a delete
		}
		if i == len(pend) || pend[i].id != id {
			continue
		}
		rd.found[id] = true
		if !inView {
			rd.left = append(rd.left, id)
			i++
			continue
		}
		var oid crm.ID
		var ver int64
		vals, oid, ver, err = sc.values(vals)
		if err != nil {
			return false, fmt.Errorf("crmstore: batch: %w", err)
		}
		if ver != pend[i].version {
			rd.changed = append(rd.changed, pending{id, ver})
		}
		if err := rd.enc.Upsert(oid, ver, vals); err != nil {
			return false, err
		}
		i++
	}
	if err := rows.Err(); err != nil {
		return false, fmt.Errorf("crmstore: batch: %w", err)
	}
	return true, nil
}

// joinRecords reads the batch's records with one lookup per row.
func (t *txn) joinRecords(ctx context.Context, rd *recordReader, sub string, b batchRange) error {
	cond, args, _ := b.member("s.", crm.SyncStateToSend)
	rows, err := t.q.QueryContext(ctx, "SELECT "+rd.cols+", s.version, "+rd.view+" FROM syncentry s INDEXED BY syncentry_state JOIN "+table(rd.e)+
		" t ON t.id = s.objectid WHERE s.sub = ? AND s.entity = ? AND "+cond,
		append(append(append([]any{}, rd.vargs...), sub, rd.e.Name), args...)...)
	if err != nil {
		return fmt.Errorf("crmstore: batch: %w", err)
	}
	defer rows.Close()
	sc := newScanner(rd.e, rd.attrs)
	var seen int64
	var inView bool
	sc.ptrs = append(sc.ptrs, &seen, &inView)
	vals := make([]any, 0, len(rd.attrs))
	for rows.Next() {
		if err := rows.Scan(sc.ptrs...); err != nil {
			return fmt.Errorf("crmstore: batch: %w", err)
		}
		id, _ := sc.vals[0].(string)
		rd.found[id] = true
		if !inView {
			rd.left = append(rd.left, id)
			continue
		}
		var oid crm.ID
		var ver int64
		vals, oid, ver, err = sc.values(vals)
		if err != nil {
			return fmt.Errorf("crmstore: batch: %w", err)
		}
		if ver != seen {
			rd.changed = append(rd.changed, pending{oid.String(), ver})
		}
		if err := rd.enc.Upsert(oid, ver, vals); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("crmstore: batch: %w", err)
	}
	return nil
}

// PostSync acknowledges a batch: rows still at the version the batch sent
// go to 0, rows whose record changed since stay 1 (and go out in a later
// batch), deletes are removed.
func (s *Store) PostSync(ctx context.Context, sub crmserver.Subscription, batchID uint64) (crmserver.PostSyncResult, error) {
	res := crmserver.PostSyncResult{BatchID: batchID}
	err := s.Update(ctx, func(tx crmserver.Tx) error {
		t := tx.(*txn)
		var acked bool
		b := batchRange{id: int64(batchID)}
		if err := t.q.QueryRowContext(ctx, "SELECT entity, acked, rows, histate, hiobj, gen FROM batches WHERE id = ? AND sub = ?", int64(batchID), sub.ID).
			Scan(&res.Entity, &acked, &res.RowCount, &b.hiState, &b.hiObj, &b.gen); err != nil {
			return notFound(err, fmt.Sprintf("batch %d", batchID))
		}
		if acked {
			res.Already = true
			return nil
		}
		m, _ := s.Metadata(ctx)
		e, err := m.Entity(res.Entity)
		if err != nil {
			return err
		}
		if cond, args, ok := b.member("", crm.SyncStateToDelete); ok {
			r, err := t.q.ExecContext(ctx, "DELETE FROM syncentry WHERE sub = ? AND entity = ? AND "+cond, append([]any{sub.ID, e.Name}, args...)...)
			if err != nil {
				return fmt.Errorf("crmstore: postsync: %w", err)
			}
			res.Removed, _ = r.RowsAffected()
		}
		if cond, args, ok := b.member("", crm.SyncStateToSend); ok {
			r, err := t.q.ExecContext(ctx, `UPDATE syncentry SET state = 0 WHERE sub = ? AND entity = ? AND `+cond+`
				AND version = (SELECT t.versionnumber FROM `+table(e)+` t WHERE t.id = syncentry.objectid)`, append([]any{sub.ID, e.Name}, args...)...)
			if err != nil {
				return fmt.Errorf("crmstore: postsync: %w", err)
			}
			res.Synced, _ = r.RowsAffected()
			if err := t.q.QueryRowContext(ctx, "SELECT count(*) FROM syncentry INDEXED BY syncentry_state WHERE sub = ? AND entity = ? AND "+cond,
				append([]any{sub.ID, e.Name}, args...)...).Scan(&res.Resend); err != nil {
				return fmt.Errorf("crmstore: postsync: %w", err)
			}
		}
		_, err = t.q.ExecContext(ctx, "UPDATE batches SET acked = 1 WHERE id = ?", int64(batchID))
		return err
	})
	return res, err
}

// AddSyncInfo stores the statistics of a run.
func (s *Store) AddSyncInfo(ctx context.Context, sub crmserver.Subscription, info crmserver.SyncInfo) error {
	info.RecordedOn = s.now().UTC().Truncate(time.Second)
	b, err := json.Marshal(info)
	if err != nil {
		return fmt.Errorf("crmstore: syncinfo: %w", err)
	}
	if _, err := s.x.ExecContext(ctx, "INSERT INTO syncinfo (sub, info) VALUES (?, ?)", sub.ID, string(b)); err != nil {
		return fmt.Errorf("crmstore: syncinfo: %w", err)
	}
	return nil
}

// SyncInfo returns the latest statistics, newest first.
func (s *Store) SyncInfo(ctx context.Context, sub crmserver.Subscription, limit int) ([]crmserver.SyncInfo, error) {
	if limit <= 0 {
		limit = 20
	}
	rows, err := s.x.QueryContext(ctx, "SELECT info FROM syncinfo WHERE sub = ? ORDER BY id DESC LIMIT ?", sub.ID, limit)
	if err != nil {
		return nil, fmt.Errorf("crmstore: syncinfo: %w", err)
	}
	defer rows.Close()
	out := []crmserver.SyncInfo{}
	for rows.Next() {
		var b string
		if err := rows.Scan(&b); err != nil {
			return nil, fmt.Errorf("crmstore: syncinfo: %w", err)
		}
		var in crmserver.SyncInfo
		if err := json.Unmarshal([]byte(b), &in); err != nil {
			return nil, fmt.Errorf("crmstore: syncinfo: %w", err)
		}
		out = append(out, in)
	}
	return out, rows.Err()
}

func userKey(u crm.ID) string {
	if u == (crm.ID{}) {
		return ""
	}
	return u.String()
}

// LocalFilter returns the user's filter for an entity, else the default.
// A locked default wins over the user's own.
func (s *Store) LocalFilter(ctx context.Context, user crm.ID, entity string) (crmserver.LocalFilter, bool, error) {
	rows, err := s.x.QueryContext(ctx, "SELECT user, filter, locked FROM localfilters WHERE entity = ? AND user IN (?, '')", entity, userKey(user))
	if err != nil {
		return crmserver.LocalFilter{}, false, fmt.Errorf("crmstore: local filter: %w", err)
	}
	defer rows.Close()
	var own, def *crmserver.LocalFilter
	for rows.Next() {
		var u string
		f := crmserver.LocalFilter{Entity: entity}
		if err := rows.Scan(&u, &f.Filter, &f.Locked); err != nil {
			return f, false, fmt.Errorf("crmstore: local filter: %w", err)
		}
		if u == "" {
			def = &f
		} else {
			f.User = user
			own = &f
		}
	}
	if err := rows.Err(); err != nil {
		return crmserver.LocalFilter{}, false, fmt.Errorf("crmstore: local filter: %w", err)
	}
	switch {
	case def != nil && def.Locked:
		return *def, true, nil
	case own != nil:
		return *own, true, nil
	case def != nil:
		return *def, true, nil
	}
	return crmserver.LocalFilter{}, false, nil
}

// SetLocalFilter stores a user's filter or (user zero) a default.
func (s *Store) SetLocalFilter(ctx context.Context, user crm.ID, f crmserver.LocalFilter) error {
	if _, err := s.x.ExecContext(ctx, `INSERT INTO localfilters (user, entity, filter, locked) VALUES (?, ?, ?, ?)
		ON CONFLICT (user, entity) DO UPDATE SET filter = excluded.filter, locked = excluded.locked`,
		userKey(user), f.Entity, f.Filter, f.Locked && user == (crm.ID{})); err != nil {
		return fmt.Errorf("crmstore: local filter: %w", err)
	}
	return nil
}

// ClaimPrimary makes clientID the user's primary and bumps the generation.
func (s *Store) ClaimPrimary(ctx context.Context, user crm.ID, clientID string) (crmserver.Primary, error) {
	if clientID == "" || len(clientID) > 200 {
		return crmserver.Primary{}, fmt.Errorf("%w: client id must have 1 to 200 bytes", crm.ErrInvalidArgument)
	}
	p := crmserver.Primary{ClientID: clientID}
	now := s.now().UTC().Truncate(time.Second)
	err := s.x.QueryRowContext(ctx, `INSERT INTO primaries (user, client, generation, claimed) VALUES (?, ?, 1, ?)
		ON CONFLICT (user) DO UPDATE SET client = excluded.client, generation = primaries.generation + 1, claimed = excluded.claimed
		RETURNING generation`, user.String(), clientID, unix(now)).Scan(&p.Generation)
	if err != nil {
		return p, fmt.Errorf("crmstore: claim primary: %w", err)
	}
	p.ClaimedOn = now
	return p, nil
}

// Primary returns the user's primary client (generation 0 when none).
func (s *Store) Primary(ctx context.Context, user crm.ID) (crmserver.Primary, error) {
	var p crmserver.Primary
	var claimed int64
	err := s.x.QueryRowContext(ctx, "SELECT client, generation, claimed FROM primaries WHERE user = ?", user.String()).Scan(&p.ClientID, &p.Generation, &claimed)
	if err == errNoRows {
		return p, nil
	}
	if err != nil {
		return p, fmt.Errorf("crmstore: primary: %w", err)
	}
	p.ClaimedOn = fromUnix(claimed)
	return p, nil
}
