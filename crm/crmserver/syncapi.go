package crmserver

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/pimbridge/pimbridge/crm"
)

// Sync API (docs/sync-protocol.md):
//
//	POST   /api/sync/subscriptions                  {"clientid","kind"} -> Subscription (get or create)
//	GET    /api/sync/subscriptions                  the caller's subscriptions
//	GET    /api/sync/subscriptions/{id}
//	DELETE /api/sync/subscriptions/{id}
//	POST   /api/sync/subscriptions/{id}/prepare     -> {"metadataversion","maxbatchsize","entities":[{name,insert_count,delete_count}]}
//	GET    /api/sync/subscriptions/{id}/batches?entity=contact&size=N[&leftfilter=1]
//	                                                -> application/octet-stream: crm batch (16-byte header + payload);
//	                                                   leftfilter=1: what left the view comes as crm.RowLeftFilter rows
//	POST   /api/sync/subscriptions/{id}/postsync    {"batch":N} -> PostSyncResult
//	POST   /api/sync/subscriptions/{id}/syncinfo    SyncInfo (RecordSyncInfo)
//	GET    /api/sync/subscriptions/{id}/syncinfo    latest SyncInfo, newest first
//	GET    /api/sync/filters/{entity}               the caller's effective local data filter
//	PUT    /api/sync/filters/{entity}               {"filter"} the caller's own; ?default=true (Admin) with "locked"
//	GET    /api/sync/primary                        Primary
//	POST   /api/sync/primary                        {"clientid"} claim: bumps the fencing generation
//
// Subscriptions of kind offline need the Go Offline privilege, outlook needs
// Sync to Outlook; addressbook needs only read rights. Another user's
// subscription or batch is not found (404).

// SubscriptionEntities lists the entities a subscription kind carries.
func SubscriptionEntities(m *crm.Metadata, kind string) []*crm.Entity {
	var names []string
	switch kind {
	case crm.KindOffline:
		for _, e := range m.Entities {
			names = append(names, e.Name)
		}
	case crm.KindOutlook:
		names = []string{crm.EntityContact, crm.EntityTask, crm.EntityPhoneCall, crm.EntityLetter, crm.EntityFax, crm.EntityAppointment}
	case crm.KindAddressBook:
		names = []string{crm.EntityAccount, crm.EntitySystemUser} // contacts go through outlook
	}
	var out []*crm.Entity
	for _, n := range names {
		if e, err := m.Entity(n); err == nil {
			out = append(out, e)
		}
	}
	return out
}

// activityFilter is the default filter of every activity: those the user
// owns or is a party of that are open or were changed in the last 30 days.
const activityFilter = "(ownerid eq @me or isparty(@me)) and (statecode eq 0 or modifiedon ge @now-30d)"

// withActivities returns m with activityFilter for every activity entity.
func withActivities(m map[string]string) map[string]string {
	for _, a := range crm.ActivityEntities {
		m[a] = activityFilter
	}
	return m
}

// DefaultLocalFilters are the local data filters used when an admin has not
// set a default: contacts and accounts the user owns; activities the user
// owns or is a party of that are open or were changed in the last 30 days;
// attachments the user owns. Entities without an entry (systemuser) are not
// filtered beyond security. They shape the offline subscription only.
var DefaultLocalFilters = withActivities(map[string]string{
	crm.EntityContact:    "ownerid eq @me",
	crm.EntityAccount:    "ownerid eq @me",
	crm.EntityAttachment: "ownerid eq @me",
})

// DefaultPIMSyncFilters are the fixed filters of the outlook (PIM sync)
// subscription, which the user cannot edit:
// contacts the user owns; activities the user owns or is a party of that
// are open or were changed in the last 30 days. No user setting changes
// them, so narrowing the offline replica never removes anything from the
// PIM side; Options.PIMSyncFilters replaces them for a whole server.
var DefaultPIMSyncFilters = withActivities(map[string]string{
	crm.EntityContact: "ownerid eq @me",
})

