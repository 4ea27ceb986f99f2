package offline

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"golang.org/x/crypto/bcrypt"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmclient"
	"github.com/pimbridge/pimbridge/crm/crmserver"
	"github.com/pimbridge/pimbridge/crm/crmstore"
)

// Credentials are the user's CRM login; the local API accepts the same
// (a bcrypt hash of the password is cached in the replica).
type Credentials struct {
	User, Password string
}

// Report describes one GoOffline run.
type Report struct {
	Subscription string
	Schema       []SchemaChange
	Entities     []crm.SyncInfoCount
	Rows         int64 // upserts and deletes applied
	Batches      int   // batches applied
	Resent       int   // batches the server sent again that were already applied
	Bytes        int64
	Duration     time.Duration
}

// GoOffline fills (or refreshes) the replica from the server: subscribe,
// prepare, schema propagation, then per entity batches of dynamic size,
// each applied in one replica transaction with its batch id and
// acknowledged with postsync, then RecordSyncInfo. The client state is
// GoingOffline during the run and Offline after it.
//
// A broken run (error, cancel, kill -9) can simply be started again: a
// batch the server re-sends because it was not acknowledged is recognised
// by its id and only acknowledged; acknowledged batches are never sent
// again.
func (e *Engine) GoOffline(ctx context.Context, r Remote, cred Credentials) (Report, error) {
	e.run.Lock()
	defer e.run.Unlock()
	if err := e.setState(ctx, GoingOffline); err != nil {
		return Report{}, err
	}
	rep, err := e.goOffline(ctx, r, cred)
	switch {
	case err == nil:
		err = e.setState(ctx, Offline)
		if err == nil {
			err = setState(ctx, e.replica.DB(), keyLastOffline, e.stamp())
		}
	case errors.Is(err, context.Canceled):
		e.setState(ctx, GoOfflineCanceled)
	case errors.Is(err, ErrServerUnavailable):
		e.setState(ctx, ServerUnavailable)
	case errors.Is(err, ErrClientVersion):
		e.setState(ctx, ClientVersionLower)
	case errors.Is(err, ErrServerVersion):
		e.setState(ctx, ClientVersionHigher)
	default:
		e.setState(ctx, Online)
	}
	e.setError(ctx, err)
	return rep, err
}

// Refresh is the background synchronization of the replica while online
// (an incremental GoOffline that leaves the client online). The daemon
// calls it every RefreshInterval.
func (e *Engine) Refresh(ctx context.Context, r Remote, cred Credentials) (Report, error) {
	e.run.Lock()
	defer e.run.Unlock()
	st, err := e.State(ctx)
	if err != nil {
		return Report{}, err
	}
	if st.IsOffline() {
		return Report{}, fmt.Errorf("offline: refresh: the client is %s", st)
	}
	if err := e.setState(ctx, BackgroundSync); err != nil {
		return Report{}, err
	}
	rep, err := e.goOffline(ctx, r, cred)
	next := Online
	if errors.Is(err, ErrServerUnavailable) {
		next = ServerUnavailable
	} else if errors.Is(err, ErrClientVersion) {
		next = ClientVersionLower
	} else if errors.Is(err, ErrServerVersion) {
		next = ClientVersionHigher
	}
	e.setState(ctx, next)
	e.setError(ctx, err)
	return rep, err
}

