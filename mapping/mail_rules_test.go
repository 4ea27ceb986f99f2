package mapping

import (
	"os"
	"reflect"
	"strconv"
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

// TestValidHeaderName_ftext: a header field name is one or more printable
// US-ASCII characters except ':' (RFC 5322 2.2: ftext is %d33-57 /
// %d59-126).
func TestValidHeaderName_ftext(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"Subject", true},
		{"X-!", true},
		{"X-~", true},
		{"!", true},
		{"~", true},
		{"", false},
		{"X Y", false},
		{"X-\x7f", false},
		{"X-\x1f", false},
		{"A:B", false},
		{"Fr\xc3\xbcher", false},
	}
	for _, tc := range tests {
		if got := validHeaderName(tc.name); got != tc.ok {
			t.Errorf("validHeaderName(%q) = %v, want %v", tc.name, got, tc.ok)
		}
	}
}

// TestMessageToCRM_attachmentSizeCap: an attachment of exactly
// MaxAttachmentSize bytes keeps its body, a larger one keeps only its size;
// a negative cap carries no bodies at all.
func TestMessageToCRM_attachmentSizeCap(t *testing.T) {
	body := strings.Repeat("x", 100)
	raw := "From: a@example.org\r\nSubject: s\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b\r\n" +
		"Content-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=x.bin\r\n\r\n" + body + "\r\n--b--\r\n"
	for _, tc := range []struct {
		max     int64
		carried bool
	}{{100, true}, {99, false}, {0, true}, {-1, false}} {
		em, err := MessageToCRM([]byte(raw), false, &Options{MaxAttachmentSize: tc.max})
		if err != nil {
			t.Fatal(err)
		}
		if len(em.Attachments) != 1 {
			t.Fatalf("cap %d: %d attachments", tc.max, len(em.Attachments))
		}
		a := em.Attachments[0].Attrs
		_, has := a["body"]
		if has != tc.carried || a["filesize"] != int64(100) {
			t.Errorf("cap %d: body carried %v (want %v), filesize %v", tc.max, has, tc.carried, a["filesize"])
		}
	}
}

