package mapping

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pimbridge/pimbridge/crm"
)

func hasDefect(ds []Defect, k DefectKind) bool {
	for _, d := range ds {
		if d.Kind == k {
			return true
		}
	}
	return false
}

const mailHead = "From: Alice <alice@example.org>\r\nTo: bob@example.org\r\nSubject: Hello\r\nMessage-ID: <m1@example.org>\r\nDate: Thu, 16 Jun 2016 22:14:41 -0400\r\n"

// TestMailDefects: each structural flaw of a message is repaired, named,
// and the fields that do not depend on it are still read.
func TestMailDefects(t *testing.T) {
	tests := []struct {
		name string
		kind DefectKind
		raw  string
		// field -> want (string prefix) in the mapped record
		want map[string]string
	}{
		{"first line continuation", DefectFirstLineContinuation, " \r\n" + mailHead + "\r\nbody\r\n",
			map[string]string{"subject": "Hello", "messageid": "<m1@example.org>", "sender": "alice@example.org", "description": "body"}},
		{"first line continuation with text", DefectFirstLineContinuation, "  stray text\r\n" + mailHead + "\r\nbody\r\n",
			map[string]string{"subject": "Hello"}},
		{"whitespace-only line in a folded header", DefectWhitespaceHeaderLine, "From: a@example.org\r\nTo: b@example.org,\r\n \r\n c@example.org\r\nSubject: S\r\n\r\nx\r\n",
			map[string]string{"torecipients": "b@example.org;c@example.org", "subject": "S"}},
		{"header line without colon", DefectHeaderNoColon, "From: a@example.org\r\nSubject: long\r\nsubject\r\n\r\nx\r\n",
			map[string]string{"subject": "long subject"}},
		{"repeated subject keeps the first", DefectDuplicateHeader, mailHead + "Subject: Second\r\n\r\nx\r\n",
			map[string]string{"subject": "Hello"}},
		{"repeated cc is merged", DefectDuplicateHeader, mailHead + "Cc: c@example.org\r\ncc: d@example.org\r\n\r\nx\r\n",
			map[string]string{"subject": "Hello"}},
		{"raw latin-1 subject", DefectHeader8Bit, "From: a@example.org\r\nSubject: Gr\xfc\xdfe\r\n\r\nx\r\n",
			map[string]string{"subject": "Grüße"}},
		{"raw 8-bit subject in the message charset", DefectHeader8Bit, "From: a@example.org\r\nSubject: \xe0\xc4\r\nContent-Type: text/plain; charset=koi8-r\r\n\r\nx\r\n",
			map[string]string{"subject": "Юд"}},
		{"undecodable encoded word kept", DefectEncodedWord, "From: a@example.org\r\nSubject: =?NONE?B?VEVTVA=?=\r\n\r\nTEST\r\n",
			map[string]string{"subject": "=?NONE?B?VEVTVA=?=", "description": "TEST"}},
		{"unknown body charset", DefectUnknownCharset, mailHead + "Content-Type: text/plain; charset=x-unknown-42\r\n\r\nGr\xfc\xdfe\r\n",
			map[string]string{"description": "Grüße"}},
		{"unknown transfer encoding", DefectTransferEncoding, mailHead + "Content-Transfer-Encoding: x-weird\r\n\r\nplain\r\n",
			map[string]string{"description": "plain"}},
		{"transfer encoding with a parameter", DefectTransferEncoding, mailHead + "Content-Transfer-Encoding: quoted-printable;\r\n\r\ncaf=C3=A9\r\n",
			map[string]string{"description": "café"}},
		{"transfer encoding that is only a semicolon", DefectTransferEncoding, mailHead + "Content-Transfer-Encoding: ;\r\n\r\nplain\r\n",
			map[string]string{"description": "plain"}},
		{"transfer encoding misspelt", DefectTransferEncoding, mailHead + "Content-Transfer-Encoding: quoted printable\r\n\r\ncaf=C3=A9\r\n",
			map[string]string{"description": "café"}},
		{"repeated references are merged", DefectDuplicateHeader, mailHead + "References: <a@x>\r\nReferences: <b@x>\r\n\r\nx\r\n",
			map[string]string{"references": "<a@x> <b@x>"}},
		{"base64 without padding", DefectTransferEncoding, mailHead + "Content-Transfer-Encoding: base64\r\n\r\naGVsbG8gd29ybGQ\r\n",
			map[string]string{"description": "hello world"}},
		{"multipart without boundary", DefectNoBoundary, mailHead + "Content-Type: multipart/mixed\r\n\r\njust text\r\n",
			map[string]string{"description": "just text"}},
		{"boundary never found", DefectStartBoundary, mailHead + "Content-Type: multipart/mixed; boundary=zz\r\n\r\njust text\r\n",
			map[string]string{"description": "just text"}},
		{"truncated multipart", DefectCloseBoundary, mailHead + "Content-Type: multipart/mixed; boundary=zz\r\n\r\n--zz\r\nContent-Type: text/plain\r\n\r\nfirst part\r\n--zz\r\nContent-Type: text/html\r\n\r\n<p>cut",
			map[string]string{"description": "first part", "descriptionhtml": "<p>cut"}},
		{"boundary with odd spacing", DefectBoundarySpacing, mailHead + "Content-Type: multipart/alternative; boundary = \"zz\"\r\n\r\n--zz  \r\nContent-Type: text/plain\r\n\r\nspaced\r\n--zz--\t\r\n",
			map[string]string{"description": "spaced"}},
		{"unparsable content type", DefectContentType, mailHead + "Content-Type: text/plain; charset=\"utf-8\r\n\r\nbody\r\n",
			map[string]string{"description": "body"}},
		{"unparsable address", DefectAddress, "From: a@example.org\r\nTo: <<broken\r\nSubject: S\r\n\r\nx\r\n",
			map[string]string{"subject": "S", "sender": "a@example.org"}},
		{"unparsable date", DefectDate, "From: a@example.org\r\nDate: someday\r\nSubject: S\r\n\r\nx\r\n",
			map[string]string{"subject": "S"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			em, err := MessageToCRM([]byte(tc.raw), false, nil)
			if err != nil {
				t.Fatalf("MessageToCRM: %v", err)
			}
			if !hasDefect(em.Defects, tc.kind) {
				t.Errorf("defects %v, want %s", em.Defects, tc.kind)
			}
			for f, want := range tc.want {
				got, _ := em.Record.Attrs[f].(string)
				if !strings.HasPrefix(got, want) {
					t.Errorf("%s = %q, want prefix %q", f, got, want)
				}
			}
		})
	}
}

