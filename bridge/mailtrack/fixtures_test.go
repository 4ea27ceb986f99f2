package mailtrack

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pimbridge/pimbridge/crm"
)

// TestTracker_Fixtures tracks every message of testdata (real clients,
// odd charsets, malformed headers): each becomes a CRM email with
// best-effort fields or a sync error naming it; nothing crashes.
func TestTracker_Fixtures(t *testing.T) {
	files, err := filepath.Glob("testdata/*.eml")
	if err != nil || len(files) == 0 {
		t.Fatalf("fixtures: %v (%d)", err, len(files))
	}
	forEachServer(t, func(t *testing.T, e *env) {
		c := e.dial(t)
		tr := e.tracker(t, "a.db", nil)
		keys := map[string]string{}
		for _, f := range files {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if e.name == "cyrus" {
				// Cyrus refuses bare LFs and some broken headers on
				// APPEND: its mailboxes never hold such a message.
				raw = bytes.ReplaceAll(bytes.ReplaceAll(raw, []byte("\r\n"), []byte("\n")), []byte("\n"), []byte("\r\n"))
				if _, _, err := c.Append(testCtx(t), "INBOX", []string{DefaultKeyword}, time.Time{}, raw); err != nil {
					t.Logf("cyrus refuses %s: %v", filepath.Base(f), err)
				}
				continue
			}
			appendMail(t, c, "INBOX", raw, DefaultKeyword)
		}
		st := cycle(t, tr)
		cycle(t, tr)
		for _, m := range mustAll(t, c) {
			keys[messageKey(m.MessageID, m.Header)] = m.MessageID
		}
		errs, err := tr.opts.Cache.SyncErrors(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, se := range errs {
			if !strings.Contains(se.Item, "INBOX;UIDVALIDITY=") {
				t.Errorf("sync error does not name the message: %+v", se)
			}
			t.Logf("sync error: %s: %s", se.Item, se.Message)
		}
		emails := e.allEmails(t)
		if got := len(emails) + len(errs); got != len(keys) {
			t.Errorf("emails %d + sync errors %d = %d, want %d messages (%+v)", len(emails), len(errs), got, len(keys), st)
		}
		for _, r := range emails {
			full, err := e.crm.Alice.Client.Get(context.Background(), crm.EntityEmail, r.ID)
			if err != nil {
				t.Fatal(err)
			}
			if s, _ := full.Attrs["subject"].(string); s == "" {
				t.Logf("email %v has no subject (message-id %v)", r.ID, full.Attrs["messageid"])
			}
		}
		t.Logf("%s: %d messages -> %d emails, %d sync errors", e.name, len(keys), len(emails), len(errs))
	})
}

// FuzzBestEffort: the fallback mapping never panics and yields a record
// the CRM's email entity accepts; message keys never panic.
func FuzzBestEffort(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.eml")
	for _, p := range files {
		if raw, err := os.ReadFile(p); err == nil {
			f.Add(raw)
		}
	}
	f.Add([]byte("Subject: =?x-unknown?q?a?=\r\nMessage-ID: <a@b>\r\n\r\n\xff"))
	e, _ := crm.Builtin().Entity(crm.EntityEmail)
	f.Fuzz(func(t *testing.T, raw []byte) {
		em := bestEffort(raw, false)
		if _, err := e.MarshalRecord(em.Record); err != nil {
			t.Fatalf("MarshalRecord(bestEffort) = %v", err)
		}
		_ = messageKey(string(raw), raw)
		_ = NormalizeMessageID(string(raw))
	})
}
