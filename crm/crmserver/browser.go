package crmserver

import (
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/pimbridge/pimbridge/crm"
)

// Cross-site requests. A page in a browser can make the browser send a
// request to this server (a form post, fetch without CORS) carrying the
// credentials the browser holds for it. Three rules stop that:
//   - a request body must be application/json (415 otherwise): forms can
//     only send urlencoded, multipart and text/plain bodies, and fetch can
//     send JSON cross-site only after a CORS preflight, which this server
//     never grants;
//   - a request carrying an Origin header not in Options.AllowedOrigins,
//     or marked cross-site or same-site by Sec-Fetch-Site, is refused
//     (403 origin_refused); clients other than browsers send neither;
//   - with Options.NoBasicChallenge (the offline local API), a 401 never
//     carries a Basic challenge, so a browser never prompts for and caches
//     the credentials.
var (
	errUnsupportedMedia = fmt.Errorf("%w: request bodies must be application/json", crm.ErrInvalidArgument)
	errOriginRefused    = fmt.Errorf("%w: cross-site browser request refused", crm.ErrForbidden)
)

// errBatchResponseTooLarge is a $batch request not run because the answer
// reached Options.MaxBatchResponseBytes.
var errBatchResponseTooLarge = errors.New("batch response too large")

func (s *Server) checkBrowser(r *http.Request) error {
	if o := r.Header.Get("Origin"); o != "" && !slices.Contains(s.opts.AllowedOrigins, o) {
		return fmt.Errorf("%w: origin %q is not allowed", errOriginRefused, o)
	}
	if r.Header.Get("Origin") == "" {
		switch strings.ToLower(r.Header.Get("Sec-Fetch-Site")) {
		case "cross-site", "same-site":
			return fmt.Errorf("%w: Sec-Fetch-Site %s", errOriginRefused, r.Header.Get("Sec-Fetch-Site"))
		}
	}
	if r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody {
		ct := r.Header.Get("Content-Type")
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return fmt.Errorf("%w (got Content-Type %q)", errUnsupportedMedia, ct)
		}
	}
	return nil
}

// errorHeader is the header of an error answer: the 401 challenge and a
// 429's Retry-After.
func (s *Server) errorHeader(status int, err error) http.Header {
	h := http.Header{}
	switch status {
	case http.StatusUnauthorized:
		if s.opts.NoBasicChallenge {
			h.Set("WWW-Authenticate", `Bearer realm="pimbridge"`)
		} else {
			h.Set("WWW-Authenticate", `Basic realm="pimbridge", charset="UTF-8"`)
		}
	case http.StatusTooManyRequests:
		if ra := retryAfter(err); ra != "" {
			h.Set("Retry-After", ra)
		}
	}
	return h
}

// Timeouts bound how long one connection may hold a server. The zero
// value of a field means its default.
type Timeouts struct {
	// ReadHeader bounds reading the request line and headers; 10 s.
	ReadHeader time.Duration
	// Read bounds reading a whole request, body included; 2 minutes
	// (a 16 MiB body at about 140 KB/s).
	Read time.Duration
	// Write bounds writing the answer, from the end of the request
	// headers; 5 minutes (a large sync batch).
	Write time.Duration
	// Idle bounds a keep-alive connection between requests; 2 minutes.
	Idle time.Duration
}

// HTTPServer returns an http.Server for h with read, write and idle
// timeouts, so that a slow or idle client cannot hold a connection
// forever. The CRM server, the offline local API and the metrics endpoint
// all use it. log receives the server's own errors; nil means
// slog.Default().
func HTTPServer(h http.Handler, t Timeouts, log *slog.Logger) *http.Server {
	if log == nil {
		log = slog.Default()
	}
	def := func(d, v time.Duration) time.Duration {
		if d > 0 {
			return d
		}
		return v
	}
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: def(t.ReadHeader, 10*time.Second),
		ReadTimeout:       def(t.Read, 2*time.Minute),
		WriteTimeout:      def(t.Write, 5*time.Minute),
		IdleTimeout:       def(t.Idle, 2*time.Minute),
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}