func (e *Engine) goOffline(ctx context.Context, r Remote, cred Credentials) (Report, error) {
	start := e.now()
	db := e.replica.DB()
	r = e.withToken(ctx, r)
	who, err := r.WhoAmI(ctx)
	if err != nil {
		return Report{}, unavailable(fmt.Errorf("offline: whoami: %w", err))
	}
	if !slicesContains(who.Privileges, crmserver.PrivGoOffline) {
		return Report{}, fmt.Errorf("%w: %s lacks the Go Offline privilege", crm.ErrForbidden, who.Name)
	}
	if err := e.cacheUser(ctx, who, cred); err != nil {
		return Report{}, err
	}
	if err := setState(ctx, db, keyServerURL, r.BaseURL()); err != nil {
		return Report{}, err
	}
	e.restoreLater(ctx, r)
	sub, err := r.Subscribe(ctx, e.opts.ClientID, crm.KindOffline)
	if err != nil {
		return Report{}, unavailable(fmt.Errorf("offline: subscribe: %w", err))
	}
	if err := setState(ctx, db, keySubscription, sub.ID); err != nil {
		return Report{}, err
	}
	rep := Report{Subscription: sub.ID}
	prep, err := r.Prepare(ctx, sub.ID)
	if err != nil {
		return rep, unavailable(fmt.Errorf("offline: prepare: %w", err))
	}
	metaVer, changes, err := e.propagateSchema(ctx, r)
	if err != nil {
		return rep, err
	}
	rep.Schema = changes
	var total int64
	for _, c := range prep.Entities {
		total += c.InsertCount + c.DeleteCount
	}
	var done int64
	limit := prep.MaxBatchSize // the server's largest batch, or learned from a refusal
	info := crm.SyncInfo{RunID: uuid.NewString(), Started: start.UTC()}
	for _, c := range prep.Entities {
		if c.InsertCount+c.DeleteCount == 0 {
			continue
		}
		es := time.Now()
		cnt := crm.SyncInfoCount{Entity: c.Entity}
		sizer := NewSizer(e.opts.Batch, c.InsertCount+c.DeleteCount)
		sizer.Limit(limit)
		retries := 0
		for {
			t0 := time.Now()
			b, err := e.fetchBatch(ctx, r, sub.ID, c.Entity, sizer.Size())
			if tooLarge(err) && sizer.Refused() {
				// A server that did not state its limit (or lowered it):
				// ask for less, without spending a retry, for the rest of
				// the run.
				limit = sizer.Size()
				e.log.Warn("offline: the server refused the batch size; asking for less", "entity", c.Entity, "size", sizer.Size(), "err", err)
				continue
			}
			if err != nil {
				err = unavailable(fmt.Errorf("offline: batch of %s: %w", c.Entity, err))
				if errors.Is(err, ErrServerUnavailable) && retries < e.opts.Batch.MaxRetryCount {
					retries++
					e.log.Warn("offline: batch failed, retrying", "entity", c.Entity, "attempt", retries, "err", err)
					if err := sleepCtx(ctx, time.Duration(retries)*200*time.Millisecond); err != nil {
						return rep, err
					}
					continue
				}
				return rep, err
			}
			if b.Header.Result == crm.BatchEmpty {
				break
			}
			if int64(b.Header.MetadataVersion) != metaVer {
				b.Close()
				// Never insert rows cut with another schema: refresh it
				// and fetch the (unacknowledged, re-encoded) batch again.
				if retries >= max(e.opts.Batch.MaxRetryCount, 1) {
					return rep, fmt.Errorf("%w: batch %d has version %d, replica %d", ErrSchemaMismatch, b.ID, b.Header.MetadataVersion, metaVer)
				}
				retries++
				e.log.Warn("offline: metadata version changed, propagating schema", "batch", b.ID, "batch_version", b.Header.MetadataVersion, "replica_version", metaVer)
				if metaVer, changes, err = e.propagateSchema(ctx, r); err != nil {
					return rep, err
				}
				rep.Schema = append(rep.Schema, changes...)
				continue
			}
			resent, err := e.applyBatch(ctx, b)
			b.Close()
			if err != nil {
				return rep, err
			}
			ps, err := e.postSync(ctx, r, sub.ID, b.ID)
			if err != nil {
				return rep, err
			}
			if ps.Already {
				e.log.Error("offline: the server had already acknowledged a batch it sent", "batch", b.ID)
			}
			retries = 0
			n := int64(b.Rows)
			rep.Batches++
			rep.Bytes += int64(b.Header.PayloadSize) + crm.BatchHeaderSize
			if resent {
				rep.Resent++
			}
			cnt.Inserted += int64(b.Upserts)
			cnt.Deleted += int64(b.Rows - b.Upserts)
			rep.Rows += n
			done += n
			sizer.Observe(time.Since(t0))
			if e.opts.Progress != nil {
				e.opts.Progress(Progress{Entity: c.Entity, Done: done, Total: total, BatchSize: sizer.Size()})
			}
		}
		cnt.DurationMS = time.Since(es).Milliseconds()
		rep.Entities = append(rep.Entities, cnt)
	}
	info.Finished = e.now().UTC()
	info.Entities, info.Bytes, info.Batches = rep.Entities, rep.Bytes, rep.Batches
	if err := r.RecordSyncInfo(ctx, sub.ID, info); err != nil {
		return rep, unavailable(fmt.Errorf("offline: syncinfo: %w", err))
	}
	rep.Duration = e.now().Sub(start)
	return rep, nil
}

// tooLarge reports a batch request the server refused for its size.
func tooLarge(err error) bool {
	var ae *crmclient.APIError
	return errors.As(err, &ae) && ae.Code == "request_too_large"
}

