package crmserver

import (
	"context"
	"time"

	"github.com/pimbridge/pimbridge/crm"
)

// Store is what the server needs from its storage. crmstore.Store (SQLite)
// implements it. Errors are the crm sentinels: crm.ErrNotFound for a missing
// record, user, subscription or batch; crm.ErrConflict for an existing key;
// crm.ErrUnauthenticated for bad credentials.
type Store interface {
	// Metadata returns the current schema. The result must not be modified.
	Metadata(ctx context.Context) (*crm.Metadata, error)
	// AddAttribute adds a custom attribute to an entity and bumps the
	// metadata version; it returns the new metadata.
	AddAttribute(ctx context.Context, entity string, a crm.Attribute) (*crm.Metadata, error)
	// AddEntity adds a custom entity (crm.NewCustomEntity) with its table;
	// AddRelationship a custom one-to-many relationship (a lookup on the
	// referencing entity) and returns it with its schema name. Both bump
	// the metadata version.
	AddEntity(ctx context.Context, e crm.Entity) (*crm.Metadata, error)
	AddRelationship(ctx context.Context, rel crm.Relationship) (*crm.Metadata, crm.Relationship, error)

	// View runs fn in a read-only snapshot; Update runs fn in one write
	// transaction that commits when fn returns nil and rolls back otherwise.
	View(ctx context.Context, fn func(Tx) error) error
	Update(ctx context.Context, fn func(Tx) error) error

	// Authenticate checks a user name and password; AuthenticateToken a
	// bearer token. Both return crm.ErrUnauthenticated on any mismatch.
	Authenticate(ctx context.Context, name, password string) (*Principal, error)
	AuthenticateToken(ctx context.Context, token string) (*Principal, error)
	// IssueToken creates a bearer token for a user, valid for ttl.
	IssueToken(ctx context.Context, user crm.ID, ttl time.Duration) (token string, expires time.Time, err error)

	SyncStore
}

// SyncStore is the server half of the sync protocol (docs/sync-protocol.md).
type SyncStore interface {
	// Subscribe returns the user's subscription of kind for clientID,
	// creating it when missing.
	Subscribe(ctx context.Context, user crm.ID, clientID, kind string) (crm.Subscription, error)
	// Subscriptions lists the user's subscriptions.
	Subscriptions(ctx context.Context, user crm.ID) ([]crm.Subscription, error)
	// Subscription returns one of the user's subscriptions; another user's
	// gives crm.ErrNotFound.
	Subscription(ctx context.Context, user crm.ID, id string) (crm.Subscription, error)
	DeleteSubscription(ctx context.Context, user crm.ID, id string) error
	// Prepare merges the records that match each spec into the
	// subscription's SyncEntry rows and returns the pending counts.
	Prepare(ctx context.Context, sub crm.Subscription, specs []SyncSpec, me crm.ID, now time.Time) ([]crm.PrepareCount, error)
	// NextBatch returns the payload of the next batch for one entity (see
	// crm.BatchEncoder): the open, unacknowledged batch again if there is
	// one, else a new batch of at most req.Max rows. ok is false when
	// nothing is pending. Every row is checked against req.Spec as it is
	// encoded: a record outside it is never sent with its content; it
	// leaves the batch and is sent as removed in a later one.
	NextBatch(ctx context.Context, sub crm.Subscription, req SyncBatchRequest) (payload []byte, ok bool, err error)
	// PostSync acknowledges a batch.
	PostSync(ctx context.Context, sub crm.Subscription, batchID uint64) (crm.PostSyncResult, error)
	// AddSyncInfo stores statistics of a run; SyncInfo returns the latest.
	AddSyncInfo(ctx context.Context, sub crm.Subscription, info crm.SyncInfo) error
	SyncInfo(ctx context.Context, sub crm.Subscription, limit int) ([]crm.SyncInfo, error)

	// LocalFilter returns the filter for a user and entity: the user's own,
	// else the default (user zero). ok is false when neither exists.
	LocalFilter(ctx context.Context, user crm.ID, entity string) (f crm.LocalFilter, ok bool, err error)
	// SetLocalFilter stores a filter; user zero sets the default.
	SetLocalFilter(ctx context.Context, user crm.ID, f crm.LocalFilter) error

	// ClaimPrimary makes clientID the user's synchronizing client and
	// returns the new fencing generation; Primary reads the current one.
	ClaimPrimary(ctx context.Context, user crm.ID, clientID string) (crm.Primary, error)
	Primary(ctx context.Context, user crm.ID) (crm.Primary, error)
}

