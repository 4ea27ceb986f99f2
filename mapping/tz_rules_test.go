package mapping

import (
	"strings"
	"testing"
	"time"

	"github.com/pimbridge/pimbridge/crm"
)

// TestParseOffset_utcOffset: UTC-OFFSET is ("+" / "-") HHMM [SS]
// (RFC 5545 3.3.14); anything else does not parse.
func TestParseOffset_utcOffset(t *testing.T) {
	tests := []struct {
		in   string
		want int
		ok   bool
	}{
		{"+0100", 3600, true},
		{"-0500", -5 * 3600, true},
		{"+0530", 5*3600 + 30*60, true},
		{"+1234", 12*3600 + 34*60, true},
		{"-123456", -(12*3600 + 34*60 + 56), true},
		{"+000001", 1, true},
		{" +0100 ", 3600, true},
		{"0100", 0, false},
		{"01000", 0, false},
		{"+01", 0, false},
		{"+01:00", 0, false},
		{"+010000X", 0, false},
		{"+0a00", 0, false},
		{"*0100", 0, false},
	}
	for _, tc := range tests {
		got, ok := parseOffset(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseOffset(%q) = %d, %v; want %d, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

// TestParseWall_dateAndDateTime: DATE is YYYYMMDD, DATE-TIME is
// YYYYMMDDTHHMMSS with an optional Z (RFC 5545 3.3.4, 3.3.5).
func TestParseWall_dateAndDateTime(t *testing.T) {
	tests := []struct {
		in       string
		want     time.Time
		date, ok bool
	}{
		{"20260310", time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC), true, true},
		{" 20260310 ", time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC), true, true},
		{"20260310T093015", time.Date(2026, 3, 10, 9, 30, 15, 0, time.UTC), false, true},
		{"20260310T093015Z", time.Date(2026, 3, 10, 9, 30, 15, 0, time.UTC), false, true},
		{"20260310T093015X", time.Time{}, false, false},
		{"20261310", time.Time{}, true, false},
		{"20260310T250000", time.Time{}, false, false},
		{"2026031", time.Time{}, false, false},
		{"20260310T0930", time.Time{}, false, false},
		{"2026-03-10", time.Time{}, false, false},
	}
	for _, tc := range tests {
		got, date, ok := parseWall(tc.in)
		if ok != tc.ok || ok && (!got.Equal(tc.want) || date != tc.date) {
			t.Errorf("parseWall(%q) = %v, %v, %v; want %v, %v, %v", tc.in, got, date, ok, tc.want, tc.date, tc.ok)
		}
	}
}

// TestNthWeekday_byDayOrdinal: BYDAY=<n><weekday> in a yearly BYMONTH rule
// (RFC 5545 3.3.10) is the n-th such weekday of the month, counted from the
// end when n is negative, at the observance's wall-clock time.
func TestNthWeekday_byDayOrdinal(t *testing.T) {
	clock := time.Date(1601, 1, 1, 2, 30, 15, 0, time.UTC)
	tests := []struct {
		m    time.Month
		wd   time.Weekday
		nth  int
		want string
	}{
		{time.March, time.Sunday, -1, "2026-03-29"},   // EU summer time
		{time.October, time.Sunday, -1, "2026-10-25"}, // EU winter time
		{time.March, time.Sunday, 2, "2026-03-08"},    // US daylight time
		{time.November, time.Sunday, 1, "2026-11-01"}, // US standard time; the 1st is a Sunday
		{time.February, time.Sunday, 1, "2026-02-01"},
		{time.February, time.Saturday, -1, "2026-02-28"}, // the last day is a Saturday
		{time.April, time.Friday, -2, "2026-04-17"},
		{time.April, time.Thursday, 3, "2026-04-16"},
		{time.December, time.Wednesday, -1, "2026-12-30"},
		{time.December, time.Thursday, -1, "2026-12-31"},
	}
	for _, tc := range tests {
		got := nthWeekday(2026, tc.m, tc.wd, tc.nth, clock)
		if got.Format("2006-01-02") != tc.want || got.Hour() != 2 || got.Minute() != 30 || got.Second() != 15 {
			t.Errorf("nthWeekday(%s, %s, %d) = %s, want %s 02:30:15", tc.m, tc.wd, tc.nth, got, tc.want)
		}
	}
}

// vtzMoscow is Europe/Moscow as tzurl-style generators write it: the
// summer-time rules end with a UTC UNTIL in 2010, then a fixed +0400.
const vtzMoscow = "BEGIN:VTIMEZONE\r\nTZID:Custom Moscow\r\n" +
	"BEGIN:STANDARD\r\nDTSTART:19961027T030000\r\nRRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU;UNTIL=20101030T230000Z\r\nTZOFFSETFROM:+0400\r\nTZOFFSETTO:+0300\r\nEND:STANDARD\r\n" +
	"BEGIN:DAYLIGHT\r\nDTSTART:19930328T020000\r\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU;UNTIL=20100327T230000Z\r\nTZOFFSETFROM:+0300\r\nTZOFFSETTO:+0400\r\nEND:DAYLIGHT\r\n" +
	"BEGIN:STANDARD\r\nDTSTART:20110327T020000\r\nTZOFFSETFROM:+0300\r\nTZOFFSETTO:+0400\r\nEND:STANDARD\r\n" +
	"END:VTIMEZONE\r\n"

// vtzSydney is a southern-hemisphere zone whose STANDARD rule starts in a
// later year than its DAYLIGHT rule, so January needs last year's onset.
const vtzSydney = "BEGIN:VTIMEZONE\r\nTZID:Custom Sydney\r\n" +
	"BEGIN:DAYLIGHT\r\nDTSTART:20061029T020000\r\nRRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=1SU\r\nTZOFFSETFROM:+1000\r\nTZOFFSETTO:+1100\r\nEND:DAYLIGHT\r\n" +
	"BEGIN:STANDARD\r\nDTSTART:20070401T030000\r\nRRULE:FREQ=YEARLY;BYMONTH=4;BYDAY=1SU\r\nTZOFFSETFROM:+1100\r\nTZOFFSETTO:+1000\r\nEND:STANDARD\r\n" +
	"END:VTIMEZONE\r\n"

// vtzEastern is a US zone (second Sunday of March, first Sunday of
// November), with RDATE onsets for an extra change and a BYDAY without
// ordinal (read as the first such weekday), and one-off onsets (an RDATE
// list, a DTSTART) in July 2026.
const vtzEastern = "BEGIN:VTIMEZONE\r\nTZID:Custom Eastern\r\n" +
	"BEGIN:DAYLIGHT\r\nDTSTART:20070311T020000\r\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=2SU\r\nTZOFFSETFROM:-0500\r\nTZOFFSETTO:-0400\r\nEND:DAYLIGHT\r\n" +
	"BEGIN:STANDARD\r\nDTSTART:20071104T020000\r\nRRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=SU\r\nTZOFFSETFROM:-0400\r\nTZOFFSETTO:-0500\r\nEND:STANDARD\r\n" +
	"BEGIN:STANDARD\r\nDTSTART:20070101T000000\r\nRDATE:20250715T000000,20260715T000000\r\nTZOFFSETFROM:-0400\r\nTZOFFSETTO:-0300\r\nEND:STANDARD\r\n" +
	"BEGIN:DAYLIGHT\r\nDTSTART:20260720T000000\r\nTZOFFSETFROM:-0300\r\nTZOFFSETTO:-0400\r\nEND:DAYLIGHT\r\n" +
	"END:VTIMEZONE\r\n"

// TestVTimezone_observanceRules: with only the calendar's VTIMEZONE to go
// by, a local time takes the offset of the observance with the latest onset
// at or before it (RFC 5545 3.6.5): yearly rules of this and the previous
// year, RDATEs, DTSTART, and a rule's UTC UNTIL (compared with a day's
// slack, as it is in UTC and the onset in local time).
func TestVTimezone_observanceRules(t *testing.T) {
	tests := []struct {
		tzid, local, wantUTC string
	}{
		{"Custom Moscow", "20100601T120000", "2010-06-01T08:00:00Z"}, // last summer time, onset 2010-03-28 02:00 = UNTIL + 3h
		{"Custom Moscow", "20101201T120000", "2010-12-01T09:00:00Z"},
		{"Custom Moscow", "20090115T120000", "2009-01-15T09:00:00Z"},
		{"Custom Moscow", "20110601T120000", "2011-06-01T08:00:00Z"},
		{"Custom Moscow", "20120115T120000", "2012-01-15T08:00:00Z"}, // the winter rule ended in 2010
		{"Custom Sydney", "20260115T120000", "2026-01-15T01:00:00Z"}, // daylight since October 2025
		{"Custom Sydney", "20260601T120000", "2026-06-01T02:00:00Z"},
		{"Custom Eastern", "20260307T120000", "2026-03-07T17:00:00Z"},
		{"Custom Eastern", "20260309T120000", "2026-03-09T16:00:00Z"}, // second Sunday of March: the 8th
		{"Custom Eastern", "20261031T120000", "2026-10-31T16:00:00Z"},
		{"Custom Eastern", "20261102T120000", "2026-11-02T17:00:00Z"}, // BYDAY=SU: the 1st
		{"Custom Eastern", "20260716T120000", "2026-07-16T15:00:00Z"}, // RDATE onset
		{"Custom Eastern", "20260714T120000", "2026-07-14T16:00:00Z"},
	}
	for _, tc := range tests {
		t.Run(tc.tzid+"/"+tc.local, func(t *testing.T) {
			raw := "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:t\r\n" + vtzMoscow + vtzSydney + vtzEastern +
				"BEGIN:VEVENT\r\nUID:1\r\nDTSTAMP:20260101T000000Z\r\nDTSTART;TZID=" + tc.tzid + ":" + tc.local + "\r\nSUMMARY:x\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
			rs, err := ICalToCRM([]byte(raw), nil)
			if err != nil {
				t.Fatal(err)
			}
			start := rs[0].Record.Attrs["scheduledstart"].(time.Time)
			if got := start.Format(crm.DateTimeFormat); got != tc.wantUTC {
				t.Errorf("start = %s, want %s", got, tc.wantUTC)
			}
			// Written back in the same zone, the wall clock is the same.
			out, err := PatchICal([]byte(raw), crm.Record{Entity: crm.EntityAppointment, Attrs: map[string]any{"scheduledstart": start.Add(time.Minute), "scheduledend": start.Add(time.Hour)}}, &Options{Now: fixedNow})
			if err != nil {
				t.Fatal(err)
			}
			want := "DTSTART;TZID=" + tc.tzid + ":" + tc.local[:11] + "01" + tc.local[13:] + "\r\n"
			if !strings.Contains(string(out), want) {
				t.Errorf("written back without %q:\n%s", want, out)
			}
		})
	}
}

// TestLookupZone_names: a TZID is a Windows name (by table), an IANA name
// (also behind a prefix such as /softwarestudio.org/Tzfile/ or in quotes),
// or the calendar's own VTIMEZONE; a VTIMEZONE without observances, a name
// with ".." and an unknown name give no zone.
func TestLookupZone_names(t *testing.T) {
	vtz := map[string]*component{
		"Empty": {name: "VTIMEZONE", children: []*component{{name: "X-OTHER"}}},
	}
	w := time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		tzid    string
		wantUTC string // "" means no zone
	}{
		{"W. Europe Standard Time", "2026-07-01T10:00:00Z"},
		{`"Europe/Berlin"`, "2026-07-01T10:00:00Z"},
		{"/softwarestudio.org/Tzfile/Europe/Berlin", "2026-07-01T10:00:00Z"},
		{"/mozilla.org/20050126_1/America/New_York", "2026-07-01T16:00:00Z"},
		{"America/New_York/", "2026-07-01T16:00:00Z"},
		{"Foo/../Europe/Berlin", ""},
		{"Not A Zone", ""},
		{"Empty", ""},
		{"  ", ""},
	}
	for _, tc := range tests {
		z := lookupZone(tc.tzid, vtz)
		switch {
		case tc.wantUTC == "" && z != nil:
			t.Errorf("%q: zone %v, want none", tc.tzid, z)
		case tc.wantUTC != "" && z == nil:
			t.Errorf("%q: no zone", tc.tzid)
		case z != nil:
			if got := z.toUTC(w).Format(crm.DateTimeFormat); got != tc.wantUTC {
				t.Errorf("%q: 12:00 local = %s, want %s", tc.tzid, got, tc.wantUTC)
			}
		}
	}
}
