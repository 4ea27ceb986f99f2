// Package realserver starts real PIM servers from Debian's packages
// (Radicale, Xandikos, Dovecot, Cyrus) for integration tests: each on a free
// 127.0.0.1 port, in t.TempDir, stopped by t.Cleanup. StartMemIMAP is the
// in-process counterpart: go-imap's imapmemserver, for the non-CONDSTORE path.
//
// A test whose server binary is missing is skipped when run by hand and
// fails when CI=true, so CI can never pass by skipping; `make testdeps`
// installs the packages. It must not be imported by non-test code.
package realserver

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"
)

// Require returns the path of binary, or ends the test: a skip naming the
// binary when run by hand, a failure when CI=true.
func Require(t testing.TB, binary string) string {
	t.Helper()
	if p, err := exec.LookPath(binary); err == nil {
		return p
	}
	if _, err := os.Stat(binary); err == nil {
		return binary
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not installed (run make testdeps); CI=true never skips", binary)
	}
	t.Skipf("%s is not installed (run make testdeps)", binary)
	return ""
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("realserver: free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// WaitPort waits until 127.0.0.1:port accepts connections or the timeout
// passes.
func WaitPort(port int, timeout time.Duration) error {
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("realserver: %s not accepting after %v: %w", addr, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startProcess starts cmd, registers a cleanup that kills it and waits for
// it, and waits for port. Output goes to logPath.
func startProcess(t testing.TB, cmd *exec.Cmd, port int, logPath string) {
	t.Helper()
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("realserver: start %s: %v", cmd.Path, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logf.Close()
	})
	if err := WaitPort(port, 20*time.Second); err != nil {
		b, _ := os.ReadFile(logPath)
		t.Fatalf("%v\n%s log:\n%s", err, cmd.Path, b)
	}
}
