package trace

import (
	"bytes"
	"io"
	"net/url"
	"strings"
	"sync"
)

// Redacted replaces every secret in the trace.
const Redacted = "[REDACTED]"

// Redactor knows the secrets of a process and scrubs them from text. The
// zero value is ready; it is safe for concurrent use.
type Redactor struct {
	mu      sync.RWMutex
	secrets []string
}

// Add registers secrets (empty ones and those shorter than 3 bytes, which
// would mask ordinary text, are ignored).
func (r *Redactor) Add(secrets ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range secrets {
		if len(s) >= 3 {
			r.secrets = append(r.secrets, s)
		}
	}
}

// String returns s with every registered secret replaced.
func (r *Redactor) String(s string) string {
	if r == nil {
		return s
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, sec := range r.secrets {
		s = strings.ReplaceAll(s, sec, Redacted)
	}
	return s
}

func (r *Redactor) bytes(p []byte) []byte {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, sec := range r.secrets {
		if bytes.Contains(p, []byte(sec)) {
			p = bytes.ReplaceAll(p, []byte(sec), []byte(Redacted))
		}
	}
	return p
}

// Writer returns w with every registered secret scrubbed from each Write.
// slog handlers write a record in one call, so a secret is never split.
func (r *Redactor) Writer(w io.Writer) io.Writer { return &redactWriter{r: r, w: w} }

type redactWriter struct {
	r *Redactor
	w io.Writer
}

func (w *redactWriter) Write(p []byte) (int, error) {
	if _, err := w.w.Write(w.r.bytes(p)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// credentialParams are query parameters masked in a traced URL.
var credentialParams = []string{"password", "passwd", "pass", "pw", "token", "access_token", "refresh_token", "secret", "key", "apikey", "api_key", "sig", "signature", "code"}

// URL returns u as text without user info and with credential query
// parameters masked.
func URL(u *url.URL) string {
	if u == nil {
		return ""
	}
	c := *u
	if c.User != nil {
		c.User = nil // never in a trace, not even masked
	}
	if c.RawQuery != "" {
		q := c.Query()
		changed := false
		for k := range q {
			for _, p := range credentialParams {
				if strings.EqualFold(k, p) {
					q.Set(k, "REDACTED")
					changed = true
				}
			}
		}
		if changed {
			c.RawQuery = q.Encode()
		}
	}
	return c.String()
}
