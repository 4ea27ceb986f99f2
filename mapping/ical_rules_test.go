package mapping

import (
	"strings"
	"testing"
	"time"

	"github.com/pimbridge/pimbridge/crm"
)

// TestDuration_RFC5545: DURATION is [+/-] "P" (n "W" | [n "D"] ["T" [n "H"]
// [n "M"] [n "S"]]) (RFC 5545 3.3.6); hours, minutes and seconds only
// after T, days and weeks only before. Written durations use days and
// H/M/S, and read back to the same length.
func TestDuration_RFC5545(t *testing.T) {
	parse := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"PT90M", 90 * time.Minute, true},
		{"P1DT2H3M4S", 26*time.Hour + 3*time.Minute + 4*time.Second, true},
		{"P2W", 14 * 24 * time.Hour, true},
		{"p1d", 24 * time.Hour, true},
		{" +PT1H ", time.Hour, true},
		{"-PT15M", -15 * time.Minute, true},
		{"PT0S", 0, true},
		{"P", 0, false},
		{"PT", 0, false},
		{"P1", 0, false},
		{"1H", 0, false},
		{"P1H", 0, false},
		{"PT1D", 0, false},
		{"PTH", 0, false},
		{"P1Y", 0, false},
		{"PT1H30", 0, false},
	}
	for _, tc := range parse {
		got, ok := parseDuration(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseDuration(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
	format := []struct {
		d    time.Duration
		want string
	}{
		{0, "PT0S"},
		{45 * time.Second, "PT45S"},
		{90 * time.Minute, "PT1H30M"},
		{2 * time.Hour, "PT2H"},
		{24 * time.Hour, "P1D"},
		{49*time.Hour + 5*time.Second, "P2DT1H5S"},
		{26*time.Hour + 3*time.Minute, "P1DT2H3M"},
		{-15 * time.Minute, "-PT15M"},
	}
	for _, tc := range format {
		got := formatDuration(tc.d)
		if got != tc.want {
			t.Errorf("formatDuration(%v) = %q, want %q", tc.d, got, tc.want)
		}
		if back, ok := parseDuration(got); !ok || back != tc.d {
			t.Errorf("parseDuration(%q) = %v, %v; want %v", got, back, ok, tc.d)
		}
	}
}

// TestICalToCRM_seriesAndItems: every VEVENT and VTODO master is one
// record; an override whose master is present is part of the series, an
// orphan override (only the exception was shared) is mapped on its own; a
// calendar with only empty items is an error, and one that maps also
// reports the defects of the whole calendar on its first record.
func TestICalToCRM_seriesAndItems(t *testing.T) {
	raw := calWith(
		"BEGIN:VEVENT", "UID:s1", "RECURRENCE-ID:20260317T093000Z", "DTSTART:20260317T100000Z", "SUMMARY:Moved", "END:VEVENT",
		"BEGIN:VEVENT", "UID:s1", "DTSTART:20260310T093000Z", "RRULE:FREQ=WEEKLY", "SUMMARY:Series", "END:VEVENT",
		"BEGIN:VEVENT", "UID:orphan", "RECURRENCE-ID:20260401T093000Z", "DTSTART:20260401T093000Z", "SUMMARY:Orphan", "END:VEVENT",
		"BEGIN:VTODO", "UID:t1", "SUMMARY:Todo", "X-CRM-ENTITY:fax", "END:VTODO",
		"BEGIN:VJOURNAL", "UID:j1", "SUMMARY:Journal", "END:VJOURNAL")
	rs, err := ICalToCRM(raw, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range rs {
		got = append(got, r.Record.Entity+":"+r.Record.Attrs["subject"].(string)+":"+r.UID)
	}
	want := "appointment:Series:s1 appointment:Orphan:orphan fax:Todo:t1"
	if strings.Join(got, " ") != want {
		t.Errorf("records = %q, want %q", strings.Join(got, " "), want)
	}
	if rs[0].Record.Attrs["recurrencepattern"] != "RRULE:FREQ=WEEKLY" {
		t.Errorf("recurrencepattern = %v", rs[0].Record.Attrs["recurrencepattern"])
	}

	// Only empty items: an error.
	if _, err := ICalToCRM(calWith("BEGIN:VEVENT", "UID:e", "END:VEVENT"), nil); err == nil {
		t.Errorf("a calendar of empty items maps without error")
	}
	// An empty calendar maps to nothing, without error.
	if rs, err := ICalToCRM(calWith("X-WR-CALNAME:empty"), nil); err != nil || len(rs) != 0 {
		t.Errorf("empty calendar: %v %v", rs, err)
	}
	// A calendar-level defect (a line without ':') goes with the first record.
	rs, err = ICalToCRM(calWith("BEGIN:VEVENT", "UID:a", "SUMMARY:A", "BROKEN LINE", "END:VEVENT", "BEGIN:VEVENT", "UID:b", "SUMMARY:B", "END:VEVENT"), nil)
	if err != nil || len(rs) != 2 || !hasDefect(rs[0].Defects, DefectNoColon) || hasDefect(rs[1].Defects, DefectNoColon) {
		t.Errorf("defects: %v %+v", err, rs)
	}
}

// TestICalToCRM_parties: ORGANIZER and ATTENDEE values are mailto: URIs
// (RFC 5545 3.3.3; "MAILTO:" in any case, spaces inside removed as Novell
// GroupWise writes them) or the EMAIL parameter (RFC 7986 6.2); attendees
// with ROLE OPT- or NON-PARTICIPANT are optional, the others required; one
// without an address is skipped.
func TestICalToCRM_parties(t *testing.T) {
	raw := calWith("BEGIN:VEVENT", "UID:a", "DTSTART:20260310T093000Z", "SUMMARY:S",
		"ORGANIZER;CN=Boss:MAILTO:boss@example.com",
		"ATTENDEE;CN=Ann:mailto:ann @example.com",
		"ATTENDEE;ROLE=opt-participant;EMAIL=bob@example.com:urn:uuid:1234",
		"ATTENDEE;ROLE=NON-PARTICIPANT:mailto:room@example.com",
		"ATTENDEE;ROLE=CHAIR:mailt:x",
		"ATTENDEE:",
		"END:VEVENT")
	r := readICal(t, string(raw))
	org := r.Attrs["organizer"].([]crm.Party)
	if len(org) != 1 || org[0].Address != "boss@example.com" || org[0].Name != "Boss" {
		t.Errorf("organizer = %+v", org)
	}
	req := r.Attrs["requiredattendees"].([]crm.Party)
	if len(req) != 2 || req[0].Address != "ann@example.com" || req[0].Name != "Ann" || req[1].Address != "mailt:x" {
		t.Errorf("required = %+v", req)
	}
	opt := r.Attrs["optionalattendees"].([]crm.Party)
	if len(opt) != 2 || opt[0].Address != "bob@example.com" || opt[1].Address != "room@example.com" {
		t.Errorf("optional = %+v", opt)
	}
	// No attendees: the fields stay nil.
	r = readICal(t, string(calWith("BEGIN:VEVENT", "UID:a", "DTSTART:20260310T093000Z", "SUMMARY:S", "END:VEVENT")))
	if r.Attrs["requiredattendees"] != nil || r.Attrs["optionalattendees"] != nil || r.Attrs["organizer"] != nil {
		t.Errorf("parties of an event without any: %v %v %v", r.Attrs["requiredattendees"], r.Attrs["optionalattendees"], r.Attrs["organizer"])
	}
}

// TestPatchVCard_targets: with several cards, the one whose X-CRM-ID is
// the record's ID is patched, else the first that maps (empty cards are
// skipped); a change rewrites a parseable REV (RFC 6350 6.7.4) and adds
// X-CRM-ID; no change leaves the bytes alone.
func TestPatchVCard_targets(t *testing.T) {
	id := crm.NewID()
	raw := "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:empty\r\nEND:VCARD\r\n" +
		"BEGIN:VCARD\r\nVERSION:3.0\r\nN:One;A;;;\r\nFN:A One\r\nREV:20200101T000000Z\r\nEND:VCARD\r\n" +
		"BEGIN:VCARD\r\nVERSION:3.0\r\nN:Two;B;;;\r\nFN:B Two\r\nREV:garbage\r\nX-CRM-ID:" + id.String() + "\r\nEND:VCARD\r\n"
	out, err := PatchVCard([]byte(raw), crm.Record{Entity: crm.EntityContact, Attrs: map[string]any{"jobtitle": "Boss"}}, &Options{Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Replace(raw, "REV:20200101T000000Z\r\n", "REV:20260102T030405Z\r\nTITLE:Boss\r\n", 1)
	if string(out) != want {
		t.Errorf("without ID:\n%s\nwant\n%s", out, want)
	}
	out, err = PatchVCard([]byte(raw), crm.Record{ID: id, Entity: crm.EntityContact, Attrs: map[string]any{"jobtitle": "Boss"}}, &Options{Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "REV:garbage\r\nX-CRM-ID:"+id.String()+"\r\nTITLE:Boss\r\nEND:VCARD\r\n") || strings.Count(string(out), "TITLE") != 1 {
		t.Errorf("by ID:\n%s", out)
	}
	other := crm.NewID()
	out, _ = PatchVCard([]byte(raw), crm.Record{ID: other, Entity: crm.EntityContact, Attrs: map[string]any{"lastname": "One"}}, &Options{Now: fixedNow})
	if !strings.Contains(string(out), "FN:A One\r\nREV:20260102T030405Z\r\nX-CRM-ID:"+other.String()+"\r\nEND:VCARD") {
		t.Errorf("new ID on the first usable card:\n%s", out)
	}
	if out, _ := PatchVCard([]byte(raw), crm.Record{Entity: crm.EntityContact, Attrs: map[string]any{"lastname": "One"}}, nil); string(out) != raw {
		t.Errorf("no-change patch changed bytes:\n%s", out)
	}
	if _, err := NewVCard(crm.Record{Entity: crm.EntityTask}, nil); err == nil {
		t.Errorf("NewVCard of a task: no error")
	}
	if _, err := NewVCard(crm.Record{Attrs: map[string]any{"lastname": "X"}}, nil); err != nil {
		t.Errorf("NewVCard without entity: %v", err)
	}
}
