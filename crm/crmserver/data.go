package crmserver

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/pimbridge/pimbridge/crm"
)

// opRequest is one Web API request, from HTTP or from a $batch part.
type opRequest struct {
	method string
	path   string // after /api/data/, e.g. "contacts(<id>)"
	query  url.Values
	header http.Header
	body   []byte
	base   string // scheme://host for OData-EntityId and nextLink
	// maxPage, when not 0, caps the page size below Options.MaxPageSize
	// (parts of a $batch; see maxBatchPageSize).
	maxPage int
}

// opResponse is its answer.
type opResponse struct {
	status int
	header http.Header
	body   json.RawMessage // nil: no body
}

func (s *Server) handleData(w http.ResponseWriter, r *http.Request, p *Principal) {
	body, err := readBody(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	path := strings.TrimPrefix(r.URL.Path, "/api/data/")
	base := "http://" + r.Host
	if r.TLS != nil {
		base = "https://" + r.Host
	}
	if path == "$batch" {
		if r.Method != http.MethodPost {
			s.writeError(w, r, fmt.Errorf("%w: $batch needs POST", crm.ErrInvalidArgument))
			return
		}
		s.batch(r.Context(), w, p, body, base)
		return
	}
	s.writeOp(w, s.execute(r.Context(), p, nil, opRequest{method: r.Method, path: path, query: r.URL.Query(), header: r.Header, body: body, base: base}))
}

// writeOp writes an operation's answer.
func (s *Server) writeOp(w http.ResponseWriter, resp opResponse) {
	for k, v := range resp.header {
		w.Header()[k] = v
	}
	if resp.body == nil {
		w.WriteHeader(resp.status)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("OData-Version", "4.0")
	w.WriteHeader(resp.status)
	w.Write(resp.body)
}

func (s *Server) errResp(ctx context.Context, err error) opResponse {
	st, body := s.errorResponse(ctx, err)
	b, _ := json.Marshal(body)
	return opResponse{status: st, header: s.errorHeader(st, err), body: b}
}

// parsePath splits "contacts(<id>)" into entity set and id.
func parsePath(m *crm.Metadata, path string) (*crm.Entity, crm.ID, bool, error) {
	path = strings.TrimSuffix(path, "/")
	set, rest, hasKey := strings.Cut(path, "(")
	e, err := m.Entity(set)
	if err != nil || e.SetName != set {
		return nil, crm.ID{}, false, fmt.Errorf("%w: no entity set %q", crm.ErrUnknownEntity, set)
	}
	if !hasKey {
		return e, crm.ID{}, false, nil
	}
	key, ok := strings.CutSuffix(rest, ")")
	if !ok {
		return nil, crm.ID{}, false, fmt.Errorf("%w: bad key in %q", crm.ErrInvalidID, path)
	}
	if k, v, ok := strings.Cut(key, "="); ok && k == e.PrimaryKey {
		key = v
	}
	id, err := crm.ParseID(key)
	if err != nil {
		return nil, crm.ID{}, false, err
	}
	return e, id, true, nil
}

// execute runs one request. With tx nil, reads run in a snapshot and writes
// in their own transaction; in a $batch atomicity group, tx is the group's.
func (s *Server) execute(ctx context.Context, p *Principal, tx Tx, r opRequest) opResponse {
	m, err := s.store.Metadata(ctx)
	if err != nil {
		return s.errResp(ctx, err)
	}
	if r.path == "" {
		return s.serviceDocument(m)
	}
	e, id, hasKey, err := parsePath(m, r.path)
	if err != nil {
		return s.errResp(ctx, err)
	}
	if err := checkQueryOptions(r.query); err != nil {
		return s.errResp(ctx, err)
	}
	key, err := replayKey(r.header)
	if err != nil {
		return s.errResp(ctx, err)
	}
	run := func(write bool, fn func(Tx) (opResponse, error)) opResponse {
		var resp opResponse
		var err error
		if write && key != "" {
			fn = s.replayOnce(ctx, p, r, key, fn)
		}
		if tx != nil {
			resp, err = fn(tx)
		} else if write {
			err = s.store.Update(ctx, func(t Tx) error {
				var ferr error
				resp, ferr = fn(t)
				return ferr
			})
		} else {
			err = s.store.View(ctx, func(t Tx) error {
				var ferr error
				resp, ferr = fn(t)
				return ferr
			})
		}
		if err != nil {
			return s.errResp(ctx, err)
		}
		return resp
	}
	switch {
	case r.method == http.MethodGet && hasKey:
		return run(false, func(t Tx) (opResponse, error) { return s.retrieve(ctx, p, t, e, id, r) })
	case r.method == http.MethodGet:
		return run(false, func(t Tx) (opResponse, error) { return s.retrieveMultiple(ctx, p, t, e, r) })
	case r.method == http.MethodPost && !hasKey:
		return run(true, func(t Tx) (opResponse, error) { return s.create(ctx, p, t, m, e, r) })
	case r.method == http.MethodPatch && hasKey:
		return run(true, func(t Tx) (opResponse, error) { return s.update(ctx, p, t, m, e, id, r) })
	case r.method == http.MethodDelete && hasKey:
		return run(true, func(t Tx) (opResponse, error) { return s.remove(ctx, p, t, e, id, r) })
	}
	return s.errResp(ctx, fmt.Errorf("%w: %s not allowed on %s", crm.ErrInvalidArgument, r.method, r.path))
}

func (s *Server) serviceDocument(m *crm.Metadata) opResponse {
	type set struct {
		Name string `json:"name"`
		Kind string `json:"kind"`
		URL  string `json:"url"`
	}
	var v []set
	for _, e := range m.Entities {
		v = append(v, set{e.SetName, "EntitySet", e.SetName})
	}
	b, _ := json.Marshal(map[string]any{"@odata.context": "$metadata", "value": v})
	return opResponse{status: http.StatusOK, body: b}
}

// owner returns the owner of a record (zero if none).
func owner(r crm.Record) crm.ID {
	if ref, ok := r.Attrs["ownerid"].(crm.Ref); ok {
		return ref.ID
	}
	return crm.ID{}
}

// canSee reports whether p may read r.
func canSee(p *Principal, e *crm.Entity, r crm.Record) bool {
	switch p.Scope(e.Name, Read) {
	case ScopeAll:
		return true
	case ScopeOwn:
		return owner(r) == p.UserID
	}
	return false
}

// checkRight checks access a on an existing record: a record the user
// cannot read is not found (404, never 403, so that ids do not leak); one
// they can read but not change is forbidden.
func checkRight(p *Principal, e *crm.Entity, r crm.Record, a Access) error {
	if !canSee(p, e, r) {
		return fmt.Errorf("%w: %s(%s)", crm.ErrNotFound, e.Name, r.ID)
	}
	switch p.Scope(e.Name, a) {
	case ScopeAll:
		return nil
	case ScopeOwn:
		if owner(r) == p.UserID {
			return nil
		}
	}
	return fmt.Errorf("%w: no %s right on this %s", crm.ErrForbidden, a, e.Name)
}

func selectAttrs(r crm.Record, sel []string) crm.Record {
	if len(sel) == 0 {
		return r
	}
	out := crm.Record{Entity: r.Entity, ID: r.ID, Version: r.Version, Attrs: map[string]any{}}
	for _, n := range sel {
		if v, ok := r.Attrs[n]; ok {
			out.Attrs[n] = v
		}
	}
	return out
}

func (s *Server) retrieve(ctx context.Context, p *Principal, t Tx, e *crm.Entity, id crm.ID, r opRequest) (opResponse, error) {
	if err := s.messageAllowed(MsgRetrieve); err != nil {
		return opResponse{}, err
	}
	q, err := crm.ParseQuery(r.query.Get)
	if err != nil {
		return opResponse{}, err
	}
	if q.Filter != nil || len(q.OrderBy) > 0 || q.Top > 0 {
		return opResponse{}, fmt.Errorf("%w: only $select applies to a single record", crm.ErrInvalidArgument)
	}
	if err := e.CheckQuery(q); err != nil {
		return opResponse{}, err
	}
	rec, err := t.Get(ctx, e, id)
	if err != nil {
		return opResponse{}, err
	}
	if !canSee(p, e, rec) {
		return opResponse{}, fmt.Errorf("%w: %s(%s)", crm.ErrNotFound, e.Name, id)
	}
	b, err := e.MarshalRecord(selectAttrs(rec, q.Select))
	if err != nil {
		return opResponse{}, err
	}
	h := http.Header{}
	h.Set("ETag", crm.ETag(rec.Version))
	return opResponse{status: http.StatusOK, header: h, body: b}, nil
}

// maxPageSize reads Prefer: odata.maxpagesize=N.
func (s *Server) pageSize(h http.Header) (int, bool) {
	for _, v := range h.Values("Prefer") {
		for _, part := range strings.Split(v, ",") {
			k, val, ok := strings.Cut(strings.TrimSpace(part), "=")
			if ok && strings.EqualFold(k, "odata.maxpagesize") {
				if n, err := strconv.Atoi(strings.Trim(val, `"`)); err == nil && n > 0 {
					return min(n, s.opts.MaxPageSize), true
				}
			}
		}
	}
	return s.opts.MaxPageSize, false
}

func preferRepresentation(h http.Header) bool {
	for _, v := range h.Values("Prefer") {
		for _, part := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(part), "return=representation") {
				return true
			}
		}
	}
	return false
}