// rawBatch is a fetched batch whose rows are not decoded yet: the payload
// waits in a spool file beside the replica and is decoded and inserted
// applyChunk rows at a time, so that memory follows applyChunk, not the
// size of a batch (which dynamic batching grows to hundreds of thousands
// of rows). The transfer happens before the replica transaction opens, so a
// slow link never holds the replica's write lock.
type rawBatch struct {
	Header  crm.BatchHeader
	ID      uint64
	Entity  string
	Rows    int // upserts and deletes
	Upserts int
	spool   *os.File // the payload; nil when empty
}

// applyChunk is how many rows of a batch are decoded at once.
const applyChunk = 2000

// decode hands the batch's rows to fn, chunk rows at a time. Only a batch
// with rows (not BatchEmpty) has a spool to decode.
func (b *rawBatch) decode(chunk int, fn func(*crm.Batch) error) error {
	if _, err := b.spool.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("offline: batch spool: %w", err)
	}
	return crm.DecodeBatchStream(b.spool, int64(b.Header.PayloadSize), chunk, fn)
}

// Close drops the spool file.
func (b *rawBatch) Close() {
	if b.spool != nil {
		b.spool.Close()
		os.Remove(b.spool.Name()) // where the early removal could not
		b.spool = nil
	}
}

// fetchBatch gets the next batch of an entity (crmclient.NextBatch's
// request) into a spool file and reads its header, id and entity, without
// decoding rows. The caller closes the batch.
func (e *Engine) fetchBatch(ctx context.Context, r Remote, sub, entity string, size int) (*rawBatch, error) {
	p := "/api/sync/subscriptions/" + url.PathEscape(sub) + "/batches?entity=" + url.QueryEscape(entity)
	if size > 0 {
		p += "&size=" + strconv.Itoa(size)
	}
	resp, err := r.Open(ctx, http.MethodGet, p, nil, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return nil, crmclient.PartError(crm.BatchResponse{Status: resp.StatusCode, Body: body})
	}
	var hb [crm.BatchHeaderSize]byte
	if _, err := io.ReadFull(resp.Body, hb[:]); err != nil {
		return nil, fmt.Errorf("%w: reading the header: %w", crm.ErrBadBatch, err)
	}
	b := &rawBatch{Header: crm.BatchHeader{
		Result:          binary.BigEndian.Uint32(hb[0:]),
		PayloadSize:     binary.BigEndian.Uint64(hb[4:]),
		MetadataVersion: binary.BigEndian.Uint32(hb[12:]),
	}}
	if b.Header.Result == crm.BatchEmpty {
		return b, nil
	}
	if b.spool, err = e.newSpool(); err != nil {
		return nil, err
	}
	if n, err := io.CopyN(b.spool, resp.Body, int64(b.Header.PayloadSize)); err != nil {
		b.Close()
		return nil, fmt.Errorf("offline: batch payload (%d of %d bytes): %w", n, b.Header.PayloadSize, err)
	}
	var more [1]byte
	if _, err := io.ReadFull(resp.Body, more[:]); err == nil {
		b.Close()
		return nil, fmt.Errorf("%w: longer than the %d bytes its header says", crm.ErrBadBatch, b.Header.PayloadSize)
	}
	// The header part of the payload: id, entity, columns, row count.
	err = b.decode(1, func(x *crm.Batch) error {
		b.ID, b.Entity = x.ID, x.Entity
		return errHeaderRead
	})
	if err != nil && !errors.Is(err, errHeaderRead) {
		b.Close()
		return nil, err
	}
	if b.Entity != entity {
		b.Close()
		return nil, fmt.Errorf("%w: batch of %q for %q", crm.ErrBadBatch, b.Entity, entity)
	}
	return b, nil
}

// newSpool creates a batch spool file beside the replica and unlinks it at
// once: the open file stays usable and nothing is left behind, even by a
// kill -9.
func (e *Engine) newSpool() (*os.File, error) {
	f, err := os.CreateTemp(filepath.Dir(e.opts.Path), "."+filepath.Base(e.opts.Path)+".batch-*")
	if err != nil {
		return nil, fmt.Errorf("offline: batch spool: %w", err)
	}
	os.Remove(f.Name())
	return f, nil
}

var errHeaderRead = errors.New("header read")

