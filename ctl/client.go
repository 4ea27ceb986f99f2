package ctl

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pimbridge/pimbridge/crm"
)

// Client is a connection to a daemon's control socket. Its methods may be
// called from several goroutines; requests go one at a time. After a call
// fails on the connection (ctx ended mid-request, the daemon went away)
// the Client is broken and every later call fails; Dial again.
type Client struct {
	mu     sync.Mutex
	conn   net.Conn
	r      *bufio.Reader
	broken error
}

// handshakeTimeout bounds Dial's wait for the version line when ctx has
// no earlier deadline.
const handshakeTimeout = 5 * time.Second

// quickTimeout bounds Status, RetryError and DiscardError when ctx has no
// earlier deadline; SyncNow waits as long as the cycle takes.
const quickTimeout = 30 * time.Second

// Dial connects to the daemon at path and checks its version line.
// ErrNoDaemon when no daemon listens there (no socket, a stale one, or a
// path too long for any daemon to listen on);
// *VersionError when the daemon speaks another version.
func Dial(ctx context.Context, path string) (*Client, error) {
	if len(path) > maxPath {
		return nil, fmt.Errorf("ctl: dial %s: %w (%w)", path, ErrNoDaemon, ErrPathTooLong)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("ctl: dial %s: %w", path, ErrNoDaemon)
		}
		return nil, fmt.Errorf("ctl: dial: %w", err)
	}
	c := &Client{conn: conn, r: bufio.NewReaderSize(conn, 4096)}
	deadline := time.Now().Add(handshakeTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	line, err := c.readLine()
	stopped := stop()
	if err != nil {
		conn.Close()
		ctxErr := ctxFailure(ctx, err)
		if ctxErr == nil && !stopped { // the AfterFunc ran: ctx ended
			ctxErr = context.Cause(ctx)
		}
		if ctxErr != nil {
			return nil, fmt.Errorf("ctl: handshake: %w", ctxErr)
		}
		if errors.Is(err, io.EOF) {
			// The peer accepted and hung up without a word: a server
			// that refused us (another uid) or is shutting down.
			return nil, fmt.Errorf("ctl: handshake: the daemon closed the connection: %w", ErrProtocol)
		}
		return nil, fmt.Errorf("ctl: handshake: %w", err)
	}
	if line != Version {
		conn.Close()
		return nil, &VersionError{Got: line, Want: Version}
	}
	conn.SetDeadline(time.Time{})
	return c, nil
}

// readLine reads one newline-terminated line of at most maxLine bytes.
func (c *Client) readLine() (string, error) {
	var b strings.Builder
	for {
		frag, err := c.r.ReadSlice('\n')
		b.Write(frag)
		if b.Len() > maxLine {
			return "", fmt.Errorf("%w: line longer than %d bytes", ErrProtocol, maxLine)
		}
		if err == nil {
			return strings.TrimSuffix(b.String(), "\n"), nil
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			if errors.Is(err, io.EOF) && b.Len() > 0 {
				return "", fmt.Errorf("%w: truncated line", ErrProtocol)
			}
			return "", err
		}
	}
}

// ctxFailure returns ctx's error when err came from ctx ending: ctx is
// done, or err is the connection deadline that equals ctx's own deadline
// firing a moment before ctx notices. Otherwise nil.
func ctxFailure(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	var ne net.Error
	if d, ok := ctx.Deadline(); ok && errors.As(err, &ne) && ne.Timeout() && !time.Now().Before(d) {
		return context.DeadlineExceeded
	}
	return nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// SyncNow asks the daemon for a full cycle now and waits for its outcome.
// The cycle's own failure is in SyncResult.Err and EmailErr (errors.Is
// bridge.ErrItemErrors holds across the socket); the error return is for
// the request itself.
func (c *Client) SyncNow(ctx context.Context, opts SyncOptions) (SyncResult, error) {
	var w syncWire
	if err := c.call(ctx, 0, request{Op: opSync, SyncOptions: opts}, &w); err != nil {
		return SyncResult{}, err
	}
	r := w.SyncResult
	r.Err, r.EmailErr = fromWire(w.Err), fromWire(w.EmailErr)
	return r, nil
}

// Status describes the daemon.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var st Status
	err := c.call(ctx, quickTimeout, request{Op: opStatus}, &st)
	return st, err
}

// RetryError asks the daemon to retry sync error id at the next cycle;
// errors.Is idmap.ErrNoSyncError when there is no such error.
func (c *Client) RetryError(ctx context.Context, id int64) error {
	return c.call(ctx, quickTimeout, request{Op: opRetry, ID: id}, nil)
}

// DiscardError asks the daemon to drop sync error id; errors.Is
// idmap.ErrNoSyncError when there is no such error.
func (c *Client) DiscardError(ctx context.Context, id int64) error {
	return c.call(ctx, quickTimeout, request{Op: opDiscard, ID: id}, nil)
}

// AllowDuplicate asks the daemon to create the item of sync error id
// although duplicate detection finds matches.
func (c *Client) AllowDuplicate(ctx context.Context, id int64) error {
	return c.call(ctx, quickTimeout, request{Op: opAllowDuplicate, ID: id}, nil)
}

// LinkError asks the daemon to link the item of sync error id to the
// existing CRM record crmID.
func (c *Client) LinkError(ctx context.Context, id int64, crmID crm.ID) error {
	return c.call(ctx, quickTimeout, request{Op: opLink, ID: id, CRMID: crmID}, nil)
}

// SetLogLevel sets the daemon's log level by name ("" only reads it) and
// returns the level in force.
func (c *Client) SetLogLevel(ctx context.Context, level string) (string, error) {
	var l LogLevel
	err := c.call(ctx, quickTimeout, request{Op: opLogLevel, Level: level}, &l)
	return l.Level, err
}

// call sends req and decodes the result into out (when not nil). timeout,
// when positive, caps the wait unless ctx ends earlier.
func (c *Client) call(ctx context.Context, timeout time.Duration, req request, out any) (err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("ctl: %s: %w", req.Op, err)
		}
	}()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.broken != nil {
		return c.broken
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	var deadline time.Time
	if timeout > 0 {
		deadline = time.Now().Add(timeout)
	}
	if d, ok := ctx.Deadline(); ok && (deadline.IsZero() || d.Before(deadline)) {
		deadline = d
	}
	c.conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { c.conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	b, err := json.Marshal(req)
	if err != nil {
		return err
	}
	line, err := func() (string, error) {
		if _, err := c.conn.Write(append(b, '\n')); err != nil {
			return "", err
		}
		return c.readLine()
	}()
	if err != nil {
		if ctxErr := ctxFailure(ctx, err); ctxErr != nil {
			err = ctxErr
		} else if errors.Is(err, io.EOF) {
			err = fmt.Errorf("the daemon closed the connection (stopped?): %w", ErrProtocol)
		}
		c.broken = fmt.Errorf("connection unusable after an earlier failure: %w", err)
		c.conn.Close()
		return err
	}
	var resp response
	if err := json.Unmarshal([]byte(line), &resp); err != nil {
		c.broken = fmt.Errorf("%w: bad response: %v", ErrProtocol, err)
		return c.broken
	}
	if resp.Error != nil {
		return fromWire(resp.Error)
	}
	if out != nil {
		if err := json.Unmarshal(resp.Result, out); err != nil {
			return fmt.Errorf("%w: bad %s result: %v", ErrProtocol, req.Op, err)
		}
	}
	return nil
}
