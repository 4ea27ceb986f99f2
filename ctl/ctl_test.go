package ctl

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/pimbridge/pimbridge/bridge"
	"github.com/pimbridge/pimbridge/bridge/mailtrack"
	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/idmap"
)

// fakeDaemon is a function-field fake: a nil field answers with a fixed,
// plausible value.
type fakeDaemon struct {
	sync   func(ctx context.Context, o SyncOptions) (SyncResult, error)
	mu     sync.Mutex
	errors map[int64]bool // sync error ids that exist
	acted  []string
}

func (f *fakeDaemon) SyncNow(ctx context.Context, o SyncOptions) (SyncResult, error) {
	if f.sync != nil {
		return f.sync(ctx, o)
	}
	return SyncResult{Stats: bridge.Stats{Primary: true}}, nil
}

func (f *fakeDaemon) Status(context.Context) (Status, error) {
	return Status{PID: os.Getpid(), ClientID: "fake", Cycles: 2}, nil
}

func (f *fakeDaemon) RetryError(_ context.Context, id int64) error { return f.act("retry", id) }

func (f *fakeDaemon) DiscardError(_ context.Context, id int64) error { return f.act("discard", id) }

func (f *fakeDaemon) AllowDuplicate(_ context.Context, id int64) error {
	return f.act("allow-duplicate", id)
}

func (f *fakeDaemon) LinkError(_ context.Context, id int64, crmID crm.ID) error {
	if crmID == (crm.ID{}) {
		return fmt.Errorf("daemon: link %d: no crm id", id)
	}
	if crmID != linkTarget {
		return fmt.Errorf("daemon: link %d: %w", id, bridge.ErrNoRecord)
	}
	return f.act("link", id)
}

// linkTarget is the only record the fake daemon links to.
var linkTarget = uuid.MustParse("6f9619ff-8b86-d011-b42d-00c04fc964ff")

func (f *fakeDaemon) act(op string, id int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.errors[id] {
		return fmt.Errorf("daemon: %s %d: %w", op, id, idmap.ErrNoSyncError)
	}
	f.acted = append(f.acted, fmt.Sprintf("%s %d", op, id))
	return nil
}

// serve starts a server for d on a fresh socket; it stops with the test.
func serve(t *testing.T, d Daemon, opts *Options) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), SocketName)
	ctx, cancel := context.WithCancel(context.Background())
	l, err := Listen(ctx, path, opts)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- l.Serve(ctx, d) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return path
}

func dial(t *testing.T, path string) *Client {
	t.Helper()
	c, err := Dial(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestClient_roundTrip(t *testing.T) {
	ctx := context.Background()
	d := &fakeDaemon{errors: map[int64]bool{7: true}}
	d.sync = func(_ context.Context, o SyncOptions) (SyncResult, error) {
		st := bridge.Stats{Primary: true, ToCRM: bridge.Counter{Created: 2}, Failed: 1, Duration: 1500 * time.Millisecond}
		if o.ConfirmDeletes {
			st.ToPIM.Deleted = 9
		}
		return SyncResult{
			Stats:    st,
			Email:    &mailtrack.Stats{Tracked: 3},
			Err:      fmt.Errorf("%w: 1 failed, 0 malformed", bridge.ErrItemErrors),
			EmailErr: errors.New("imap: login refused"),
		}, nil
	}
	path := serve(t, d, nil)
	c := dial(t, path)

	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode = %v, want a socket with 0600", fi.Mode())
	}

	t.Run("sync", func(t *testing.T) {
		r, err := c.SyncNow(ctx, SyncOptions{ConfirmDeletes: true})
		if err != nil {
			t.Fatal(err)
		}
		if r.Stats.ToCRM.Created != 2 || r.Stats.ToPIM.Deleted != 9 || r.Stats.Duration != 1500*time.Millisecond || !r.Stats.Primary {
			t.Errorf("Stats = %+v, want the daemon's figures (confirm passed on)", r.Stats)
		}
		if r.Email == nil || r.Email.Tracked != 3 {
			t.Errorf("Email = %+v, want Tracked 3", r.Email)
		}
		if !errors.Is(r.Err, bridge.ErrItemErrors) || r.Err.Error() != "bridge: some items failed to sync: 1 failed, 0 malformed" {
			t.Errorf("Err = %v, want the daemon's item errors", r.Err)
		}
		if r.EmailErr == nil || r.EmailErr.Error() != "imap: login refused" || errors.Is(r.EmailErr, bridge.ErrItemErrors) {
			t.Errorf("EmailErr = %v, want the plain e-mail error", r.EmailErr)
		}
	})
	t.Run("status", func(t *testing.T) {
		st, err := c.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.PID != os.Getpid() || st.ClientID != "fake" || st.Cycles != 2 {
			t.Errorf("Status = %+v", st)
		}
	})
	for _, tc := range []struct {
		name    string
		call    func(context.Context, int64) error
		id      int64
		wantErr error
	}{
		{"retry", c.RetryError, 7, nil},
		{"discard", c.DiscardError, 7, nil},
		{"retry unknown", c.RetryError, 8, idmap.ErrNoSyncError},
		{"discard unknown", c.DiscardError, 8, idmap.ErrNoSyncError},
		{"allow duplicate", c.AllowDuplicate, 7, nil},
		{"allow duplicate unknown", c.AllowDuplicate, 8, idmap.ErrNoSyncError},
		{"link", func(ctx context.Context, id int64) error { return c.LinkError(ctx, id, linkTarget) }, 7, nil},
		{"link to a missing record", func(ctx context.Context, id int64) error { return c.LinkError(ctx, id, crm.NewID()) }, 7, bridge.ErrNoRecord},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call(ctx, tc.id)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Fatalf("%s(%d) = %v, want %v", tc.name, tc.id, err, tc.wantErr)
			}
			if err != nil && !strings.HasPrefix(err.Error(), "ctl: ") {
				t.Errorf("error %q lacks the ctl: prefix", err)
			}
		})
	}
	if got := strings.Join(d.acted, ","); got != "retry 7,discard 7,allow-duplicate 7,link 7" {
		t.Errorf("daemon acted %q, want retry 7,discard 7,allow-duplicate 7,link 7", got)
	}
}

