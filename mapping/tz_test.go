package mapping

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pimbridge/pimbridge/crm"
)

const vtzBerlin = "BEGIN:VTIMEZONE\r\nTZID:Custom Berlin\r\nBEGIN:STANDARD\r\nDTSTART:16011028T030000\r\nRRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\nEND:STANDARD\r\nBEGIN:DAYLIGHT\r\nDTSTART:16010325T020000\r\nRRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\nEND:DAYLIGHT\r\nEND:VTIMEZONE\r\n"

func event(tzid, start, end string) []byte {
	return []byte("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:t\r\n" + vtzBerlin + "BEGIN:VEVENT\r\nUID:1\r\nDTSTAMP:20260101T000000Z\r\nDTSTART;TZID=" + tzid + ":" + start + "\r\nDTEND;TZID=" + tzid + ":" + end + "\r\nSUMMARY:x\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
}

// TestTimeZones_DST: local times on both sides of a DST change map to the
// right UTC instants, for IANA, Windows and VTIMEZONE-only zones; a changed
// time keeps its TZID.
func TestTimeZones_DST(t *testing.T) {
	tests := []struct {
		name, tzid, start, end string
		wantStart, wantEnd     string
	}{
		{"berlin-before-spring", "Europe/Berlin", "20260328T090000", "20260328T100000", "2026-03-28T08:00:00Z", "2026-03-28T09:00:00Z"},
		{"berlin-after-spring", "Europe/Berlin", "20260330T090000", "20260330T100000", "2026-03-30T07:00:00Z", "2026-03-30T08:00:00Z"},
		{"berlin-across-autumn", "Europe/Berlin", "20261024T230000", "20261025T050000", "2026-10-24T21:00:00Z", "2026-10-25T04:00:00Z"},
		{"new-york-across-spring", "America/New_York", "20260307T120000", "20260309T120000", "2026-03-07T17:00:00Z", "2026-03-09T16:00:00Z"},
		{"new-york-autumn", "America/New_York", "20261101T003000", "20261101T030000", "2026-11-01T04:30:00Z", "2026-11-01T08:00:00Z"},
		{"windows-w-europe", `"W. Europe Standard Time"`, "20260328T090000", "20260330T090000", "2026-03-28T08:00:00Z", "2026-03-30T07:00:00Z"},
		{"windows-eastern", "Eastern Standard Time", "20260307T120000", "20260309T120000", "2026-03-07T17:00:00Z", "2026-03-09T16:00:00Z"},
		{"vtimezone-only", `"Custom Berlin"`, "20260328T090000", "20260330T090000", "2026-03-28T08:00:00Z", "2026-03-30T07:00:00Z"},
		{"vtimezone-only-autumn", `"Custom Berlin"`, "20261024T230000", "20261025T050000", "2026-10-24T21:00:00Z", "2026-10-25T04:00:00Z"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw := event(tc.tzid, tc.start, tc.end)
			rs, err := ICalToCRM(raw, nil)
			if err != nil {
				t.Fatal(err)
			}
			a := rs[0].Record.Attrs
			if got := a["scheduledstart"].(time.Time).Format(crm.DateTimeFormat); got != tc.wantStart {
				t.Errorf("start = %s, want %s", got, tc.wantStart)
			}
			if got := a["scheduledend"].(time.Time).Format(crm.DateTimeFormat); got != tc.wantEnd {
				t.Errorf("end = %s, want %s", got, tc.wantEnd)
			}
			// Unchanged: same bytes. Moved by a week across nothing: same
			// wall clock in the same TZID.
			if out, _ := PatchICal(raw, rs[0].Record, nil); !bytes.Equal(out, raw) {
				t.Errorf("unchanged times rewritten:\n%s", out)
			}
			s := a["scheduledstart"].(time.Time)
			moved, err := PatchICal(raw, crm.Record{Entity: "appointment", Attrs: map[string]any{"scheduledstart": s.Add(7 * 24 * time.Hour), "scheduledend": a["scheduledend"].(time.Time).Add(7 * 24 * time.Hour)}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(moved), "DTSTART;TZID="+strings.Trim(tc.tzid, `"`)+":") {
				t.Errorf("TZID not kept:\n%s", moved)
			}
			back, _ := ICalToCRM(moved, nil)
			if got := back[0].Record.Attrs["scheduledstart"].(time.Time); !got.Equal(s.Add(7 * 24 * time.Hour)) {
				t.Errorf("moved start read back as %s", got)
			}
		})
	}
}

// TestAllDay_staysAllDay: an all-day event moved in CRM stays a DATE.
func TestAllDay_staysAllDay(t *testing.T) {
	raw, err := os.ReadFile("testdata/fixtures/ical/nextcloud-calendar-5.3-allday-yearly-4-valarms.ics")
	if err != nil {
		t.Fatal(err)
	}
	rs, _ := ICalToCRM(raw, nil)
	s := rs[0].Record.Attrs["scheduledstart"].(time.Time).AddDate(0, 0, 3)
	out, err := PatchICal(raw, crm.Record{Entity: "appointment", Attrs: map[string]any{"scheduledstart": s, "scheduledend": s.AddDate(0, 0, 1)}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	back, _ := ICalToCRM(out, nil)
	if back[0].Record.Attrs["isalldayevent"] != true || !strings.Contains(string(out), "DTSTART;VALUE=DATE:"+s.Format("20060102")) {
		t.Errorf("all-day lost:\n%s", out)
	}
}
