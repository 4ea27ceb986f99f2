package trace

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"sync"
	"time"
)

// Options configure a Transport or an IMAP writer.
type Options struct {
	// Logger receives the trace lines at LevelTrace; nothing is traced
	// (and nothing costs) while it is not enabled for that level.
	Logger *slog.Logger
	// Side names the protocol side: "crm", "carddav", "caldav", "imap".
	Side string
	// Bodies adds the request and response bodies (scrubbed) to the lines.
	Bodies bool
	// Redactor scrubs registered secrets from URLs and bodies; nil scrubs
	// only what is known structurally (headers, user info, LOGIN).
	Redactor *Redactor
	// MaxBody caps a traced body; zero means 64 KiB.
	MaxBody int
}

func (o *Options) maxBody() int {
	if o.MaxBody > 0 {
		return o.MaxBody
	}
	return 64 << 10
}

// Transport is an http.RoundTripper that logs one line per exchange:
// side, method, URL, status, ETag (and If-Match), sync-token, bytes each way
// and duration. The line is written when the response body is closed (or
// read to its end), so bytes and duration cover the whole body.
type Transport struct {
	Base http.RoundTripper // nil means http.DefaultTransport
	Options
}

// NewTransport wraps base.
func NewTransport(base http.RoundTripper, o Options) *Transport {
	return &Transport{Base: base, Options: o}
}

// Client returns a copy of hc (nil: a zero client) whose transport traces.
func Client(hc *http.Client, o Options) *http.Client {
	c := &http.Client{}
	if hc != nil {
		*c = *hc
	}
	c.Transport = NewTransport(c.Transport, o)
	return c
}

func (t *Transport) base() http.RoundTripper {
	if t.Base != nil {
		return t.Base
	}
	return http.DefaultTransport
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	if t.Logger == nil || !t.Logger.Enabled(ctx, LevelTrace) {
		return t.base().RoundTrip(req)
	}
	ex := &exchange{t: t, ctx: ctx, start: time.Now(), method: req.Method, url: t.Redactor.String(URL(req.URL)),
		ifMatch: firstOf(req.Header, "If-Match", "If-None-Match")}
	if req.Body != nil && req.Body != http.NoBody {
		// Tee the request body: its size, its sync-token and, with
		// Bodies, its text.
		orig := req.Body
		rc := &countingBody{ReadCloser: orig, ex: ex, req: true}
		req = req.Clone(ctx)
		req.Body = rc
	}
	resp, err := t.base().RoundTrip(req)
	if err != nil {
		ex.err = err
		ex.log()
		return nil, err
	}
	ex.status = resp.StatusCode
	ex.etag = resp.Header.Get("ETag")
	if resp.Body == nil || resp.Body == http.NoBody || req.Method == http.MethodHead {
		ex.log()
		return resp, nil
	}
	resp.Body = &countingBody{ReadCloser: resp.Body, ex: ex}
	return resp, nil
}

func firstOf(h http.Header, keys ...string) string {
	for _, k := range keys {
		if v := h.Get(k); v != "" {
			return v
		}
	}
	return ""
}

// exchange is one traced request and its response.
type exchange struct {
	t                 *Transport
	ctx               context.Context
	start             time.Time
	method, url       string
	ifMatch, etag     string
	status            int
	sent, recv        int64
	reqSync, respSync tokenSniffer
	reqBody, respBody bytes.Buffer
	err               error
	once              sync.Once
}

func (ex *exchange) log() {
	ex.once.Do(func() {
		args := []any{"side", ex.t.Side, "method", ex.method, "url", ex.url}
		if ex.err != nil {
			args = append(args, "err", ex.t.Redactor.String(ex.err.Error()))
		} else {
			args = append(args, "status", ex.status)
		}
		if ex.ifMatch != "" {
			args = append(args, "if_match", ex.ifMatch)
		}
		if ex.etag != "" {
			args = append(args, "etag", ex.etag)
		}
		if tok := ex.reqSync.token; tok != "" {
			args = append(args, "sync_token_sent", tok)
		}
		if tok := ex.respSync.token; tok != "" {
			args = append(args, "sync_token", tok)
		}
		args = append(args, "bytes_out", ex.sent, "bytes_in", ex.recv, "duration", time.Since(ex.start).Round(time.Microsecond))
		if ex.t.Bodies {
			if ex.reqBody.Len() > 0 {
				args = append(args, "request_body", ex.t.Redactor.String(ex.reqBody.String()))
			}
			if ex.respBody.Len() > 0 {
				args = append(args, "response_body", ex.t.Redactor.String(ex.respBody.String()))
			}
		}
		ex.t.Logger.Log(ex.ctx, LevelTrace, "trace: "+ex.t.Side+" "+ex.method, args...)
	})
}

// countingBody counts (and sniffs) a body as it is read; the response's
// logs the exchange at EOF or Close.
type countingBody struct {
	io.ReadCloser
	ex  *exchange
	req bool
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	ex := b.ex
	if n > 0 {
		if b.req {
			ex.sent += int64(n)
			ex.reqSync.feed(p[:n])
			keep(&ex.reqBody, p[:n], ex.t)
		} else {
			ex.recv += int64(n)
			ex.respSync.feed(p[:n])
			keep(&ex.respBody, p[:n], ex.t)
		}
	}
	if err == io.EOF && !b.req {
		ex.log()
	}
	return n, err
}

func (b *countingBody) Close() error {
	err := b.ReadCloser.Close()
	if !b.req {
		b.ex.log()
	}
	return err
}

func keep(buf *bytes.Buffer, p []byte, t *Transport) {
	if !t.Bodies {
		return
	}
	if room := t.maxBody() - buf.Len(); room > 0 {
		if len(p) > room {
			p = p[:room]
		}
		buf.Write(p)
	}
}

// syncTokenRE finds a WebDAV sync-token element (any prefix).
var syncTokenRE = regexp.MustCompile(`sync-token>\s*([^<\s]+)\s*<`)

// tokenSniffer finds the last sync-token in a stream read in chunks; it
// keeps a tail so that a token split across two reads is still found.
type tokenSniffer struct {
	tail  []byte
	token string
}

func (s *tokenSniffer) feed(p []byte) {
	buf := append(s.tail, p...)
	if m := syncTokenRE.FindAllSubmatch(buf, -1); len(m) > 0 {
		s.token = string(m[len(m)-1][1])
	}
	const keepTail = 512
	if len(buf) > keepTail {
		buf = buf[len(buf)-keepTail:]
	}
	s.tail = append(s.tail[:0], buf...)
}