// TestMailDefect_repeatedCcMerged: both Cc headers' parties are kept.
func TestMailDefect_repeatedCcMerged(t *testing.T) {
	em, err := MessageToCRM([]byte(mailHead+"Cc: c@example.org\r\ncc: d@example.org\r\n\r\nx\r\n"), false, nil)
	if err != nil {
		t.Fatal(err)
	}
	cc, _ := em.Record.Attrs["cc"].([]crm.Party)
	if len(cc) != 2 {
		t.Errorf("cc = %v, want both", cc)
	}
}

// TestMailNothingUsable: a message without any header is still an error.
func TestMailNothingUsable(t *testing.T) {
	for _, raw := range []string{"", "\r\n\r\n", "no header at all\r\njust words\r\n", " \r\n\t\r\n"} {
		_, err := MessageToCRM([]byte(raw), false, nil)
		var pe *ParseError
		if !errors.As(err, &pe) || !errors.Is(err, ErrMalformed) {
			t.Errorf("MessageToCRM(%q) error = %v, want a *ParseError", raw, err)
		}
	}
}

const cardHead = "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Jane Doe\r\nN:Doe;Jane;;;\r\nTEL;TYPE=CELL:+1 555 0100\r\n"

// TestCardDefects: a bad property leaves its CRM field as it was (nil in
// the record, named by the defect) and the other fields are read.
func TestCardDefects(t *testing.T) {
	tests := []struct {
		name, line string
		kind       DefectKind
		field      string
	}{
		{"vcard4 year-less birthday", "BDAY:--0322", DefectYearlessDate, "birthdate"},
		{"1604 birthday of CardBook", "BDAY:1604-03-22", DefectYearlessDate, "birthdate"},
		{"1604 birthday of Apple with omit-year", "BDAY;X-APPLE-OMIT-YEAR=1604:1604-03-22", DefectYearlessDate, "birthdate"},
		{"date before 1753", "BDAY:1700-01-01", DefectDateRange, "birthdate"},
		{"unparsable anniversary", "X-ANNIVERSARY:someday", DefectBadDate, "anniversary"},
		{"text birthday", "BDAY;VALUE=text:circa 1800", DefectBadDate, "birthdate"},
		{"unparsable REV", "REV:yesterday", DefectBadStamp, ""},
		{"bad X-CRM-ID", "X-CRM-ID:not-an-id", DefectBadCRMID, ""},
		{"trailing comma in TYPE", "ADR;TYPE=WORK,:;;Main St 1;Springfield;;;", DefectBadParam, ""},
		{"quoted-printable in 3.0", "NOTE;ENCODING=QUOTED-PRINTABLE:caf=C3=A9", DefectQPInV3, ""},
		{"line without colon", "GARBAGE", DefectNoColon, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw := []byte(cardHead + tc.line + "\r\nEND:VCARD\r\n")
			rs, err := VCardToCRM(raw, nil)
			if err != nil {
				t.Fatalf("VCardToCRM: %v", err)
			}
			r := rs[0]
			if !hasDefect(r.Defects, tc.kind) {
				t.Fatalf("defects %v, want %s", r.Defects, tc.kind)
			}
			if tc.field != "" {
				if r.Record.Attrs[tc.field] != nil {
					t.Errorf("%s = %v, want left as it was (nil)", tc.field, r.Record.Attrs[tc.field])
				}
				if fs := DefectFields(r.Defects); !containsStr(fs, tc.field) {
					t.Errorf("DefectFields = %v, want %s", fs, tc.field)
				}
			}
			if r.Record.Attrs["mobilephone"] != "+1 555 0100" || r.Record.Attrs["lastname"] != "Doe" {
				t.Errorf("other fields lost: %v", r.Record.Attrs)
			}
			// A no-change patch keeps every byte.
			out, err := PatchVCard(raw, r.Record, nil)
			if err != nil || !bytes.Equal(out, raw) {
				t.Errorf("no-change patch: err %v\n%q", err, out)
			}
			// A CRM write of another field (and of the defective field's nil)
			// keeps the PIM line.
			// keeps the PIM line; so does a CRM value for the field.
			for _, v := range []any{nil, time.Date(1980, 3, 22, 0, 0, 0, 0, time.UTC)} {
				rec := crm.Record{Entity: crm.EntityContact, Attrs: map[string]any{"jobtitle": "Boss"}}
				if tc.field != "" {
					rec.Attrs[tc.field] = v
				}
				out, err = PatchVCard(raw, rec, &Options{Now: fixedNow})
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Contains(out, []byte(tc.line+"\r\n")) || !bytes.Contains(out, []byte("TITLE:Boss")) {
					t.Errorf("patch (%s = %v) lost the PIM line %q or the new title:\n%s", tc.field, v, tc.line, out)
				}
			}
		})
	}
}

