package offline

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmserver"
)

// DefaultListen is the local API's default address (port 2525, as the
// Dynamics offline client's).
const DefaultListen = "127.0.0.1:2525"

// captureKey carries the *capture of the request being served.
type captureKey struct{}

// capture holds the queue rows of one write request (or one atomicity
// group of a $batch); localStore.Update writes them in the write's
// transaction, once.
type capture struct {
	rows []QueueRow
	done bool
}

// queuedHeaders are the request headers kept in the queue; the rest
// (authorization, If-Match against local versions, fencing) is replaced at
// replay.
var queuedHeaders = []string{crm.HeaderSuppressDuplicates, "Prefer"}

// localAPI is the http.Handler of the local API.
type localAPI struct {
	e       *Engine
	store   *localStore
	data    *crmserver.Server // offline mode: server-only messages fail
	syncAPI *crmserver.Server // /api/sync/ over the replica (local subscriptions)
	log     *slog.Logger
}

// Handler returns the local Web API over the replica: the same API as the
// CRM server (crmclient and curl work unchanged, with the same Basic
// credentials), where every accepted write is also queued for GoOnline.
// Server-only messages (customization, tokens) fail with a
// message_unavailable error naming the message. Workflows and duplicate
// detection do not run offline; they run on the server at replay.
// Plug-ins run only if they are OfflineCapable.
func (e *Engine) Handler() http.Handler {
	st := &localStore{Store: e.replica, e: e}
	var plugins []crmserver.Plugin
	for _, p := range e.opts.Plugins {
		if oc, ok := p.(OfflineCapable); ok && oc.OfflineCapable() {
			plugins = append(plugins, p)
		}
	}
	log := e.log.With("component", "offline-api")
	fst := crmserver.WithFeed(st) // one change feed for both servers
	return &localAPI{
		e: e, store: st, log: log,
		data:    crmserver.New(fst, &crmserver.Options{Logger: log, Offline: true, Plugins: plugins, Now: e.opts.Now}),
		syncAPI: crmserver.New(fst, &crmserver.Options{Logger: log, Plugins: plugins, Now: e.opts.Now, NoBasicChallenge: true}),
	}
}

// Serve serves the local API on addr ("" means DefaultListen) until ctx
// ends. It refuses to start before a GoOffline has filled the replica.
// ready, when not nil, receives the bound address once listening.
func (e *Engine) Serve(ctx context.Context, addr string, ready func(net.Addr)) error {
	if id, err := getState(ctx, e.replica.DB(), keyUserID); err != nil {
		return err
	} else if id == "" {
		return ErrNotReady
	}
	if addr == "" {
		addr = DefaultListen
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("offline: listen: %w", err)
	}
	h := e.Handler()
	srv := crmserver.HTTPServer(h, crmserver.Timeouts{}, e.log)
	srv.RegisterOnShutdown(h.(*localAPI).EndWaits)
	if ready != nil {
		ready(ln.Addr())
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
		return nil
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("offline: serve: %w", err)
	}
}

// EndWaits answers the change feed's open long-polls (crmserver.Server.EndWaits).
func (a *localAPI) EndWaits() { a.syncAPI.EndWaits() }

func (a *localAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	if strings.HasPrefix(p, "/api/sync/") {
		a.syncAPI.ServeHTTP(w, r)
		return
	}
	if !strings.HasPrefix(p, "/api/data/") || r.Method == http.MethodGet || r.Method == http.MethodHead {
		a.data.ServeHTTP(w, r)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 16<<20+1))
	if err != nil {
		http.Error(w, "reading body: "+err.Error(), http.StatusBadRequest)
		return
	}
	if p == "/api/data/$batch" && r.Method == http.MethodPost {
		a.serveBatch(w, r, body)
		return
	}
	md, _ := a.e.replica.Metadata(r.Context())
	row, body, ok := a.queueRow(md, r.Method, strings.TrimPrefix(p, "/api/data/"), r.URL.RawQuery, r.Header, body)
	c := &capture{}
	if ok {
		c.rows = []QueueRow{row}
	}
	a.data.ServeHTTP(w, a.inner(r, c, body))
}

