//go:build unix

package ctl

import (
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestLock_oneDaemonPerStateDir: a second Lock of the same state directory
// is refused naming the holder's pid, in this process and from another;
// a holder killed with SIGKILL leaves a lock that the next daemon takes.
func TestLock_oneDaemonPerStateDir(t *testing.T) {
	if dir := os.Getenv("CTL_TEST_LOCK_HOLDER"); dir != "" {
		if _, err := Lock(dir); err != nil {
			os.Exit(3)
		}
		os.Stdout.WriteString("locked\n")
		time.Sleep(time.Minute) // until killed
		os.Exit(0)
	}
	dir := t.TempDir() + "/state"
	l, err := Lock(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Lock(dir)
	if !errors.Is(err, ErrDaemonRunning) || !strings.Contains(err.Error(), strconv.Itoa(os.Getpid())) {
		t.Fatalf("second Lock = %v, want ErrDaemonRunning naming pid %d", err, os.Getpid())
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}

	// Another process holds it, then dies by SIGKILL.
	cmd := exec.Command(os.Args[0], "-test.run=^TestLock_oneDaemonPerStateDir$")
	cmd.Env = append(os.Environ(), "CTL_TEST_LOCK_HOLDER="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	buf := make([]byte, len("locked\n"))
	if _, err := out.Read(buf); err != nil || string(buf) != "locked\n" {
		t.Fatalf("holder: %q, %v", buf, err)
	}
	if _, err := Lock(dir); !errors.Is(err, ErrDaemonRunning) || !strings.Contains(err.Error(), strconv.Itoa(cmd.Process.Pid)) {
		t.Fatalf("Lock while another process holds it = %v, want ErrDaemonRunning naming pid %d", err, cmd.Process.Pid)
	}
	cmd.Process.Kill()
	cmd.Wait()
	l, err = Lock(dir)
	if err != nil {
		t.Fatalf("Lock after the holder was killed: %v", err)
	}
	l.Release()
}
