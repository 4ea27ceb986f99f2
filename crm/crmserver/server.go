// Package crmserver is the CRM server's HTTP API: a Dataverse-style Web API
// under /api/data/ (CRUD, $select/$filter/$orderby/$top, paging, $batch),
// metadata, the message availability table, authentication (Basic and
// bearer tokens), role-based security, business logic (required fields,
// state transitions, duplicate detection, workflows, plug-ins) and the
// server half of the sync protocol under /api/sync/ (docs/sync-protocol.md).
//
// It imports crm only. It declares the Store it needs (store.go);
// crmstore implements it. The offline engine can serve the same API over
// its replica by passing Options.Offline, which makes server-only messages
// fail with crm.ErrUnavailable.
//
// # Endpoints
//
//	GET    /api/data/                          entity sets
//	GET    /api/data/{set}                     query: $select $filter $orderby $top, Prefer: odata.maxpagesize=N
//	POST   /api/data/{set}                     create: 204 + OData-EntityId, 201 with Prefer: return=representation
//	GET    /api/data/{set}({id})               read ($select)
//	PATCH  /api/data/{set}({id})               update named attributes (If-Match -> 412); statecode/statuscode = SetState
//	DELETE /api/data/{set}({id})               delete (If-Match)
//	POST   /api/data/$batch                    OData JSON batch with atomicityGroup
//	GET    /api/metadata                       crm.Metadata with its version
//	POST   /api/metadata/{entity}/attributes   add a custom attribute (Admin)
//	GET    /api/messages                       message availability
//	GET    /api/whoami                         the caller, roles and privileges
//	POST   /api/auth/token                     bearer token for the caller
//	       /api/sync/...                       see syncapi.go
//
// Errors are {"error":{"code":crm.ErrorCode(err),"message":"..."}}; a
// duplicate-detection 409 adds "duplicates":[{"entity","id","name"}].
//
// # Headers
//
//   - MSCRM.SuppressDuplicateDetection: true skips duplicate detection.
//   - MSCRM.CallerOrigin: "Online" (default), "Offline; queued=<RFC 3339>"
//     for requests replayed from an offline queue; plug-ins see it.
//   - Pimbridge-Primary-Generation: N fences the primary client: a request
//     that carries a generation other than the user's current one is
//     refused with 409 stale_primary.
package crmserver

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/pimbridge/pimbridge/crm"
)

// Options configure a Server. The zero value of every field is usable.
type Options struct {
	// Logger receives one line per request and server events; nil means
	// slog.Default(). Passwords, tokens and Authorization headers are never
	// logged.
	Logger *slog.Logger
	// MaxBodyBytes bounds request bodies; 0 means 16 MiB. A larger body
	// gets 400 request_too_large.
	MaxBodyBytes int64
	// MaxPageSize caps a page of query results; 0 means 5000.
	MaxPageSize int
	// MaxBatchSize is the largest sync batch (rows) the server cuts; 0
	// means 1000000. Prepare states it; a larger size is refused with 400
	// request_too_large.
	MaxBatchSize int
	// Plugins run in the pre and post stages of every write.
	Plugins []Plugin
	// Workflows run after creates and updates; none by default (see
	// FollowUpTaskWorkflow for the built-in one).
	Workflows []Workflow
	// Offline marks a server running over an offline replica: server-only
	// messages fail with crm.ErrUnavailable and workflows do not run.
	Offline bool
	// TokenTTL is the lifetime of issued bearer tokens; 0 means 12 hours.
	TokenTTL time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// AllowedOrigins lists the browser origins (scheme://host[:port])
	// whose requests are served; a request with any other Origin header,
	// or that a browser marks as cross-site (Sec-Fetch-Site), is refused
	// with 403 origin_refused. Nil allows none: only non-browser clients.
	AllowedOrigins []string
	// NoBasicChallenge answers 401 with "WWW-Authenticate: Bearer"
	// instead of a Basic challenge, so that a browser never asks for and
	// caches credentials (the offline local API on 127.0.0.1 sets it).
	// Servers with Offline set never send a Basic challenge.
	NoBasicChallenge bool
	// MaxBatchResponseBytes caps the bodies of one $batch answer; 0 means
	// 8 MiB. Once reached, the remaining requests are not run and answer
	// 413 batch_response_too_large (see batch.go).
	MaxBatchResponseBytes int64
	// PIMSyncFilters replaces DefaultPIMSyncFilters, the fixed filters of
	// outlook (PIM sync) subscriptions, per entity ($filter syntax, with
	// @me and @now); nil means DefaultPIMSyncFilters. Users cannot change
	// them.
	PIMSyncFilters map[string]string
}

