package mapping

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pimbridge/pimbridge/crm"
)

// calWith wraps components in a VCALENDAR (CRLF line ends).
func calWith(lines ...string) []byte {
	return []byte("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\n" + strings.Join(lines, "\r\n") + "\r\nEND:VCALENDAR\r\n")
}

func mustPatchICal(t *testing.T, raw []byte, rec crm.Record) string {
	t.Helper()
	out, err := PatchICal(raw, rec, &Options{Now: fixedNow})
	if err != nil {
		t.Fatalf("PatchICal: %v\n%s", err, raw)
	}
	return string(out)
}

func readICal(t *testing.T, raw string) crm.Record {
	t.Helper()
	rs, err := ICalToCRM([]byte(raw), nil)
	if err != nil || len(rs) == 0 {
		t.Fatalf("ICalToCRM: %v (%d results)\n%s", err, len(rs), raw)
	}
	return rs[0].Record
}

func countLines(s, prefix string) int {
	n := 0
	for _, l := range strings.Split(s, "\r\n") {
		if strings.HasPrefix(l, prefix) {
			n++
		}
	}
	return n
}

// TestNewICal_entityMarker: a new VTODO says which CRM activity it is
// (X-CRM-ENTITY), a new VEVENT is always an appointment and carries none.
func TestNewICal_entityMarker(t *testing.T) {
	start := time.Date(2026, 3, 10, 9, 30, 0, 0, time.UTC)
	for entity, want := range map[string]string{crm.EntityAppointment: "", crm.EntityTask: "X-CRM-ENTITY:task\r\n", crm.EntityPhoneCall: "X-CRM-ENTITY:phonecall\r\n"} {
		out, err := NewICal(crm.Record{Entity: entity, Attrs: map[string]any{"subject": "s", "scheduledstart": start}}, &Options{Now: fixedNow})
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Count(string(out), "X-CRM-ENTITY:"); got != strings.Count(want, "X-CRM-ENTITY:") || !strings.Contains(string(out), want) {
			t.Errorf("%s: X-CRM-ENTITY lines = %d, want %q:\n%s", entity, got, want, out)
		}
	}
}

// TestPatchICal_targetsTheMaster: a recurrence override (RECURRENCE-ID,
// RFC 5545 3.8.4.4) is never the item patched, even when it comes first.
func TestPatchICal_targetsTheMaster(t *testing.T) {
	raw := calWith(
		"BEGIN:VEVENT", "UID:s1", "DTSTAMP:20260101T000000Z", "RECURRENCE-ID:20260317T093000Z", "DTSTART:20260317T100000Z", "SUMMARY:Moved one", "END:VEVENT",
		"BEGIN:VEVENT", "UID:s1", "DTSTAMP:20260101T000000Z", "DTSTART:20260310T093000Z", "RRULE:FREQ=WEEKLY", "SUMMARY:Series", "END:VEVENT")
	out := mustPatchICal(t, raw, crm.Record{Entity: crm.EntityAppointment, Attrs: map[string]any{"subject": "Renamed"}})
	if !strings.Contains(out, "SUMMARY:Moved one\r\n") || !strings.Contains(out, "SUMMARY:Renamed\r\n") || strings.Contains(out, "SUMMARY:Series") {
		t.Errorf("override patched instead of the master:\n%s", out)
	}
}

// TestPatchICal_targetsByCRMID: with several items, the one whose X-CRM-ID
// is the record's ID is patched, even when it is not the first.
func TestPatchICal_targetsByCRMID(t *testing.T) {
	id := crm.NewID()
	raw := calWith(
		"BEGIN:VTODO", "UID:a", "SUMMARY:First", "X-CRM-ID:"+crm.NewID().String(), "END:VTODO",
		"BEGIN:VTODO", "UID:b", "SUMMARY:Second", "X-CRM-ID:"+strings.ToUpper(id.String()), "END:VTODO",
		"BEGIN:VTODO", "UID:c", "SUMMARY:Third", "END:VTODO")
	out := mustPatchICal(t, raw, crm.Record{ID: id, Entity: crm.EntityTask, Attrs: map[string]any{"subject": "Renamed"}})
	if !strings.Contains(out, "SUMMARY:First\r\n") || !strings.Contains(out, "SUMMARY:Third\r\n") || !strings.Contains(out, "SUMMARY:Renamed\r\n") {
		t.Errorf("wrong item patched:\n%s", out)
	}
	if strings.Count(out, "X-CRM-ID:") != 2 {
		t.Errorf("X-CRM-ID rewritten:\n%s", out)
	}
}

