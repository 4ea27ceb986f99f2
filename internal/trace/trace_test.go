package trace

import (
	"bytes"
	"encoding/base64"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func traceLogger(buf *bytes.Buffer, r *Redactor) *slog.Logger {
	return slog.New(slog.NewTextHandler(r.Writer(buf), &slog.HandlerOptions{Level: LevelTrace, ReplaceAttr: ReplaceAttr}))
}

// TestTransport_oneLinePerExchangeNoSecrets: each request gives one line
// with method, URL, status, ETag, sync-token and bytes; the Authorization
// header, a cookie, URL user info and a token parameter never appear, not
// even with bodies on.
func TestTransport_oneLinePerExchangeNoSecrets(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("ETag", `"e1"`)
		w.Header().Set("Set-Cookie", "session=cookiesecret")
		w.WriteHeader(207)
		io.WriteString(w, `<d:multistatus>`+string(body)+`<d:sync-token>http://x/sync/42</d:sync-token></d:multistatus>`)
	}))
	defer srv.Close()
	var buf bytes.Buffer
	red := &Redactor{}
	red.Add("hunter22", "tok-secret")
	hc := Client(nil, Options{Logger: traceLogger(&buf, red), Side: "carddav", Bodies: true, Redactor: red})
	for i := 0; i < 3; i++ {
		req, _ := http.NewRequest("REPORT", strings.Replace(srv.URL, "http://", "http://alice:hunter22@", 1)+"/book/?token=tok-secret", strings.NewReader(`<sync-token>old-7</sync-token>password hunter22`))
		req.SetBasicAuth("alice", "hunter22")
		req.Header.Set("Cookie", "session=cookiesecret")
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	out := buf.String()
	if n := strings.Count(out, "trace: carddav REPORT"); n != 3 {
		t.Errorf("%d lines for 3 exchanges:\n%s", n, out)
	}
	for _, want := range []string{"status=207", `etag="\"e1\""`, "sync_token=http://x/sync/42", "sync_token_sent=old-7", "bytes_in=", "duration=", "level=TRACE"} {
		if !strings.Contains(out, want) {
			t.Errorf("trace lacks %s:\n%s", want, out)
		}
	}
	for _, secret := range []string{"hunter22", "tok-secret", "cookiesecret", base64.StdEncoding.EncodeToString([]byte("alice:hunter22"))} {
		if strings.Contains(out, secret) {
			t.Errorf("trace contains the secret %q:\n%s", secret, out)
		}
	}
}

// TestTransport_silentBelowTrace: at debug nothing is traced.
func TestTransport_silentBelowTrace(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	resp, err := Client(nil, Options{Logger: log, Side: "crm"}).Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if buf.Len() != 0 {
		t.Errorf("traced at debug: %s", buf.String())
	}
}

// TestIMAPWriter_redactsLoginAndAuthenticate feeds a raw session: one line
// per command with mailbox, status and MODSEQ, and neither the LOGIN
// password nor the AUTHENTICATE response anywhere, with bodies on.
func TestIMAPWriter_redactsLoginAndAuthenticate(t *testing.T) {
	var buf bytes.Buffer
	red := &Redactor{}
	w := NewIMAPWriter(Options{Logger: traceLogger(&buf, red), Side: "imap", Bodies: true, Redactor: red})
	plain := base64.StdEncoding.EncodeToString([]byte("\x00alice\x00imapsecret"))
	for _, chunk := range []string{
		"* OK ready\r\n",
		"T1 LOGIN alice imapsecret\r\n",
		"T1 OK Logged in\r\n",
		"T2 AUTHENTICATE PLAIN\r\n", "+ \r\n", plain + "\r\n", "T2 OK done\r\n",
		"T3 AUTHENTICATE PLAIN " + plain + "\r\n", "T3 NO [AUTHENTICATIONFAILED] bad\r\n",
		"T4 SELECT \"Sent Items\"\r\n", "* 3 EXISTS\r\n* OK [HIGHESTMODSEQ 91",
		"T5 NOOP\r\n", // a client command in the middle of a server line
		"7] ok\r\nT4 OK [READ-WRITE] Select completed\r\n",
		"T5 OK NOOP done\r\n",
		"T6 OK [CLOSED] answer teed before its command\r\n", "T6 UNSELECT\r\n",
	} {
		w.Write([]byte(chunk))
	}
	out := buf.String()
	for _, want := range []string{"command=LOGIN", "command=AUTHENTICATE", `mailbox="Sent Items"`, "modseq=917", "command=NOOP", "status=NO", "command=UNSELECT"} {
		if !strings.Contains(out, want) {
			t.Errorf("trace lacks %s:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "msg=\"trace: imap SELECT\""); n != 1 {
		t.Errorf("%d SELECT lines:\n%s", n, out)
	}
	for _, secret := range []string{"imapsecret", plain} {
		if strings.Contains(out, secret) {
			t.Errorf("trace contains the secret %q:\n%s", secret, out)
		}
	}
}

// TestParseLevel_namesAndVerbose: the five names, an unknown one named in
// the error, and -v steps.
func TestParseLevel_namesAndVerbose(t *testing.T) {
	for _, name := range Levels {
		l, err := ParseLevel(name)
		if err != nil || LevelName(l) != name {
			t.Errorf("ParseLevel(%q) = %v, %v", name, l, err)
		}
	}
	if _, err := ParseLevel("loud"); err == nil || !strings.Contains(err.Error(), `"loud"`) {
		t.Errorf("ParseLevel(loud) = %v", err)
	}
	if got := Raise(slog.LevelInfo, 1); got != slog.LevelDebug {
		t.Errorf("info -v = %v", got)
	}
	if got := Raise(slog.LevelInfo, 5); got != LevelTrace {
		t.Errorf("info -vvvvv = %v", got)
	}
}