// Server is the HTTP API. It implements http.Handler.
type Server struct {
	store Store
	opts  Options
	log   *slog.Logger
	now   func() time.Time
	mux   *http.ServeMux

	authKey   [32]byte
	authMu    sync.Mutex
	authCache map[[32]byte]authEntry
	logins    *loginLimiter
}

// authEntry is a remembered Basic login; it holds only while the user's
// token generation is gen (see Principal.Generation).
type authEntry struct {
	user    crm.ID
	gen     int64
	expires time.Time
}

// New returns a server over store.
func New(store Store, opts *Options) *Server {
	s := &Server{store: WithFeed(store), authCache: map[[32]byte]authEntry{}, logins: newLoginLimiter()} // feed.go
	if opts != nil {
		s.opts = *opts
	}
	s.log = s.opts.Logger
	if s.log == nil {
		s.log = slog.Default()
	}
	s.now = s.opts.Now
	if s.now == nil {
		s.now = time.Now
	}
	if s.opts.MaxBodyBytes <= 0 {
		s.opts.MaxBodyBytes = 16 << 20
	}
	if s.opts.MaxPageSize <= 0 {
		s.opts.MaxPageSize = 5000
	}
	if s.opts.MaxBatchSize <= 0 {
		s.opts.MaxBatchSize = 1000000
	}
	if s.opts.TokenTTL <= 0 {
		s.opts.TokenTTL = 12 * time.Hour
	}
	if s.opts.MaxBatchResponseBytes <= 0 {
		s.opts.MaxBatchResponseBytes = 8 << 20
	}
	if s.opts.Offline {
		s.opts.Workflows = nil
		s.opts.NoBasicChallenge = true
	}
	rand.Read(s.authKey[:])
	s.routes()
	return s
}

func (s *Server) routes() {
	m := http.NewServeMux()
	m.HandleFunc("/api/data/", s.auth(s.handleData))
	m.HandleFunc("GET /api/metadata", s.auth(s.handleMetadata))
	m.HandleFunc("POST /api/metadata/{entity}/attributes", s.auth(s.handleAddAttribute))
	m.HandleFunc("POST /api/metadata/entities", s.auth(s.handleAddEntity))
	m.HandleFunc("POST /api/metadata/relationships", s.auth(s.handleAddRelationship))
	m.HandleFunc("GET /api/messages", s.auth(s.handleMessages))
	m.HandleFunc("GET /api/whoami", s.auth(s.handleWhoAmI))
	m.HandleFunc("POST /api/auth/token", s.auth(s.handleToken))
	s.syncRoutes(m)
	m.HandleFunc("/", s.auth(func(w http.ResponseWriter, r *http.Request, _ *Principal) {
		s.writeError(w, r, fmt.Errorf("%w: no endpoint %s %s", crm.ErrNotFound, r.Method, r.URL.Path))
	}))
	s.mux = m
}

// statusRecorder captures the status for the request log.
type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

type ctxKey struct{}

// requestInfo is filled by auth for the request log.
type requestInfo struct{ user string }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := s.now()
	rec := &statusRecorder{ResponseWriter: w}
	info := &requestInfo{}
	r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, info))
	if err := s.checkBrowser(r); err != nil {
		s.writeError(rec, r, err)
	} else if r.ContentLength > s.opts.MaxBodyBytes {
		s.writeError(rec, r, errTooLarge)
	} else {
		r.Body = http.MaxBytesReader(rec, r.Body, s.opts.MaxBodyBytes)
		s.mux.ServeHTTP(rec, r)
	}
	// Only method, path, status, user and size: never headers, query
	// strings or bodies, which may carry credentials or personal data.
	s.log.Info("crmserver: request", "method", r.Method, "path", r.URL.Path, "status", rec.status,
		"user", info.user, "bytes", rec.bytes, "duration", s.now().Sub(start).Round(time.Microsecond))
}

// errTooLarge is a body over MaxBodyBytes.
var errTooLarge = fmt.Errorf("%w: request body too large", crm.ErrInvalidArgument)

// readBody reads the request body within the size limit.
func readBody(r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, errTooLarge
		}
		return nil, fmt.Errorf("%w: reading body: %v", crm.ErrInvalidArgument, err)
	}
	// encoding/json would silently turn invalid UTF-8 into U+FFFD.
	if !utf8.Valid(b) {
		return nil, fmt.Errorf("%w: body is not valid UTF-8", crm.ErrInvalidArgument)
	}
	return b, nil
}

