package ui

import (
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pimbridge/pimbridge/bridge"
	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/idmap"
)

var funcs = template.FuncMap{
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.Local().Format("2006-01-02 15:04:05")
	},
	"ago": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		d := time.Since(t).Round(time.Second)
		if d < 0 {
			return "in " + (-d).String()
		}
		return d.String() + " ago"
	},
	"fields": bodyFields,
	"dur":    func(d time.Duration) string { return d.Round(time.Millisecond).String() },
	"pct":    func(f float64) string { return fmt.Sprintf("%.0f%%", f*100) },
	"entities": func(st *bridge.Stats) []entityRow {
		if st == nil {
			return nil
		}
		return entityRows(*st)
	},
}

// bodyFields is a queued request's JSON body as "name = value" pairs in
// name order ("" for no body or one that is not a JSON object), so that
// the user sees which change the server refused.
func bodyFields(body []byte) string {
	var m map[string]any
	if len(body) == 0 || json.Unmarshal(body, &m) != nil {
		return ""
	}
	var parts []string
	for k, v := range m {
		if strings.HasPrefix(k, "@") {
			continue
		}
		val := fmt.Sprint(v)
		if len(val) > 60 {
			val = val[:57] + "..."
		}
		parts = append(parts, k+" = "+val)
	}
	slices.Sort(parts)
	return strings.Join(parts, ", ")
}

// entityRow is one line of the per-entity table.
type entityRow struct {
	Entity string
	bridge.EntityStats
}

func entityRows(st bridge.Stats) []entityRow {
	var rows []entityRow
	for e, es := range st.ByEntity {
		rows = append(rows, entityRow{e, *es})
	}
	slices.SortFunc(rows, func(a, b entityRow) int { return strings.Compare(a.Entity, b.Entity) })
	return rows
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	st, err := s.b.Status(r.Context())
	if err != nil {
		s.fail(w, r, "status", err)
		return
	}
	s.render(w, r, http.StatusOK, "status", page{Title: "Status", Nav: "status", Live: true, Data: st})
}

func (s *Server) syncNow(w http.ResponseWriter, r *http.Request) {
	if err := s.b.SyncNow(r.Context()); err != nil && !errors.Is(err, bridge.ErrItemErrors) {
		s.fail(w, r, "status", err)
		return
	}
	http.Redirect(w, r, "/?msg=synced", http.StatusSeeOther)
}

func (s *Server) errorsPage(w http.ResponseWriter, r *http.Request) {
	errs, err := s.b.SyncErrors(r.Context())
	if err != nil {
		s.fail(w, r, "errors", err)
		return
	}
	s.render(w, r, http.StatusOK, "errors", page{Title: "Sync errors", Nav: "errors", Data: errs})
}

// errorAction is retry, discard (confirmed), allow-duplicate or link.
func (s *Server) errorAction(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		http.Error(w, "ui: not a sync error id", http.StatusBadRequest)
		return
	}
	ctx := r.Context()
	var msg string
	switch op := r.PathValue("op"); op {
	case "retry":
		err, msg = s.b.RetryError(ctx, id), "retry"
	case "allow-duplicate":
		err, msg = s.b.AllowDuplicate(ctx, id), "allow-dup"
	case "discard":
		if r.PostFormValue("confirm") != "yes" {
			s.render(w, r, http.StatusOK, "confirm", page{Title: "Discard?", Nav: "errors", Data: confirm{
				Action: r.URL.Path, Question: fmt.Sprintf("Discard sync error %d? The change it carries is dropped and will not reach the other side.", id),
				Button: "Discard the change", Back: "/errors"}})
			return
		}
		err, msg = s.b.DiscardError(ctx, id), "discard"
	case "link":
		var crmID crm.ID
		if crmID, err = crm.ParseID(r.PostFormValue("crm_id")); err != nil {
			err = fmt.Errorf("ui: link: %q is not a CRM record id: %w", r.PostFormValue("crm_id"), err)
			break
		}
		err, msg = s.b.LinkError(ctx, id, crmID), "linked"
	default:
		http.NotFound(w, r)
		return
	}
	if err != nil {
		s.fail(w, r, "errors", err)
		return
	}
	http.Redirect(w, r, "/errors?msg="+msg, http.StatusSeeOther)
}

// confirm is the confirmation page of an action that drops data.
type confirm struct {
	Action, Question, Button, Back string
	Fields                         map[string]string
}

// linkData is the link page: the error, the search and its matches.
type linkData struct {
	Error    idmap.SyncError
	Query    string
	Matches  []Match
	Searched bool
}

func (s *Server) linkPage(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		http.Error(w, "ui: not a sync error id", http.StatusBadRequest)
		return
	}
	ctx := r.Context()
	errs, err := s.b.SyncErrors(ctx)
	if err != nil {
		s.fail(w, r, "errors", err)
		return
	}
	i := slices.IndexFunc(errs, func(e idmap.SyncError) bool { return e.ID == id })
	if i < 0 {
		s.fail(w, r, "errors", fmt.Errorf("%w: %d", idmap.ErrNoSyncError, id))
		return
	}
	d := linkData{Error: errs[i], Query: strings.TrimSpace(r.URL.Query().Get("q"))}
	if d.Query != "" {
		d.Searched = true
		if d.Matches, err = s.b.Search(ctx, id, d.Query); err != nil {
			s.fail(w, r, "errors", err)
			return
		}
	}
	s.render(w, r, http.StatusOK, "link", page{Title: "Link", Nav: "errors", Data: d})
}

func (s *Server) planPage(w http.ResponseWriter, r *http.Request) {
	p, err := s.b.Plan(r.Context())
	if err != nil {
		s.fail(w, r, "plan", err)
		return
	}
	s.render(w, r, http.StatusOK, "plan", page{Title: "Plan", Nav: "plan", Data: planView{Plan: p, Rows: entityRows(p.Stats)}})
}

type planView struct {
	Plan
	Rows []entityRow
}

func (s *Server) planConfirm(w http.ResponseWriter, r *http.Request) {
	if _, err := s.b.ConfirmDeletes(r.Context()); err != nil && !errors.Is(err, bridge.ErrItemErrors) {
		s.fail(w, r, "plan", err)
		return
	}
	http.Redirect(w, r, "/plan?msg=confirmed", http.StatusSeeOther)
}

// redirectMsg redirects to path with an outcome message.
func redirectMsg(w http.ResponseWriter, r *http.Request, path, msg string) {
	http.Redirect(w, r, path+"?msg="+url.QueryEscape(msg), http.StatusSeeOther)
}