// TestMessageToCRM_unnamedAttachment: a non-text part without a file name
// is named "attachment" plus the extension of its MIME type, or just
// "attachment" when the type has none.
func TestMessageToCRM_unnamedAttachment(t *testing.T) {
	for ct, want := range map[string]string{"application/pdf": "attachment.pdf", "application/x-pimbridge-unknown": "attachment"} {
		raw := "From: a@example.org\r\nSubject: s\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b\r\n" +
			"Content-Type: " + ct + "\r\n\r\ndata\r\n--b--\r\n"
		em, err := MessageToCRM([]byte(raw), false, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(em.Attachments) != 1 || em.Attachments[0].Attrs["filename"] != want || em.Record.Attrs["description"] != "hi" {
			t.Errorf("%s: attachments %v, description %v; want %q", ct, em.Attachments, em.Record.Attrs["description"], want)
		}
	}
}

// TestMessageToCRM_mimeNestingLimit: multiparts nested 20 deep are read;
// one level more is cut off with a too-deep defect.
func TestMessageToCRM_mimeNestingLimit(t *testing.T) {
	for _, n := range []int{20, 21} {
		var b strings.Builder
		b.WriteString("From: a@example.org\r\nSubject: s\r\n")
		for i := 0; i < n; i++ {
			b.WriteString("Content-Type: multipart/mixed; boundary=b" + strconv.Itoa(i) + "\r\n\r\n--b" + strconv.Itoa(i) + "\r\n")
		}
		b.WriteString("Content-Type: text/plain\r\n\r\ndeep\r\n")
		em, err := MessageToCRM([]byte(b.String()), false, nil)
		if err != nil {
			t.Fatal(err)
		}
		tooDeep := hasDefect(em.Defects, DefectTooDeep)
		if tooDeep != (n > 20) || (em.Record.Attrs["description"] == "deep") == (n > 20) {
			t.Errorf("%d levels: too deep %v, description %v", n, tooDeep, em.Record.Attrs["description"])
		}
	}
}

// TestMessageToCRM_transferEncodings: Content-Transfer-Encoding (RFC 2045
// 6) is undone leniently: case does not matter; misspellings ("7-bit",
// "8 bit", "quoted-printable;" from Outlook 2003, "base64 (x)") are read as
// the encoding they name, with a defect; broken base64 keeps what decodes,
// with a defect; an unknown encoding leaves the body as written.
func TestMessageToCRM_transferEncodings(t *testing.T) {
	tests := []struct {
		cte, body, want string
		defect          bool
	}{
		{"", "plain text", "plain text", false},
		{"7bit", "plain text", "plain text", false},
		{"BASE64", "aGVsbG8gd29y\r\nbGQ=", "hello world", false},
		{"base64", "aGVs*bG8gd29ybGQ=", "hello world", true},
		{"base64", "aGVsbG8gd29ybGQ", "hello world", true},
		{"base64", "aGVsbG8gZ", "hello", true},
		{"Quoted-Printable", "caf=C3=A9 =\r\nsoft", "café soft", false},
		{"quoted-printable;", "caf=C3=A9", "café", true},
		{"base64 (x)", "aGVsbG8=", "hello", true},
		{"8 bit", "caf\xc3\xa9", "café", true},
		{"7-bit", "plain", "plain", true},
		{"QP", "caf=C3=A9", "café", true},
		{";", "as is", "as is", true},
		{"x-uuencode", "begin 644 x", "begin 644 x", true},
	}
	for _, tc := range tests {
		raw := "From: a@example.org\r\nSubject: s\r\nContent-Type: text/plain; charset=utf-8\r\n"
		if tc.cte != "" {
			raw += "Content-Transfer-Encoding: " + tc.cte + "\r\n"
		}
		raw += "\r\n" + tc.body + "\r\n"
		em, err := MessageToCRM([]byte(raw), false, nil)
		if err != nil {
			t.Fatalf("%q: %v", tc.cte, err)
		}
		if got := em.Record.Attrs["description"]; got != tc.want {
			t.Errorf("%q %q: description = %q, want %q", tc.cte, tc.body, got, tc.want)
		}
		if got := hasDefect(em.Defects, DefectTransferEncoding); got != tc.defect {
			t.Errorf("%q %q: transfer-encoding defect = %v, want %v (%v)", tc.cte, tc.body, got, tc.defect, em.Defects)
		}
	}
}

// TestMessageToCRM_multipartBoundaries: parts lie between "--boundary"
// lines (RFC 2046 5.1.1); the preamble and epilogue are not parts, a line
// that only starts like the boundary is body text, white space after a
// boundary is tolerated (with a defect), and a multipart that is never
// closed runs to the end (with a defect).
func TestMessageToCRM_multipartBoundaries(t *testing.T) {
	head := "From: a@example.org\r\nSubject: s\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
	part := func(name, body string) string {
		return "Content-Type: application/octet-stream; name=" + name + "\r\n\r\n" + body + "\r\n"
	}
	tests := []struct {
		name, body string
		files      string // name=size of each attachment
		defects    []DefectKind
	}{
		{"plain", "preamble\r\n--b\r\n" + part("1.bin", "one") + "--b\r\n" + part("2.bin", "two\r\n--bx not a boundary") + "--b--\r\nepilogue\r\n--b\r\n", "1.bin=3 2.bin=24", nil},
		{"space after boundary", "--b  \r\n" + part("1.bin", "one") + "--b--\t\r\n", "1.bin=3", []DefectKind{DefectBoundarySpacing}},
		{"not closed", "--b\r\n" + part("1.bin", "one") + "--b\r\n" + part("2.bin", "two"), "1.bin=3 2.bin=5", []DefectKind{DefectCloseBoundary}},
		{"not closed, space", "--b \r\n" + part("1.bin", "one"), "1.bin=5", []DefectKind{DefectBoundarySpacing, DefectCloseBoundary}},
		{"LF only", "--b\n" + "Content-Type: application/octet-stream; name=1.bin\n\none\n--b--\n", "1.bin=3", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			em, err := MessageToCRM([]byte(head+tc.body), false, nil)
			if err != nil {
				t.Fatal(err)
			}
			var files []string
			for _, a := range em.Attachments {
				files = append(files, a.Attrs["filename"].(string)+"="+strconv.FormatInt(a.Attrs["filesize"].(int64), 10))
			}
			if got := strings.Join(files, " "); got != tc.files {
				t.Errorf("attachments %q, want %q", got, tc.files)
			}
			var kinds []DefectKind
			for _, d := range em.Defects {
				kinds = append(kinds, d.Kind)
			}
			if !reflect.DeepEqual(kinds, tc.defects) {
				t.Errorf("defects %v, want %v", em.Defects, tc.defects)
			}
		})
	}
}