// auth authenticates the request and checks the primary fencing header.
func (s *Server) auth(h func(http.ResponseWriter, *http.Request, *Principal)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := s.authenticate(r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if info, ok := r.Context().Value(ctxKey{}).(*requestInfo); ok {
			info.user = p.Name
		}
		if g := r.Header.Get(crm.HeaderPrimaryGeneration); g != "" {
			gen, err := strconv.ParseInt(g, 10, 64)
			if err != nil {
				s.writeError(w, r, fmt.Errorf("%w: %s: %q is not a number", crm.ErrInvalidArgument, crm.HeaderPrimaryGeneration, g))
				return
			}
			cur, err := s.store.Primary(r.Context(), p.UserID)
			if err != nil {
				s.writeError(w, r, err)
				return
			}
			if gen != cur.Generation {
				s.writeError(w, r, fmt.Errorf("%w: generation %d, current is %d (client %q)", crm.ErrStalePrimary, gen, cur.Generation, cur.ClientID))
				return
			}
		}
		h(w, r, p)
	}
}

const authCacheTTL = time.Minute

func (s *Server) authenticate(r *http.Request) (*Principal, error) {
	ctx := r.Context()
	h := r.Header.Get("Authorization")
	switch {
	case h == "":
		return nil, fmt.Errorf("%w: credentials required", crm.ErrUnauthenticated)
	case len(h) > 7 && strings.EqualFold(h[:7], "bearer "):
		return s.store.AuthenticateToken(ctx, strings.TrimSpace(h[7:]))
	}
	name, pw, ok := r.BasicAuth()
	if !ok {
		return nil, fmt.Errorf("%w: unsupported Authorization scheme", crm.ErrUnauthenticated)
	}
	// bcrypt costs tens of milliseconds; successful checks are remembered
	// for a minute under an HMAC of name and password with a per-process
	// key, so the cache holds no password.
	mac := hmac.New(sha256.New, s.authKey[:])
	mac.Write([]byte(name))
	mac.Write([]byte{0})
	mac.Write([]byte(pw))
	var key [32]byte
	copy(key[:], mac.Sum(nil))
	now := s.now()
	s.authMu.Lock()
	ent, hit := s.authCache[key]
	s.authMu.Unlock()
	if hit && now.Before(ent.expires) {
		// The principal is read again, so a disabled user fails here, and
		// a changed password changed the generation.
		if p, err := s.principal(ctx, ent.user); err == nil && p.Generation == ent.gen {
			return p, nil
		}
		s.authMu.Lock()
		delete(s.authCache, key)
		s.authMu.Unlock()
	}
	p, err := s.basicLogin(r, name, pw)
	if err != nil {
		return nil, err
	}
	s.authMu.Lock()
	if len(s.authCache) > 10000 {
		clear(s.authCache)
	}
	s.authCache[key] = authEntry{user: p.UserID, gen: p.Generation, expires: now.Add(authCacheTTL)}
	s.authMu.Unlock()
	return p, nil
}

// principalStore is implemented by stores that can load a principal by id
// (crmstore does); others re-check the password every time.
type principalStore interface {
	Principal(ctx context.Context, user crm.ID) (*Principal, error)
}

func (s *Server) principal(ctx context.Context, user crm.ID) (*Principal, error) {
	ps, ok := s.store.(principalStore)
	if !ok {
		return nil, crm.ErrUnauthenticated
	}
	return ps.Principal(ctx, user)
}

// errorBody is the JSON error envelope.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code       string          `json:"code"`
	Message    string          `json:"message"`
	Duplicates []crm.Duplicate `json:"duplicates,omitempty"`
}

// DuplicateError is returned when duplicate detection finds records.
type DuplicateError struct {
	Entity     string
	Duplicates []crm.Duplicate
}

func (e *DuplicateError) Error() string {
	var names []string
	for _, d := range e.Duplicates {
		n := d.ID.String()
		if d.Name != "" {
			n = fmt.Sprintf("%q (%s)", d.Name, d.ID)
		}
		names = append(names, n)
	}
	return fmt.Sprintf("duplicate %s: %s", e.Entity, strings.Join(names, ", "))
}

func (e *DuplicateError) Unwrap() error { return crm.ErrDuplicate }