// Tx is one transaction over records. Entities are given as metadata so that
// the store never trusts a name it did not validate.
type Tx interface {
	Get(ctx context.Context, e *crm.Entity, id crm.ID) (crm.Record, error)
	// Exists reports whether the record exists, without reading it.
	Exists(ctx context.Context, e *crm.Entity, id crm.ID) (bool, error)
	// Query returns at most limit records (0: all) after skipping skip.
	Query(ctx context.Context, e *crm.Entity, q crm.Query, opts QueryOptions) ([]crm.Record, error)
	// Insert creates r (r.ID set by the caller) with a new version number,
	// createdon and modifiedon; crm.ErrConflict when the id exists.
	Insert(ctx context.Context, e *crm.Entity, r crm.Record) (crm.Record, error)
	// Patch sets the named attributes and bumps the version.
	Patch(ctx context.Context, e *crm.Entity, id crm.ID, attrs map[string]any) (crm.Record, error)
	// Delete removes a record and leaves a tombstone.
	Delete(ctx context.Context, e *crm.Entity, id crm.ID) error
	// CreateHash returns the hash of the body that created a record
	// (idempotent POST); SetCreateHash stores it.
	CreateHash(ctx context.Context, e *crm.Entity, id crm.ID) (hash string, ok bool, err error)
	SetCreateHash(ctx context.Context, e *crm.Entity, id crm.ID, hash string) error
	// ReplayAnswer returns the answer recorded for a user's replay key
	// (HeaderReplayID); ok is false when there is none. SetReplayAnswer
	// records one, replacing an older one, and drops every key recorded
	// before expireBefore.
	ReplayAnswer(ctx context.Context, user crm.ID, key string) (a ReplayAnswer, ok bool, err error)
	SetReplayAnswer(ctx context.Context, user crm.ID, key string, a ReplayAnswer, expireBefore time.Time) error
	// Savepoint runs fn inside a savepoint of the transaction: when fn
	// returns an error, every write fn made is undone, the transaction
	// goes on, and that error is returned. Savepoints nest.
	Savepoint(ctx context.Context, fn func() error) error
}

// QueryOptions narrow a query beyond crm.Query.
type QueryOptions struct {
	Owner crm.ID // non-zero: only records this user owns (own-scope read)
	Me    crm.ID // value of @me
	Now   time.Time
	Skip  int
	Limit int // 0: no limit (q.Top still applies)
	// After, when set, starts the result after this record in the
	// query's order (its ordered attributes, then its id): keyset paging,
	// which neither skips nor repeats a record when others are added or
	// removed between pages. Query's records carry their ordered
	// attributes, selected or not, to page after.
	After *crm.Record
}

// SyncSpec says which records of one entity a subscription holds. Filter is
// nil for all records; Excluded means none (no read right), so every row
// becomes a delete. Hash identifies the spec: when it differs from the one
// used last, prepare re-evaluates every record of the entity.
type SyncSpec struct {
	Entity   *crm.Entity
	Filter   crm.Expr
	Excluded bool
	Hash     string
}

// SyncBatchRequest is what NextBatch needs: the entity's spec as of now (the
// subscription's filter and the caller's rights), the values of @me and
// @now, the batch size (0: 5000) and whether the client reads
// crm.RowLeftFilter rows (else a record that left the view is sent as a
// delete, as to older clients).
type SyncBatchRequest struct {
	Spec     SyncSpec
	Me       crm.ID
	Now      time.Time
	Max      int
	LeftRows bool
}
