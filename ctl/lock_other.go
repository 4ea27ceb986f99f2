//go:build !unix

package ctl

// LockName is the daemon's lock file in the state directory.
const LockName = "daemon.lock"

// DaemonLock is a no-op where flock is missing; the control socket still
// refuses a second daemon that starts after the first listens.
type DaemonLock struct{}

// Lock does nothing on this platform.
func Lock(stateDir string) (*DaemonLock, error) { return &DaemonLock{}, nil }

// Release does nothing on this platform.
func (l *DaemonLock) Release() error { return nil }
