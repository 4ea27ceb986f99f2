package crmserver

import (
	"fmt"
	"net/http"

	"github.com/pimbridge/pimbridge/crm"
)

// handleAddEntity creates a custom entity (admins only). Its records are
// served at /api/data/{entitysetname} under the rights roles give every
// entity without its own entry ("*"): admins all, salespeople their own.
func (s *Server) handleAddEntity(w http.ResponseWriter, r *http.Request, p *Principal) {
	if err := s.customizer(MsgCreateEntity, p); err != nil {
		s.writeError(w, r, err)
		return
	}
	var req crm.EntityRequest
	if err := decodeJSON(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.PrimaryName == "" {
		req.PrimaryName = req.Name + "_name"
	}
	if req.MaxLength < 0 || req.MaxLength > 4000 {
		s.writeError(w, r, fmt.Errorf("%w: custom entity %q: maxlength %d is outside 0..4000", crm.ErrInvalidArgument, req.Name, req.MaxLength))
		return
	}
	e := crm.NewCustomEntity(req.Name, req.SetName, req.PrimaryName, req.MaxLength)
	m, err := s.store.AddEntity(r.Context(), *e)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"version": m.Version, "entity": e.Name, "entitysetname": e.SetName, "primaryidattribute": e.PrimaryKey})
}

// handleAddRelationship creates a custom one-to-many relationship (admins
// only): a lookup referencingattribute on referencingentity pointing at
// referencedentity, a built-in entity.
func (s *Server) handleAddRelationship(w http.ResponseWriter, r *http.Request, p *Principal) {
	if err := s.customizer(MsgCreateRelation, p); err != nil {
		s.writeError(w, r, err)
		return
	}
	var rel crm.Relationship
	if err := decodeJSON(r, &rel); err != nil {
		s.writeError(w, r, err)
		return
	}
	m, rel, err := s.store.AddRelationship(r.Context(), rel)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"version": m.Version, "relationship": rel})
}

// customizer checks that the message runs here and the caller may
// customize.
func (s *Server) customizer(msg string, p *Principal) error {
	if err := s.messageAllowed(msg); err != nil {
		return err
	}
	if !p.IsAdmin() {
		return fmt.Errorf("%w: customization needs the Admin privilege", crm.ErrForbidden)
	}
	return nil
}
