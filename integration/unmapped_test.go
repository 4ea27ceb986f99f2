package integration

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/pimbridge/pimbridge/bridge"
	"github.com/pimbridge/pimbridge/crm"
)

// recCol records the bodies the bridge PUTs.
type recCol struct {
	bridge.Collection
	mu   sync.Mutex
	puts map[string][]byte
}

func (r *recCol) Update(ctx context.Context, href, etag string, data []byte) (string, error) {
	r.mu.Lock()
	r.puts[href] = append([]byte(nil), data...)
	r.mu.Unlock()
	return r.Collection.Update(ctx, href, etag, data)
}

func (r *recCol) Missing(ctx context.Context, hrefs []string) ([]string, error) {
	return r.Collection.(bridge.Verifier).Missing(ctx, hrefs)
}

// physicalLines splits raw bytes into lines (folding kept).
func physicalLines(data []byte) []string {
	return strings.Split(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n")
}

func propName(line string) string {
	n := line
	if i := strings.IndexAny(n, ":;"); i >= 0 {
		n = n[:i]
	}
	if i := strings.LastIndexByte(n, '.'); i >= 0 {
		n = n[i+1:]
	}
	return strings.ToUpper(n)
}

const recurringEvent = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Test Client//EN\r\nBEGIN:VEVENT\r\nUID:series-1\r\nDTSTAMP:20260101T000000Z\r\n" +
	"DTSTART:20270105T090000Z\r\nDTEND:20270105T100000Z\r\nSUMMARY:Standup\r\nRRULE:FREQ=WEEKLY;COUNT=10\r\nEXDATE:20270119T090000Z\r\n" +
	"CATEGORIES:Team,Daily\r\nX-CLIENT-COLOR:#ff0000\r\nBEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:-PT10M\r\nDESCRIPTION:Reminder\r\nEND:VALARM\r\nEND:VEVENT\r\n" +
	"BEGIN:VEVENT\r\nUID:series-1\r\nDTSTAMP:20260101T000000Z\r\nRECURRENCE-ID:20270112T090000Z\r\nDTSTART:20270112T100000Z\r\nDTEND:20270112T110000Z\r\n" +
	"SUMMARY:Standup (moved)\r\nLOCATION:Room 2\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"

// Unmapped properties written by real clients survive a full
// round trip through the bridge: the PUT body keeps every unmapped line
// byte for byte, and after the server's own round trip the object holds the
// same set of unmapped content lines.
func TestUnmapped_SurviveRoundTrip(t *testing.T) {
	cases := []struct {
		name, file string
		data       string
		rename     string // an e-mail address, so that duplicate detection does not join two fixtures of one person
		contact    bool
		edit       map[string]any // a CRM edit of one mapped field
		changes    []string       // properties the edit may rewrite
	}{
		{name: "apple-ios-photo-itemgroups-xabadr", file: "vcard/apple-ios5-3.0-photo-itemgroups-xabadr.vcf", contact: true,
			edit: map[string]any{"jobtitle": "Chief Counter"}, changes: []string{"TITLE", "REV"}},
		{name: "google-xablabel-anniversary", file: "vcard/google-gmail-3.0-xablabel-anniversary.vcf", contact: true, rename: "john.doe2@ibm.com",
			edit: map[string]any{"jobtitle": "Chief Counter"}, changes: []string{"TITLE", "REV"}},
		{name: "davx5-impp-categories-groups", file: "vcard/davx5-testsuite-3.0-allfields-custom-groups-impp.vcf", contact: true,
			edit: map[string]any{"jobtitle": "Chief Counter"}, changes: []string{"TITLE", "REV"}},
		{name: "thunderbird-alarms-x-moz", file: "ical/mozilla-thunderbird-valarm-snoozed-x-moz.ics",
			edit: map[string]any{"location": "Room 9"}, changes: []string{"LOCATION", "DTSTAMP", "LAST-MODIFIED", "SEQUENCE"}},
		{name: "recurrence-exception-alarm", data: recurringEvent,
			edit: map[string]any{"location": "Room 9"}, changes: []string{"DTSTAMP", "LAST-MODIFIED", "SEQUENCE"}},
	}
	eachDAV(t, allDAV, func(t *testing.T, h *harness) {
		rec := map[string]*recCol{}
		var mu sync.Mutex
		h.WrapCol = func(c bridge.Collection) bridge.Collection {
			r := &recCol{Collection: c, puts: map[string][]byte{}}
			mu.Lock()
			rec[c.Href()] = r
			mu.Unlock()
			return r
		}
		b := h.alice()
		for _, tc := range cases {
			func() {
				data := []byte(tc.data)
				if tc.file != "" {
					data = fixture(t, tc.file)
				}
				// Real clients send CRLF; some fixtures were stored with LF.
				s := strings.ReplaceAll(strings.ReplaceAll(string(data), "\r", ""), "\n", "\r\n")
				if tc.rename != "" {
					s = strings.ReplaceAll(s, "john.doe@ibm.com", tc.rename)
				}
				if !strings.Contains(s, "\nUID:") && !strings.Contains(s, "\r\nUID") {
					s = strings.Replace(s, "VERSION:3.0\r\n", "VERSION:3.0\r\nUID:"+tc.name+"\r\n", 1)
				}
				col, entity, ext := h.Cal, crm.EntityAppointment, ".ics"
				if tc.contact {
					col, entity, ext = h.Book, crm.EntityContact, ".vcf"
				}
				id, href := h.tracked(b, col, entity, tc.name+ext, s)
				before, _, _ := h.pimGet(col, href)
				h.update(h.CRM.Alice, entity, id, tc.edit)
				h.sync(b)
				r := rec[col.Href()]
				r.mu.Lock()
				body := r.puts[href]
				r.mu.Unlock()
				if body == nil {
					t.Fatalf("no PUT of %s after the CRM edit", href)
				}
				checkKept(t, tc.name+": PUT body", physicalLines(before), physicalLines(body), tc.changes)
				after, _, _ := h.pimGet(col, href)
				checkKept(t, tc.name+": after the server's round trip", contentLinesOf(before), contentLinesOf(after), tc.changes)
				for k, v := range tc.edit {
					if got, _ := h.get(entity, id); got.Attrs[k] != v {
						t.Errorf("%s: CRM %s = %v, want %v", tc.name, k, got.Attrs[k], v)
					}
				}
			}()
		}
	})
}

// checkKept reports lines of before (except those of the changed
// properties and their continuation lines) that are missing from after.
func checkKept(t *testing.T, what string, before, after []string, changed []string) {
	t.Helper()
	have := map[string]int{}
	for _, l := range after {
		have[l]++
	}
	skip := false
	missing := 0
	for _, l := range before {
		if strings.HasPrefix(l, " ") || strings.HasPrefix(l, "\t") {
			if skip {
				continue
			}
		} else {
			skip = false
			for _, c := range changed {
				if propName(l) == c {
					skip = true
				}
			}
			if skip || l == "" {
				continue
			}
		}
		if have[l] == 0 {
			missing++
			if missing <= 5 {
				t.Errorf("%s lost line %q", what, l)
			}
			continue
		}
		have[l]--
	}
	if missing > 5 {
		t.Errorf("%s lost %d lines in all", what, missing)
	}
}
