package crmserver

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/pimbridge/pimbridge/crm"
)

// Login rate limits. Each user name and each client address has a bucket of
// failed logins (golang.org/x/time/rate): a user name may fail 5 times and
// then once per 12 s, an address 20 times and then once per 3 s. A failure
// with the bucket empty blocks that name or address for a delay that
// doubles with each such failure (1 s, 2 s, 4 s, ... up to 15 minutes);
// while blocked, logins answer 429 with Retry-After before the password is
// looked at. A successful login clears the user name's state.
const (
	userLoginBurst  = 5
	userLoginEvery  = 12 * time.Second
	addrLoginBurst  = 20
	addrLoginEvery  = 3 * time.Second
	loginDelayFirst = time.Second
	loginDelayMax   = 15 * time.Minute
	loginStateMax   = 10000 // keys kept before idle ones are dropped
)

// ErrTooManyLogins is a login refused by the rate limit (429).
var ErrTooManyLogins = errors.New("too many failed logins")

// LoginDelayError is a refused login with the time to wait.
type LoginDelayError struct{ After time.Duration }

func (e *LoginDelayError) Error() string {
	return fmt.Sprintf("%v: try again in %s", ErrTooManyLogins, e.After.Round(time.Second))
}

func (e *LoginDelayError) Unwrap() error { return ErrTooManyLogins }

// Retryable implements the client's retry class (429 retries).
func (e *LoginDelayError) Retryable() bool { return true }

type loginLimiter struct {
	mu   sync.Mutex
	keys map[string]*loginState
}

type loginState struct {
	lim   *rate.Limiter
	over  int // failures with the bucket empty
	until time.Time
	seen  time.Time
}

func newLoginLimiter() *loginLimiter { return &loginLimiter{keys: map[string]*loginState{}} }

func loginKeys(name, addr string) []string {
	return []string{"u:" + strings.ToLower(name), "a:" + addr}
}

// blocked returns how long logins for the name and address must wait (0:
// they may try).
func (l *loginLimiter) blocked(now time.Time, name, addr string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	var wait time.Duration
	for _, k := range loginKeys(name, addr) {
		if st := l.keys[k]; st != nil && now.Before(st.until) {
			wait = max(wait, st.until.Sub(now))
		}
	}
	return wait
}

// failed records a failed login.
func (l *loginLimiter) failed(now time.Time, name, addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.keys) > loginStateMax {
		for k, st := range l.keys {
			if now.Sub(st.seen) > loginDelayMax && now.After(st.until) {
				delete(l.keys, k)
			}
		}
	}
	for i, k := range loginKeys(name, addr) {
		st := l.keys[k]
		if st == nil {
			if i == 0 {
				st = &loginState{lim: rate.NewLimiter(rate.Every(userLoginEvery), userLoginBurst)}
			} else {
				st = &loginState{lim: rate.NewLimiter(rate.Every(addrLoginEvery), addrLoginBurst)}
			}
			l.keys[k] = st
		}
		st.seen = now
		if st.lim.AllowN(now, 1) {
			continue
		}
		st.over++
		d := loginDelayMax
		if st.over < 20 {
			d = min(loginDelayFirst<<(st.over-1), loginDelayMax)
		}
		st.until = now.Add(d)
	}
}

// succeeded clears the user name's state (not the address's: one good
// login must not reset a guesser's address).
func (l *loginLimiter) succeeded(name string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.keys, loginKeys(name, "")[0])
}

// clientAddr is the connection's address without the port. Headers such as
// X-Forwarded-For are not trusted: behind a reverse proxy every client
// shares the proxy's address, and the per-user limit still holds.
func clientAddr(r *http.Request) string {
	if h, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return h
	}
	return r.RemoteAddr
}

// basicLogin checks Basic credentials through the rate limit, logging a
// failure with the user name and client address (never the password).
func (s *Server) basicLogin(r *http.Request, name, pw string) (*Principal, error) {
	now, addr := s.now(), clientAddr(r)
	if wait := s.logins.blocked(now, name, addr); wait > 0 {
		s.log.WarnContext(r.Context(), "crmserver: login refused by the rate limit", "user", name, "addr", addr, "retry_after", wait.Round(time.Second))
		return nil, &LoginDelayError{After: wait}
	}
	p, err := s.store.Authenticate(r.Context(), name, pw)
	if err != nil {
		if errors.Is(err, crm.ErrUnauthenticated) {
			s.logins.failed(now, name, addr)
			s.log.WarnContext(r.Context(), "crmserver: login failed", "user", name, "addr", addr)
		}
		return nil, err
	}
	s.logins.succeeded(name)
	return p, nil
}

func retryAfter(err error) string {
	var de *LoginDelayError
	if errors.As(err, &de) {
		return strconv.FormatInt(int64((de.After+time.Second-1)/time.Second), 10)
	}
	return ""
}