// TestPatchICal_skipsEmptyItems: without an X-CRM-ID match the item patched
// is the first one ICalToCRM maps; an empty item before it is left alone.
// Without an ID no X-CRM-ID line is added.
func TestPatchICal_skipsEmptyItems(t *testing.T) {
	raw := calWith(
		"BEGIN:VTODO", "UID:empty", "END:VTODO",
		"BEGIN:VTODO", "UID:b", "SUMMARY:Second", "END:VTODO",
		"BEGIN:VTODO", "UID:c", "SUMMARY:Third", "END:VTODO")
	out := mustPatchICal(t, raw, crm.Record{Entity: crm.EntityTask, Attrs: map[string]any{"subject": "Renamed"}})
	want := string(calWith(
		"BEGIN:VTODO", "UID:empty", "END:VTODO",
		"BEGIN:VTODO", "UID:b", "SUMMARY:Renamed", "END:VTODO",
		"BEGIN:VTODO", "UID:c", "SUMMARY:Third", "END:VTODO"))
	if out != want {
		t.Errorf("got\n%s\nwant\n%s", out, want)
	}
	// Only empty items: the first one is patched.
	raw = calWith("BEGIN:VTODO", "UID:e1", "END:VTODO", "BEGIN:VTODO", "UID:e2", "END:VTODO")
	out = mustPatchICal(t, raw, crm.Record{Entity: crm.EntityTask, Attrs: map[string]any{"subject": "New"}})
	if !strings.Contains(out, "UID:e1\r\nSUMMARY:New\r\nEND:VTODO") {
		t.Errorf("first empty item not patched:\n%s", out)
	}
}

// TestPatchICal_entityFromRecord: a VTODO patched with a record of another
// activity type becomes that type; a record without an entity keeps the
// item's type.
func TestPatchICal_entityFromRecord(t *testing.T) {
	raw := calWith("BEGIN:VTODO", "UID:a", "SUMMARY:Call", "X-CRM-ENTITY:phonecall", "END:VTODO")
	out := mustPatchICal(t, raw, crm.Record{Attrs: map[string]any{"subject": "Call back"}})
	if r := readICal(t, out); r.Entity != crm.EntityPhoneCall || r.Attrs["subject"] != "Call back" {
		t.Errorf("entity %q subject %v:\n%s", r.Entity, r.Attrs["subject"], out)
	}
	out = mustPatchICal(t, raw, crm.Record{Entity: crm.EntityLetter, Attrs: map[string]any{}})
	if r := readICal(t, out); r.Entity != crm.EntityLetter || countLines(out, "X-CRM-ENTITY:") != 1 {
		t.Errorf("entity %q:\n%s", r.Entity, out)
	}
	// Unchanged entity, unchanged bytes (no DTSTAMP bump for a no-op).
	raw = calWith("BEGIN:VTODO", "UID:a", "DTSTAMP:20250101T000000Z", "SUMMARY:Call", "X-CRM-ENTITY:phonecall", "END:VTODO")
	if out := mustPatchICal(t, raw, crm.Record{Entity: crm.EntityPhoneCall, Attrs: map[string]any{"subject": "Call"}}); out != string(raw) {
		t.Errorf("no-op patch changed bytes:\n%s", out)
	}
}

