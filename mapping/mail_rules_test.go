package mapping

import (
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/pimbridge/pimbridge/crm"
)

func readMailFixture(t *testing.T, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile("testdata/fixtures/mail/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestMessageToCRM_mboxFromLineIsNotAHeader: a message stored in an mbox
// file starts with the "From " separator line (RFC 4155); it is not part of
// the message, so the message maps exactly as without it.
func TestMessageToCRM_mboxFromLineIsNotAHeader(t *testing.T) {
	raw := readMailFixture(t, "mozilla-thunderbird-1.0-plain-reply-references.eml")
	want, err := MessageToCRM(raw, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, sep := range []string{"From xxxxxxxx@xxx.org Sun Nov 18 08:56:33 2007\n", "From - Sun Nov 18 08:56:33 2007\r\n"} {
		got, err := MessageToCRM(append([]byte(sep), raw...), false, nil)
		if err != nil {
			t.Fatalf("%q: %v", sep, err)
		}
		if !reflect.DeepEqual(got.Record, want.Record) {
			t.Errorf("%q: record = %v, want %v", sep, got.Record.Attrs, want.Record.Attrs)
		}
		if len(got.Defects) != len(want.Defects) {
			t.Errorf("%q: defects = %v, want %v", sep, got.Defects, want.Defects)
		}
	}
}

// TestMessageToCRM_messageIDIsTheMsgID: Message-ID is a msg-id
// (RFC 5322 3.6.4) with optional comments and folding around it; the CRM
// keeps "<id-left@id-right>" only. A value that is no msg-id is kept as
// written (trimmed) rather than dropped.
func TestMessageToCRM_messageIDIsTheMsgID(t *testing.T) {
	tests := []struct{ header, want string }{
		{"Message-ID: <473FFE27.20003@xxx.org>", "<473FFE27.20003@xxx.org>"},
		{"Message-ID:\r\n <473FFE27.20003@xxx.org>", "<473FFE27.20003@xxx.org>"},
		{"Message-ID: <473FFE27.20003@xxx.org> (Thunderbird)", "<473FFE27.20003@xxx.org>"},
		{"Message-ID: (sent by x) <473FFE27.20003@xxx.org>", "<473FFE27.20003@xxx.org>"},
		{"Message-ID:  473FFE27.20003 at xxx.org ", "473FFE27.20003 at xxx.org"},
	}
	for _, tc := range tests {
		raw := "From: a@example.org\r\n" + tc.header + "\r\nSubject: s\r\n\r\nbody\r\n"
		em, err := MessageToCRM([]byte(raw), false, nil)
		if err != nil {
			t.Fatalf("%q: %v", tc.header, err)
		}
		if got := em.Record.Attrs["messageid"]; got != tc.want {
			t.Errorf("%q: messageid = %q, want %q", tc.header, got, tc.want)
		}
	}
}

// TestMessageToCRM_absentHeaderLeavesFieldNil: a header the message does
// not have (or whose addresses are all empty) leaves its field nil, not an
// empty list, so that "no Cc" and "Cc cleared" read the same.
func TestMessageToCRM_absentHeaderLeavesFieldNil(t *testing.T) {
	raw := "From: a@example.org\r\nTo: b@example.org\r\nSubject: s\r\n\r\nbody\r\n"
	em, err := MessageToCRM([]byte(raw), false, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"cc", "bcc", "messageid", "inreplyto", "references", "senton", "descriptionhtml"} {
		if v, ok := em.Record.Attrs[f]; !ok || v != nil {
			t.Errorf("%s = %#v (present %v), want nil", f, v, ok)
		}
	}
	if got := em.Record.Attrs["to"].([]crm.Party); len(got) != 1 || got[0].Address != "b@example.org" {
		t.Errorf("to = %v", got)
	}
}

// TestMessageToCRM_fieldLengthLimit: a subject of exactly the CRM's maximum
// length (400 characters) is kept whole; one character more is cut to the
// maximum and listed as a truncated defect.
func TestMessageToCRM_fieldLengthLimit(t *testing.T) {
	max := entityMeta(crm.EntityEmail).Attr("subject").MaxLength
	if max != 400 {
		t.Fatalf("subject max length = %d; the test assumes 400", max)
	}
	for _, n := range []int{max - 1, max, max + 1} {
		subject := strings.Repeat("ü", n)
		raw := "From: a@example.org\r\nSubject: " + subject + "\r\n\r\nbody\r\n"
		em, err := MessageToCRM([]byte(raw), false, nil)
		if err != nil {
			t.Fatal(err)
		}
		got := em.Record.Attrs["subject"].(string)
		wantLen := min(n, max)
		if len([]rune(got)) != wantLen {
			t.Errorf("%d characters: subject has %d, want %d", n, len([]rune(got)), wantLen)
		}
		truncated := false
		for _, d := range em.Defects {
			if d.Kind == DefectTruncated && d.Field == "subject" {
				truncated = true
			}
		}
		if truncated != (n > max) {
			t.Errorf("%d characters: truncated defect = %v, want %v (%v)", n, truncated, n > max, em.Defects)
		}
	}
}

// TestMessageToCRM_lenientAddressList: an address list that does not parse
// as a whole (RFC 5322 3.4) is read entry by entry: name-addr entries keep
// their display name, bare addresses are found inside junk, and entries
// without an address are dropped with an address defect.
func TestMessageToCRM_lenientAddressList(t *testing.T) {
	raw := "From: a@example.org\r\n" +
		`To: "Bob B" <bob@example.org>, Carol <carol@example.org (broken, junk dave@example.org junk, ` + "\"\" <>\r\n" +
		"Subject: s\r\n\r\nbody\r\n"
	em, err := MessageToCRM([]byte(raw), false, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := em.Record.Attrs["to"].([]crm.Party)
	want := []crm.Party{{Address: "bob@example.org", Name: "Bob B"}, {Address: "carol@example.org"}, {Address: "dave@example.org"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("to = %+v, want %+v", got, want)
	}
	if em.Record.Attrs["torecipients"] != "bob@example.org;carol@example.org;dave@example.org" {
		t.Errorf("torecipients = %v", em.Record.Attrs["torecipients"])
	}
	found := false
	for _, d := range em.Defects {
		if d.Kind == DefectAddress && d.Property == "To" && d.Line == 2 {
			found = true
		}
	}
	if !found {
		t.Errorf("no address defect on line 2: %v", em.Defects)
	}
}
