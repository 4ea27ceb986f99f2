//go:build linux

package ctl

import (
	"fmt"
	"net"
	"os"
	"syscall"
)

// checkPeer refuses a peer that runs as another user (SO_PEERCRED), on top
// of the socket's 0600 mode.
func checkPeer(c *net.UnixConn) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return fmt.Errorf("ctl: peer credentials: %w", err)
	}
	var (
		cred *syscall.Ucred
		cerr error
	)
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil {
		return fmt.Errorf("ctl: peer credentials: %w", err)
	}
	if cerr != nil {
		return fmt.Errorf("ctl: peer credentials: %w", cerr)
	}
	if uid := os.Getuid(); int(cred.Uid) != uid {
		return fmt.Errorf("ctl: peer uid %d (pid %d) is not the daemon's uid %d", cred.Uid, cred.Pid, uid)
	}
	return nil
}
