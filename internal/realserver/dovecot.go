package realserver

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// DovecotServer is a Dovecot 2.3 IMAP server on 127.0.0.1 started by
// Dovecot for one test. Its mailboxes live in Dir; it offers CONDSTORE,
// QRESYNC, IDLE, MOVE, UIDPLUS and SPECIAL-USE, with INBOX, Sent (\Sent) and
// Drafts (\Drafts) created for every user. Authentication is PLAIN or LOGIN
// without TLS (loopback only).
type DovecotServer struct {
	Addr     string // "127.0.0.1:port"
	Port     int
	User     string // the first user, "alice"
	Password string
	Dir      string // config, logs, runtime state and homes

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	binary  string
	logPath string
	users   []string // passwd-file lines
}

// mailUID is the uid/gid that owns the mail folders (nobody:nogroup).
const mailUID = 65534

// Dovecot starts Dovecot (Require'd: skipped by hand, failing when CI=true if
// missing) and stops it in t.Cleanup.
func Dovecot(t testing.TB) *DovecotServer {
	t.Helper()
	bin := Require(t, "/usr/sbin/dovecot")
	dir := t.TempDir()
	// The auth process runs as the dovecot user: it must be able to reach
	// the passwd-file through every folder above it.
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatalf("realserver: dovecot: %v", err)
		}
	}
	port := FreePort(t)
	s := &DovecotServer{
		Addr:     fmt.Sprintf("127.0.0.1:%d", port),
		Port:     port,
		User:     "alice",
		Password: "imappw",
		Dir:      dir,
		binary:   bin,
		logPath:  filepath.Join(dir, "dovecot.log"),
	}
	for _, sub := range []string{"run", "state", "home"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			t.Fatalf("realserver: dovecot: %v", err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "dovecot.conf"), []byte(s.config()), 0o644); err != nil {
		t.Fatalf("realserver: dovecot: %v", err)
	}
	s.AddUser(t, s.User, s.Password)
	t.Cleanup(func() {
		if err := s.stop(false); err != nil {
			t.Errorf("realserver: dovecot: kill: %v", err)
		}
	})
	s.Start(t)
	return s
}

func (s *DovecotServer) config() string {
	d := s.Dir
	return `protocols = imap
listen = 127.0.0.1
base_dir = ` + d + `/run
state_dir = ` + d + `/state
instance_name = test-` + strconv.Itoa(s.Port) + `
log_path = ` + s.logPath + `
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
default_login_user = dovenull
default_internal_user = dovecot
first_valid_uid = 1
first_valid_gid = 1
mail_fsync = never
mailbox_idle_check_interval = 1 secs
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u ` + d + `/users
}
userdb {
  driver = passwd-file
  args = username_format=%u ` + d + `/users
}
mail_location = maildir:~/Maildir
namespace inbox {
  inbox = yes
  separator = /
  mailbox Sent {
    special_use = \Sent
    auto = create
  }
  mailbox Drafts {
    special_use = \Drafts
    auto = create
  }
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = ` + strconv.Itoa(s.Port) + `
  }
  inet_listener imaps {
    port = 0
  }
}
`
}

// AddUser adds an IMAP user with the given password; Dovecot re-reads its
// passwd-file, so this works while the server runs.
func (s *DovecotServer) AddUser(t testing.TB, name, password string) {
	t.Helper()
	if strings.ContainsAny(name+password, ":\n") {
		t.Fatalf("realserver: dovecot: bad user %q", name)
	}
	home := s.Home(name)
	if err := os.MkdirAll(home, 0o700); err != nil {
		t.Fatalf("realserver: dovecot: %v", err)
	}
	if err := os.Chown(home, mailUID, mailUID); err != nil {
		t.Fatalf("realserver: dovecot: %v", err)
	}
	s.mu.Lock()
	s.users = append(s.users, fmt.Sprintf("%s:{PLAIN}%s:%d:%d::%s", name, password, mailUID, mailUID, home))
	data := strings.Join(s.users, "\n") + "\n"
	s.mu.Unlock()
	// Write a new file and rename it so the auth process never reads a
	// half-written one.
	tmp := filepath.Join(s.Dir, "users.tmp")
	if err := os.WriteFile(tmp, []byte(data), 0o644); err != nil {
		t.Fatalf("realserver: dovecot: %v", err)
	}
	if err := os.Rename(tmp, filepath.Join(s.Dir, "users")); err != nil {
		t.Fatalf("realserver: dovecot: %v", err)
	}
}

// Home is the home folder of user; the mail is in Home(user)/Maildir.
func (s *DovecotServer) Home(user string) string {
	return filepath.Join(s.Dir, "home", user)
}

