package imapmail

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-message/charset"
	"github.com/emersion/go-sasl"
	"mime"

	"github.com/pimbridge/pimbridge/internal/retry"
)

// Caps are the server capabilities the package uses, as offered after
// login.
type Caps struct {
	CondStore  bool // RFC 7162: HIGHESTMODSEQ and CHANGEDSINCE
	Move       bool // RFC 6851 (or IMAP4rev2)
	UIDPlus    bool // RFC 4315: APPENDUID, COPYUID, UID EXPUNGE
	IDLE       bool // RFC 2177
	SpecialUse bool // RFC 6154: \Sent, \Drafts... in LIST
	ESearch    bool // RFC 4731: compact UID SEARCH results
}

func capsOf(cs imap.CapSet) Caps {
	return Caps{
		CondStore:  cs.Has(imap.CapCondStore),
		Move:       cs.Has(imap.CapMove),
		UIDPlus:    cs.Has(imap.CapUIDPlus),
		IDLE:       cs.Has(imap.CapIdle),
		SpecialUse: cs.Has(imap.CapSpecialUse),
		ESearch:    cs.Has(imap.CapESearch),
	}
}

// Client is one IMAP account. It keeps one connection, runs one call at a
// time on it (callers queue; a queued call gives up when its ctx ends), and
// dials again, with backoff, after the connection breaks. Calls that are
// safe to repeat (reads, keyword changes, Create) are retried once on a new
// connection when the old one turns out to be broken.
//
// A Client is safe for concurrent use. Close it when done.
type Client struct {
	opts  Options
	log   *slog.Logger
	stats counters
	sem   chan struct{} // holds one token; its holder owns the fields below

	sess     *session
	closed   bool
	failures int       // consecutive failed dials
	nextDial time.Time // no dial before this
}

// session is one logged-in connection.
type session struct {
	cl       *imapclient.Client
	conn     *conn
	caps     Caps
	selected string // the selected mailbox, "" for none
	sel      *imap.SelectData
}

func (s *session) abort() { _ = s.conn.Conn.Close() }

// Dial connects and logs in (so bad credentials show at once, as ErrAuth).
// ctx bounds only the dial; each call takes its own ctx.
func Dial(ctx context.Context, opts Options) (*Client, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	c := &Client{opts: opts, log: opts.logger().With("imap", opts.Addr, "user", opts.User), sem: make(chan struct{}, 1)}
	c.sem <- struct{}{}
	s, err := c.connect(ctx, nil, &c.stats)
	if err != nil {
		return nil, wrap("dial", err)
	}
	c.sess = s
	return c, nil
}

// Close logs out and closes the connection. Calls after Close fail with
// ErrClosed.
func (c *Client) Close() error {
	<-c.sem
	defer func() { c.sem <- struct{}{} }()
	if c.closed {
		return nil
	}
	c.closed = true
	if c.sess == nil {
		return nil
	}
	s := c.sess
	c.sess = nil
	s.conn.setOpDeadline(time.Now().Add(2 * time.Second))
	_ = s.cl.Logout().Wait() // best effort: the server may be gone
	_ = s.cl.Close()
	return nil
}

// Caps returns the capabilities of the current connection, connecting if
// needed.
func (c *Client) Caps(ctx context.Context) (Caps, error) {
	var caps Caps
	err := c.do(ctx, "caps", true, func(s *session) error {
		caps = s.caps
		return nil
	})
	return caps, err
}

// Stats returns the traffic counters of the Client's connections.
func (c *Client) Stats() Stats { return c.stats.snapshot() }

// do runs fn on a live session, holding the Client for the duration. It
// applies ctx (deadline on the connection, abort on cancel). When fn fails
// because the connection broke, the session is dropped and, if retry is
// set, fn runs once more on a new connection.
func (c *Client) do(ctx context.Context, op string, retry bool, fn func(s *session) error) error {
	select {
	case <-c.sem:
	case <-ctx.Done():
		return wrap(op, ctx.Err())
	}
	defer func() { c.sem <- struct{}{} }()
	if c.closed {
		return wrap(op, ErrClosed)
	}
	for attempt := 0; ; attempt++ {
		s, err := c.sessionLocked(ctx)
		if err != nil {
			return wrap(op, err)
		}
		err = run(ctx, s, fn)
		if err == nil {
			return nil
		}
		if ctxErr := ctxDone(ctx); ctxErr != nil {
			// The connection was aborted or timed out mid-command.
			c.dropLocked()
			return wrap(op, ctxErr)
		}
		if !isConnError(err) {
			return wrap(op, err)
		}
		c.dropLocked()
		if !retry || attempt > 0 {
			return wrap(op, &ConnError{Err: err})
		}
		c.log.Info("imap connection lost; reconnecting", "op", op, "err", err)
	}
}

// ctxDone is ctx.Err(), or DeadlineExceeded once the deadline has passed
// (the connection's deadline may fire a moment before ctx's timer).
func ctxDone(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		return context.DeadlineExceeded
	}
	return nil
}

// run applies ctx to s while fn runs.
func run(ctx context.Context, s *session, fn func(s *session) error) error {
	stop := context.AfterFunc(ctx, s.abort)
	defer stop()
	d, _ := ctx.Deadline()
	s.conn.setOpDeadline(d)
	defer s.conn.setOpDeadline(time.Time{})
	return fn(s)
}

// isConnError tells a broken connection from a server's NO/BAD answer and
// from this package's own refusals.
func isConnError(err error) bool {
	var ie *imap.Error
	if errors.As(err, &ie) {
		return false
	}
	for _, e := range []error{ErrNoMailbox, ErrNotFound, ErrUIDValidity, ErrInvalidKeyword, ErrUnsupported, ErrAuth} {
		if errors.Is(err, e) {
			return false
		}
	}
	return true
}