// TestPatchICal_stampsAndSequence: a change rewrites DTSTAMP and
// LAST-MODIFIED (RFC 5545 3.8.7.2/3) with the current time when present and
// parseable; SEQUENCE (3.8.7.4) grows by one only when the timing or
// recurrence changes. A stamp that does not parse is left as written.
func TestPatchICal_stampsAndSequence(t *testing.T) {
	raw := calWith("BEGIN:VEVENT", "UID:a", "DTSTAMP:20250101T000000Z", "LAST-MODIFIED:20250101T000000Z", "SEQUENCE:4",
		"DTSTART:20260310T093000Z", "DTEND:20260310T103000Z", "SUMMARY:S", "END:VEVENT")
	now := fixedNow().Format("20060102T150405Z")
	out := mustPatchICal(t, raw, crm.Record{Entity: crm.EntityAppointment, Attrs: map[string]any{"subject": "T"}})
	if !strings.Contains(out, "DTSTAMP:"+now) || !strings.Contains(out, "LAST-MODIFIED:"+now) || !strings.Contains(out, "SEQUENCE:4\r\n") {
		t.Errorf("subject change: stamps/sequence wrong:\n%s", out)
	}
	out = mustPatchICal(t, raw, crm.Record{Entity: crm.EntityAppointment, Attrs: map[string]any{"scheduledstart": time.Date(2026, 3, 10, 8, 0, 0, 0, time.UTC)}})
	if !strings.Contains(out, "SEQUENCE:5\r\n") || !strings.Contains(out, "DTSTAMP:"+now) {
		t.Errorf("time change: sequence not bumped:\n%s", out)
	}
	out = mustPatchICal(t, raw, crm.Record{Entity: crm.EntityAppointment, Attrs: map[string]any{"recurrencepattern": "RRULE:FREQ=DAILY;COUNT=3"}})
	if !strings.Contains(out, "SEQUENCE:5\r\n") {
		t.Errorf("recurrence change: sequence not bumped:\n%s", out)
	}
	bad := calWith("BEGIN:VEVENT", "UID:a", "DTSTAMP:yesterday", "DTSTART:20260310T093000Z", "SUMMARY:S", "END:VEVENT")
	out = mustPatchICal(t, bad, crm.Record{Entity: crm.EntityAppointment, Attrs: map[string]any{"subject": "T"}})
	if !strings.Contains(out, "DTSTAMP:yesterday\r\n") {
		t.Errorf("unparseable DTSTAMP rewritten:\n%s", out)
	}
}

// TestPatchICal_priorityCleared: a cleared CRM priority is written as the
// normal priority 5 (RFC 5545 3.8.1.9), not removed.
func TestPatchICal_priorityCleared(t *testing.T) {
	raw := calWith("BEGIN:VTODO", "UID:a", "SUMMARY:S", "PRIORITY:1", "END:VTODO")
	out := mustPatchICal(t, raw, crm.Record{Entity: crm.EntityTask, Attrs: map[string]any{"prioritycode": nil}})
	if !strings.Contains(out, "PRIORITY:5\r\n") {
		t.Errorf("cleared priority:\n%s", out)
	}
}