// Start starts the server after Stop; Dovecot already started it once.
func (s *DovecotServer) Start(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	if s.cmd != nil {
		s.mu.Unlock()
		t.Fatalf("realserver: dovecot: already running")
	}
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		s.mu.Unlock()
		t.Fatalf("realserver: dovecot: %v", err)
	}
	// -F keeps the master in the foreground so that it is our child and
	// can be waited for.
	cmd := exec.Command(s.binary, "-F", "-c", filepath.Join(s.Dir, "dovecot.conf"))
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group, so that Kill reaches the master's children.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		s.mu.Unlock()
		t.Fatalf("realserver: dovecot: start: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(exited)
	}()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()
	if err := WaitPort(s.Port, 20*time.Second); err != nil {
		b, _ := os.ReadFile(s.logPath)
		t.Fatalf("%v\ndovecot log:\n%s", err, b)
	}
}

// Stop stops the server: SIGTERM to the master, then SIGKILL to whatever
// is left of its process group (Dovecot lets running imap processes outlive
// the master), and waits until all are gone. Every client connection
// drops. Start starts it again on the same port.
func (s *DovecotServer) Stop(t testing.TB) {
	t.Helper()
	if err := s.stop(true); err != nil {
		t.Fatalf("realserver: dovecot: stop: %v", err)
	}
}

// Kill kills the master and all its children at once with SIGKILL (a
// crash, and the fast way to end a test) and waits until they are gone.
// Start starts the server again.
func (s *DovecotServer) Kill(t testing.TB) {
	t.Helper()
	if err := s.stop(false); err != nil {
		t.Fatalf("realserver: dovecot: kill: %v", err)
	}
}

// Restart stops and starts the server; clients see their connections drop.
func (s *DovecotServer) Restart(t testing.TB) {
	t.Helper()
	s.Stop(t)
	s.Start(t)
}

func (s *DovecotServer) stop(graceful bool) error {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.cmd, s.exited = nil, nil
	s.mu.Unlock()
	if cmd == nil {
		return nil
	}
	pgid := cmd.Process.Pid // Setpgid: the master leads its group
	var errs []error
	if graceful {
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
			errs = append(errs, err)
		}
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			errs = append(errs, fmt.Errorf("master still running 10 s after SIGTERM"))
		}
	}
	if err := syscall.Kill(-pgid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		errs = append(errs, err)
	}
	<-exited
	deadline := time.Now().Add(10 * time.Second)
	for groupAlive(pgid) {
		if time.Now().After(deadline) {
			errs = append(errs, fmt.Errorf("process group %d still alive 10 s after SIGKILL", pgid))
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	// A killed master leaves master.pid behind.
	_ = os.Remove(filepath.Join(s.Dir, "run", "master.pid"))
	return errors.Join(errs...)
}

// Log returns Dovecot's log so far, for failure messages.
func (s *DovecotServer) Log() string {
	b, _ := os.ReadFile(s.logPath)
	return string(b)
}

// WriteMaildir writes messages straight into user's mailbox folder
// ("INBOX" or a mailbox name), as new mail that Dovecot numbers on its next
// look at the folder. Use it to bulk-load large folders, which APPEND does
// at only a few hundred messages a second.
func (s *DovecotServer) WriteMaildir(t testing.TB, user, mailbox string, msgs [][]byte) {
	t.Helper()
	root := filepath.Join(s.Home(user), "Maildir")
	dir := root
	if !strings.EqualFold(mailbox, "INBOX") {
		dir = filepath.Join(root, "."+strings.ReplaceAll(mailbox, "/", "."))
	}
	for _, sub := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			t.Fatalf("realserver: dovecot: %v", err)
		}
	}
	now := time.Now().Unix()
	for i, m := range msgs {
		name := filepath.Join(dir, "new", fmt.Sprintf("%d.P%dQ%d.bulk", now, os.Getpid(), i))
		if err := os.WriteFile(name, m, 0o600); err != nil {
			t.Fatalf("realserver: dovecot: %v", err)
		}
	}
	err := filepath.Walk(root, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, mailUID, mailUID)
	})
	if err != nil {
		t.Fatalf("realserver: dovecot: chown: %v", err)
	}
}

// groupAlive reports whether a process of group pgid is still running.
// Zombies do not count: killed children of the master are reparented to
// PID 1, which may reap them late, but they hold no files or ports.
func groupAlive(pgid int) bool {
	if syscall.Kill(-pgid, 0) != nil {
		return false
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return true // no /proc: trust kill(2)
	}
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) >= 3 && f[2] == strconv.Itoa(pgid) && f[0] != "Z" && f[0] != "X" {
			return true
		}
	}
	return false
}