func (c *Client) dropLocked() {
	if c.sess != nil {
		c.sess.abort()
		_ = c.sess.cl.Close()
		c.sess = nil
	}
}

// sessionLocked returns the live session, dialing (after the backoff delay
// of earlier failures) when there is none.
func (c *Client) sessionLocked(ctx context.Context) (*session, error) {
	if c.sess != nil {
		select {
		case <-c.sess.cl.Closed():
			c.dropLocked()
		default:
			return c.sess, nil
		}
	}
	if wait := time.Until(c.nextDial); wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
	}
	s, err := c.connect(ctx, nil, &c.stats)
	if err != nil {
		c.failures++
		c.nextDial = time.Now().Add(backoff(c.failures, c.opts.ReconnectMin, c.opts.ReconnectMax))
		return nil, err
	}
	c.failures = 0
	c.nextDial = time.Time{}
	c.sess = s
	return s, nil
}

// backoff is the delay after n consecutive failures: min doubled n-1
// times, capped at max, with up to 25% jitter subtracted.
func backoff(n int, minD, maxD time.Duration) time.Duration {
	return retry.Backoff{Base: durOr(minD, 200*time.Millisecond), Max: durOr(maxD, time.Minute), Jitter: 0.25}.Delay(n)
}

// connect dials, secures and authenticates a new session. handler receives
// unilateral data (nil: discarded).
func (c *Client) connect(ctx context.Context, handler *imapclient.UnilateralDataHandler, stats *counters) (*session, error) {
	o := &c.opts
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, durOr(o.DialTimeout, 30*time.Second))
		defer cancel()
	}
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", o.Addr)
	if err != nil {
		return nil, &ConnError{Err: err}
	}
	cw := newConn(raw, stats)
	stop := context.AfterFunc(ctx, func() { _ = raw.Close() })
	defer stop()
	dl, _ := ctx.Deadline()
	cw.setOpDeadline(dl)

	copts := &imapclient.Options{
		DebugWriter:           o.DebugWriter,
		UnilateralDataHandler: handler,
		WordDecoder:           &mime.WordDecoder{CharsetReader: charset.Reader},
	}
	tlsConfig := o.TLSConfig.Clone()
	if tlsConfig == nil {
		tlsConfig = &tls.Config{}
	}
	if tlsConfig.ServerName == "" {
		host, _, _ := net.SplitHostPort(o.Addr)
		tlsConfig.ServerName = host
	}
	var cl *imapclient.Client
	switch o.Security {
	case SecurityTLS:
		tc := tls.Client(cw, tlsConfig)
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = raw.Close()
			return nil, &ConnError{Err: err}
		}
		cl = imapclient.New(tc, copts)
	case SecurityStartTLS:
		copts.TLSConfig = tlsConfig
		cl, err = imapclient.NewStartTLS(cw, copts)
		if err != nil {
			_ = raw.Close()
			return nil, connOrServer(ctx, fmt.Errorf("starttls: %w", err))
		}
	default:
		cl = imapclient.New(cw, copts)
	}
	s := &session{cl: cl, conn: cw}
	if err := c.login(ctx, s); err != nil {
		_ = raw.Close()
		_ = cl.Close()
		return nil, err
	}
	caps := cl.Caps()
	if caps == nil {
		_ = raw.Close()
		_ = cl.Close()
		return nil, connOrServer(ctx, errors.New("no CAPABILITY answer"))
	}
	s.caps = capsOf(caps)
	cw.setOpDeadline(time.Time{})
	stats.dials.Add(1)
	c.log.Debug("imap connected", "caps", fmt.Sprintf("%+v", s.caps))
	return s, nil
}

func connOrServer(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if !isConnError(err) {
		return err
	}
	return &ConnError{Err: err}
}

func (c *Client) login(ctx context.Context, s *session) error {
	o := &c.opts
	if err := s.cl.WaitGreeting(); err != nil {
		return connOrServer(ctx, fmt.Errorf("greeting: %w", err))
	}
	if s.cl.State() == imap.ConnStateAuthenticated {
		return nil // PREAUTH
	}
	mech := strings.ToUpper(o.Mechanism)
	if mech == "" && o.Token != nil {
		mech = XOAuth2
	}
	var err error
	switch mech {
	case "":
		if s.cl.Caps().Has(imap.CapLoginDisabled) {
			err = s.cl.Authenticate(sasl.NewPlainClient("", o.User, o.Password))
		} else {
			err = s.cl.Login(o.User, o.Password).Wait()
		}
	case MechPlain:
		err = s.cl.Authenticate(sasl.NewPlainClient("", o.User, o.Password))
	case MechLogin:
		err = s.cl.Authenticate(sasl.NewLoginClient(o.User, o.Password))
	case XOAuth2:
		tok, terr := o.Token(ctx)
		if terr != nil {
			return fmt.Errorf("oauth token: %w", terr)
		}
		err = s.cl.Authenticate(NewXOAuth2Client(o.User, tok))
	}
	if err == nil {
		return nil
	}
	var ie *imap.Error
	if errors.As(err, &ie) && ie.Type == imap.StatusResponseTypeNo {
		return fmt.Errorf("%w: %w", ErrAuth, err)
	}
	return connOrServer(ctx, fmt.Errorf("login: %w", err))
}

// serverError maps a server NO to this package's sentinels.
func serverError(err error, mailbox string) error {
	var ie *imap.Error
	if errors.As(err, &ie) {
		if ie.Code == imap.ResponseCodeNonExistent || ie.Code == imap.ResponseCodeTryCreate {
			return fmt.Errorf("%q: %w: %w", mailbox, ErrNoMailbox, err)
		}
	}
	return err
}