func (s *Server) retrieveMultiple(ctx context.Context, p *Principal, t Tx, e *crm.Entity, r opRequest) (opResponse, error) {
	if err := s.messageAllowed(MsgRetrieveMultiple); err != nil {
		return opResponse{}, err
	}
	q, err := crm.ParseQuery(r.query.Get)
	if err != nil {
		return opResponse{}, err
	}
	if err := e.CheckQuery(q); err != nil {
		return opResponse{}, err
	}
	opts := QueryOptions{Me: p.UserID, Now: s.now()}
	switch p.Scope(e.Name, Read) {
	case ScopeNone:
		return opResponse{}, fmt.Errorf("%w: no read right on %s", crm.ErrForbidden, e.Name)
	case ScopeOwn:
		opts.Owner = p.UserID
	}
	var done int // records of earlier pages
	if tok := r.query.Get("$skiptoken"); tok != "" {
		after, n, err := decodeSkipToken(e, tok)
		if err != nil {
			return opResponse{}, err
		}
		opts.After, done = &after, n
	}
	topReached := false // $top was sent in full by earlier pages
	if q.Top > 0 {
		q.Top -= done
		topReached = q.Top <= 0
	}
	page, preferred := s.pageSize(r.header)
	if r.maxPage > 0 && page > r.maxPage {
		page, preferred = r.maxPage, true
	}
	opts.Limit = page + 1
	if v, ok := r.query["$top"]; ok && len(v) > 0 && strings.TrimSpace(v[0]) == "0" {
		topReached = true // $top=0: no rows
	}
	var recs []crm.Record
	if !topReached {
		if recs, err = t.Query(ctx, e, q, opts); err != nil {
			return opResponse{}, err
		}
	}
	var tok string
	if len(recs) > page {
		if tok, err = encodeSkipToken(e, q.OrderBy, recs[page-1], done+page); err != nil {
			return opResponse{}, err
		}
	}
	var buf bytes.Buffer
	buf.WriteString(`{"@odata.context":`)
	ctxURL, _ := json.Marshal(r.base + "/api/data/$metadata#" + e.SetName)
	buf.Write(ctxURL)
	buf.WriteString(`,"value":[`)
	for i, rec := range recs {
		if i == page {
			break
		}
		if i > 0 {
			buf.WriteByte(',')
		}
		if len(q.Select) > 0 {
			// Query also read the ordered attributes, to page after.
			for _, o := range q.OrderBy {
				if !slices.Contains(q.Select, o.Attr) {
					delete(rec.Attrs, o.Attr)
				}
			}
		}
		b, err := e.MarshalRecord(rec)
		if err != nil {
			return opResponse{}, err
		}
		buf.Write(b)
	}
	buf.WriteByte(']')
	if tok != "" {
		nq := url.Values{}
		for k, v := range r.query {
			nq[k] = v
		}
		nq.Set("$skiptoken", tok)
		link, _ := json.Marshal(r.base + "/api/data/" + e.SetName + "?" + nq.Encode())
		buf.WriteString(`,"@odata.nextLink":`)
		buf.Write(link)
	}
	buf.WriteByte('}')
	h := http.Header{}
	if preferred {
		h.Set("Preference-Applied", "odata.maxpagesize="+strconv.Itoa(page))
	}
	return opResponse{status: http.StatusOK, header: h, body: buf.Bytes()}, nil
}

