package offline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmclient"
	"github.com/pimbridge/pimbridge/crm/crmserver"
	"github.com/pimbridge/pimbridge/crm/crmstore"
)

// Sentinel errors.
var (
	// ErrNotReady: the replica has never completed a GoOffline, so the
	// client cannot go offline or serve the local API.
	ErrNotReady = errors.New("offline: the replica was never filled (run go-offline first)")
	// ErrServerUnavailable: the CRM server could not be reached (network
	// failure, 408, 429 or 5xx); the run can be resumed later.
	ErrServerUnavailable = errors.New("offline: CRM server unavailable")
	// ErrSchemaMismatch: a batch was cut with another metadata version than
	// the replica's, even after a schema refresh.
	ErrSchemaMismatch = errors.New("offline: metadata version mismatch")
	// ErrClientVersion: the server's schema has something this client
	// cannot hold (an unknown entity, a changed attribute type).
	ErrClientVersion = errors.New("offline: server schema not supported by this client")
	// ErrServerVersion: the server is older than this client: its schema
	// lacks an entity or a built-in attribute the client has (ClientVersionHigher).
	ErrServerVersion = errors.New("offline: the server is older than this client")
	// ErrSyncErrors: replay ended with rejected requests (see Errors).
	ErrSyncErrors = errors.New("offline: replay left sync errors")
)

// Remote is what the engine needs from the CRM server; *crmclient.Client
// implements it.
type Remote interface {
	BaseURL() string
	Metadata(ctx context.Context) (*crm.Metadata, error)
	WhoAmI(ctx context.Context) (crmclient.WhoAmI, error)
	Subscribe(ctx context.Context, clientID, kind string) (crm.Subscription, error)
	Prepare(ctx context.Context, subID string) (crmclient.PrepareResult, error)
	PostSync(ctx context.Context, subID string, batchID uint64) (crm.PostSyncResult, error)
	RecordSyncInfo(ctx context.Context, subID string, info crm.SyncInfo) error
	SyncInfo(ctx context.Context, subID string) ([]crm.SyncInfo, error)
	Do(ctx context.Context, method, path string, header http.Header, body []byte) (*crmclient.Response, error)
	// Open is Do with the body unread (sync batches are read as a stream).
	Open(ctx context.Context, method, path string, header http.Header, body []byte) (*http.Response, error)
	Batch(ctx context.Context, reqs []crm.BatchRequest) ([]crm.BatchResponse, error)
}

var _ Remote = (*crmclient.Client)(nil)

// Options configure Open. Path is required.
type Options struct {
	// Path is the replica database file.
	Path string
	// ClientID is this client's id (the subscription is per client and
	// user); empty means "desktop".
	ClientID string
	// Batch holds the dynamic batching settings; zero fields take the
	// seed's defaults.
	Batch BatchSettings
	// Plugins run in the local API; only those implementing OfflineCapable
	// and answering true are kept (the others run on the server at replay).
	Plugins []crmserver.Plugin
	// Progress, when set, is called after every batch of a GoOffline.
	Progress func(Progress)
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// BcryptCost of the cached password hash; 0 means the bcrypt default.
	BcryptCost int
	// ReplayChunk is how many independent queued requests GoOnline sends in
	// one $batch (without atomicity group: each applies on its own, in
	// order, and the server commits them together); 0 means 500, 1 sends
	// each request alone.
	ReplayChunk int
	// ReplayChunkBytes bounds the request bodies of one such $batch, so
	// that queued e-mails with large bodies never make a request the
	// server refuses as too large (16 MiB by default); 0 means 4 MiB. A
	// single request larger than this still goes, alone.
	ReplayChunkBytes int
}

// OfflineCapable is implemented by plug-ins that may run in the local API
// (only plug-ins marked to run while offline run there).
type OfflineCapable interface {
	OfflineCapable() bool
}

// Progress reports a GoOffline step.
type Progress struct {
	Entity    string
	Done      int64 // rows applied in this run, all entities
	Total     int64 // rows pending at prepare, all entities
	BatchSize int   // size asked for the next batch of Entity
}