func (s *Server) syncRoutes(m *http.ServeMux) {
	m.HandleFunc("POST /api/sync/subscriptions", s.auth(s.handleSubscribe))
	m.HandleFunc("GET /api/sync/subscriptions", s.auth(s.handleSubscriptions))
	m.HandleFunc("GET /api/sync/subscriptions/{id}", s.auth(s.withSub(MsgSubscribe, s.handleSubscription)))
	m.HandleFunc("DELETE /api/sync/subscriptions/{id}", s.auth(s.withSub(MsgSubscribe, s.handleDeleteSubscription)))
	m.HandleFunc("POST /api/sync/subscriptions/{id}/prepare", s.auth(s.withSub(MsgPrepareSync, s.handlePrepare)))
	m.HandleFunc("GET /api/sync/subscriptions/{id}/batches", s.auth(s.withSub(MsgGetBatch, s.handleBatch)))
	m.HandleFunc("POST /api/sync/subscriptions/{id}/postsync", s.auth(s.withSub(MsgPostSync, s.handlePostSync)))
	m.HandleFunc("POST /api/sync/subscriptions/{id}/syncinfo", s.auth(s.withSub(MsgRecordSyncInfo, s.handleAddSyncInfo)))
	m.HandleFunc("GET /api/sync/subscriptions/{id}/syncinfo", s.auth(s.withSub(MsgRecordSyncInfo, s.handleSyncInfo)))
	m.HandleFunc("GET /api/sync/subscriptions/{id}/changes", s.auth(s.withSub(MsgPrepareSync, s.handleChanges))) // feed.go
	m.HandleFunc("GET /api/sync/filters/{entity}", s.auth(s.handleGetFilter))
	m.HandleFunc("PUT /api/sync/filters/{entity}", s.auth(s.handlePutFilter))
	m.HandleFunc("GET /api/sync/primary", s.auth(s.handleGetPrimary))
	m.HandleFunc("POST /api/sync/primary", s.auth(s.handleClaimPrimary))
}

// kindAllowed checks the privilege a subscription kind needs.
func kindAllowed(p *Principal, kind string) error {
	switch kind {
	case crm.KindOffline:
		if !p.Has(PrivGoOffline) {
			return fmt.Errorf("%w: offline subscriptions need the Go Offline privilege", crm.ErrForbidden)
		}
	case crm.KindOutlook:
		if !p.Has(PrivSyncToOutlook) {
			return fmt.Errorf("%w: outlook subscriptions need the Sync to Outlook privilege", crm.ErrForbidden)
		}
	case crm.KindAddressBook:
	default:
		return fmt.Errorf("%w: subscription kind %q (want offline, outlook or addressbook)", crm.ErrInvalidArgument, kind)
	}
	return nil
}

func (s *Server) handleSubscribe(w http.ResponseWriter, r *http.Request, p *Principal) {
	if err := s.messageAllowed(MsgSubscribe); err != nil {
		s.writeError(w, r, err)
		return
	}
	var in struct {
		ClientID string `json:"clientid"`
		Kind     string `json:"kind"`
	}
	if err := decodeJSON(r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := kindAllowed(p, in.Kind); err != nil {
		s.writeError(w, r, err)
		return
	}
	sub, err := s.store.Subscribe(r.Context(), p.UserID, in.ClientID, in.Kind)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, sub)
}