// A $skiptoken names where the next page starts: the last record sent
// (its primary key and ordered attributes, in the record JSON codec) and
// how many records the earlier pages held (for $top). It is opaque to
// clients: base64url of {"after":{...},"n":N}. Reading after a record
// rather than skipping N records keeps paging exact while others add or
// delete records between pages.
type skipToken struct {
	After json.RawMessage `json:"after"`
	N     int             `json:"n"`
}

func encodeSkipToken(e *crm.Entity, orderBy []crm.Order, last crm.Record, n int) (string, error) {
	key := crm.Record{Entity: e.Name, ID: last.ID, Attrs: map[string]any{}}
	for _, o := range orderBy {
		if o.Attr != e.PrimaryKey {
			key.Attrs[o.Attr] = last.Attrs[o.Attr]
		}
	}
	after, err := e.MarshalRecord(key)
	if err != nil {
		return "", err
	}
	b, err := json.Marshal(skipToken{After: after, N: n})
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func decodeSkipToken(e *crm.Entity, tok string) (crm.Record, int, error) {
	bad := fmt.Errorf("%w: bad $skiptoken (use the @odata.nextLink of the previous page as it is)", crm.ErrInvalidArgument)
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return crm.Record{}, 0, bad
	}
	var st skipToken
	if err := strictJSON(b, &st); err != nil || st.N < 0 || len(st.After) == 0 {
		return crm.Record{}, 0, bad
	}
	attrs, err := e.DecodeAttrs(st.After, crm.DecodeOptions{AllowSystem: true, AllowPrimaryKey: true})
	if err != nil {
		return crm.Record{}, 0, bad
	}
	id, ok := attrs[e.PrimaryKey].(crm.ID)
	if !ok {
		return crm.Record{}, 0, bad
	}
	delete(attrs, e.PrimaryKey)
	return crm.Record{Entity: e.Name, ID: id, Attrs: attrs}, st.N, nil
}

