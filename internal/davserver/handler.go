package davserver

import (
	"bytes"
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-webdav"
	"github.com/emersion/go-webdav/caldav"
	"github.com/emersion/go-webdav/carddav"
)

// statusWriter records the status code for the request log.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w}
	user := s.serve(sw, r)
	s.log.Debug("dav request", "method", r.Method, "path", r.URL.Path, "user", user,
		"status", sw.code, "duration", time.Since(start))
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) string {
	user, ok, err := s.authenticate(r)
	if err != nil {
		s.log.Error("dav auth", "err", err)
		http.Error(w, "authentication unavailable", http.StatusInternalServerError)
		return ""
	}
	if !ok {
		w.Header().Set("WWW-Authenticate", `Basic realm="pimbridge", charset="UTF-8"`)
		http.Error(w, "authentication required", http.StatusUnauthorized)
		return ""
	}
	r = r.WithContext(withUser(r.Context(), user))

	switch r.URL.Path {
	case "/.well-known/carddav", "/.well-known/caldav":
		http.Redirect(w, r, principalPath(user), http.StatusPermanentRedirect)
		return user
	}
	p, ok := parsePath(r.URL.Path)
	if !ok {
		http.Error(w, "no such resource", http.StatusNotFound)
		return user
	}
	if p.Depth > 0 && p.User != user {
		http.Error(w, "forbidden: another user's resource", http.StatusForbidden)
		return user
	}
	if p.Depth <= 1 {
		webdav.ServePrincipal(w, r, &webdav.ServePrincipalOptions{
			CurrentUserPrincipalPath: principalPath(user),
			HomeSets: []webdav.BackendSuppliedHomeSet{
				carddav.NewAddressBookHomeSet(homePath(user, kindAddressBook)),
				caldav.NewCalendarHomeSet(homePath(user, kindCalendar)),
			},
			Capabilities: []webdav.Capability{carddav.CapabilityAddressBook, caldav.CapabilityCalendar},
		})
		return user
	}

	var h http.Handler = s.card
	if p.Kind == kindCalendar {
		h = s.cal
	}
	switch {
	case (r.Method == http.MethodGet || r.Method == http.MethodHead) && p.Depth == 4:
		s.serveGet(w, r, p)
	case r.Method == http.MethodPut:
		if p.Depth != 4 {
			http.Error(w, "PUT is only allowed on objects", http.StatusMethodNotAllowed)
			return user
		}
		s.servePut(w, r, p)
	case r.Method == http.MethodDelete:
		s.serveDelete(w, r, p)
	case r.Method == "REPORT":
		s.serveReport(w, r, p, h)
	case r.Method == "PROPFIND":
		s.servePropfind(w, r, p, h)
	case r.Method == "MKCALENDAR":
		s.serveMkcalendar(w, r, p)
	default:
		h.ServeHTTP(w, r)
	}
	return user
}

// authenticate checks HTTP Basic credentials against the users table.
func (s *Server) authenticate(r *http.Request) (string, bool, error) {
	user, pass, ok := r.BasicAuth()
	if !ok || user == "" {
		return "", false, nil
	}
	ok, err := s.st.checkUser(r.Context(), user, pass)
	if err != nil {
		return "", false, err
	}
	if !ok {
		s.log.Info("dav login failed", "user", user, "remote", r.RemoteAddr)
	}
	return user, ok, nil
}

// writeError answers err with its HTTP status and, for the RFC
// preconditions, a DAV:error body.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var uc *UIDConflictError
	var unsup *UnsupportedComponentError
	code, cond := http.StatusInternalServerError, ""
	kindNS := cardNS
	if p, ok := parsePath(r.URL.Path); ok && p.Kind == kindCalendar {
		kindNS = calNS
	}
	switch {
	case errors.Is(err, ErrNotFound):
		code = http.StatusNotFound
	case errors.Is(err, ErrPreconditionFailed):
		code = http.StatusPreconditionFailed
	case errors.Is(err, ErrInvalidSyncToken):
		code, cond = http.StatusForbidden, `<d:valid-sync-token/>`
	case errors.As(err, &uc):
		code, cond = http.StatusConflict, `<c:no-uid-conflict xmlns:c="`+kindNS+`"><d:href>`+
			xmlEscape(escapePath(parentPath(r.URL.Path)+uc.Name))+`</d:href></c:no-uid-conflict>`
	case errors.As(err, &unsup):
		code, cond = http.StatusForbidden, `<c:supported-calendar-component xmlns:c="`+calNS+`"/>`
	case errors.Is(err, ErrInvalidObject):
		code, cond = http.StatusForbidden, `<c:valid-address-data xmlns:c="`+cardNS+`"/>`
		if kindNS == calNS {
			cond = `<c:valid-calendar-data xmlns:c="` + calNS + `"/>`
		}
	case errors.Is(err, ErrInvalidName):
		code = http.StatusForbidden
	case errors.Is(err, ErrExists):
		code = http.StatusMethodNotAllowed
	case errors.Is(err, context.Canceled):
		code = 499
	}
	if code >= 500 {
		s.log.Error("dav request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if cond == "" {
		http.Error(w, err.Error(), code)
		return
	}
	w.Header().Set("Content-Type", `application/xml; charset="utf-8"`)
	w.WriteHeader(code)
	io.WriteString(w, xmlHeader+`<d:error xmlns:d="DAV:">`+cond+`</d:error>`)
}