// TestCardDefect_missingBeginAndEnd: a card without BEGIN or without END is
// read as far as it goes.
func TestCardDefect_missingBeginAndEnd(t *testing.T) {
	rs, err := VCardToCRM([]byte("VERSION:3.0\nN:Doe;Jane;;;\nEND:VCARD\n"), nil)
	if err != nil || !hasDefect(rs[0].Defects, DefectMissingBegin) || rs[0].Record.Attrs["lastname"] != "Doe" {
		t.Errorf("missing BEGIN: %v %v", err, rs)
	}
	rs, err = VCardToCRM([]byte("BEGIN:VCARD\nVERSION:3.0\nN:Doe;Jane;;;\nTE"), nil)
	if err != nil || !hasDefect(rs[0].Defects, DefectMissingEnd) || rs[0].Record.Attrs["firstname"] != "Jane" {
		t.Errorf("missing END: %v %v", err, rs)
	}
	// A write completes the truncated card.
	out, err := PatchVCard([]byte("BEGIN:VCARD\nVERSION:3.0\nN:Doe;Jane;;;\nTE"), crm.Record{Entity: crm.EntityContact, Attrs: map[string]any{"jobtitle": "Boss"}}, nil)
	if err != nil || !strings.HasSuffix(string(out), "\nTE\nTITLE:Boss\nEND:VCARD\n") {
		t.Errorf("patch of a truncated card: %v %q", err, out)
	}
	// Nothing usable: still an error.
	if _, err := VCardToCRM([]byte("hello\n"), nil); !errors.Is(err, ErrMalformed) {
		t.Errorf("no card at all: %v", err)
	}
}