func entityIDHeader(base string, e *crm.Entity, id crm.ID) http.Header {
	h := http.Header{}
	h.Set("OData-EntityId", base+"/api/data/"+e.SetName+"("+id.String()+")")
	return h
}

func bodyHash(e *crm.Entity, attrs map[string]any) (string, error) {
	b, err := e.MarshalRecord(crm.Record{Entity: e.Name, Attrs: attrs})
	if err != nil {
		return "", err
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:]), nil
}

func (s *Server) create(ctx context.Context, p *Principal, t Tx, m *crm.Metadata, e *crm.Entity, r opRequest) (opResponse, error) {
	if err := s.messageAllowed(MsgCreate); err != nil {
		return opResponse{}, err
	}
	origin, err := callerOrigin(r.header)
	if err != nil {
		return opResponse{}, err
	}
	attrs, err := e.DecodeAttrs(r.body, crm.DecodeOptions{AllowPrimaryKey: true})
	if err != nil {
		return opResponse{}, err
	}
	scope := p.Scope(e.Name, Create)
	if scope == ScopeNone {
		return opResponse{}, fmt.Errorf("%w: no create right on %s", crm.ErrForbidden, e.Name)
	}
	id, clientID := attrs[e.PrimaryKey].(crm.ID)
	delete(attrs, e.PrimaryKey)
	if !clientID {
		id = crm.NewID()
	} else if id == (crm.ID{}) {
		return opResponse{}, fmt.Errorf("%w: the nil GUID cannot be a key", crm.ErrInvalidID)
	}
	hash, err := bodyHash(e, attrs)
	if err != nil {
		return opResponse{}, err
	}
	if clientID {
		if resp, done, err := s.createTaken(ctx, p, t, e, id, hash, r.base); done || err != nil {
			return resp, err
		}
	}
	if _, ok := attrs["ownerid"]; !ok || attrs["ownerid"] == nil {
		attrs["ownerid"] = crm.Ref{Entity: crm.EntitySystemUser, ID: p.UserID}
	}
	if ref := attrs["ownerid"].(crm.Ref); ref.ID != p.UserID && scope != ScopeAll {
		return opResponse{}, fmt.Errorf("%w: creating a %s owned by another user needs the create right on all records", crm.ErrForbidden, e.Name)
	}
	if err := applyDefaults(e, attrs, nil); err != nil {
		return opResponse{}, err
	}
	for _, a := range e.Attributes {
		if a.Required && !a.System && attrs[a.Name] == nil {
			return opResponse{}, &crm.AttributeError{Entity: e.Name, Attribute: a.Name, Err: crm.ErrRequired}
		}
	}
	if err := s.checkLookups(ctx, t, p, m, e, id, attrs); err != nil {
		return opResponse{}, err
	}
	pc := &PluginContext{Stage: PreOperation, Message: MsgCreate, Entity: e, ID: id, Target: attrs,
		UserID: p.UserID, UserName: p.Name, CallerOrigin: origin, Tx: t}
	if err := s.runPlugins(ctx, pc); err != nil {
		return opResponse{}, err
	}
	if !suppressDuplicates(r.header) {
		if err := s.detectDuplicates(ctx, p, t, e, id, attrs); err != nil {
			return opResponse{}, err
		}
	}
	rec, err := t.Insert(ctx, e, crm.Record{Entity: e.Name, ID: id, Attrs: attrs})
	if err != nil {
		return opResponse{}, err
	}
	if clientID {
		if err := t.SetCreateHash(ctx, e, id, hash); err != nil {
			return opResponse{}, err
		}
	}
	pc.Stage, pc.PostImage = PostOperation, &rec
	if err := s.runPlugins(ctx, pc); err != nil {
		return opResponse{}, err
	}
	if err := s.runWorkflows(ctx, t, m, MsgCreate, e, rec, p); err != nil {
		return opResponse{}, err
	}
	h := entityIDHeader(r.base, e, id)
	if preferRepresentation(r.header) {
		b, err := e.MarshalRecord(rec)
		if err != nil {
			return opResponse{}, err
		}
		h.Set("ETag", crm.ETag(rec.Version))
		return opResponse{status: http.StatusCreated, header: h, body: b}, nil
	}
	return opResponse{status: http.StatusNoContent, header: h}, nil
}