// TestPatchICal_taskDueAndReminder: a task's due time is DUE; setting it
// replaces a DURATION (DUE and DURATION exclude each other, RFC 5545
// 3.6.2); a due date written as DATE stays a DATE while the new due is a
// midnight and becomes a DATE-TIME otherwise; pimbridge's own reminder
// (X-CRM-REMINDER) follows the due time and is never duplicated; other
// alarms stay; clearing the due removes DUE and the reminder.
func TestPatchICal_taskDueAndReminder(t *testing.T) {
	raw := calWith("BEGIN:VTODO", "UID:a", "SUMMARY:Report", "DTSTART:20260310T090000Z", "DURATION:PT2H",
		"BEGIN:VALARM", "ACTION:AUDIO", "TRIGGER:-PT5M", "END:VALARM", "END:VTODO")
	due := time.Date(2026, 3, 12, 15, 0, 0, 0, time.UTC)
	out := mustPatchICal(t, raw, crm.Record{Entity: crm.EntityTask, Attrs: map[string]any{"scheduledend": due}})
	if strings.Contains(out, "DURATION:") || !strings.Contains(out, "DUE:20260312T150000Z\r\n") {
		t.Errorf("DUE/DURATION:\n%s", out)
	}
	if countLines(out, "X-CRM-REMINDER:TRUE") != 1 || !strings.Contains(out, "TRIGGER;VALUE=DATE-TIME:20260312T150000Z") || countLines(out, "ACTION:AUDIO") != 1 {
		t.Errorf("reminder:\n%s", out)
	}
	if !strings.Contains(out, "DESCRIPTION:Report\r\n") {
		t.Errorf("reminder text is not the subject:\n%s", out)
	}
	due2 := due.Add(24 * time.Hour)
	out2 := mustPatchICal(t, []byte(out), crm.Record{Entity: crm.EntityTask, Attrs: map[string]any{"scheduledend": due2}})
	if countLines(out2, "X-CRM-REMINDER:TRUE") != 1 || !strings.Contains(out2, "TRIGGER;VALUE=DATE-TIME:20260313T150000Z") || countLines(out2, "BEGIN:VALARM") != 2 {
		t.Errorf("moved due: reminder not replaced:\n%s", out2)
	}
	out3 := mustPatchICal(t, []byte(out2), crm.Record{Entity: crm.EntityTask, Attrs: map[string]any{"scheduledend": nil}})
	if strings.Contains(out3, "DUE") || strings.Contains(out3, "X-CRM-REMINDER") || countLines(out3, "ACTION:AUDIO") != 1 {
		t.Errorf("cleared due:\n%s", out3)
	}
	if r := readICal(t, out3); r.Attrs["scheduledend"] != nil {
		t.Errorf("scheduledend = %v after clearing", r.Attrs["scheduledend"])
	}

	// Reminder text without a subject.
	raw = calWith("BEGIN:VTODO", "UID:b", "DTSTART:20260310T090000Z", "END:VTODO")
	out = mustPatchICal(t, raw, crm.Record{Entity: crm.EntityTask, Attrs: map[string]any{"scheduledend": due}})
	if !strings.Contains(out, "DESCRIPTION:Reminder\r\n") {
		t.Errorf("reminder without subject:\n%s", out)
	}

	// All-day due (VALUE=DATE).
	raw = calWith("BEGIN:VTODO", "UID:c", "SUMMARY:S", "DTSTART;VALUE=DATE:20260310", "DUE;VALUE=DATE:20260311", "END:VTODO")
	out = mustPatchICal(t, raw, crm.Record{Entity: crm.EntityTask, Attrs: map[string]any{"scheduledend": time.Date(2026, 3, 14, 0, 0, 0, 0, time.UTC)}})
	if !strings.Contains(out, "DUE;VALUE=DATE:20260314\r\n") || strings.Contains(out, "X-CRM-REMINDER") {
		t.Errorf("all-day due:\n%s", out)
	}
	out = mustPatchICal(t, raw, crm.Record{Entity: crm.EntityTask, Attrs: map[string]any{"scheduledend": due}})
	if !strings.Contains(out, "DUE:20260312T150000Z\r\n") || !strings.Contains(out, "X-CRM-REMINDER") {
		t.Errorf("timed due on an all-day task:\n%s", out)
	}
	out = mustPatchICal(t, raw, crm.Record{Entity: crm.EntityTask, Attrs: map[string]any{"scheduledstart": time.Date(2026, 3, 9, 0, 0, 0, 0, time.UTC)}})
	if !strings.Contains(out, "DTSTART;VALUE=DATE:20260309\r\n") {
		t.Errorf("all-day start:\n%s", out)
	}
	out = mustPatchICal(t, raw, crm.Record{Entity: crm.EntityTask, Attrs: map[string]any{"scheduledstart": time.Date(2026, 3, 9, 8, 0, 0, 0, time.UTC)}})
	if !strings.Contains(out, "DTSTART:20260309T080000Z\r\n") {
		t.Errorf("timed start on an all-day task:\n%s", out)
	}
	// A timed task start stays timed even at midnight.
	raw = calWith("BEGIN:VTODO", "UID:d", "SUMMARY:S", "DTSTART:20260310T090000Z", "END:VTODO")
	out = mustPatchICal(t, raw, crm.Record{Entity: crm.EntityTask, Attrs: map[string]any{"scheduledstart": time.Date(2026, 3, 9, 0, 0, 0, 0, time.UTC)}})
	if !strings.Contains(out, "DTSTART:20260309T000000Z\r\n") {
		t.Errorf("timed start:\n%s", out)
	}
}

// TestPatchICal_eventDurationKept: an event written with DTSTART and
// DURATION (no DTEND) keeps that form when its end moves.
func TestPatchICal_eventDurationKept(t *testing.T) {
	raw := calWith("BEGIN:VEVENT", "UID:a", "DTSTART:20260310T090000Z", "DURATION:PT1H", "SUMMARY:S", "END:VEVENT")
	out := mustPatchICal(t, raw, crm.Record{Entity: crm.EntityAppointment, Attrs: map[string]any{"scheduledend": time.Date(2026, 3, 10, 10, 30, 0, 0, time.UTC)}})
	if !strings.Contains(out, "DURATION:PT1H30M\r\n") || strings.Contains(out, "DTEND") {
		t.Errorf("duration form lost:\n%s", out)
	}
	// With both (invalid, but written), DTEND is the one rewritten.
	raw = calWith("BEGIN:VEVENT", "UID:a", "DTSTART:20260310T090000Z", "DTEND:20260310T100000Z", "DURATION:PT1H", "SUMMARY:S", "END:VEVENT")
	out = mustPatchICal(t, raw, crm.Record{Entity: crm.EntityAppointment, Attrs: map[string]any{"scheduledend": time.Date(2026, 3, 10, 10, 30, 0, 0, time.UTC)}})
	if !strings.Contains(out, "DTEND:20260310T103000Z\r\n") || !strings.Contains(out, "DURATION:PT1H\r\n") {
		t.Errorf("DTEND not rewritten:\n%s", out)
	}
}