const icalHead = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\nBEGIN:VEVENT\r\nUID:e1\r\nSUMMARY:Meeting\r\nDTSTART:20260105T100000Z\r\nDTEND:20260105T110000Z\r\n"

// TestICalDefects: one bad property never sinks the event.
func TestICalDefects(t *testing.T) {
	tests := []struct {
		name, lines string
		kind        DefectKind
		field       string
	}{
		{"garbage alarm trigger", "BEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:soon-ish\r\nEND:VALARM", DefectBadTrigger, ""},
		{"unparsable LAST-MODIFIED", "LAST-MODIFIED:last tuesday", DefectBadStamp, ""},
		{"latin-1 description", "DESCRIPTION:caf\xe9", DefectNotUTF8, ""},
		{"bad duration", "X-OTHER:1", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw := []byte(icalHead + tc.lines + "\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
			rs, err := ICalToCRM(raw, nil)
			if err != nil {
				t.Fatalf("ICalToCRM: %v", err)
			}
			r := rs[0]
			if tc.kind != "" && !hasDefect(r.Defects, tc.kind) {
				t.Fatalf("defects %v, want %s", r.Defects, tc.kind)
			}
			if r.Record.Attrs["subject"] != "Meeting" || r.Record.Attrs["scheduledstart"] != time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC) {
				t.Errorf("other fields lost: %v", r.Record.Attrs)
			}
			out, err := PatchICal(raw, r.Record, nil)
			if err != nil || !bytes.Equal(out, raw) {
				t.Errorf("no-change patch: err %v\n%q", err, out)
			}
			out, err = PatchICal(raw, crm.Record{Entity: crm.EntityAppointment, Attrs: map[string]any{"location": "Room 1"}}, &Options{Now: fixedNow})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(out, []byte(tc.lines)) {
				t.Errorf("patch changed the PIM line %q:\n%s", tc.lines, out)
			}
		})
	}
	// The latin-1 text is read, not dropped.
	rs, err := ICalToCRM([]byte(icalHead+"DESCRIPTION:caf\xe9\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"), nil)
	if err != nil || rs[0].Record.Attrs["description"] != "café" {
		t.Errorf("latin-1 description: %v %v", err, rs)
	}
	// A bad DTSTART leaves scheduledstart as it was and is named.
	rs, err = ICalToCRM([]byte(strings.Replace(icalHead, "DTSTART:20260105T100000Z", "DTSTART:20131009T170000T", 1)+"END:VEVENT\r\nEND:VCALENDAR\r\n"), nil)
	if err != nil || !hasDefect(rs[0].Defects, DefectBadDate) || !containsStr(DefectFields(rs[0].Defects), "scheduledstart") {
		t.Errorf("bad DTSTART: %v %v", err, rs)
	}
	// A bad DURATION likewise.
	rs, err = ICalToCRM([]byte(strings.Replace(icalHead, "DTEND:20260105T110000Z", "DURATION:PT1X", 1)+"END:VEVENT\r\nEND:VCALENDAR\r\n"), nil)
	if err != nil || !hasDefect(rs[0].Defects, DefectBadDuration) {
		t.Errorf("bad DURATION: %v %v", err, rs)
	}
}