// checkLookups refuses a lookup or owner that names a record that does not
// exist or that the caller cannot read (with the same answer, so that a
// lookup cannot probe for records), so that no record points nowhere (a record created offline that
// refers to one deleted on the server meanwhile is rejected at replay).
// Over an offline replica the check is left to the server: local data
// filters keep only part of the records, so a target missing from the
// replica may well exist.
func (s *Server) checkLookups(ctx context.Context, t Tx, p *Principal, m *crm.Metadata, e *crm.Entity, id crm.ID, attrs map[string]any) error {
	if s.opts.Offline {
		return nil
	}
	for _, k := range slices.Sorted(maps.Keys(attrs)) {
		ref, ok := attrs[k].(crm.Ref)
		if a := e.Attr(k); !ok || a == nil || a.Type != crm.TypeLookup && a.Type != crm.TypeOwner {
			continue
		}
		if ref.Entity == e.Name && ref.ID == id || ref.Entity == crm.EntitySystemUser && ref.ID == p.UserID {
			continue // a record may refer to itself; the caller exists
		}
		te, err := m.Entity(ref.Entity)
		if err != nil {
			return &crm.AttributeError{Entity: e.Name, ID: id, Attribute: k, Err: err}
		}
		target, err := t.Get(ctx, te, ref.ID)
		if err != nil && !errors.Is(err, crm.ErrNotFound) {
			return err
		}
		if err != nil || !canSee(p, te, target) {
			return &crm.AttributeError{Entity: e.Name, ID: id, Attribute: k,
				Err: fmt.Errorf("%w: %s(%s) does not exist", crm.ErrInvalidArgument, ref.Entity, ref.ID)}
		}
	}
	return nil
}

func suppressDuplicates(h http.Header) bool {
	return strings.EqualFold(strings.TrimSpace(h.Get(crm.HeaderSuppressDuplicates)), "true")
}