// TestPatchICal_allDayEvent: an event made all-day is written with DATE
// values, its end the day after the last day (RFC 5545 3.6.1: DTEND is
// exclusive).
func TestPatchICal_allDayEvent(t *testing.T) {
	raw := calWith("BEGIN:VEVENT", "UID:a", "DTSTART:20260310T093000Z", "DTEND:20260310T103000Z", "SUMMARY:S", "END:VEVENT")
	out := mustPatchICal(t, raw, crm.Record{Entity: crm.EntityAppointment, Attrs: map[string]any{"isalldayevent": true}})
	if !strings.Contains(out, "DTSTART;VALUE=DATE:20260310\r\n") || !strings.Contains(out, "DTEND;VALUE=DATE:20260311\r\n") {
		t.Errorf("all-day:\n%s", out)
	}
	out = mustPatchICal(t, raw, crm.Record{Entity: crm.EntityAppointment, Attrs: map[string]any{"isalldayevent": true, "scheduledend": time.Date(2026, 3, 12, 0, 0, 0, 0, time.UTC)}})
	if !strings.Contains(out, "DTEND;VALUE=DATE:20260312\r\n") {
		t.Errorf("all-day until midnight of the 12th:\n%s", out)
	}
	// The duration moves the end when the end itself does not change.
	out = mustPatchICal(t, raw, crm.Record{Entity: crm.EntityAppointment, Attrs: map[string]any{"scheduleddurationminutes": int64(90)}})
	if !strings.Contains(out, "DTEND:20260310T110000Z\r\n") {
		t.Errorf("duration 90:\n%s", out)
	}
}

// TestPatchICal_timeErrors: an appointment cannot lose its start, nor end
// before it starts; the error names the field.
func TestPatchICal_timeErrors(t *testing.T) {
	raw := calWith("BEGIN:VEVENT", "UID:a", "DTSTART:20260310T093000Z", "DTEND:20260310T103000Z", "SUMMARY:S", "END:VEVENT")
	for field, v := range map[string]any{"scheduledstart": nil, "scheduledend": time.Date(2026, 3, 10, 8, 0, 0, 0, time.UTC)} {
		_, err := PatchICal(raw, crm.Record{Entity: crm.EntityAppointment, Attrs: map[string]any{field: v}}, nil)
		var ae *crm.AttributeError
		if !errors.As(err, &ae) || ae.Attribute != field {
			t.Errorf("%s = %v: error %v, want an AttributeError naming it", field, v, err)
		}
	}
}

// TestPatchICal_organizer: a changed organizer rewrites the ORGANIZER line
// keeping its other parameters; a cleared one removes it; a new one is
// added.
func TestPatchICal_organizer(t *testing.T) {
	raw := calWith("BEGIN:VEVENT", "UID:a", "DTSTART:20260310T093000Z", "SUMMARY:S",
		"ORGANIZER;CN=Old;SENT-BY=\"mailto:sec@example.com\":mailto:old@example.com", "END:VEVENT")
	out := mustPatchICal(t, raw, crm.Record{Entity: crm.EntityAppointment, Attrs: map[string]any{"organizer": []crm.Party{{Address: "new@example.com", Name: "New"}}}})
	if !strings.Contains(out, "ORGANIZER;CN=New;SENT-BY=\"mailto:sec@example.com\":mailto:new@example.com\r\n") || countLines(out, "ORGANIZER") != 1 {
		t.Errorf("organizer changed:\n%s", out)
	}
	out = mustPatchICal(t, raw, crm.Record{Entity: crm.EntityAppointment, Attrs: map[string]any{"organizer": nil}})
	if strings.Contains(out, "ORGANIZER") {
		t.Errorf("organizer cleared:\n%s", out)
	}
	raw = calWith("BEGIN:VEVENT", "UID:a", "DTSTART:20260310T093000Z", "SUMMARY:S", "END:VEVENT")
	out = mustPatchICal(t, raw, crm.Record{Entity: crm.EntityAppointment, Attrs: map[string]any{"organizer": []crm.Party{{Address: "new@example.com"}}}})
	if !strings.Contains(out, "ORGANIZER:mailto:new@example.com\r\n") {
		t.Errorf("organizer added:\n%s", out)
	}
}