func TestDial_noDaemon(t *testing.T) {
	dir := t.TempDir()
	stale := filepath.Join(dir, "stale.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close() // the file stays, as after a kill -9
	for _, tc := range []struct{ name, path string }{
		{"no file", filepath.Join(dir, "none.sock")},
		{"stale socket", stale},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Dial(context.Background(), tc.path)
			if !errors.Is(err, ErrNoDaemon) {
				if c != nil {
					c.Close()
				}
				t.Fatalf("Dial(%s) = %v, want ErrNoDaemon", tc.name, err)
			}
		})
	}
}

func TestDial_versionMismatch(t *testing.T) {
	path := filepath.Join(t.TempDir(), SocketName)
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() { // ends when ln closes
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("pimbridge-ctl v0\n"))
			c.Close()
		}
	}()
	_, err = Dial(context.Background(), path)
	var ve *VersionError
	if !errors.As(err, &ve) || !errors.Is(err, ErrVersion) {
		t.Fatalf("Dial = %v, want a *VersionError", err)
	}
	if ve.Got != "pimbridge-ctl v0" || ve.Want != Version {
		t.Errorf("VersionError = %+v", ve)
	}
	if errors.Is(err, ErrNoDaemon) {
		t.Errorf("a version mismatch must not read as ErrNoDaemon (the CLI would run its own cycle)")
	}
	// A daemon of another version is live: Listen must not take its socket.
	if _, err := Listen(context.Background(), path, nil); !errors.Is(err, ErrDaemonRunning) {
		t.Errorf("Listen over a v0 daemon = %v, want ErrDaemonRunning", err)
	}
}

func TestListen_staleSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), SocketName)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("stale socket not left behind: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	l, err := Listen(ctx, path, nil)
	if err != nil {
		t.Fatalf("Listen over a stale socket = %v, want it removed and replaced", err)
	}
	done := make(chan error, 1)
	go func() { done <- l.Serve(ctx, &fakeDaemon{}) }()
	c := dial(t, path)
	if _, err := c.Status(ctx); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket after Serve ended: %v, want it removed", err)
	}
}

func TestListen_refused(t *testing.T) {
	t.Run("second server", func(t *testing.T) {
		path := serve(t, &fakeDaemon{}, nil)
		l, err := Listen(context.Background(), path, nil)
		if !errors.Is(err, ErrDaemonRunning) {
			if l != nil {
				l.Close()
			}
			t.Fatalf("second Listen = %v, want ErrDaemonRunning", err)
		}
		if _, err := dial(t, path).Status(context.Background()); err != nil {
			t.Errorf("first server after the refused second one: %v", err)
		}
	})
	t.Run("not a socket", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), SocketName)
		if err := os.WriteFile(path, []byte("precious"), 0o600); err != nil {
			t.Fatal(err)
		}
		if l, err := Listen(context.Background(), path, nil); err == nil {
			l.Close()
			t.Fatal("Listen over a regular file succeeded")
		}
		if b, err := os.ReadFile(path); err != nil || string(b) != "precious" {
			t.Errorf("regular file after the refused Listen: %q, %v", b, err)
		}
	})
}