// Engine is one user's offline engine over its replica. It is safe for
// concurrent use; runs (GoOffline, GoOnline) are serialized.
type Engine struct {
	opts    Options
	replica *crmstore.Store
	log     *slog.Logger
	now     func() time.Time

	run sync.Mutex // one GoOffline/GoOnline at a time
}

// Open opens (creating if needed) the replica at opts.Path.
func Open(ctx context.Context, opts *Options) (*Engine, error) {
	if opts == nil || opts.Path == "" {
		return nil, fmt.Errorf("%w: offline: no replica path", crm.ErrInvalidArgument)
	}
	e := &Engine{opts: *opts}
	e.log = e.opts.Logger
	if e.log == nil {
		e.log = slog.Default()
	}
	e.now = e.opts.Now
	if e.now == nil {
		e.now = time.Now
	}
	if e.opts.ClientID == "" {
		e.opts.ClientID = "desktop"
	}
	if e.opts.ReplayChunk <= 0 {
		e.opts.ReplayChunk = 500
	}
	if e.opts.ReplayChunkBytes <= 0 {
		e.opts.ReplayChunkBytes = 4 << 20
	}
	e.opts.Batch = e.opts.Batch.withDefaults()
	// The replica holds one user's data: the bridge's subscription, new
	// at every go-offline, learns of the deletions made before it.
	st, err := crmstore.Open(ctx, e.opts.Path, &crmstore.Options{Logger: e.log, Now: e.opts.Now, MaxOpenConns: 4, FullSetReportsTombstones: true})
	if err != nil {
		return nil, fmt.Errorf("offline: open replica: %w", err)
	}
	if err := initSchema(ctx, st.DB()); err != nil {
		st.Close()
		return nil, err
	}
	e.replica = st
	return e, nil
}

// Close closes the replica.
func (e *Engine) Close() error { return e.replica.Close() }

// Replica returns the replica store (read it; write only through the local
// API, or the writes are not queued).
func (e *Engine) Replica() *crmstore.Store { return e.replica }

// State returns the persisted client state.
func (e *Engine) State(ctx context.Context) (ClientState, error) {
	v, err := getState(ctx, e.replica.DB(), keyState)
	if err != nil || v == "" {
		return Online, err
	}
	return ParseClientState(v)
}

func (e *Engine) setState(ctx context.Context, s ClientState) error {
	e.log.Info("offline: client state", "state", s.String())
	return setState(context.WithoutCancel(ctx), e.replica.DB(), keyState, s.String())
}

func (e *Engine) setError(ctx context.Context, err error) {
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	if serr := setState(context.WithoutCancel(ctx), e.replica.DB(), keyLastError, msg); serr != nil {
		e.log.Error("offline: record error", "err", serr)
	}
}

func (e *Engine) stamp() string { return e.now().UTC().Format(time.RFC3339Nano) }

// unavailable classifies err: transport failures and retryable answers
// become ErrServerUnavailable.
func unavailable(err error) error {
	if err == nil {
		return nil
	}
	var ae *crmclient.APIError
	if errors.As(err, &ae) {
		if ae.Retryable() {
			return fmt.Errorf("%w: %w", ErrServerUnavailable, err)
		}
		return err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrServerUnavailable, err)
}

// tokenSource is what *crmclient.Client offers to switch to a bearer token.
type tokenSource interface {
	Token(ctx context.Context) (string, time.Time, error)
	WithToken(tok string) *crmclient.Client
}

// withToken returns r authenticating with a bearer token for one run, so
// that the server checks the password (bcrypt, tens of milliseconds at the
// default cost) once instead of on every batch, postsync and $batch
// request. It returns r itself when r cannot issue tokens or the request
// fails (the run's own requests then report the failure).
func (e *Engine) withToken(ctx context.Context, r Remote) Remote {
	ts, ok := r.(tokenSource)
	if !ok {
		return r
	}
	tok, _, err := ts.Token(ctx)
	if err != nil || tok == "" {
		e.log.Debug("offline: no bearer token, using the client's own authentication", "err", err)
		return r
	}
	return ts.WithToken(tok)
}