// TestPatchICal_attendees: attendees that stay keep their line (PARTSTAT,
// RSVP); a changed role or name rewrites it; removed ones go; new ones are
// added with their ROLE; an attendee known only by its CRM party (no address) is not written.
func TestPatchICal_attendees(t *testing.T) {
	raw := calWith("BEGIN:VEVENT", "UID:a", "DTSTART:20260310T093000Z", "SUMMARY:S",
		"ATTENDEE;ROLE=REQ-PARTICIPANT;PARTSTAT=ACCEPTED;CN=Ann:mailto:ann@example.com",
		"ATTENDEE;ROLE=OPT-PARTICIPANT;PARTSTAT=DECLINED:mailto:bob@example.com",
		"ATTENDEE;PARTSTAT=TENTATIVE;CN=Cy:mailto:cy@example.com",
		"ATTENDEE;ROLE=NON-PARTICIPANT:mailto:dee@example.com", "END:VEVENT")
	out := mustPatchICal(t, raw, crm.Record{Entity: crm.EntityAppointment, Attrs: map[string]any{
		"requiredattendees": []crm.Party{{Address: "ANN@example.com"}, {Address: "bob@example.com"}, {Address: "cy@example.com", Name: "Cyrus"}, {Party: &crm.Ref{Entity: crm.EntityContact, ID: crm.NewID()}}},
		"optionalattendees": []crm.Party{{Address: "dee@example.com"}, {Address: "eve@example.com", Name: "Eve"}},
	}})
	for _, want := range []string{
		"ATTENDEE;ROLE=REQ-PARTICIPANT;PARTSTAT=ACCEPTED;CN=Ann:mailto:ann@example.com\r\n",
		"ATTENDEE;ROLE=REQ-PARTICIPANT;PARTSTAT=DECLINED:mailto:bob@example.com\r\n",
		"ATTENDEE;PARTSTAT=TENTATIVE;CN=Cyrus;ROLE=REQ-PARTICIPANT:mailto:cy@example\r\n .com\r\n", // folded at 75 octets
		"ATTENDEE;ROLE=NON-PARTICIPANT:mailto:dee@example.com\r\n",
		"ATTENDEE;ROLE=OPT-PARTICIPANT;CN=Eve:mailto:eve@example.com\r\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q:\n%s", want, out)
		}
	}
	if n := countLines(out, "ATTENDEE"); n != 5 {
		t.Errorf("%d ATTENDEE lines, want 5:\n%s", n, out)
	}
	out = mustPatchICal(t, raw, crm.Record{Entity: crm.EntityAppointment, Attrs: map[string]any{"requiredattendees": nil, "optionalattendees": []crm.Party{{Address: "dee@example.com"}}}})
	if n := countLines(out, "ATTENDEE"); n != 1 || !strings.Contains(out, "mailto:dee@example.com") {
		t.Errorf("removal: %d ATTENDEE lines:\n%s", n, out)
	}
}

