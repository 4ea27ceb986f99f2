//go:build unix

package ctl

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// LockName is the daemon's lock file in the state directory.
const LockName = "daemon.lock"

// DaemonLock is the exclusive lock a daemon holds on its state directory
// for its lifetime (an flock, released by the kernel when the process dies,
// even by kill -9).
type DaemonLock struct{ f *os.File }

// Lock takes the daemon lock of stateDir, creating the directory (0700)
// and the lock file (0600) when missing, and records this process's pid in
// it. Another live daemon holding it gives ErrDaemonRunning, naming its
// pid. Taking it before Listen also makes the removal of a stale socket
// safe: only the lock holder does it.
func Lock(stateDir string) (*DaemonLock, error) {
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return nil, fmt.Errorf("ctl: lock: %w", err)
	}
	path := filepath.Join(stateDir, LockName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("ctl: lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		b, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("ctl: lock %s: %w (pid %s)", path, ErrDaemonRunning, strings.TrimSpace(string(b)))
		}
		return nil, fmt.Errorf("ctl: lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &DaemonLock{f: f}, nil
}

// Release gives the lock up. The file stays: removing it would race with
// a daemon starting.
func (l *DaemonLock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close() // closing the last descriptor releases the flock
	l.f = nil
	return err
}