// applyDefaults fills system-derived attributes: activitytypecode, the
// default state and status, consistent state/status pairs and a contact's
// fullname. old is nil on create.
func applyDefaults(e *crm.Entity, attrs map[string]any, old *crm.Record) error {
	if e.IsActivity && old == nil {
		attrs["activitytypecode"] = e.Name
	}
	if len(e.States) > 0 {
		sc, hasState := attrs["statecode"]
		st, hasStatus := attrs["statuscode"]
		if hasState && sc == nil || hasStatus && st == nil {
			return &crm.AttributeError{Entity: e.Name, Attribute: "statecode", Err: fmt.Errorf("%w: state and status cannot be cleared", crm.ErrInvalidArgument)}
		}
		switch {
		case hasState:
			state := e.State(sc.(int64))
			if state == nil {
				return &crm.AttributeError{Entity: e.Name, Attribute: "statecode", Err: fmt.Errorf("%w: %d is not a state", crm.ErrInvalidArgument, sc)}
			}
			if !hasStatus {
				attrs["statuscode"] = state.DefaultStatus
			} else if s := e.StateOfStatus(st.(int64)); s == nil || s.Value != state.Value {
				return &crm.AttributeError{Entity: e.Name, Attribute: "statuscode", Err: fmt.Errorf("%w: status %d does not belong to state %s", crm.ErrInvalidArgument, st, state.Name)}
			}
		case hasStatus:
			s := e.StateOfStatus(st.(int64))
			if s == nil {
				return &crm.AttributeError{Entity: e.Name, Attribute: "statuscode", Err: fmt.Errorf("%w: %d is not a status", crm.ErrInvalidArgument, st)}
			}
			attrs["statecode"] = s.Value
		case old == nil:
			attrs["statecode"] = e.States[0].Value
			attrs["statuscode"] = e.States[0].DefaultStatus
		}
	}
	if e.Name == crm.EntityContact {
		_, hasFull := attrs["fullname"]
		_, hasFirst := attrs["firstname"]
		_, hasLast := attrs["lastname"]
		if !hasFull && (hasFirst || hasLast) {
			get := func(k string) string {
				if v, ok := attrs[k]; ok {
					s, _ := v.(string)
					return s
				}
				if old != nil {
					s, _ := old.Attrs[k].(string)
					return s
				}
				return ""
			}
			full := strings.TrimSpace(get("firstname") + " " + get("lastname"))
			if len([]rune(full)) > 160 {
				full = string([]rune(full)[:160])
			}
			attrs["fullname"] = full
		}
	}
	return nil
}

