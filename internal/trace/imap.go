package trace

import (
	"bytes"
	"context"
	"io"
	"regexp"
	"strings"
	"sync"
	"time"
)

// IMAPWriter turns go-imap's DebugWriter stream (both directions of a
// connection, mixed) into one trace line per command: command, mailbox,
// status, HIGHESTMODSEQ or MODSEQ seen, bytes and duration (bytes and
// duration are close, not exact: the two directions reach the writer from
// two goroutines, and an answer may even arrive before its command). With Bodies
// each protocol line is logged too. LOGIN and AUTHENTICATE arguments, and
// every line the client sends while an AUTHENTICATE runs, are replaced
// before anything is logged.
type IMAPWriter struct {
	opts Options

	mu      sync.Mutex
	partial []byte
	pending map[string]*imapCmd
	authTag string // set while LOGIN/AUTHENTICATE with this tag runs
	// early holds completions that reached the writer before their
	// command: imapclient writes a command to the connection before its
	// debug copy, and the reader may tee the answer first.
	early map[string][2]string
}

type imapCmd struct {
	name, mailbox string
	start         time.Time
	bytes         int64
	modseq        string
}

// NewIMAPWriter returns a writer for imapclient.Options.DebugWriter.
func NewIMAPWriter(o Options) *IMAPWriter {
	return &IMAPWriter{opts: o, pending: map[string]*imapCmd{}, early: map[string][2]string{}}
}

var (
	// clientCmdRE is a command line: tag, command, rest.
	clientCmdRE = regexp.MustCompile(`^(T\d+) ((?:UID )?[A-Za-z]+)(?: (.*))?$`)
	// taggedRE is a server's completion line.
	taggedRE = regexp.MustCompile(`^(T\d+) (OK|NO|BAD)\b(.*)$`)
	modseqRE = regexp.MustCompile(`(?i)\b(?:HIGHESTMODSEQ|MODSEQ) \(?(\d+)`)
)

// Write implements io.Writer. It never fails: a trace must not break the
// connection it watches.
func (w *IMAPWriter) Write(p []byte) (int, error) {
	if w.opts.Logger == nil || !w.opts.Logger.Enabled(context.Background(), LevelTrace) {
		return len(p), nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	// A client command is flushed whole; when it lands in the middle of a
	// server line read in chunks, handle it on its own.
	if len(w.partial) > 0 && bytes.HasSuffix(p, []byte("\r\n")) && bytes.Count(p, []byte("\n")) == 1 && clientCmdRE.Match(bytes.TrimRight(p, "\r\n")) && !taggedRE.Match(p) {
		w.line(string(bytes.TrimRight(p, "\r\n")), len(p))
		return len(p), nil
	}
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		l := string(bytes.TrimRight(w.partial[:i], "\r"))
		w.line(l, i+1)
		w.partial = w.partial[i+1:]
	}
	if len(w.partial) == 0 {
		w.partial = nil
	}
	return len(p), nil
}

var _ io.Writer = (*IMAPWriter)(nil)

func (w *IMAPWriter) line(l string, n int) {
	shown := l
	switch {
	case w.authTag != "" && !strings.HasPrefix(l, w.authTag+" ") && !strings.HasPrefix(l, "* ") && !strings.HasPrefix(l, "+"):
		// A SASL response or a LOGIN literal from the client.
		shown = Redacted
	case w.authTag != "" && strings.HasPrefix(l, "+ ") && len(l) > 2:
		shown = "+ " + Redacted // a SASL challenge may echo the response
	}
	if m := clientCmdRE.FindStringSubmatch(l); m != nil && !taggedRE.MatchString(l) {
		tag, name, rest := m[1], strings.ToUpper(m[2]), m[3]
		c := &imapCmd{name: name, start: time.Now()}
		switch name {
		case "LOGIN", "AUTHENTICATE":
			w.authTag = tag
			if name == "AUTHENTICATE" {
				mech, _, _ := strings.Cut(rest, " ")
				shown = tag + " AUTHENTICATE " + mech + " " + Redacted
			} else {
				shown = tag + " LOGIN " + Redacted
			}
		case "SELECT", "EXAMINE", "STATUS", "CREATE", "DELETE", "SUBSCRIBE", "APPEND", "GETMETADATA":
			c.mailbox = firstArg(rest)
		case "RENAME":
			c.mailbox = firstArg(rest)
		case "MOVE", "COPY", "UID MOVE", "UID COPY":
			if i := strings.IndexByte(rest, ' '); i >= 0 {
				c.mailbox = firstArg(rest[i+1:])
			}
		}
		w.pending[tag] = c
		if e, ok := w.early[tag]; ok {
			delete(w.early, tag)
			c.bytes += int64(n)
			w.finish(tag, c, e[0], e[1])
			return
		}
	}
	for _, c := range w.pending {
		c.bytes += int64(n)
		if m := modseqRE.FindStringSubmatch(l); m != nil {
			c.modseq = m[1]
		}
	}
	if w.opts.Bodies {
		w.opts.Logger.Log(context.Background(), LevelTrace, "trace: imap line", "side", w.opts.Side, "line", w.opts.Redactor.String(shown))
	}
	if m := taggedRE.FindStringSubmatch(l); m != nil {
		c, ok := w.pending[m[1]]
		if !ok {
			if len(w.early) < 64 {
				w.early[m[1]] = [2]string{m[2], m[3]}
			}
			return
		}
		w.finish(m[1], c, m[2], m[3])
	}
}

// finish logs the line of a completed command.
func (w *IMAPWriter) finish(tag string, c *imapCmd, status, text string) {
	delete(w.pending, tag)
	if tag == w.authTag {
		w.authTag = ""
	}
	args := []any{"side", w.opts.Side, "command", c.name}
	if c.mailbox != "" {
		args = append(args, "mailbox", c.mailbox)
	}
	args = append(args, "status", status)
	if status != "OK" {
		args = append(args, "text", w.opts.Redactor.String(strings.TrimSpace(text)))
	}
	if c.modseq != "" {
		args = append(args, "modseq", c.modseq)
	}
	args = append(args, "bytes", c.bytes, "duration", time.Since(c.start).Round(time.Microsecond))
	w.opts.Logger.Log(context.Background(), LevelTrace, "trace: "+w.opts.Side+" "+c.name, args...)
}

// firstArg is the first IMAP argument of s: an atom or a quoted string.
func firstArg(s string) string {
	if strings.HasPrefix(s, `"`) {
		var b strings.Builder
		for i := 1; i < len(s); i++ {
			switch s[i] {
			case '\\':
				if i+1 < len(s) {
					i++
					b.WriteByte(s[i])
				}
			case '"':
				return b.String()
			default:
				b.WriteByte(s[i])
			}
		}
		return b.String()
	}
	a, _, _ := strings.Cut(s, " ")
	return a
}
