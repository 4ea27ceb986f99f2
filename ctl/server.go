package ctl

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// Options configure a Listener.
type Options struct {
	// Logger receives connection problems (never request contents). Nil
	// means slog.Default().
	Logger *slog.Logger
	// IdleTimeout closes a connection that sends no request for this long.
	// 0 means 5 minutes.
	IdleTimeout time.Duration
}

// Listener is the daemon's control socket, listening but not yet serving.
type Listener struct {
	ln   *net.UnixListener
	path string
	log  *slog.Logger
	idle time.Duration
}

// writeTimeout bounds the handshake and each response write.
const writeTimeout = 10 * time.Second

// Listen creates the control socket at path (mode 0600; its directory is
// created 0700 when missing). A socket file left by a daemon that died is
// removed; a live daemon answering there gives ErrDaemonRunning, and any
// other file at path is left alone and refused.
func Listen(ctx context.Context, path string, opts *Options) (*Listener, error) {
	if opts == nil {
		opts = &Options{}
	}
	l := &Listener{path: path, log: opts.Logger, idle: opts.IdleTimeout}
	if l.log == nil {
		l.log = slog.Default()
	}
	if l.idle <= 0 {
		l.idle = 5 * time.Minute
	}
	if len(path) > maxPath {
		return nil, fmt.Errorf("ctl: listen %s: %w", path, ErrPathTooLong)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("ctl: listen: %w", err)
	}
	ln, err := listenUnix(path)
	if errors.Is(err, syscall.EADDRINUSE) {
		if err := removeStale(ctx, path); err != nil {
			return nil, err
		}
		l.log.Info("ctl: removed the stale control socket of a daemon that is gone", "path", path)
		ln, err = listenUnix(path)
	}
	if err != nil {
		return nil, fmt.Errorf("ctl: listen: %w", err)
	}
	l.ln = ln
	return l, nil
}

func listenUnix(path string) (*net.UnixListener, error) {
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, err
	}
	// The directory is the owner's only; 0600 on the socket keeps it so
	// even where a directory is not.
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

// removeStale removes path when it is a socket nobody answers on.
func removeStale(ctx context.Context, path string) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return fmt.Errorf("ctl: listen: %w", err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("ctl: listen: %s exists and is not a socket; not removing it", path)
	}
	c, err := Dial(ctx, path)
	if err == nil {
		c.Close()
		return fmt.Errorf("ctl: listen %s: %w", path, ErrDaemonRunning)
	}
	if !errors.Is(err, ErrNoDaemon) {
		// Something answers but not as we expect (another version, a
		// hung daemon): never take its socket away.
		return fmt.Errorf("ctl: listen %s: %w (%w)", path, ErrDaemonRunning, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("ctl: listen: %w", err)
	}
	return nil
}

// Path is the socket's path.
func (l *Listener) Path() string { return l.path }

// Close stops listening and removes the socket file; Serve does it itself
// when its ctx ends.
func (l *Listener) Close() error { return l.ln.Close() }

// Serve answers requests with d until ctx ends, then closes every
// connection (a request in flight sees its ctx end), waits for their
// goroutines, and removes the socket. It returns nil after ctx ended, or
// the error that stopped it accepting.
func (l *Listener) Serve(ctx context.Context, d Daemon) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel() // closes the connections
		l.ln.Close()
		wg.Wait()
	}()
	stop := context.AfterFunc(ctx, func() { l.ln.Close() })
	defer stop()
	for {
		conn, err := l.ln.AcceptUnix()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("ctl: accept: %w", err)
		}
		wg.Add(1)
		go func() { // ends when the client hangs up, idles out, or ctx ends
			defer wg.Done()
			l.serveConn(ctx, conn, d)
		}()
	}
}

// Serve listens on path and serves d until ctx ends (Listen, then
// Listener.Serve).
func Serve(ctx context.Context, path string, d Daemon, opts *Options) error {
	l, err := Listen(ctx, path, opts)
	if err != nil {
		return err
	}
	return l.Serve(ctx, d)
}

func (l *Listener) serveConn(ctx context.Context, conn *net.UnixConn, d Daemon) {
	defer conn.Close()
	if err := checkPeer(conn); err != nil {
		l.log.Warn("ctl: connection refused", "err", err)
		return
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	if _, err := conn.Write([]byte(Version + "\n")); err != nil {
		return
	}
	conn.SetReadDeadline(time.Now().Add(l.idle))

	// The reader goroutine keeps reading while a request is handled, so
	// that a client hanging up cancels the wait for its cycle.
	lines := make(chan []byte)
	gone := make(chan struct{})
	go func() { // ends at EOF, a read error, or when conn closes
		defer close(gone)
		sc := bufio.NewScanner(conn)
		sc.Buffer(make([]byte, 0, 4096), maxLine)
		for sc.Scan() {
			conn.SetReadDeadline(time.Time{}) // no idle limit while handling
			line := append([]byte(nil), sc.Bytes()...)
			select {
			case lines <- line:
			case <-ctx.Done():
				return
			}
		}
	}()
	for {
		var line []byte
		select {
		case line = <-lines:
		case <-gone:
			return
		case <-ctx.Done():
			return
		}
		resp := l.handle(ctx, gone, line, d)
		b, err := json.Marshal(resp)
		if err != nil {
			b, _ = json.Marshal(response{Error: toWire(fmt.Errorf("ctl: encode: %w", err))})
		}
		conn.SetWriteDeadline(time.Now().Add(writeTimeout))
		if _, err := conn.Write(append(b, '\n')); err != nil {
			return
		}
		conn.SetReadDeadline(time.Now().Add(l.idle))
	}
}

// handle runs one request; its ctx ends when the client hangs up.
func (l *Listener) handle(ctx context.Context, gone <-chan struct{}, line []byte, d Daemon) response {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { // ends with handle
		select {
		case <-gone:
			cancel()
		case <-ctx.Done():
		}
	}()
	var req request
	if err := json.Unmarshal(line, &req); err != nil {
		return response{Error: toWire(fmt.Errorf("%w: bad request: %v", ErrProtocol, err))}
	}
	var (
		res any
		err error
	)
	switch req.Op {
	case opSync:
		var r SyncResult
		r, err = d.SyncNow(ctx, req.SyncOptions)
		res = syncWire{SyncResult: r, Err: toWire(r.Err), EmailErr: toWire(r.EmailErr)}
	case opStatus:
		res, err = d.Status(ctx)
	case opRetry:
		err = d.RetryError(ctx, req.ID)
	case opDiscard:
		err = d.DiscardError(ctx, req.ID)
	case opAllowDuplicate:
		err = d.AllowDuplicate(ctx, req.ID)
	case opLink:
		err = d.LinkError(ctx, req.ID, req.CRMID)
	case opLogLevel:
		lv, ok := d.(LogLeveler)
		if !ok {
			err = fmt.Errorf("%w: unknown op %q", ErrProtocol, req.Op)
			break
		}
		var l LogLevel
		l.Level, err = lv.SetLogLevel(ctx, req.Level)
		res = l
	default:
		err = fmt.Errorf("%w: unknown op %q", ErrProtocol, req.Op)
	}
	if err != nil {
		return response{Error: toWire(err)}
	}
	if res == nil {
		return response{Result: json.RawMessage("{}")}
	}
	b, err := json.Marshal(res)
	if err != nil {
		return response{Error: toWire(fmt.Errorf("ctl: encode %s: %w", req.Op, err))}
	}
	return response{Result: b}
}
