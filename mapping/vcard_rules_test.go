package mapping

import (
	"testing"
	"time"
)

// TestParseStamp_forms: REV, DTSTAMP and LAST-MODIFIED are read in the
// basic and extended ISO 8601 forms, with or without a zone or fraction,
// as a date, or as positive Unix seconds (some Android exports); anything
// else (zero and negative numbers included) is not a stamp.
func TestParseStamp_forms(t *testing.T) {
	at := time.Date(2026, 3, 10, 9, 30, 15, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"20260310T093015Z", at, true},
		{" 2026-03-10T10:30:15+01:00 ", at, true},
		{"20260310T093015", at, true},
		{"2026-03-10T09:30:15", at, true},
		{"2026-03-10T09:30:15.250Z", at.Add(250 * time.Millisecond), true},
		{"20260310T093015.250Z", at.Add(250 * time.Millisecond), true},
		{"20260310", time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC), true},
		{"2026-03-10", time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC), true},
		{"1773135015", at, true},
		{"1", time.Unix(1, 0).UTC(), true},
		{"0", time.Time{}, false},
		{"-5", time.Time{}, false},
		{"yesterday", time.Time{}, false},
	}
	for _, tc := range tests {
		got, ok := parseStamp(tc.in)
		if ok != tc.ok || !got.Equal(tc.want) {
			t.Errorf("parseStamp(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

// TestParseDate_vCardDates: a vCard date is 1980-03-22 or 19800322, a time
// part after T is ignored; a date without a year (--0322, RFC 6350 4.3.1)
// or a text value is not a date.
func TestParseDate_vCardDates(t *testing.T) {
	day := time.Date(1980, 3, 22, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		in string
		ok bool
	}{
		{"1980-03-22", true},
		{"19800322", true},
		{" 19800322T101500Z ", true},
		{"1980-03-22T10:15:00", true},
		{"--0322", false},
		{"T102200", false},
		{"circa 1980", false},
	}
	for _, tc := range tests {
		got, ok := parseDate(tc.in)
		if ok != tc.ok || ok && !got.Equal(day) {
			t.Errorf("parseDate(%q) = %v, %v; want ok %v", tc.in, got, ok, tc.ok)
		}
	}
}

// TestVCardToCRM_mailingAddress: the mailing address is the preferred ADR
// (TYPE=pref in 3.0, PREF=1 in 4.0), else the work one, else the first.
func TestVCardToCRM_mailingAddress(t *testing.T) {
	tests := []struct{ adrs, wantCity string }{
		{"ADR;TYPE=home:;;1 Home St;Hometown;;;\r\nADR;TYPE=work:;;1 Work St;Worktown;;;\r\nADR;TYPE=home,pref:;;2 Pref St;Preftown;;;\r\n", "Preftown"},
		{"ADR;TYPE=home:;;1 Home St;Hometown;;;\r\nADR;PREF=1:;;2 Pref St;Preftown;;;\r\n", "Preftown"},
		{"ADR;TYPE=home:;;1 Home St;Hometown;;;\r\nADR;PREF=2:;;2 Pref St;Preftown;;;\r\nADR;TYPE=work:;;1 Work St;Worktown;;;\r\n", "Worktown"},
		{"ADR;TYPE=home:;;1 Home St;Hometown;;;\r\nADR;TYPE=other:;;2 St;Othertown;;;\r\n", "Hometown"},
	}
	for _, tc := range tests {
		raw := "BEGIN:VCARD\r\nVERSION:4.0\r\nFN:A B\r\nN:B;A;;;\r\n" + tc.adrs + "END:VCARD\r\n"
		rs, err := VCardToCRM([]byte(raw), nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := rs[0].Record.Attrs["address1_city"]; got != tc.wantCity {
			t.Errorf("city = %v, want %s\n%s", got, tc.wantCity, tc.adrs)
		}
	}
}

// TestVCardToCRM_nameFromFN: a vCard 4.0 card without N takes its last
// name from the last word of FN and its first name from the rest; a blank
// FN gives no name.
func TestVCardToCRM_nameFromFN(t *testing.T) {
	rs, err := VCardToCRM([]byte("BEGIN:VCARD\r\nVERSION:4.0\r\nFN:Anna Maria  Schmidt\r\nEND:VCARD\r\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if a := rs[0].Record.Attrs; a["lastname"] != "Schmidt" || a["firstname"] != "Anna Maria" {
		t.Errorf("names = %v / %v", a["firstname"], a["lastname"])
	}
	rs, err = VCardToCRM([]byte("BEGIN:VCARD\r\nVERSION:4.0\r\nFN: \r\nEMAIL:a@example.org\r\nEND:VCARD\r\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if a := rs[0].Record.Attrs; a["lastname"] != nil || a["firstname"] != nil || a["emailaddress1"] != "a@example.org" || hasDefect(rs[0].Defects, DefectNoN) {
		t.Errorf("blank FN: %v %v %v", a["firstname"], a["lastname"], rs[0].Defects)
	}
}
