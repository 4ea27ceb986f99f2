package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmtest"
	"github.com/pimbridge/pimbridge/internal/realserver"
	"github.com/pimbridge/pimbridge/pim/davext"
)

// countingProxy forwards HTTP to target and counts the requests.
func countingProxy(t *testing.T, target string) (string, *atomic.Int64) {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int64
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, &n
}

// imapCountingProxy forwards TCP to addr and counts the commands the
// server completed (its tagged OK, NO and BAD lines).
func imapCountingProxy(t *testing.T, addr string) (string, *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		n  atomic.Int64
		wg sync.WaitGroup
	)
	tagged := regexp.MustCompile(`(?m)^T\d+ (OK|NO|BAD)\b`)
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() { // ends when ln is closed
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", addr)
			if err != nil {
				c.Close()
				continue
			}
			wg.Add(2)
			go func() { defer wg.Done(); io.Copy(s, c); s.Close() }()
			go func() { // server to client, counting completions line by line
				defer wg.Done()
				defer c.Close()
				var line []byte
				buf := make([]byte, 32<<10)
				for {
					k, err := s.Read(buf)
					if k > 0 {
						line = append(line, buf[:k]...)
						if i := bytes.LastIndexByte(line, '\n'); i >= 0 {
							n.Add(int64(len(tagged.FindAll(line[:i+1], -1))))
							line = append([]byte(nil), line[i+1:]...)
						}
						if _, werr := c.Write(buf[:k]); werr != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String(), &n
}

// traceWorld is a CRM server, Radicale with a book and a calendar, and
// Dovecot with one message, each behind a counting proxy, and a config
// for alice on them (passwords in files).
type traceWorld struct {
	cfgPath                   string
	crmN, davN, imapN         *atomic.Int64
	crmPW, davPW, imapPW, dir string
}

func newTraceWorld(t *testing.T, extra string) *traceWorld {
	t.Helper()
	ctx := context.Background()
	crmSrv := crmtest.Start(t, nil)
	for i := range 3 {
		if _, err := crmSrv.Alice.Client.Create(ctx, crm.Record{Entity: crm.EntityContact, Attrs: map[string]any{
			"firstname": "Ada", "lastname": fmt.Sprintf("Lovelace %d", i), "ownerid": crm.Ref{Entity: crm.EntitySystemUser, ID: crmSrv.Alice.ID},
		}}, nil); err != nil {
			t.Fatal(err)
		}
	}
	rad := realserver.StartRadicale(t)
	dc, err := davext.New(rad.URL, &davext.Options{Username: rad.User, Password: rad.Password})
	if err != nil {
		t.Fatal(err)
	}
	book, cal := rad.CollectionPath("crm"), rad.CollectionPath("crm-cal")
	if err := dc.MkAddressBook(ctx, book, "CRM"); err != nil {
		t.Fatal(err)
	}
	if err := dc.MkCalendar(ctx, cal, "CRM", "VEVENT", "VTODO"); err != nil {
		t.Fatal(err)
	}
	dov := realserver.Dovecot(t)
	dov.WriteMaildir(t, dov.User, "INBOX", [][]byte{[]byte("From: bob@example.org\r\nTo: alice@example.org\r\nSubject: hello\r\nMessage-ID: <m1@example.org>\r\nDate: Fri, 04 Dec 2026 10:00:00 +0000\r\n\r\nhi\r\n")})

	w := &traceWorld{dir: t.TempDir(), crmPW: crmtest.AlicePassword, davPW: rad.Password, imapPW: dov.Password}
	var crmURL, davURL, imapAddr string
	crmURL, w.crmN = countingProxy(t, crmSrv.URL)
	davURL, w.davN = countingProxy(t, rad.URL)
	imapAddr, w.imapN = imapCountingProxy(t, dov.Addr)
	secret := func(name, v string) string {
		p := filepath.Join(w.dir, name)
		if err := os.WriteFile(p, []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	w.cfgPath = secret("config.toml", fmt.Sprintf(`[crm]
url = %q
user = "alice"
password_file = %q
[client]
id = "trace-test"
state_dir = %q
interval = "1h"
poll = "1h"
[carddav]
url = %q
user = "alice"
password_file = %q
addressbook = %q
[caldav]
url = %q
user = "alice"
password_file = %q
calendar = %q
[imap]
addr = %q
security = "none"
user = %q
password_file = %q
folders = ["INBOX"]
%s`, crmURL, secret("crm", w.crmPW), filepath.Join(w.dir, "state"), davURL, secret("dav", w.davPW), book,
		davURL, secret("dav2", w.davPW), cal, imapAddr, dov.User, secret("imap", w.imapPW), extra))
	return w
}

// assertNoSecrets fails when out holds a password or a form of it.
func (w *traceWorld) assertNoSecrets(t *testing.T, out string) {
	t.Helper()
	for _, s := range []string{w.crmPW, w.davPW, w.imapPW,
		base64.StdEncoding.EncodeToString([]byte("alice:" + w.crmPW)),
		base64.StdEncoding.EncodeToString([]byte("alice:" + w.davPW)),
		base64.StdEncoding.EncodeToString([]byte("\x00alice\x00" + w.imapPW)),
		base64.StdEncoding.EncodeToString([]byte(w.imapPW)),
	} {
		if strings.Contains(out, s) {
			t.Errorf("the trace contains the secret %q", s)
		}
	}
}

// TestTrace_cycleLinePerRequestNoSecrets runs `pimbridge -vv sync` against
// the CRM server, Radicale and Dovecot: the trace has exactly one line per
// HTTP request each proxy saw and per IMAP command Dovecot completed, with
// status and bytes, and no password in any form; --trace-bodies adds the
// bodies and still no password.
func TestTrace_cycleLinePerRequestNoSecrets(t *testing.T) {
	w := newTraceWorld(t, "")
	for _, args := range [][]string{{"-vv"}, {"--trace-bodies"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			w.crmN.Store(0)
			w.davN.Store(0)
			w.imapN.Store(0)
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), append([]string{"--config", w.cfgPath}, append(args, "sync")...), nil, &stdout, &stderr)
			if err != nil {
				t.Fatalf("sync: %v\n%s", err, stderr.String())
			}
			out := stderr.String()
			count := func(side string) int64 {
				return int64(strings.Count(out, `"msg":"trace: `+side+` `) - strings.Count(out, `"msg":"trace: `+side+` line"`))
			}
			crmLines, davLines, imapLines := count("crm"), count("carddav")+count("caldav"), count("imap")
			if crmLines != w.crmN.Load() || davLines != w.davN.Load() || imapLines != w.imapN.Load() || crmLines == 0 || davLines == 0 || imapLines == 0 {
				t.Errorf("trace lines crm %d, dav %d, imap %d; requests crm %d, dav %d, imap commands %d\n%s",
					crmLines, davLines, imapLines, w.crmN.Load(), w.davN.Load(), w.imapN.Load(), out)
			}
			for _, want := range []string{`"status":200`, `"status":207`, `"command":"SELECT"`, `"mailbox":"INBOX"`, `"bytes_in":`, `"sync_token":`} {
				if !strings.Contains(out, want) {
					t.Errorf("the trace lacks %s", want)
				}
			}
			if args[0] == "--trace-bodies" && (!strings.Contains(out, `"response_body":`) || !strings.Contains(out, `"trace: imap line"`)) {
				t.Errorf("--trace-bodies traced no bodies")
			}
			w.assertNoSecrets(t, out+stdout.String())
		})
	}
}