func (s *Server) handleSubscriptions(w http.ResponseWriter, r *http.Request, p *Principal) {
	if err := s.messageAllowed(MsgSubscribe); err != nil {
		s.writeError(w, r, err)
		return
	}
	subs, err := s.store.Subscriptions(r.Context(), p.UserID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if subs == nil {
		subs = []crm.Subscription{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"value": subs})
}

// withSub loads the caller's subscription {id} and checks its privilege.
func (s *Server) withSub(msg string, h func(http.ResponseWriter, *http.Request, *Principal, crm.Subscription)) func(http.ResponseWriter, *http.Request, *Principal) {
	return func(w http.ResponseWriter, r *http.Request, p *Principal) {
		if err := s.messageAllowed(msg); err != nil {
			s.writeError(w, r, err)
			return
		}
		sub, err := s.store.Subscription(r.Context(), p.UserID, r.PathValue("id"))
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if err := kindAllowed(p, sub.Kind); err != nil {
			s.writeError(w, r, err)
			return
		}
		h(w, r, p, sub)
	}
}

func (s *Server) handleSubscription(w http.ResponseWriter, r *http.Request, p *Principal, sub crm.Subscription) {
	writeJSON(w, http.StatusOK, sub)
}

func (s *Server) handleDeleteSubscription(w http.ResponseWriter, r *http.Request, p *Principal, sub crm.Subscription) {
	if err := s.store.DeleteSubscription(r.Context(), p.UserID, sub.ID); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// specs builds the sync specs of a subscription for p: the read scope (none
// excludes the entity, own adds ownerid eq @me) and the subscription's
// filter: the user's local data filter for offline, the server's fixed
// PIM sync filter for outlook, none for addressbook.
func (s *Server) specs(r *http.Request, p *Principal, m *crm.Metadata, sub crm.Subscription) ([]SyncSpec, error) {
	var out []SyncSpec
	for _, e := range SubscriptionEntities(m, sub.Kind) {
		sp, err := s.spec(r, p, e, sub.Kind)
		if err != nil {
			return nil, err
		}
		out = append(out, sp)
	}
	return out, nil
}

// spec builds the sync spec of one entity of a subscription kind for p.
func (s *Server) spec(r *http.Request, p *Principal, e *crm.Entity, kind string) (SyncSpec, error) {
	scope := p.Scope(e.Name, Read)
	sp := SyncSpec{Entity: e}
	var parts []string
	if scope == ScopeNone {
		sp.Excluded = true
	} else {
		if scope == ScopeOwn {
			parts = append(parts, "ownerid eq @me")
		}
		switch kind {
		case crm.KindOutlook:
			if f := s.pimSyncFilter(e.Name); f != "" {
				parts = append(parts, "("+f+")")
			}
		case crm.KindOffline:
			f, err := s.localFilter(r, p, e.Name)
			if err != nil {
				return sp, err
			}
			if f.Filter != "" {
				parts = append(parts, "("+f.Filter+")")
			}
		}
	}
	text := strings.Join(parts, " and ")
	if text != "" {
		x, err := crm.ParseFilter(text)
		if err != nil {
			return sp, fmt.Errorf("sync filter of %s: %w", e.Name, err)
		}
		if err := e.CheckQuery(crm.Query{Filter: x}); err != nil {
			return sp, fmt.Errorf("sync filter of %s: %w", e.Name, err)
		}
		sp.Filter = x
	}
	// The hash covers everything that decides membership, so a change
	// of filter, rights or user forces a full evaluation.
	h := sha256.Sum256([]byte(fmt.Sprintf("%v|%s|%s", sp.Excluded, text, p.UserID)))
	sp.Hash = hex.EncodeToString(h[:8])
	return sp, nil
}

// pimSyncFilter returns the fixed outlook filter of an entity.
func (s *Server) pimSyncFilter(entity string) string {
	if s.opts.PIMSyncFilters != nil {
		return s.opts.PIMSyncFilters[entity]
	}
	return DefaultPIMSyncFilters[entity]
}

func (s *Server) localFilter(r *http.Request, p *Principal, entity string) (crm.LocalFilter, error) {
	f, ok, err := s.store.LocalFilter(r.Context(), p.UserID, entity)
	if err != nil {
		return f, err
	}
	if !ok {
		f = crm.LocalFilter{Entity: entity, Filter: DefaultLocalFilters[entity]}
	}
	return f, nil
}

func (s *Server) handlePrepare(w http.ResponseWriter, r *http.Request, p *Principal, sub crm.Subscription) {
	m, err := s.store.Metadata(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	specs, err := s.specs(r, p, m, sub)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	counts, err := s.store.Prepare(r.Context(), sub, specs, p.UserID, s.now())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"metadataversion": m.Version, "maxbatchsize": s.opts.MaxBatchSize, "entities": counts})
}

func (s *Server) handleBatch(w http.ResponseWriter, r *http.Request, p *Principal, sub crm.Subscription) {
	m, err := s.store.Metadata(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	e, err := m.Entity(r.URL.Query().Get("entity"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	allowed := false
	for _, x := range SubscriptionEntities(m, sub.Kind) {
		allowed = allowed || x == e
	}
	if !allowed {
		s.writeError(w, r, fmt.Errorf("%w: %s subscriptions do not carry %s", crm.ErrInvalidArgument, sub.Kind, e.Name))
		return
	}
	size := min(5000, s.opts.MaxBatchSize)
	if v := r.URL.Query().Get("size"); v != "" {
		size, err = strconv.Atoi(v)
		if err != nil || size < 1 {
			s.writeError(w, r, fmt.Errorf("%w: size must be a positive number of rows", crm.ErrInvalidArgument))
			return
		}
		if size > s.opts.MaxBatchSize {
			s.writeError(w, r, fmt.Errorf("%w: batch size %d is over the largest this server serves, %d rows (prepare's maxbatchsize)", errTooLarge, size, s.opts.MaxBatchSize))
			return
		}
	}
	// The rows are checked against the filter and rights of now, not of
	// the prepare that marked them.
	sp, err := s.spec(r, p, e, sub.Kind)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	req := SyncBatchRequest{Spec: sp, Me: p.UserID, Now: s.now(), Max: size, LeftRows: r.URL.Query().Get("leftfilter") == "1"}
	payload, ok, err := s.store.NextBatch(r.Context(), sub, req)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	h := crm.BatchHeader{Result: crm.BatchOK, PayloadSize: uint64(len(payload)), MetadataVersion: uint32(m.Version)}
	if !ok {
		h.Result, h.PayloadSize, payload = crm.BatchEmpty, 0, nil
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(crm.BatchHeaderSize+len(payload)))
	w.WriteHeader(http.StatusOK)
	w.Write(h.Append(nil))
	w.Write(payload)
}

func (s *Server) handlePostSync(w http.ResponseWriter, r *http.Request, p *Principal, sub crm.Subscription) {
	var in struct {
		Batch uint64 `json:"batch"`
	}
	if err := decodeJSON(r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	res, err := s.store.PostSync(r.Context(), sub, in.Batch)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) handleAddSyncInfo(w http.ResponseWriter, r *http.Request, p *Principal, sub crm.Subscription) {
	body, err := readBody(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var in crm.SyncInfo
	if err := strictJSON(body, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.store.AddSyncInfo(r.Context(), sub, in); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleSyncInfo(w http.ResponseWriter, r *http.Request, p *Principal, sub crm.Subscription) {
	infos, err := s.store.SyncInfo(r.Context(), sub, 20)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"value": infos})
}

func (s *Server) handleGetFilter(w http.ResponseWriter, r *http.Request, p *Principal) {
	m, err := s.store.Metadata(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	e, err := m.Entity(r.PathValue("entity"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	f, err := s.localFilter(r, p, e.Name)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, f)
}

func (s *Server) handlePutFilter(w http.ResponseWriter, r *http.Request, p *Principal) {
	if err := s.messageAllowed(MsgSetLocalFilter); err != nil {
		s.writeError(w, r, err)
		return
	}
	m, err := s.store.Metadata(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	e, err := m.Entity(r.PathValue("entity"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var in struct {
		Filter string `json:"filter"`
		Locked bool   `json:"locked"`
	}
	if err := decodeJSON(r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	if in.Filter != "" {
		x, err := crm.ParseFilter(in.Filter)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if err := e.CheckQuery(crm.Query{Filter: x}); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	user := p.UserID
	if r.URL.Query().Get("default") == "true" {
		if !p.IsAdmin() {
			s.writeError(w, r, fmt.Errorf("%w: default filters need the Admin privilege", crm.ErrForbidden))
			return
		}
		user = crm.ID{}
	} else {
		if in.Locked {
			s.writeError(w, r, fmt.Errorf("%w: only a default filter can be locked", crm.ErrInvalidArgument))
			return
		}
		cur, ok, err := s.store.LocalFilter(r.Context(), crm.ID{}, e.Name)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if ok && cur.Locked {
			s.writeError(w, r, fmt.Errorf("%w: the administrator locked the %s filter", crm.ErrForbidden, e.Name))
			return
		}
	}
	f := crm.LocalFilter{Entity: e.Name, Filter: in.Filter, Locked: in.Locked, User: user}
	if err := s.store.SetLocalFilter(r.Context(), user, f); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, f)
}

func (s *Server) handleGetPrimary(w http.ResponseWriter, r *http.Request, p *Principal) {
	pr, err := s.store.Primary(r.Context(), p.UserID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, pr)
}

func (s *Server) handleClaimPrimary(w http.ResponseWriter, r *http.Request, p *Principal) {
	if err := s.messageAllowed(MsgClaimPrimary); err != nil {
		s.writeError(w, r, err)
		return
	}
	var in struct {
		ClientID string `json:"clientid"`
	}
	if err := decodeJSON(r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	pr, err := s.store.ClaimPrimary(r.Context(), p.UserID, in.ClientID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.log.Info("crmserver: primary client claimed", "user", p.Name, "client", in.ClientID, "generation", pr.Generation)
	writeJSON(w, http.StatusOK, pr)
}
