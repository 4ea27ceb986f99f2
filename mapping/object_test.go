package mapping

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pimbridge/pimbridge/crm"
)

func TestInspect_CategoriesFoldedGroupedEscaped(t *testing.T) {
	card := []byte("BEGIN:VCARD\r\nVERSION:3.0\r\nFN:A\r\nitem1.CATEGORIES:Friends,C\r\n RM\r\nCATEGORIES:Contoso\\, Ltd\r\nREV:20260102T030405Z\r\nEND:VCARD\r\n")
	info, err := Inspect(card)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(info.Categories, "|"), "Friends|CRM|Contoso, Ltd"; got != want {
		t.Errorf("Categories = %q, want %q", got, want)
	}
	if !info.HasCategory("crm") || !info.HasCategory("contoso, ltd") {
		t.Errorf("HasCategory misses a category of %q", info.Categories)
	}
	if info.HasCategory("Work") || info.HasCategory("Contoso") {
		t.Errorf("HasCategory finds a category not in %q", info.Categories)
	}
	if want := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC); !info.Modified.Equal(want) {
		t.Errorf("Modified = %v, want REV %v", info.Modified, want)
	}
}

// A VTIMEZONE's LAST-MODIFIED is when the zone's rules changed, not the
// event: taking it (it comes first in the object) made a phone edit look
// years old, so the CRM side won every field changed on both sides.
func TestInspect_ModifiedIsTheEventsNotTheTimeZones(t *testing.T) {
	raw, err := os.ReadFile("testdata/fixtures/ical/apple-ical2-exdate-long-vtimezone.ics")
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(raw), "DTSTAMP:20051209T055346Z", "DTSTAMP:20051209T055346Z\r\nLAST-MODIFIED:20261204T101500Z", 1)
	if edited == string(raw) {
		t.Fatal("fixture changed: no DTSTAMP line to follow")
	}
	info, err := Inspect([]byte(edited))
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2026, 12, 4, 10, 15, 0, 0, time.UTC); !info.Modified.Equal(want) {
		t.Errorf("Modified = %v, want the VEVENT's LAST-MODIFIED %v (the VTIMEZONE's is 2005-12-09)", info.Modified, want)
	}
}

func TestInspect_ModifiedLatestComponentThenDTSTAMP(t *testing.T) {
	cal := func(body string) []byte {
		return []byte("BEGIN:VCALENDAR\r\nVERSION:2.0\r\n" + body + "END:VCALENDAR\r\n")
	}
	tests := []struct {
		name, body string
		want       time.Time
	}{
		{"override edited later", "BEGIN:VEVENT\r\nUID:a\r\nDTSTAMP:20260101T000000Z\r\nLAST-MODIFIED:20260201T000000Z\r\nEND:VEVENT\r\nBEGIN:VEVENT\r\nUID:a\r\nRECURRENCE-ID:20260301T090000Z\r\nLAST-MODIFIED:20260305T000000Z\r\nEND:VEVENT\r\n", time.Date(2026, 3, 5, 0, 0, 0, 0, time.UTC)},
		{"LAST-MODIFIED before a later DTSTAMP", "BEGIN:VTODO\r\nUID:t\r\nDTSTAMP:20260601T000000Z\r\nLAST-MODIFIED:20260201T000000Z\r\nEND:VTODO\r\n", time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)},
		{"DTSTAMP only", "BEGIN:VTODO\r\nUID:t\r\nDTSTAMP:20260601T000000Z\r\nEND:VTODO\r\n", time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)},
		{"alarm's stamp ignored", "BEGIN:VTODO\r\nUID:t\r\nDTSTAMP:20260601T000000Z\r\nBEGIN:VALARM\r\nACTION:DISPLAY\r\nLAST-MODIFIED:20270101T000000Z\r\nEND:VALARM\r\nEND:VTODO\r\n", time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)},
		{"none", "BEGIN:VTODO\r\nUID:t\r\nDTSTAMP:garbage\r\nEND:VTODO\r\n", time.Time{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			info, err := Inspect(cal(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if !info.Modified.Equal(tc.want) {
				t.Errorf("Modified = %v, want %v", info.Modified, tc.want)
			}
		})
	}
}

func TestInspect_MalformedIsAnError(t *testing.T) {
	for _, raw := range []string{"", "no object here", "BEGIN:VEVENT\r\nEND:VTODO\r\n"} {
		if _, err := Inspect([]byte(raw)); err == nil {
			t.Errorf("Inspect(%q) = nil error", raw)
		}
	}
}

func TestNew_CategoriesOption(t *testing.T) {
	opts := &Options{Categories: []string{"CRM, Inc", "Work"}}
	start := time.Date(2027, 1, 5, 9, 0, 0, 0, time.UTC)
	objs := map[string]func() ([]byte, error){
		"vcard": func() ([]byte, error) {
			return NewVCard(crm.Record{Entity: crm.EntityContact, ID: crm.NewID(), Attrs: map[string]any{"lastname": "Lovelace"}}, opts)
		},
		"vevent": func() ([]byte, error) {
			return NewICal(crm.Record{Entity: crm.EntityAppointment, ID: crm.NewID(), Attrs: map[string]any{"subject": "Review", "scheduledstart": start}}, opts)
		},
		"vtodo": func() ([]byte, error) {
			return NewICal(crm.Record{Entity: crm.EntityTask, ID: crm.NewID(), Attrs: map[string]any{"subject": "Call"}}, opts)
		},
	}
	for name, mk := range objs {
		t.Run(name, func(t *testing.T) {
			data, err := mk()
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(data), "CATEGORIES:CRM\\, Inc,Work\r\n") {
				t.Errorf("no escaped CATEGORIES line in\n%s", data)
			}
			info, err := Inspect(data)
			if err != nil {
				t.Fatal(err)
			}
			if !info.HasCategory("CRM, Inc") || !info.HasCategory("work") || len(info.Categories) != 2 {
				t.Errorf("Categories read back = %q", info.Categories)
			}
		})
	}
	data, err := NewVCard(crm.Record{Entity: crm.EntityContact, Attrs: map[string]any{"lastname": "L"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), "CATEGORIES") {
		t.Errorf("nil options wrote CATEGORIES:\n%s", data)
	}
}