// inner is the request handed to crmserver: the captured queue rows in the
// context, the (id-injected) body, and duplicate detection off (it
// runs at replay).
func (a *localAPI) inner(r *http.Request, c *capture, body []byte) *http.Request {
	r2 := r.Clone(context.WithValue(r.Context(), captureKey{}, c))
	r2.Body = io.NopCloser(bytes.NewReader(body))
	r2.ContentLength = int64(len(body))
	r2.Header.Set(crm.HeaderSuppressDuplicates, "true")
	return r2
}

// queueRow builds the queue row of one write: object id and type from the
// path, the command, the kept headers. A create without a primary key gets
// one here (creates get their id on the client), so that the
// replayed create makes the same record; body is returned with it. ok is
// false when the request is not a write the queue records (the server
// will reject it anyway).
func (a *localAPI) queueRow(md *crm.Metadata, method, path, rawQuery string, h http.Header, body []byte) (QueueRow, []byte, bool) {
	set, rest, hasKey := strings.Cut(strings.TrimSuffix(path, "/"), "(")
	var ent *crm.Entity
	for _, e := range md.Entities {
		if e.SetName == set {
			ent = e
		}
	}
	if ent == nil {
		return QueueRow{}, body, false
	}
	row := QueueRow{ObjectType: ent.Name, Method: method, ActionDate: a.e.now().UTC(), Header: http.Header{}}
	switch {
	case method == http.MethodPost && !hasKey:
		row.Command = crmserver.MsgCreate
		var obj map[string]json.RawMessage
		if json.Unmarshal(body, &obj) != nil || obj == nil {
			return QueueRow{}, body, false
		}
		if raw, ok := obj[ent.PrimaryKey]; ok {
			var s string
			if json.Unmarshal(raw, &s) != nil {
				return QueueRow{}, body, false
			}
			id, err := crm.ParseID(s)
			if err != nil {
				return QueueRow{}, body, false
			}
			row.ObjectID = id
		} else {
			row.ObjectID = crm.NewID()
			obj[ent.PrimaryKey], _ = json.Marshal(row.ObjectID.String())
			nb, err := json.Marshal(obj)
			if err != nil {
				return QueueRow{}, body, false
			}
			body = nb
		}
	case hasKey && (method == http.MethodPatch || method == http.MethodDelete):
		key, ok := strings.CutSuffix(rest, ")")
		if !ok {
			return QueueRow{}, body, false
		}
		if k, v, ok := strings.Cut(key, "="); ok && k == ent.PrimaryKey {
			key = v
		}
		id, err := crm.ParseID(key)
		if err != nil {
			return QueueRow{}, body, false
		}
		row.ObjectID = id
		row.Command = crmserver.MsgUpdate
		if method == http.MethodDelete {
			row.Command = crmserver.MsgDelete
		}
	default:
		return QueueRow{}, body, false
	}
	row.URL = "/api/data/" + path
	if rawQuery != "" {
		row.URL += "?" + rawQuery
	}
	for _, k := range queuedHeaders {
		if v := h.Get(k); v != "" {
			row.Header.Set(k, v)
		}
	}
	row.Body = body
	return row, body, true
}