func parentPath(p string) string {
	if i := strings.LastIndex(strings.TrimSuffix(p, "/"), "/"); i >= 0 {
		return p[:i+1]
	}
	return "/"
}

func contentType(kind string) string {
	if kind == kindCalendar {
		return "text/calendar; charset=utf-8"
	}
	return "text/vcard; charset=utf-8"
}

func quoteETag(etag string) string { return `"` + etag + `"` }

func (s *Server) serveGet(w http.ResponseWriter, r *http.Request, p davPath) {
	c, err := s.collectionAt(r.Context(), p)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	o, err := s.st.getObject(r.Context(), c.ID, p.Obj)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	h := w.Header()
	h.Set("ETag", quoteETag(o.ETag))
	h.Set("Last-Modified", o.ModTime.UTC().Format(http.TimeFormat))
	if inm := r.Header.Get("If-None-Match"); inm != "" && etagListMatches(inm, o.ETag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Type", contentType(p.Kind))
	h.Set("Content-Length", strconv.Itoa(len(o.Data)))
	if r.Method == http.MethodHead {
		return
	}
	w.Write(o.Data)
}

func (s *Server) servePut(w http.ResponseWriter, r *http.Request, p davPath) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	want := []string{"text/vcard", "text/x-vcard", "text/directory"}
	if p.Kind == kindCalendar {
		want = []string{"text/calendar"}
	}
	if err != nil || !contains(want, strings.ToLower(mt)) {
		http.Error(w, "unsupported Content-Type "+strconv.Quote(r.Header.Get("Content-Type")), http.StatusUnsupportedMediaType)
		return
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, maxObjectSize+1))
	if err != nil {
		http.Error(w, "reading body: "+err.Error(), http.StatusBadRequest)
		return
	}
	if len(data) > maxObjectSize {
		http.Error(w, "object too large", http.StatusRequestEntityTooLarge)
		return
	}
	cond := conditions{IfMatch: r.Header.Get("If-Match"), IfNoneMatch: r.Header.Get("If-None-Match")}
	if _, err := s.collectionAt(r.Context(), p); errors.Is(err, ErrNotFound) {
		http.Error(w, "no such collection", http.StatusConflict)
		return
	}
	o, created, err := s.putObject(r.Context(), p, data, cond)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("ETag", quoteETag(o.ETag))
	w.Header().Set("Last-Modified", o.ModTime.UTC().Format(http.TimeFormat))
	if created {
		w.WriteHeader(http.StatusCreated)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (s *Server) serveDelete(w http.ResponseWriter, r *http.Request, p davPath) {
	ctx := r.Context()
	switch p.Depth {
	case 3:
		c, err := s.collectionAt(ctx, p)
		if err == nil {
			err = s.st.deleteCollection(ctx, c.ID)
		}
		if err != nil {
			s.writeError(w, r, err)
			return
		}
	case 4:
		c, err := s.collectionAt(ctx, p)
		if err == nil {
			err = s.st.deleteObject(ctx, c.ID, p.Obj, conditions{IfMatch: r.Header.Get("If-Match"), IfNoneMatch: r.Header.Get("If-None-Match")})
		}
		if err != nil {
			s.writeError(w, r, err)
			return
		}
	default:
		http.Error(w, "cannot delete this resource", http.StatusForbidden)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// serveMkcalendar implements MKCALENDAR (RFC 4791 §5.3.1), which go-webdav
// lacks: displayname, calendar-description and
// supported-calendar-component-set are honoured.
func (s *Server) serveMkcalendar(w http.ResponseWriter, r *http.Request, p davPath) {
	if p.Kind != kindCalendar || p.Depth != 3 {
		http.Error(w, "MKCALENDAR is only allowed on /<user>/calendars/<name>/", http.StatusForbidden)
		return
	}
	var req mkcalendarRequest
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if len(bytes.TrimSpace(body)) > 0 {
		if err := xmlUnmarshal(body, &req); err != nil {
			http.Error(w, "bad MKCALENDAR body: "+err.Error(), http.StatusBadRequest)
			return
		}
	}
	var comps []string
	for _, c := range req.Set.Prop.Components.Comps {
		comps = append(comps, c.Name)
	}
	if err := s.createColl(r.Context(), p, req.Set.Prop.DisplayName, req.Set.Prop.Description, comps); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusCreated)
}
