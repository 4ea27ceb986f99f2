package retry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"syscall"
	"testing"
	"time"
)

// TestTransientStatus_Table pins the one status table: 408, 425, 429 and
// the 5xx that heal by waiting retry; 501, 505 and 507 do not, nor does
// any 1xx-4xx answer.
func TestTransientStatus_Table(t *testing.T) {
	for _, tt := range []struct {
		code int
		want bool
	}{
		{http.StatusContinue, false},
		{http.StatusOK, false},
		{http.StatusNoContent, false},
		{http.StatusMovedPermanently, false},
		{http.StatusNotModified, false},
		{http.StatusBadRequest, false},
		{http.StatusUnauthorized, false},
		{http.StatusForbidden, false},
		{http.StatusNotFound, false},
		{http.StatusConflict, false},
		{http.StatusGone, false},
		{http.StatusPreconditionFailed, false},
		{http.StatusFailedDependency, false},
		{http.StatusRequestTimeout, true},
		{http.StatusTooEarly, true},
		{http.StatusTooManyRequests, true},
		{http.StatusInternalServerError, true},
		{http.StatusNotImplemented, false},
		{http.StatusBadGateway, true},
		{http.StatusServiceUnavailable, true},
		{http.StatusGatewayTimeout, true},
		{http.StatusHTTPVersionNotSupported, false},
		{http.StatusInsufficientStorage, false},
		{509, true},
		{599, true},
		{600, false},
	} {
		if got := TransientStatus(tt.code); got != tt.want {
			t.Errorf("TransientStatus(%d) = %v, want %v", tt.code, got, tt.want)
		}
	}
}

type retryable bool

func (r retryable) Error() string   { return fmt.Sprintf("retryable=%v", bool(r)) }
func (r retryable) Retryable() bool { return bool(r) }

// realErr returns the error a real socket operation gives: op against a
// TCP peer that is gone or never listened.
func refused(t *testing.T) error {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c, err := net.Dial("tcp", addr)
	if err == nil {
		c.Close()
		t.Fatal("dial to a closed port succeeded")
	}
	return err
}

// resetAndPipe returns the errors of a read from and a write to a TCP
// connection whose peer closed it with SO_LINGER 0 (an RST).
func resetAndPipe(t *testing.T) (readErr, writeErr error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	peer := <-accepted
	if peer == nil {
		t.Fatal("accept failed")
	}
	if err := peer.(*net.TCPConn).SetLinger(0); err != nil {
		t.Fatal(err)
	}
	peer.Close()
	time.Sleep(50 * time.Millisecond) // let the RST arrive
	_, readErr = c.Read(make([]byte, 1))
	for range 100 { // the first write after an RST may still succeed
		if _, writeErr = c.Write([]byte("x")); writeErr != nil {
			break
		}
		time.Sleep(time.Millisecond)
	}
	return readErr, writeErr
}

func timeout(t *testing.T) error {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
	_, err = c.Read(make([]byte, 1))
	return err
}

// TestTransient_SyscallErrors feeds Transient the errors real sockets give
// (ECONNREFUSED, ECONNRESET, EPIPE, a read timeout), bare and wrapped, and
// errors that must not be retried.
func TestTransient_SyscallErrors(t *testing.T) {
	readErr, writeErr := resetAndPipe(t)
	if !errors.Is(readErr, syscall.ECONNRESET) {
		t.Fatalf("read after RST = %v, want ECONNRESET", readErr)
	}
	if !errors.Is(writeErr, syscall.EPIPE) && !errors.Is(writeErr, syscall.ECONNRESET) {
		t.Fatalf("write after RST = %v, want EPIPE or ECONNRESET", writeErr)
	}
	ref := refused(t)
	if !errors.Is(ref, syscall.ECONNREFUSED) {
		t.Fatalf("dial to a closed port = %v, want ECONNREFUSED", ref)
	}
	to := timeout(t)
	if !errors.Is(to, os.ErrDeadlineExceeded) {
		t.Fatalf("read past deadline = %v, want a timeout", to)
	}
	for _, tt := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"ECONNREFUSED", ref, true},
		{"ECONNRESET", readErr, true},
		{"EPIPE", writeErr, true},
		{"timeout", to, true},
		{"wrapped ECONNRESET", fmt.Errorf("bridge: whoami: %w", fmt.Errorf("crmclient: get: %w", readErr)), true},
		{"bare syscall ECONNRESET", os.NewSyscallError("read", syscall.ECONNRESET), true},
		{"bare ECONNABORTED", fmt.Errorf("x: %w", syscall.ECONNABORTED), true},
		{"bare ETIMEDOUT", fmt.Errorf("x: %w", syscall.ETIMEDOUT), true},
		{"unexpected EOF", fmt.Errorf("read body: %w", io.ErrUnexpectedEOF), true},
		{"EOF", io.EOF, true},
		{"closed conn", net.ErrClosed, true},
		{"deadline", context.DeadlineExceeded, true},
		{"retryable says yes", fmt.Errorf("w: %w", retryable(true)), true},
		{"retryable says no", fmt.Errorf("w: %w", retryable(false)), false},
		{"canceled", context.Canceled, false},
		{"plain error", errors.New("connection reset by peer"), false},
		{"ENOENT", fmt.Errorf("open: %w", syscall.ENOENT), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := Transient(tt.err); got != tt.want {
				t.Errorf("Transient(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

// TestBackoff_DoublesToCapWithJitter: Base doubled per failure, never above
// Max, jitter only shortens the wait (by at most Jitter of it), and no
// jitter gives exact values.
func TestBackoff_DoublesToCapWithJitter(t *testing.T) {
	exact := Backoff{Base: time.Second, Max: 10 * time.Second}
	for n, want := range map[int]time.Duration{0: time.Second, 1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 4: 8 * time.Second, 5: 10 * time.Second, 64: 10 * time.Second, 1000: 10 * time.Second} {
		if got := exact.Delay(n); got != want {
			t.Errorf("Delay(%d) = %v, want %v", n, got, want)
		}
	}
	j := Backoff{Base: 100 * time.Millisecond, Max: time.Second, Jitter: 0.25}
	for n := 1; n <= 8; n++ {
		full := exact.Delay(n) / 10
		seen := map[time.Duration]bool{}
		for range 200 {
			d := j.Delay(n)
			if d > full || d < full*3/4 {
				t.Fatalf("jittered Delay(%d) = %v, want within [%v, %v]", n, d, full*3/4, full)
			}
			seen[d] = true
		}
		if len(seen) < 2 {
			t.Errorf("jittered Delay(%d) always %v: no jitter", n, full)
		}
	}
	if got := (Backoff{}).Delay(3); got != 4*time.Second {
		t.Errorf("zero Backoff Delay(3) = %v, want 4s (Base 1s)", got)
	}
}
