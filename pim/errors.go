package pim

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/pimbridge/pimbridge/internal/retry"
)

// Sentinel errors of PIM adapters. Compare with errors.Is; a *StatusError
// unwraps to the one matching its status code and body.
var (
	// ErrPreconditionFailed: a conditional write failed (412): the object
	// changed since its ETag was read (If-Match), or it already exists
	// (If-None-Match: *). Re-fetch, merge and retry.
	ErrPreconditionFailed = errors.New("precondition failed")
	// ErrNotFound: the object or collection does not exist (404, 410).
	ErrNotFound = errors.New("not found")
	// ErrForbidden: the server refused the request (403) for a reason
	// other than a named precondition.
	ErrForbidden = errors.New("forbidden")
	// ErrUnauthorized: the credentials were refused (401). Fatal for a pair.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrUIDConflict: another object in the collection already has this
	// UID (CardDAV/CalDAV no-uid-conflict precondition, usually 409).
	ErrUIDConflict = errors.New("uid conflict")
	// ErrTokenExpired: the server no longer accepts the sync token or
	// cursor (RFC 6578 valid-sync-token). Start again from an empty cursor
	// and treat every known object missing from that full listing as
	// deleted.
	ErrTokenExpired = errors.New("sync token expired")
)

// StatusError is a non-2xx HTTP reply. Body holds at most the first 4 KiB
// of the response body (DAV precondition elements such as
// valid-sync-token or no-uid-conflict are named there). RetryAfter is the
// parsed Retry-After header, zero when absent.
type StatusError struct {
	Method     string
	URL        string
	Code       int
	Body       string
	RetryAfter time.Duration
}

func (e *StatusError) Error() string {
	msg := fmt.Sprintf("%s %s: %d %s", e.Method, e.URL, e.Code, http.StatusText(e.Code))
	if b := strings.TrimSpace(e.Body); b != "" {
		if len(b) > 200 {
			b = b[:200] + "..."
		}
		msg += ": " + b
	}
	return msg
}

// Unwrap returns the sentinel matching the status and body, or nil.
func (e *StatusError) Unwrap() error {
	switch {
	case strings.Contains(e.Body, "valid-sync-token") && (e.Code == 403 || e.Code == 409 || e.Code == 400):
		return ErrTokenExpired
	case strings.Contains(e.Body, "no-uid-conflict") && (e.Code == 403 || e.Code == 409 || e.Code == 412):
		return ErrUIDConflict
	}
	switch e.Code {
	case http.StatusPreconditionFailed:
		return ErrPreconditionFailed
	case http.StatusNotFound, http.StatusGone:
		return ErrNotFound
	case http.StatusForbidden:
		return ErrForbidden
	case http.StatusUnauthorized:
		return ErrUnauthorized
	}
	return nil
}

// Retryable reports whether the same request may succeed later, by the
// status table of retry.TransientStatus.
func (e *StatusError) Retryable() bool { return retry.TransientStatus(e.Code) }

// ParseRetryAfter parses a Retry-After header value (delay in seconds or an
// HTTP date, relative to now). It returns zero for an empty or invalid
// value and never a negative duration.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil {
		if s < 0 {
			return 0
		}
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}
