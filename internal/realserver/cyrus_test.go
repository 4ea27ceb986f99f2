package realserver

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestCyrus(t *testing.T) {
	start := time.Now()
	s := Cyrus(t)
	t.Logf("cyrus up in %v", time.Since(start))
	t.Run("imap", func(t *testing.T) {
		got := strings.ToLower(strings.Join(rawSession(t, s.IMAPAddr, s.User, s.Password), "\n"))
		for _, w := range []string{"a ok", `"." inbox`, `\sent) "." inbox.sent`, `\drafts) "." inbox.drafts`, "b ok"} {
			if !strings.Contains(got, w) {
				t.Fatalf("session = %q, want it to contain %q (case-insensitively: Cyrus writes \\sent)\nlog:\n%s", got, w, s.Log())
			}
		}
	})
	t.Run("caldav default calendar takes events and tasks", func(t *testing.T) {
		req, _ := http.NewRequest("PROPFIND", s.URL+s.CalendarPath(), strings.NewReader(`<?xml version="1.0"?>
<propfind xmlns="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><prop><C:supported-calendar-component-set/></prop></propfind>`))
		req.Header.Set("Depth", "0")
		req.Header.Set("Content-Type", "application/xml")
		req.SetBasicAuth(s.User, s.Password)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		for _, w := range []string{`name="VEVENT"`, `name="VTODO"`} {
			if !strings.Contains(string(b), w) {
				t.Fatalf("PROPFIND %s = %s %s, want %s", s.CalendarPath(), resp.Status, b, w)
			}
		}
	})
}