// applyBatch inserts a batch into the replica together with its id, in one
// transaction, decoding applyChunk rows at a time. resent reports a batch
// whose id was already recorded (the server sent it again because the
// acknowledgement was lost). It counts the batch's rows into b.
func (e *Engine) applyBatch(ctx context.Context, b *rawBatch) (resent bool, err error) {
	md, err := e.replica.Metadata(ctx)
	if err != nil {
		return false, err
	}
	ent, err := md.Entity(b.Entity)
	if err != nil {
		return false, fmt.Errorf("offline: batch %d: %w", b.ID, err)
	}
	err = e.replica.Update(ctx, func(tx crmserver.Tx) error {
		stx, _ := crmstore.SQLTx(tx)
		var have int
		if err := stx.QueryRowContext(ctx, "SELECT count(*) FROM offline_batches WHERE id = ?", int64(b.ID)).Scan(&have); err != nil {
			return fmt.Errorf("offline: batch %d: %w", b.ID, err)
		}
		resent = have > 0
		// A re-sent batch is applied again: the server re-encodes it with
		// the records' current values, and upserts are idempotent.
		b.Rows, b.Upserts = 0, 0
		err := b.decode(applyChunk, func(part *crm.Batch) error {
			b.Rows += len(part.Upserts) + len(part.Deletes)
			b.Upserts += len(part.Upserts)
			return crmstore.ApplyBatch(ctx, tx, ent, part)
		})
		if err != nil {
			return fmt.Errorf("offline: apply batch %d: %w", b.ID, err)
		}
		var seq int64
		if err := stx.QueryRowContext(ctx, `INSERT INTO offline_fetches (batch, entity, rows, resent, fetched_on) VALUES (?, ?, ?, ?, ?) RETURNING seq`,
			int64(b.ID), b.Entity, b.Rows, resent, e.now().Unix()).Scan(&seq); err != nil {
			return fmt.Errorf("offline: batch %d: %w", b.ID, err)
		}
		if _, err := stx.ExecContext(ctx, "INSERT OR IGNORE INTO offline_batches (id, entity, rows, applied_seq) VALUES (?, ?, ?, ?)",
			int64(b.ID), b.Entity, b.Rows, seq); err != nil {
			return fmt.Errorf("offline: batch %d: %w", b.ID, err)
		}
		return nil
	})
	return resent, err
}

func (e *Engine) postSync(ctx context.Context, r Remote, sub string, id uint64) (crm.PostSyncResult, error) {
	var ps crm.PostSyncResult
	var err error
	for attempt := 0; ; attempt++ {
		ps, err = r.PostSync(ctx, sub, id)
		if err == nil {
			break
		}
		err = unavailable(fmt.Errorf("offline: postsync %d: %w", id, err))
		if !errors.Is(err, ErrServerUnavailable) || attempt >= e.opts.Batch.MaxRetryCount {
			return ps, err
		}
		if err := sleepCtx(ctx, time.Duration(attempt+1)*200*time.Millisecond); err != nil {
			return ps, err
		}
	}
	_, err = e.replica.DB().ExecContext(ctx, `UPDATE offline_batches SET acked_seq = (SELECT max(seq) FROM offline_fetches WHERE batch = ?) WHERE id = ?`, int64(id), int64(id))
	if err != nil {
		return ps, fmt.Errorf("offline: postsync %d: %w", id, err)
	}
	return ps, nil
}

// cacheUser stores who the user is, the user's roles as the server defines
// them (custom roles, narrowed or widened built-in ones) and a hash of the
// password, for the local API's authentication and security checks.
func (e *Engine) cacheUser(ctx context.Context, who crmclient.WhoAmI, cred Credentials) error {
	db := e.replica.DB()
	defs, err := json.Marshal(who.RoleDefinitions)
	if err != nil {
		return fmt.Errorf("offline: cache roles: %w", err)
	}
	kv := []string{keyUserID, who.UserID.String(), keyUserName, who.Name, keyRoles, strings.Join(who.Roles, ","), keyRoleDefs, string(defs)}
	if cred.Password != "" {
		old, err := getState(ctx, db, keyPasswordHash)
		if err != nil {
			return err
		}
		if old == "" || bcrypt.CompareHashAndPassword([]byte(old), []byte(cred.Password)) != nil {
			cost := e.opts.BcryptCost
			if cost == 0 {
				cost = bcrypt.DefaultCost
			}
			h, err := bcrypt.GenerateFromPassword([]byte(cred.Password), cost)
			if err != nil {
				return fmt.Errorf("offline: hash password: %w", err)
			}
			kv = append(kv, keyPasswordHash, string(h))
		}
	}
	return setState(ctx, db, kv...)
}

func slicesContains(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