// serveBatch runs a $batch as a sequence of units (a lone request, or an
// atomicity group), each through crmserver with its own capture, so that
// each unit's queue rows commit with exactly that unit's writes. (crmserver
// runs adjacent ungrouped requests in one shared transaction; sending them
// one by one keeps a failed request's queue row out of the queue.)
func (a *localAPI) serveBatch(w http.ResponseWriter, r *http.Request, body []byte) {
	var in struct {
		Requests []crm.BatchRequest `json:"requests"`
	}
	if err := json.Unmarshal(body, &in); err != nil || len(in.Requests) == 0 || !adjacentGroups(in.Requests) || !depsEarlier(in.Requests) {
		// Let crmserver answer the malformed batch.
		a.data.ServeHTTP(w, a.inner(r, &capture{}, body))
		return
	}
	md, _ := a.e.replica.Metadata(r.Context())
	var out []crm.BatchResponse
	failed := map[string]bool{} // requests and groups, for dependsOn
	for i := 0; i < len(in.Requests); {
		g := in.Requests[i].AtomicityGroup
		j := i + 1
		for g != "" && j < len(in.Requests) && in.Requests[j].AtomicityGroup == g {
			j++
		}
		unit := in.Requests[i:j]
		i = j
		// Dependencies outside the unit are checked here (the unit goes to
		// crmserver as a batch of its own); a failed one fails the unit.
		inUnit := map[string]bool{}
		depFailed := ""
		for k := range unit {
			var keep []string
			for _, d := range unit[k].DependsOn {
				switch {
				case inUnit[d]:
					keep = append(keep, d)
				case failed[d] && depFailed == "":
					depFailed = fmt.Sprintf("request %q depends on %q, which failed", unit[k].ID, d)
				}
			}
			unit[k].DependsOn = keep
			inUnit[unit[k].ID] = true
		}
		if depFailed != "" {
			b, _ := json.Marshal(map[string]any{"error": map[string]string{"code": "batch_dependency_failed", "message": "not run: " + depFailed}})
			for _, u := range unit {
				failed[u.ID] = true
				out = append(out, crm.BatchResponse{ID: u.ID, Status: http.StatusFailedDependency, Headers: map[string]string{"Content-Type": "application/json"}, Body: b})
			}
			if g != "" {
				failed[g] = true
			}
			continue
		}
		c := &capture{}
		gid := ""
		if g != "" {
			gid = uuid.NewString()
		}
		for k := range unit {
			part := &unit[k]
			if strings.EqualFold(part.Method, http.MethodGet) {
				continue
			}
			u, err := url.Parse(part.URL)
			if err != nil {
				continue
			}
			path := u.Path
			if x := strings.Index(path, "/api/data/"); x >= 0 {
				path = path[x+len("/api/data/"):]
			} else {
				path = strings.TrimPrefix(path, "/")
			}
			h := http.Header{}
			for k, v := range part.Headers {
				h.Set(k, v)
			}
			row, nb, ok := a.queueRow(md, strings.ToUpper(part.Method), path, u.RawQuery, h, []byte(part.Body))
			if !ok {
				continue
			}
			part.Body = nb
			row.GroupID = gid
			c.rows = append(c.rows, row)
		}
		ub, _ := json.Marshal(map[string]any{"requests": unit})
		rec := httptest.NewRecorder()
		a.data.ServeHTTP(rec, a.inner(r, c, ub))
		if rec.Code != http.StatusOK {
			copyResponse(w, rec)
			return
		}
		var resp struct {
			Responses []crm.BatchResponse `json:"responses"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
			copyResponse(w, rec)
			return
		}
		for _, rr := range resp.Responses {
			if rr.Status >= 400 {
				failed[rr.ID] = true
				if g != "" {
					failed[g] = true
				}
			}
		}
		out = append(out, resp.Responses...)
	}
	b, _ := json.Marshal(map[string]any{"responses": out})
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("OData-Version", "4.0")
	w.WriteHeader(http.StatusOK)
	w.Write(b)
}

func adjacentGroups(reqs []crm.BatchRequest) bool {
	seen := map[string]bool{}
	for i, r := range reqs {
		g := r.AtomicityGroup
		if g == "" {
			continue
		}
		if seen[g] && reqs[i-1].AtomicityGroup != g {
			return false
		}
		seen[g] = true
	}
	return true
}

// depsEarlier reports whether every dependsOn names an earlier request or
// atomicity group (crmserver's rule).
func depsEarlier(reqs []crm.BatchRequest) bool {
	ids, groups := map[string]bool{}, map[string]bool{}
	for _, r := range reqs {
		for _, d := range r.DependsOn {
			if !ids[d] && (!groups[d] || d == r.AtomicityGroup) {
				return false
			}
		}
		ids[r.ID] = true
		if r.AtomicityGroup != "" {
			groups[r.AtomicityGroup] = true
		}
	}
	return true
}

func copyResponse(w http.ResponseWriter, rec *httptest.ResponseRecorder) {
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	w.Write(rec.Body.Bytes())
}
