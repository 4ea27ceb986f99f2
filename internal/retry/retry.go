// Package retry owns the one rule for "try again later" that every part of
// pimbridge follows: which HTTP statuses are transient (TransientStatus),
// which errors are (Transient), and how long to wait before the next
// attempt (Backoff, a capped exponential backoff with jitter).
//
// It imports only the standard library, so crm/crmclient, pim, idmap,
// offline and bridge all use it without importing one another.
package retry

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"syscall"
	"time"
)

// TransientStatus reports whether an HTTP answer with this status may
// succeed if the same request is sent again later: 408 (request timeout),
// 425 (too early), 429 (too many requests) and every 5xx except 501 (not
// implemented) and 505 (HTTP version not supported), which the server will
// answer the same way, and 507 (insufficient storage), which needs someone
// to free space rather than time.
func TransientStatus(code int) bool {
	switch code {
	case http.StatusRequestTimeout, http.StatusTooEarly, http.StatusTooManyRequests:
		return true
	case http.StatusNotImplemented, http.StatusHTTPVersionNotSupported, http.StatusInsufficientStorage:
		return false
	}
	return code >= 500 && code <= 599
}

// Transient reports whether a later attempt of the operation that failed
// with err may succeed. An error in the chain with a Retryable() bool
// method (a status error of an HTTP client, a broken IMAP connection)
// decides by itself. Otherwise network failures are transient: a timeout
// (net.Error's Timeout), a failed network operation (*net.OpError: dial,
// read or write, DNS lookups included), a connection reset, refused or aborted, a broken pipe, a timed-out socket
// (matched with errors.Is on the syscall errno, never on message text), an
// answer cut short (io.EOF, io.ErrUnexpectedEOF), a closed connection and
// an expired deadline. context.Canceled is not: the caller gave up.
func Transient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	var r interface{ Retryable() bool }
	if errors.As(err, &r) {
		return r.Retryable()
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return true
	}
	for _, target := range transientErrs {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

var transientErrs = []error{
	syscall.ECONNRESET, syscall.ECONNREFUSED, syscall.ECONNABORTED, syscall.EPIPE, syscall.ETIMEDOUT,
	io.EOF, io.ErrUnexpectedEOF, net.ErrClosed, os.ErrDeadlineExceeded, context.DeadlineExceeded,
}

// Backoff is a capped exponential backoff: the wait after n consecutive
// failures is Base doubled n-1 times, at most Max, shortened by a random
// part of up to Jitter of it. The zero value waits 1 s, 2 s, 4 s, ... up to
// 1 min, without jitter.
type Backoff struct {
	// Base is the wait after the first failure. If 0, 1 s.
	Base time.Duration
	// Max caps the wait. If 0, 1 min.
	Max time.Duration
	// Jitter is the largest fraction (0 to 1) of the wait taken off at
	// random, so that clients that failed together do not retry together.
	// If 0, the wait is exact.
	Jitter float64
}

// Delay returns the wait after n consecutive failures (n < 1 counts as 1).
func (b Backoff) Delay(n int) time.Duration {
	base, maxD := b.Base, b.Max
	if base <= 0 {
		base = time.Second
	}
	if maxD <= 0 {
		maxD = time.Minute
	}
	d := min(base, maxD)
	for i := 1; i < n && d < maxD; i++ {
		d *= 2
	}
	d = min(d, maxD)
	if j := min(b.Jitter, 1); j > 0 {
		if cut := int64(float64(d) * j); cut > 0 {
			d -= time.Duration(rand.Int64N(cut + 1))
		}
	}
	return d
}
