package crmserver_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pimbridge/pimbridge/crm/crmserver"
	"github.com/pimbridge/pimbridge/crm/crmtest"
)

// TestSecurity_Timeouts: a client that sends its headers or body slowly,
// or keeps a connection idle, is cut off by the server's timeouts
// (crmserver.HTTPServer, used by crm serve, the offline local API and the
// metrics endpoint), within a bounded time.
func TestSecurity_Timeouts(t *testing.T) {
	srv := crmtest.Start(t, nil)
	hs := crmserver.HTTPServer(srv.API, crmserver.Timeouts{ReadHeader: 300 * time.Millisecond, Read: 500 * time.Millisecond,
		Write: 2 * time.Second, Idle: 500 * time.Millisecond}, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	addr := ln.Addr().String()

	// closedWithin reports whether the server closes c within d.
	closedWithin := func(c net.Conn, d time.Duration) bool {
		c.SetReadDeadline(time.Now().Add(d))
		_, err := io.Copy(io.Discard, c)
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			return false
		}
		return true
	}
	t.Run("slow headers", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, "GET /api/whoami HTTP/1.1\r\nHost: x\r\n") // never ends the headers
		if !closedWithin(c, 5*time.Second) {
			t.Errorf("connection with unfinished headers still open after 5 s")
		}
	})
	t.Run("slow body", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, "POST /api/data/contacts HTTP/1.1\r\nHost: x\r\nAuthorization: Basic YWxpY2U6YWxpY2Utc2VjcmV0LXB3\r\n"+
			"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"lastname\":")
		if !closedWithin(c, 5*time.Second) {
			t.Errorf("connection with a stalled body still open after 5 s")
		}
	})
	t.Run("idle keep-alive", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, "GET /api/whoami HTTP/1.1\r\nHost: x\r\nAuthorization: Basic YWxpY2U6YWxpY2Utc2VjcmV0LXB3\r\n\r\n")
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), "alice") {
			t.Fatalf("whoami = %d %s", resp.StatusCode, b)
		}
		start := time.Now()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = br.ReadByte()
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Errorf("idle keep-alive connection still open after 5 s")
		} else {
			t.Logf("idle connection closed after %v", time.Since(start).Round(10*time.Millisecond))
		}
	})
}