// TestClient_contextCancel cancels a SyncNow in flight: the client returns
// at once with the ctx's error, and the daemon sees its request's ctx end
// (the client hung up).
func TestClient_contextCancel(t *testing.T) {
	started := make(chan struct{})
	released := make(chan error, 1)
	d := &fakeDaemon{sync: func(ctx context.Context, _ SyncOptions) (SyncResult, error) {
		close(started)
		select {
		case <-ctx.Done():
			released <- ctx.Err()
		case <-time.After(30 * time.Second):
			released <- errors.New("the request's ctx never ended")
		}
		return SyncResult{}, ctx.Err()
	}}
	path := serve(t, d, nil)
	c := dial(t, path)

	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-started; cancel() }()
	start := time.Now()
	_, err := c.SyncNow(ctx, SyncOptions{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("SyncNow after cancel = %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("SyncNow took %s to notice the cancel", d)
	}
	if err := <-released; !errors.Is(err, context.Canceled) {
		t.Errorf("daemon side: %v", err)
	}
	if _, err := c.Status(context.Background()); err == nil {
		t.Errorf("a Client whose request was cut off still answers; want it broken")
	}

	t.Run("deadline", func(t *testing.T) {
		block := make(chan struct{})
		defer close(block)
		d := &fakeDaemon{sync: func(ctx context.Context, _ SyncOptions) (SyncResult, error) {
			select {
			case <-ctx.Done():
			case <-block:
			}
			return SyncResult{}, nil
		}}
		c := dial(t, serve(t, d, nil))
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		if _, err := c.SyncNow(ctx, SyncOptions{}); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("SyncNow past its deadline = %v, want DeadlineExceeded", err)
		}
	})
}

// TestServe_stop ends the server while a request waits: the request's ctx
// ends, the client gets an error (not a hang), and Serve returns.
func TestServe_stop(t *testing.T) {
	path := filepath.Join(t.TempDir(), SocketName)
	inFlight := make(chan struct{})
	d := &fakeDaemon{sync: func(ctx context.Context, _ SyncOptions) (SyncResult, error) {
		close(inFlight)
		<-ctx.Done()
		return SyncResult{}, ctx.Err()
	}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, path, d, nil) }()
	var c *Client
	for deadline := time.Now().Add(10 * time.Second); ; {
		var err error
		if c, err = Dial(context.Background(), path); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	defer c.Close()
	go func() { <-inFlight; cancel() }()
	if _, err := c.SyncNow(context.Background(), SyncOptions{}); err == nil {
		t.Fatal("SyncNow across a server shutdown succeeded")
	}
	if err := <-done; err != nil {
		t.Fatalf("Serve = %v", err)
	}
	if _, err := Dial(context.Background(), path); !errors.Is(err, ErrNoDaemon) {
		t.Errorf("Dial after shutdown = %v, want ErrNoDaemon", err)
	}
}

func TestServe_idleTimeout(t *testing.T) {
	path := serve(t, &fakeDaemon{}, &Options{IdleTimeout: 100 * time.Millisecond})
	c := dial(t, path)
	if _, err := c.Status(context.Background()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(400 * time.Millisecond)
	if _, err := c.Status(context.Background()); err == nil {
		t.Errorf("Status on a connection idle past IdleTimeout succeeded; want it closed by the server")
	}
}

func TestServe_badRequest(t *testing.T) {
	path := serve(t, &fakeDaemon{}, nil)
	conn, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	c := &Client{conn: conn, r: bufio.NewReader(conn)}
	if line, err := c.readLine(); err != nil || line != Version {
		t.Fatalf("handshake = %q, %v", line, err)
	}
	for _, tc := range []struct{ name, send, want string }{
		{"not json", "hello\n", "bad request"},
		{"unknown op", `{"op":"reboot"}` + "\n", `unknown op`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := conn.Write([]byte(tc.send)); err != nil {
				t.Fatal(err)
			}
			line, err := c.readLine()
			if err != nil || !strings.Contains(line, tc.want) || !strings.Contains(line, `"error"`) {
				t.Errorf("response = %q, %v, want an error naming %q", line, err, tc.want)
			}
		})
	}
}

func TestListen_pathTooLong(t *testing.T) {
	path := filepath.Join(t.TempDir(), strings.Repeat("d", 120), SocketName)
	if l, err := Listen(context.Background(), path, nil); !errors.Is(err, ErrPathTooLong) {
		if l != nil {
			l.Close()
		}
		t.Fatalf("Listen(%d bytes) = %v, want ErrPathTooLong", len(path), err)
	}
	if _, err := Dial(context.Background(), path); !errors.Is(err, ErrNoDaemon) {
		t.Errorf("Dial(%d bytes) = %v, want ErrNoDaemon", len(path), err)
	}
}
