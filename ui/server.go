package ui

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Names of the cookie, the form field and the headers the checks read.
const (
	cookieName = "pimbridge_ui"
	csrfField  = "csrf"
	// KeyHeader carries the key itself, for scripts: no cookie and no
	// CSRF token needed (a cross-origin page cannot send it without a
	// CORS preflight, which is never answered).
	KeyHeader  = "X-Pimbridge-Key"
	csrfHeader = "X-CSRF-Token"
)

// Options configure New.
type Options struct {
	// Backend is the daemon; required.
	Backend Backend
	// Key is the access key (LoadOrCreateKey); required.
	Key string
	// Logger; nil means slog.Default().
	Logger *slog.Logger
}

// Server serves the page. Its zero value is not usable; call New.
type Server struct {
	b       Backend
	key     string
	session string // the cookie's value
	csrf    string // the CSRF token
	log     *slog.Logger
	pages   map[string]*template.Template

	mu  sync.Mutex
	job *job // the last go-offline or go-online, nil before one
}

// New checks opts and parses the pages.
func New(opts *Options) (*Server, error) {
	if opts == nil || opts.Backend == nil || len(opts.Key) < 32 {
		return nil, errors.New("ui: new: a backend and a key are required")
	}
	s := &Server{b: opts.Backend, key: opts.Key, session: derive(opts.Key, "session"), csrf: derive(opts.Key, "csrf"), log: opts.Logger, pages: map[string]*template.Template{}}
	if s.log == nil {
		s.log = slog.Default()
	}
	for _, name := range []string{"status", "errors", "link", "plan", "offline", "confirm", "signin", "failed"} {
		t, err := template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("ui: parse %s: %w", name, err)
		}
		s.pages[name] = t
	}
	return s, nil
}

// Serve serves the page on ln until ctx ends; go-offline and go-online
// started from the page run under ctx too.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.Handler(ctx, ln.Addr()),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	stop := context.AfterFunc(ctx, func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	})
	defer stop()
	err := srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Handler is the page's handler for a listener at addr; jobs it starts run
// under ctx.
func (s *Server) Handler(ctx context.Context, addr net.Addr) http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /{$}", s.status)
	mux.HandleFunc("POST /sync", s.syncNow)
	mux.HandleFunc("GET /errors", s.errorsPage)
	mux.HandleFunc("POST /errors/{id}/{op}", s.errorAction)
	mux.HandleFunc("GET /errors/{id}/link", s.linkPage)
	mux.HandleFunc("GET /plan", s.planPage)
	mux.HandleFunc("POST /plan/confirm", s.planConfirm)
	mux.HandleFunc("GET /offline", s.offlinePage)
	mux.HandleFunc("POST /offline/{op}", func(w http.ResponseWriter, r *http.Request) { s.offlineAction(ctx, w, r) })
	return s.guard(loopbackAddr(addr), mux)
}

func loopbackAddr(a net.Addr) bool {
	ap, err := netip.ParseAddrPort(a.String())
	return err == nil && ap.Addr().IsLoopback()
}

// guard applies the checks of the package doc around next.
func (s *Server) guard(loopback bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin") // the key never leaves in a Referer (and "no-referrer" would make Origin null)
		h.Set("Cache-Control", "no-store")
		if loopback && !loopbackHost(r.Host) {
			// A DNS name pointed at 127.0.0.1 (rebinding) is not this page.
			http.Error(w, "ui: unknown host "+r.Host, http.StatusMisdirectedRequest)
			return
		}
		if strings.HasPrefix(r.URL.Path, "/static/") {
			next.ServeHTTP(w, r)
			return
		}
		if k := r.URL.Query().Get("key"); k != "" && r.Method == http.MethodGet {
			if !equal(k, s.key) {
				s.render(w, r, http.StatusForbidden, "signin", page{Title: "Sign in", Data: "That key is not this daemon's."})
				return
			}
			http.SetCookie(w, &http.Cookie{Name: cookieName, Value: s.session, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
			q := r.URL.Query()
			q.Del("key")
			u := *r.URL
			u.RawQuery = q.Encode()
			http.Redirect(w, r, u.RequestURI(), http.StatusSeeOther)
			return
		}
		byHeader := r.Header.Get(KeyHeader) != "" && equal(r.Header.Get(KeyHeader), s.key)
		c, _ := r.Cookie(cookieName)
		byCookie := c != nil && equal(c.Value, s.session)
		if !byHeader && !byCookie {
			s.render(w, r, http.StatusUnauthorized, "signin", page{Title: "Sign in"})
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			if err := s.checkWrite(r, byHeader); err != nil {
				s.log.Warn("ui: request refused", "method", r.Method, "path", r.URL.Path, "origin", r.Header.Get("Origin"), "err", err)
				http.Error(w, err.Error(), http.StatusForbidden)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// checkWrite is the check of a state-changing request.
func (s *Server) checkWrite(r *http.Request, byHeader bool) error {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return fmt.Errorf("ui: a %s request may not change anything", site)
	}
	if o := r.Header.Get("Origin"); o != "" && o != "http://"+r.Host {
		return fmt.Errorf("ui: requests from %s may not change anything", o)
	}
	if byHeader {
		return nil
	}
	tok := r.Header.Get(csrfHeader)
	if tok == "" {
		tok = r.PostFormValue(csrfField)
	}
	if !equal(tok, s.csrf) {
		return errors.New("ui: missing or wrong CSRF token; reload the page")
	}
	return nil
}

// loopbackHost reports whether a Host header names the loopback listener:
// a loopback IP or localhost.
func loopbackHost(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(strings.Trim(host, "[]"))
	return err == nil && ip.IsLoopback()
}

// page is what every template gets.
type page struct {
	Title string
	Nav   string // the current tab
	CSRF  string
	Live  bool   // the page refreshes itself (script, or meta refresh without)
	Msg   string // a one-line outcome of the last action
	Err   string
	Data  any
}

// render writes a page, or only its content for the script's refresh
// (X-Partial).
func (s *Server) render(w http.ResponseWriter, r *http.Request, code int, name string, p page) {
	p.CSRF = s.csrf
	if p.Msg == "" {
		p.Msg = messages[r.URL.Query().Get("msg")]
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	tmpl := "layout"
	if r.Header.Get("X-Partial") == "1" {
		tmpl = "main"
	}
	if err := s.pages[name].ExecuteTemplate(w, tmpl, p); err != nil {
		s.log.Error("ui: render", "page", name, "err", err)
	}
}

// fail renders a failed action or read.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, nav string, err error) {
	code, live := http.StatusInternalServerError, false
	if errors.Is(err, ErrNotRunning) {
		code, live = http.StatusServiceUnavailable, true // it comes back in a moment
	}
	s.render(w, r, code, "failed", page{Title: "Failed", Nav: nav, Err: err.Error(), Live: live})
}

// messages are the outcomes an action redirects with (?msg=...).
var messages = map[string]string{
	"synced":      "The cycle ran; its outcome is below.",
	"retry":       "The item will be retried at the next sync.",
	"discard":     "The sync error was discarded.",
	"allow-dup":   "The item will be created in CRM at the next sync, duplicates or not.",
	"linked":      "Linked; the two are merged at the next sync.",
	"confirmed":   "The held-back deletions were applied.",
	"stay":        "Staying offline: the rejected writes stay listed; fix the data, then retry or discard them.",
	"job-started": "Started.",
	"job-running": "Another go-offline or go-online is still running.",
}