// TestPatchICal_recurrence: a new pattern replaces the RRULE, RDATE and
// EXDATE lines where the first of them stood; anything but those lines, or
// an RRULE that does not parse (RFC 5545 3.3.10), is an error naming
// recurrencepattern; an empty pattern removes the recurrence.
func TestPatchICal_recurrence(t *testing.T) {
	raw := calWith("BEGIN:VEVENT", "UID:a", "DTSTART:20260310T093000Z", "SUMMARY:S",
		"RRULE:FREQ=WEEKLY", "EXDATE:20260317T093000Z", "RDATE:20260401T093000Z", "LOCATION:L", "END:VEVENT")
	out := mustPatchICal(t, raw, crm.Record{Entity: crm.EntityAppointment, Attrs: map[string]any{"recurrencepattern": "RRULE:FREQ=DAILY;COUNT=5\n\n EXDATE:20260312T093000Z \n"}})
	if !strings.Contains(out, "SUMMARY:S\r\nRRULE:FREQ=DAILY;COUNT=5\r\nEXDATE:20260312T093000Z\r\nLOCATION:L\r\n") || strings.Contains(out, "RDATE") || strings.Contains(out, "WEEKLY") {
		t.Errorf("pattern replaced:\n%s", out)
	}
	out = mustPatchICal(t, raw, crm.Record{Entity: crm.EntityAppointment, Attrs: map[string]any{"recurrencepattern": nil}})
	if strings.Contains(out, "RRULE") || strings.Contains(out, "EXDATE") || strings.Contains(out, "RDATE") {
		t.Errorf("pattern cleared:\n%s", out)
	}
	out = mustPatchICal(t, raw, crm.Record{Entity: crm.EntityAppointment, Attrs: map[string]any{"recurrencepattern": "RDATE:20260501T093000Z"}})
	if !strings.Contains(out, "RDATE:20260501T093000Z\r\n") || strings.Contains(out, "RRULE") {
		t.Errorf("RDATE-only pattern:\n%s", out)
	}
	// Exchange writes spaces inside BYDAY; such an RRULE is accepted.
	if _, err := PatchICal(raw, crm.Record{Entity: crm.EntityAppointment, Attrs: map[string]any{"recurrencepattern": "RRULE:FREQ=WEEKLY;BYDAY=MO, TU"}}, nil); err != nil {
		t.Errorf("RRULE with spaces: %v", err)
	}
	for bad, why := range map[string]string{
		"DTSTART:20260310T093000Z": "only RRULE, RDATE and EXDATE lines are allowed",
		"RRULE:FREQ=SOMETIMES":     "SOMETIMES",
		"no colon here":            "no ':'",
	} {
		_, err := PatchICal(raw, crm.Record{Entity: crm.EntityAppointment, Attrs: map[string]any{"recurrencepattern": bad}}, nil)
		var ae *crm.AttributeError
		if !errors.As(err, &ae) || ae.Attribute != "recurrencepattern" || !errors.Is(err, crm.ErrInvalidArgument) || !strings.Contains(err.Error(), why) {
			t.Errorf("%q: error %v, want an AttributeError on recurrencepattern saying %q", bad, err, why)
		}
	}
}

// TestPatchICal_statusLines: the CRM status sets STATUS, TRANSP and (when
// the client uses it, or for out-of-office) X-MICROSOFT-CDO-BUSYSTATUS on
// events; on tasks COMPLETED sets PERCENT-COMPLETE:100 and reopening
// removes a 100 (RFC 5545 3.8.1.8); a status code the entity does not know
// falls back to the default status of the state.
func TestPatchICal_statusLines(t *testing.T) {
	ev := calWith("BEGIN:VEVENT", "UID:a", "DTSTART:20260310T093000Z", "SUMMARY:S", "END:VEVENT")
	out := mustPatchICal(t, ev, crm.Record{Entity: crm.EntityAppointment, Attrs: map[string]any{"statuscode": int64(6)}})
	if !strings.Contains(out, "X-MICROSOFT-CDO-BUSYSTATUS:OOF\r\n") || !strings.Contains(out, "TRANSP:OPAQUE\r\n") {
		t.Errorf("out of office:\n%s", out)
	}
	out = mustPatchICal(t, ev, crm.Record{Entity: crm.EntityAppointment, Attrs: map[string]any{"statuscode": int64(2)}})
	if strings.Contains(out, "X-MICROSOFT-CDO-BUSYSTATUS") || !strings.Contains(out, "STATUS:TENTATIVE\r\n") {
		t.Errorf("tentative (no busy status unless the client wrote one):\n%s", out)
	}
	ev = calWith("BEGIN:VEVENT", "UID:a", "DTSTART:20260310T093000Z", "SUMMARY:S", "X-MICROSOFT-CDO-BUSYSTATUS:BUSY", "END:VEVENT")
	out = mustPatchICal(t, ev, crm.Record{Entity: crm.EntityAppointment, Attrs: map[string]any{"statuscode": int64(2)}})
	if !strings.Contains(out, "X-MICROSOFT-CDO-BUSYSTATUS:TENTATIVE\r\n") {
		t.Errorf("busy status kept in step:\n%s", out)
	}

	todo := calWith("BEGIN:VTODO", "UID:t", "SUMMARY:S", "PERCENT-COMPLETE:40", "END:VTODO")
	out = mustPatchICal(t, todo, crm.Record{Entity: crm.EntityTask, Attrs: map[string]any{"statuscode": int64(5)}})
	if !strings.Contains(out, "STATUS:COMPLETED\r\n") || !strings.Contains(out, "PERCENT-COMPLETE:100\r\n") {
		t.Errorf("completed:\n%s", out)
	}
	out = mustPatchICal(t, []byte(out), crm.Record{Entity: crm.EntityTask, Attrs: map[string]any{"statuscode": int64(3)}})
	if strings.Contains(out, "PERCENT-COMPLETE") || !strings.Contains(out, "STATUS:IN-PROCESS\r\n") {
		t.Errorf("reopened:\n%s", out)
	}
	out = mustPatchICal(t, todo, crm.Record{Entity: crm.EntityTask, Attrs: map[string]any{"statuscode": int64(3)}})
	if !strings.Contains(out, "PERCENT-COMPLETE:40\r\n") {
		t.Errorf("partial progress dropped:\n%s", out)
	}
	// statecode alone: the state's default status.
	out = mustPatchICal(t, todo, crm.Record{Entity: crm.EntityTask, Attrs: map[string]any{"statecode": int64(1)}})
	if r := readICal(t, out); r.Attrs["statecode"] != int64(1) || !strings.Contains(out, "STATUS:COMPLETED") {
		t.Errorf("statecode 1: %v\n%s", r.Attrs["statecode"], out)
	}
	// An unknown status code with a known state: that state's default.
	out = mustPatchICal(t, todo, crm.Record{Entity: crm.EntityTask, Attrs: map[string]any{"statecode": int64(2), "statuscode": int64(999)}})
	if !strings.Contains(out, "STATUS:CANCELLED") {
		t.Errorf("unknown status in state 2:\n%s", out)
	}
}