func (s *Server) update(ctx context.Context, p *Principal, t Tx, m *crm.Metadata, e *crm.Entity, id crm.ID, r opRequest) (opResponse, error) {
	origin, err := callerOrigin(r.header)
	if err != nil {
		return opResponse{}, err
	}
	attrs, err := e.DecodeAttrs(r.body, crm.DecodeOptions{AllowPrimaryKey: true})
	if err != nil {
		return opResponse{}, err
	}
	if v, ok := attrs[e.PrimaryKey]; ok {
		if v != id {
			return opResponse{}, &crm.AttributeError{Entity: e.Name, ID: id, Attribute: e.PrimaryKey, Err: fmt.Errorf("%w: the key cannot change", crm.ErrInvalidArgument)}
		}
		delete(attrs, e.PrimaryKey)
	}
	msg := MsgUpdate
	if _, ok := attrs["statecode"]; ok {
		msg = MsgSetState
	} else if _, ok := attrs["statuscode"]; ok {
		msg = MsgSetState
	}
	if err := s.messageAllowed(msg); err != nil {
		return opResponse{}, err
	}
	old, err := t.Get(ctx, e, id)
	if err != nil {
		return opResponse{}, err
	}
	if err := checkRight(p, e, old, Write); err != nil {
		return opResponse{}, err
	}
	if err := checkIfMatch(r.header, old); err != nil {
		return opResponse{}, err
	}
	if ref, ok := attrs["ownerid"]; ok {
		if ref == nil {
			return opResponse{}, &crm.AttributeError{Entity: e.Name, ID: id, Attribute: "ownerid", Err: crm.ErrRequired}
		}
		if ref.(crm.Ref).ID != owner(old) && p.Scope(e.Name, Write) != ScopeAll && ref.(crm.Ref).ID != p.UserID {
			return opResponse{}, fmt.Errorf("%w: assigning to another user needs the write right on all records", crm.ErrForbidden)
		}
	}
	// A completed or canceled activity is read-only until reopened.
	if cur, ok := old.Attrs["statecode"].(int64); ok {
		if st := e.State(cur); st != nil && st.Final {
			reopen := false
			if v, ok := attrs["statecode"].(int64); ok {
				if ns := e.State(v); ns != nil && !ns.Final {
					reopen = true
				}
			}
			if !reopen {
				return opResponse{}, fmt.Errorf("%w: %s(%s) is %s; reopen it by setting statecode first", crm.ErrReadOnly, e.Name, id, st.Name)
			}
		}
	}
	if err := applyDefaults(e, attrs, &old); err != nil {
		return opResponse{}, err
	}
	for k, v := range attrs {
		if a := e.Attr(k); a != nil && a.Required && v == nil {
			return opResponse{}, &crm.AttributeError{Entity: e.Name, ID: id, Attribute: k, Err: crm.ErrRequired}
		}
	}
	if err := s.checkLookups(ctx, t, p, m, e, id, attrs); err != nil {
		return opResponse{}, err
	}
	pc := &PluginContext{Stage: PreOperation, Message: msg, Entity: e, ID: id, Target: attrs, PreImage: &old,
		UserID: p.UserID, UserName: p.Name, CallerOrigin: origin, Tx: t}
	if err := s.runPlugins(ctx, pc); err != nil {
		return opResponse{}, err
	}
	if !suppressDuplicates(r.header) {
		merged := map[string]any{}
		for k, v := range old.Attrs {
			merged[k] = v
		}
		changed := false
		for k, v := range attrs {
			merged[k] = v
			changed = changed || isDupKey(e, k)
		}
		if changed {
			if err := s.detectDuplicates(ctx, p, t, e, id, merged); err != nil {
				return opResponse{}, err
			}
		}
	}
	rec, err := t.Patch(ctx, e, id, attrs)
	if err != nil {
		return opResponse{}, err
	}
	pc.Stage, pc.PostImage = PostOperation, &rec
	if err := s.runPlugins(ctx, pc); err != nil {
		return opResponse{}, err
	}
	if err := s.runWorkflows(ctx, t, m, MsgUpdate, e, rec, p); err != nil {
		return opResponse{}, err
	}
	h := entityIDHeader(r.base, e, id)
	h.Set("ETag", crm.ETag(rec.Version))
	if preferRepresentation(r.header) {
		b, err := e.MarshalRecord(rec)
		if err != nil {
			return opResponse{}, err
		}
		return opResponse{status: http.StatusOK, header: h, body: b}, nil
	}
	return opResponse{status: http.StatusNoContent, header: h}, nil
}

func checkIfMatch(h http.Header, old crm.Record) error {
	im := strings.TrimSpace(h.Get("If-Match"))
	if im == "" || im == "*" {
		return nil
	}
	v, err := crm.ParseETag(im)
	if err != nil {
		return err
	}
	if v != old.Version {
		return fmt.Errorf("%w: If-Match %s, current %s", crm.ErrPreconditionFailed, crm.ETag(v), crm.ETag(old.Version))
	}
	return nil
}

func (s *Server) remove(ctx context.Context, p *Principal, t Tx, e *crm.Entity, id crm.ID, r opRequest) (opResponse, error) {
	if err := s.messageAllowed(MsgDelete); err != nil {
		return opResponse{}, err
	}
	origin, err := callerOrigin(r.header)
	if err != nil {
		return opResponse{}, err
	}
	if len(bytes.TrimSpace(r.body)) > 0 {
		return opResponse{}, fmt.Errorf("%w: DELETE takes no body", crm.ErrInvalidArgument)
	}
	old, err := t.Get(ctx, e, id)
	if err != nil {
		return opResponse{}, err
	}
	if err := checkRight(p, e, old, Delete); err != nil {
		return opResponse{}, err
	}
	if err := checkIfMatch(r.header, old); err != nil {
		return opResponse{}, err
	}
	pc := &PluginContext{Stage: PreOperation, Message: MsgDelete, Entity: e, ID: id, PreImage: &old,
		UserID: p.UserID, UserName: p.Name, CallerOrigin: origin, Tx: t}
	if err := s.runPlugins(ctx, pc); err != nil {
		return opResponse{}, err
	}
	if err := t.Delete(ctx, e, id); err != nil {
		return opResponse{}, err
	}
	pc.Stage = PostOperation
	if err := s.runPlugins(ctx, pc); err != nil {
		return opResponse{}, err
	}
	return opResponse{status: http.StatusNoContent}, nil
}

