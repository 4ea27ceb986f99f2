package mapping

import (
	"strings"
	"testing"

	"github.com/pimbridge/pimbridge/crm"
)

const series = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:t\r\n" +
	"BEGIN:VEVENT\r\nUID:s1\r\nDTSTAMP:20260101T000000Z\r\nDTSTART;TZID=Europe/Berlin:20260302T090000\r\nDTEND;TZID=Europe/Berlin:20260302T093000\r\nSUMMARY:Standup\r\nRRULE:FREQ=WEEKLY;BYDAY=MO\r\nEXDATE;TZID=Europe/Berlin:20260309T090000\r\nEND:VEVENT\r\n" +
	"BEGIN:VEVENT\r\nUID:s1\r\nDTSTAMP:20260101T000000Z\r\nRECURRENCE-ID;TZID=Europe/Berlin:20260316T090000\r\nDTSTART;TZID=Europe/Berlin:20260316T100000\r\nDTEND;TZID=Europe/Berlin:20260316T103000\r\nSUMMARY:Standup (moved)\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"

func TestRecurrence_seriesIsOneAppointment(t *testing.T) {
	rs, err := ICalToCRM([]byte(series), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1 {
		t.Fatalf("%d records, want 1 (the override is not a record)", len(rs))
	}
	want := "RRULE:FREQ=WEEKLY;BYDAY=MO\nEXDATE;TZID=Europe/Berlin:20260309T090000"
	if got := rs[0].Record.Attrs["recurrencepattern"]; got != want {
		t.Errorf("recurrencepattern = %q, want %q", got, want)
	}
	out, err := PatchICal([]byte(series), crm.Record{Entity: "appointment", Attrs: map[string]any{
		"recurrencepattern": "RRULE:FREQ=WEEKLY;BYDAY=MO,WE;COUNT=10", "subject": "Daily",
	}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	override := series[strings.Index(series, "BEGIN:VEVENT\r\nUID:s1\r\nDTSTAMP:20260101T000000Z\r\nRECURRENCE-ID"):]
	if !strings.HasSuffix(string(out), override) {
		t.Errorf("override changed:\n%s", out)
	}
	if strings.Contains(string(out), "EXDATE") || !strings.Contains(string(out), "RRULE:FREQ=WEEKLY;BYDAY=MO,WE;COUNT=10\r\n") {
		t.Errorf("pattern not replaced:\n%s", out)
	}
	if _, err := PatchICal([]byte(series), crm.Record{Entity: "appointment", Attrs: map[string]any{"recurrencepattern": "SUMMARY:x"}}, nil); err == nil {
		t.Error("a non-recurrence line in recurrencepattern was accepted")
	}
	if _, err := PatchICal([]byte(series), crm.Record{Entity: "appointment", Attrs: map[string]any{"recurrencepattern": "RRULE:FREQ=SOMETIMES"}}, nil); err == nil {
		t.Error("an invalid RRULE was accepted")
	}
}
