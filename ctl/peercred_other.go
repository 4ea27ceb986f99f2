//go:build !linux

package ctl

import "net"

// checkPeer relies on the socket's 0600 mode in a 0700 directory where
// SO_PEERCRED is not available.
func checkPeer(*net.UnixConn) error { return nil }