func (s *Server) runPlugins(ctx context.Context, pc *PluginContext) error {
	for _, pl := range s.opts.Plugins {
		if err := pl.Execute(ctx, pc); err != nil {
			if statusOf(err) == http.StatusInternalServerError {
				return fmt.Errorf("%w: plug-in (%s stage) refused the %s: %v", crm.ErrInvalidArgument, pc.Stage, pc.Message, err)
			}
			return err
		}
	}
	return nil
}

func (s *Server) runWorkflows(ctx context.Context, t Tx, m *crm.Metadata, msg string, e *crm.Entity, rec crm.Record, p *Principal) error {
	for _, w := range s.opts.Workflows {
		wc := &WorkflowContext{Message: msg, Entity: e, Record: rec, UserID: p.UserID, Metadata: m, Tx: t, Now: s.now()}
		if err := w.Run(ctx, wc); err != nil {
			return fmt.Errorf("crmserver: workflow %s: %w", w.Name(), err)
		}
	}
	return nil
}

func isDupKey(e *crm.Entity, attr string) bool {
	switch e.Name {
	case crm.EntityContact:
		return attr == "emailaddress1" || attr == "emailaddress2" || attr == "emailaddress3"
	case crm.EntityAccount:
		return attr == "name"
	}
	return false
}

// detectDuplicates looks for records with the same e-mail address
// (contacts, any of emailaddress1..3, case-insensitive) or the same name
// (accounts) among those the user can read.
func (s *Server) detectDuplicates(ctx context.Context, p *Principal, t Tx, e *crm.Entity, self crm.ID, attrs map[string]any) error {
	var keys []string
	var values []string
	switch e.Name {
	case crm.EntityContact:
		keys = []string{"emailaddress1", "emailaddress2", "emailaddress3"}
		for _, k := range keys {
			if v, _ := attrs[k].(string); strings.TrimSpace(v) != "" {
				values = append(values, strings.TrimSpace(v))
			}
		}
	case crm.EntityAccount:
		keys = []string{"name"}
		if v, _ := attrs["name"].(string); strings.TrimSpace(v) != "" {
			values = append(values, v)
		}
	}
	if len(values) == 0 {
		return nil
	}
	opts := QueryOptions{Me: p.UserID, Now: s.now(), Limit: 10}
	switch p.Scope(e.Name, Read) {
	case ScopeNone:
		return nil
	case ScopeOwn:
		opts.Owner = p.UserID
	}
	// One query per key and value: each is one index lookup. SQLite plans
	// the ORed form (with the owner condition) as a walk of every record
	// of the owner, which made each create cost O(records owned).
	var recs []crm.Record
	seen := map[crm.ID]bool{}
	for _, k := range keys {
		for _, v := range values {
			c := &crm.Compare{Attr: k, Op: "eq", Value: crm.Literal{Kind: crm.KindString, Str: v}}
			rs, err := t.Query(ctx, e, crm.Query{Filter: c, Select: []string{e.PrimaryName}}, opts)
			if err != nil {
				return err
			}
			for _, r := range rs {
				if !seen[r.ID] && len(recs) < 10 {
					seen[r.ID] = true
					recs = append(recs, r)
				}
			}
		}
	}
	de := &DuplicateError{Entity: e.Name}
	for _, r := range recs {
		if r.ID == self {
			continue
		}
		name, _ := r.Attrs[e.PrimaryName].(string)
		de.Duplicates = append(de.Duplicates, crm.Duplicate{Entity: e.Name, ID: r.ID, Name: name})
	}
	if len(de.Duplicates) > 0 {
		return de
	}
	return nil
}