// TestPatchICal_altDescDropped: Outlook's X-ALT-DESC (an HTML copy of the
// description) goes when the description changes, so clients do not show
// the stale text.
func TestPatchICal_altDescDropped(t *testing.T) {
	raw, err := os.ReadFile("testdata/fixtures/ical/ms-outlook2010-request-windows-tz-attendees-altdesc.ics")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), "X-ALT-DESC") {
		t.Fatal("fixture has no X-ALT-DESC")
	}
	out := mustPatchICal(t, raw, crm.Record{Entity: crm.EntityAppointment, Attrs: map[string]any{"description": "New agenda"}})
	if strings.Contains(out, "X-ALT-DESC") || !strings.Contains(out, "DESCRIPTION:New agenda") {
		t.Errorf("X-ALT-DESC kept:\n%s", out)
	}
	out = mustPatchICal(t, raw, crm.Record{Entity: crm.EntityAppointment, Attrs: map[string]any{"subject": "Other"}})
	if !strings.Contains(out, "X-ALT-DESC") {
		t.Errorf("X-ALT-DESC dropped on a subject change")
	}
}

// TestPatchICal_crmIDLine: patching with a record ID adds X-CRM-ID when
// the item has none (or another one); an item already carrying the ID,
// patched without changes, keeps its bytes (no DTSTAMP bump).
func TestPatchICal_crmIDLine(t *testing.T) {
	id := crm.NewID()
	raw := calWith("BEGIN:VEVENT", "UID:a", "DTSTAMP:20250101T000000Z", "DTSTART:20260310T093000Z", "SUMMARY:S", "END:VEVENT")
	out := mustPatchICal(t, raw, crm.Record{ID: id, Entity: crm.EntityAppointment, Attrs: map[string]any{}})
	if !strings.Contains(out, "X-CRM-ID:"+id.String()+"\r\nEND:VEVENT") || !strings.Contains(out, "DTSTAMP:"+fixedNow().Format("20060102T150405Z")) {
		t.Errorf("X-CRM-ID not added:\n%s", out)
	}
	if again := mustPatchICal(t, []byte(out), crm.Record{ID: id, Entity: crm.EntityAppointment, Attrs: map[string]any{"subject": "S"}}); again != out {
		t.Errorf("no-change patch with the same ID changed bytes:\n%s", again)
	}
	other := crm.NewID()
	out2 := mustPatchICal(t, []byte(out), crm.Record{ID: other, Entity: crm.EntityAppointment, Attrs: map[string]any{}})
	if !strings.Contains(out2, "X-CRM-ID:"+other.String()+"\r\n") || strings.Count(out2, "X-CRM-ID") != 1 {
		t.Errorf("X-CRM-ID not replaced:\n%s", out2)
	}
}