// TestICalDefect_eventWithoutCalendar: a VEVENT written without its
// VCALENDAR is read, and patched in place.
func TestICalDefect_eventWithoutCalendar(t *testing.T) {
	raw := []byte("BEGIN:VEVENT\nSUMMARY:Bare\nDTSTART;VALUE=DATE:20140409\nUID:b1\nEND:VEVENT\n")
	rs, err := ICalToCRM(raw, nil)
	if err != nil || !hasDefect(rs[0].Defects, DefectMissingBegin) || rs[0].Record.Attrs["subject"] != "Bare" {
		t.Fatalf("ICalToCRM: %v %v", err, rs)
	}
	out, err := PatchICal(raw, rs[0].Record, nil)
	if err != nil || !bytes.Equal(out, raw) {
		t.Errorf("no-change patch: %v %q", err, out)
	}
	// A lone VTIMEZONE has nothing usable.
	if _, err := ICalToCRM([]byte("BEGIN:VTIMEZONE\nTZID:X\nEND:VTIMEZONE\n"), nil); !errors.Is(err, ErrMalformed) {
		t.Errorf("lone VTIMEZONE: %v", err)
	}
}

// TestDefect_emptyComponent: a component with nothing to map is skipped; an
// object with nothing else is an error.
func TestDefect_emptyComponent(t *testing.T) {
	trunc := "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//x//EN\r\nBEGIN:VEVENT\r\nUID:trunc\r\nDTSTART:2026010"
	if _, err := ICalToCRM([]byte(trunc), nil); !errors.Is(err, ErrMalformed) {
		t.Errorf("an event with nothing usable: err %v", err)
	}
	two := icalHead + "END:VEVENT\r\nBEGIN:VEVENT\r\nUID:e2\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
	rs, err := ICalToCRM([]byte(two), nil)
	if err != nil || len(rs) != 1 || !hasDefect(rs[0].Defects, DefectEmptyComponent) {
		t.Errorf("one usable event of two: %v %v", err, rs)
	}
	if _, err := VCardToCRM([]byte("BEGIN:VCARD\r\nVERSION:3.0\r\nUID:x\r\nEND:VCARD\r\n"), nil); !errors.Is(err, ErrMalformed) {
		t.Errorf("a card with nothing usable: err %v", err)
	}
}

// TestDefect_depthTruncationNames: MIME nesting beyond 20 levels, a value
// longer than its CRM column, and a card without N.
func TestDefect_depthTruncationNames(t *testing.T) {
	var b strings.Builder
	b.WriteString(mailHead)
	for i := 0; i < 23; i++ {
		fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n", i, i)
	}
	b.WriteString("Content-Type: text/plain\r\n\r\ndeep\r\n")
	em, err := MessageToCRM([]byte(b.String()), false, nil)
	if err != nil || !hasDefect(em.Defects, DefectTooDeep) || em.Record.Attrs["subject"] != "Hello" {
		t.Errorf("deep nesting: %v %v", err, em)
	}
	long := strings.Repeat("x", 300)
	em, err = MessageToCRM([]byte("From: a@example.org\r\nSubject: "+long+long+"\r\n\r\nx\r\n"), false, nil)
	if err != nil || !hasDefect(em.Defects, DefectTruncated) {
		t.Errorf("long subject: %v %v", err, em.Defects)
	}
	rs, err := VCardToCRM([]byte("BEGIN:VCARD\r\nVERSION:4.0\r\nFN:Jane Doe\r\nEND:VCARD\r\n"), nil)
	if err != nil || !hasDefect(rs[0].Defects, DefectNoN) || rs[0].Record.Attrs["lastname"] != "Doe" {
		t.Errorf("no N: %v %v", err, rs)
	}
}