// statusOf maps an error to its HTTP status.
func statusOf(err error) int {
	switch {
	case errors.Is(err, crm.ErrUnauthenticated):
		return http.StatusUnauthorized
	case errors.Is(err, ErrTooManyLogins):
		return http.StatusTooManyRequests
	case errors.Is(err, errUnsupportedMedia):
		return http.StatusUnsupportedMediaType
	case errors.Is(err, errBatchResponseTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, crm.ErrForbidden):
		return http.StatusForbidden
	case errors.Is(err, crm.ErrNotFound), errors.Is(err, crm.ErrUnknownEntity):
		return http.StatusNotFound
	case errors.Is(err, crm.ErrPreconditionFailed):
		return http.StatusPreconditionFailed
	case errors.Is(err, crm.ErrDuplicate), errors.Is(err, crm.ErrConflict), errors.Is(err, crm.ErrStalePrimary):
		return http.StatusConflict
	case errors.Is(err, crm.ErrInvalidArgument), errors.Is(err, crm.ErrInvalidID), errors.Is(err, crm.ErrUnknownAttribute),
		errors.Is(err, crm.ErrRequired), errors.Is(err, crm.ErrReadOnly), errors.Is(err, crm.ErrUnavailable):
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}

// errorCode is crm.ErrorCode plus the server's own code for bodies over the
// limit.
func errorCode(err error) string {
	switch {
	case errors.Is(err, errTooLarge):
		return "request_too_large"
	case errors.Is(err, ErrTooManyLogins):
		return "too_many_logins"
	case errors.Is(err, errUnsupportedMedia):
		return "unsupported_media_type"
	case errors.Is(err, errOriginRefused):
		return "origin_refused"
	case errors.Is(err, errBatchResponseTooLarge):
		return "batch_response_too_large"
	}
	return crm.ErrorCode(err)
}

func (s *Server) errorResponse(ctx context.Context, err error) (int, errorBody) {
	st := statusOf(err)
	msg := err.Error()
	if st == http.StatusInternalServerError {
		s.log.ErrorContext(ctx, "crmserver: internal error", "err", err)
		msg = "internal server error"
	}
	body := errorBody{Error: errorDetail{Code: errorCode(err), Message: msg}}
	var de *DuplicateError
	if errors.As(err, &de) {
		body.Error.Duplicates = de.Duplicates
	}
	return st, body
}

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	st, body := s.errorResponse(r.Context(), err)
	for k, v := range s.errorHeader(st, err) {
		w.Header()[k] = v
	}
	writeJSON(w, st, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"code":"internal","message":"encoding the response failed"}}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("OData-Version", "4.0")
	w.WriteHeader(status)
	w.Write(b)
}

func (s *Server) handleMetadata(w http.ResponseWriter, r *http.Request, p *Principal) {
	m, err := s.store.Metadata(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Pimbridge-Metadata-Version", strconv.FormatInt(m.Version, 10))
	writeJSON(w, http.StatusOK, m)
}

func (s *Server) handleAddAttribute(w http.ResponseWriter, r *http.Request, p *Principal) {
	if err := s.messageAllowed(MsgCreateAttribute); err != nil {
		s.writeError(w, r, err)
		return
	}
	if !p.IsAdmin() {
		s.writeError(w, r, fmt.Errorf("%w: customization needs the Admin privilege", crm.ErrForbidden))
		return
	}
	body, err := readBody(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var a crm.Attribute
	if err := strictJSON(body, &a); err != nil {
		s.writeError(w, r, err)
		return
	}
	m, err := s.store.AddAttribute(r.Context(), r.PathValue("entity"), a)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"version": m.Version, "attribute": a.Name})
}

// decodeJSON reads the request body (size-limited, valid UTF-8) and
// decodes it strictly into v.
func decodeJSON(r *http.Request, v any) error {
	body, err := readBody(r)
	if err != nil {
		return err
	}
	return strictJSON(body, v)
}

func strictJSON(body []byte, v any) error {
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: bad JSON body: %v", crm.ErrInvalidArgument, err)
	}
	if dec.More() {
		return fmt.Errorf("%w: trailing data after the JSON body", crm.ErrInvalidArgument)
	}
	return nil
}

func (s *Server) handleWhoAmI(w http.ResponseWriter, r *http.Request, p *Principal) {
	roles := []string{}
	privs := []string{}
	for _, ro := range p.Roles {
		roles = append(roles, ro.Name)
	}
	for _, pr := range Privileges {
		if p.Has(pr) {
			privs = append(privs, pr)
		}
	}
	// roledefinitions: the roles as this server defines them, so that an
	// offline client checks the same rights as the server.
	writeJSON(w, http.StatusOK, map[string]any{"UserId": p.UserID, "name": p.Name, "roles": roles, "privileges": privs, "roledefinitions": p.Roles})
}

func (s *Server) handleToken(w http.ResponseWriter, r *http.Request, p *Principal) {
	if err := s.messageAllowed(MsgIssueToken); err != nil {
		s.writeError(w, r, err)
		return
	}
	// A token cannot mint one that outlives it: renewing with a bearer
	// token gives at most the time that token has left.
	ttl := s.opts.TokenTTL
	if !p.TokenExpires.IsZero() {
		ttl = min(ttl, p.TokenExpires.Sub(s.now()))
		if ttl < time.Second {
			s.writeError(w, r, fmt.Errorf("%w: the token expires too soon to renew; log in again", crm.ErrUnauthenticated))
			return
		}
	}
	tok, exp, err := s.store.IssueToken(r.Context(), p.UserID, ttl)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": tok, "token_type": "Bearer",
		"expires_in": int64(exp.Sub(s.now()).Seconds()), "expires_on": exp.UTC().Format(time.RFC3339),
	})
}
