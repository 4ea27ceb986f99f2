package imapmail

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Stats counts the traffic of a Client's connections (Watch excluded),
// cumulatively across reconnects.
type Stats struct {
	// Commands is the number of tagged command lines the client sent.
	Commands int64
	// RoundTrips is the number of times the client wrote after having read
	// since its previous write: pipelined commands sent before any answer
	// count once.
	RoundTrips int64
	// BytesRead and BytesWritten are wire bytes (after TLS decryption when
	// TLS is implicit).
	BytesRead, BytesWritten int64
	// Dials is the number of connections established.
	Dials int64
}

type counters struct {
	commands, roundTrips, bytesRead, bytesWritten, dials atomic.Int64
}

func (c *counters) snapshot() Stats {
	return Stats{
		Commands:     c.commands.Load(),
		RoundTrips:   c.roundTrips.Load(),
		BytesRead:    c.bytesRead.Load(),
		BytesWritten: c.bytesWritten.Load(),
		Dials:        c.dials.Load(),
	}
}

// conn wraps the TCP connection under imapclient. It clamps every deadline
// the library sets to the deadline of the call in progress (imapclient sets
// its own 30 s / 5 min read deadlines and knows nothing of contexts), and
// counts traffic.
type conn struct {
	net.Conn
	stats *counters

	mu         sync.Mutex
	opDeadline time.Time
	readSince  bool // something was read since the last write
	lineStart  bool // the next written byte starts a line
}

func newConn(c net.Conn, stats *counters) *conn {
	return &conn{Conn: c, stats: stats, readSince: true, lineStart: true}
}

// setOpDeadline sets the deadline of the call in progress (zero: none) and
// applies it to the connection at once, so that a blocked read sees it.
func (c *conn) setOpDeadline(t time.Time) {
	c.mu.Lock()
	c.opDeadline = t
	c.mu.Unlock()
	_ = c.Conn.SetDeadline(t)
}

func (c *conn) clamp(t time.Time) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.opDeadline.IsZero() && (t.IsZero() || c.opDeadline.Before(t)) {
		return c.opDeadline
	}
	return t
}

func (c *conn) SetDeadline(t time.Time) error      { return c.Conn.SetDeadline(c.clamp(t)) }
func (c *conn) SetReadDeadline(t time.Time) error  { return c.Conn.SetReadDeadline(c.clamp(t)) }
func (c *conn) SetWriteDeadline(t time.Time) error { return c.Conn.SetWriteDeadline(c.clamp(t)) }

func (c *conn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.stats.bytesRead.Add(int64(n))
		c.mu.Lock()
		c.readSince = true
		c.mu.Unlock()
	}
	return n, err
}

func (c *conn) Write(b []byte) (int, error) {
	c.mu.Lock()
	if c.readSince && len(b) > 0 {
		c.stats.roundTrips.Add(1)
		c.readSince = false
	}
	// Count tagged lines: imapclient tags commands "T<n>".
	for i := 0; i < len(b); i++ {
		if c.lineStart && b[i] == 'T' && i+1 < len(b) && b[i+1] >= '0' && b[i+1] <= '9' {
			c.stats.commands.Add(1)
		}
		c.lineStart = b[i] == '\n'
	}
	c.mu.Unlock()
	n, err := c.Conn.Write(b)
	c.stats.bytesWritten.Add(int64(n))
	return n, err
}
