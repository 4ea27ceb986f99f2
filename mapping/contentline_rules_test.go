package mapping

import (
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// TestSplitLine_contentLineGrammar: the content-line grammar of RFC 5545 3.1
// and RFC 6350 3.3: [group "."] name *(";" param) ":" value, where a
// parameter has a list of values, a value may be DQUOTE-quoted (then it may
// hold ",", ";" and ":"), and vCard 2.1 writes bare parameters (TEL;WORK).
func TestSplitLine_contentLineGrammar(t *testing.T) {
	tests := []struct {
		in            string
		group, name   string
		params        []param
		value         string
		wantErr       string // substring of the error; "" means no error
		wantErrNoColo bool
	}{
		{in: "SUMMARY:hello", name: "SUMMARY", value: "hello"},
		{in: " summary :a:b;c", name: "SUMMARY", value: "a:b;c"},
		{in: "SUMMARY:", name: "SUMMARY", value: ""},
		{in: "item1.TEL;TYPE=work,voice;PREF=1:+1 555", group: "item1", name: "TEL",
			params: []param{{"TYPE", []string{"work", "voice"}}, {"PREF", []string{"1"}}}, value: "+1 555"},
		{in: "a.b.EMAIL:x", group: "a.b", name: "EMAIL", value: "x"},
		{in: ".EMAIL:x", name: "EMAIL", value: "x"},
		{in: `ATTENDEE;CN="Doe, John: Jr.";role=REQ-PARTICIPANT:mailto:j@example.com`, name: "ATTENDEE",
			params: []param{{"CN", []string{"Doe, John: Jr."}}, {"ROLE", []string{"REQ-PARTICIPANT"}}}, value: "mailto:j@example.com"},
		{in: `X-P;P="a;b","c":v`, name: "X-P", params: []param{{"P", []string{"a;b", "c"}}}, value: "v"},
		{in: `X-P;P="":v`, name: "X-P", params: []param{{"P", []string{""}}}, value: "v"},
		{in: "TEL;WORK;VOICE:1", name: "TEL", params: []param{{"WORK", nil}, {"VOICE", nil}}, value: "1"},
		{in: "X-P;P=:v", name: "X-P", params: []param{{"P", []string{""}}}, value: "v"},
		{in: "X-P;P=;Q=1:v", name: "X-P", params: []param{{"P", []string{""}}, {"Q", []string{"1"}}}, value: "v"},
		{in: "X-P;P=a=b:v", name: "X-P", params: []param{{"P", []string{"a=b"}}}, value: "v"},
		{in: "X-P;TYPE=:v", wantErr: "empty value in parameter TYPE"},
		{in: "X-P;P=,a:v", wantErr: "empty value in parameter P"},
		{in: "X-P;P=a,:v", wantErr: "empty value in parameter P"},
		{in: "X-P;P=a,;Q=b:v", wantErr: "empty value in parameter P"},
		{in: "X-P;P=a,", wantErr: "empty value in parameter P"},
		{in: `X-P;P="open:v`, wantErr: "unterminated quoted parameter value"},
		{in: "X-P;A,B:v", wantErr: `bare parameter "A,B" is a list`},
		{in: ":value", wantErr: "without a property name"},
		{in: "item1.:value", wantErr: "without a property name"},
		{in: ";P=a:v", wantErr: "without a property name"},
		{in: "X-P;P=a", wantErrNoColo: true},
		{in: `X-P;P="a"`, wantErrNoColo: true},
		{in: `X-P;P="a";`, wantErrNoColo: true},
		{in: "NOCOLON", wantErrNoColo: true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			l, err := splitLine(tc.in)
			switch {
			case tc.wantErrNoColo:
				if !errors.Is(err, errNoColon) || !errors.Is(err, ErrMalformed) {
					t.Fatalf("error %v, want errNoColon", err)
				}
				return
			case tc.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, ErrMalformed) || errors.Is(err, errNoColon) {
					t.Fatalf("error %v, want ErrMalformed with %q", err, tc.wantErr)
				}
				return
			case err != nil:
				t.Fatal(err)
			}
			if l.group != tc.group || l.name != tc.name || l.value != tc.value || !reflect.DeepEqual(l.params, tc.params) {
				t.Errorf("= %q %q %#v %q, want %q %q %#v %q", l.group, l.name, l.params, l.value, tc.group, tc.name, tc.params, tc.value)
			}
		})
	}
}

// TestSplitLine_noColonNamesTheLine: the error for a line without ':'
// quotes the line, cut to 40 bytes.
func TestSplitLine_noColonNamesTheLine(t *testing.T) {
	exact := strings.Repeat("A", 40)
	_, err := splitLine(exact)
	if err == nil || !strings.Contains(err.Error(), `"`+exact+`"`) {
		t.Errorf("40 bytes: %v", err)
	}
	_, err = splitLine(exact + "B")
	if err == nil || !strings.Contains(err.Error(), `"`+exact+`…"`) {
		t.Errorf("41 bytes: %v", err)
	}
}

// TestLenientSplit_brokenParameters: a line whose parameter list breaks the
// grammar keeps its name, group, value after the first ':' outside quotes
// and the parameters that parse; quoted or empty ones are dropped.
func TestLenientSplit_brokenParameters(t *testing.T) {
	tests := []struct {
		in          string
		ok          bool
		group, name string
		params      []param
		value       string
	}{
		{in: `ATTENDEE;CN="Doe: J";X=a,,b;ROLE=,;RSVP:mailto:x@example.com`, ok: true, name: "ATTENDEE",
			params: []param{{"X", []string{"a", "b"}}, {"RSVP", nil}}, value: "mailto:x@example.com"},
		{in: "item2.TEL;TYPE=WORK,;;voice:+1 2", ok: true, group: "item2", name: "TEL",
			params: []param{{"TYPE", []string{"WORK"}}, {"VOICE", nil}}, value: "+1 2"},
		{in: `X-P;P="open:v;w`, ok: true, name: "X-P", value: "v;w"},
		{in: "X-P:v", ok: true, name: "X-P", value: "v"},
		{in: "no colon at all", ok: false},
		{in: ";P=a:v", ok: false},
		{in: "g.:v", ok: false},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			var l line
			ok := lenientSplit(&l, tc.in)
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v", ok, tc.ok)
			}
			if !ok {
				return
			}
			if l.group != tc.group || l.name != tc.name || l.value != tc.value || !reflect.DeepEqual(l.params, tc.params) {
				t.Errorf("= %q %q %#v %q, want %q %q %#v %q", l.group, l.name, l.params, l.value, tc.group, tc.name, tc.params, tc.value)
			}
		})
	}
}

// TestPhysLine_lineEndings: a physical line ends at CRLF, LF or a lone CR
// (RFC 5545 3.1 requires CRLF; real files use all three), and "\r\r\n"
// (Apple exports) is one line end.
func TestPhysLine_lineEndings(t *testing.T) {
	tests := []struct {
		raw      string
		pos      int
		text     string
		wantNext int
	}{
		{"ab\r\ncd", 0, "ab", 4},
		{"ab\ncd", 0, "ab", 3},
		{"ab\rcd", 0, "ab", 3},
		{"ab\r\r\ncd", 0, "ab", 5},
		{"ab\r\r\r\ncd", 0, "ab", 6},
		{"ab\r\rcd", 0, "ab", 3},
		{"ab\r", 0, "ab", 3},
		{"ab\r\r", 0, "ab", 3},
		{"ab", 0, "ab", 2},
		{"x\nab\r\ncd", 2, "ab", 6},
		{"x\n\ncd", 2, "", 3},
		{"x\ncd", 2, "cd", 4},
	}
	for _, tc := range tests {
		text, next := physLine(tc.raw, tc.pos)
		if text != tc.text || next != tc.wantNext {
			t.Errorf("physLine(%q, %d) = %q, %d; want %q, %d", tc.raw, tc.pos, text, next, tc.text, tc.wantNext)
		}
	}
}

func parseCard(t *testing.T, raw string) *document {
	t.Helper()
	d, err := parseDocument([]byte(raw), "vcard")
	if err != nil {
		t.Fatalf("parseDocument: %v\n%q", err, raw)
	}
	return d
}

// lineSummary lists the parsed lines as "num name=value".
func lineSummary(d *document) []string {
	var out []string
	for _, l := range d.lines {
		out = append(out, strconv.Itoa(l.num)+" "+l.name+"="+l.value)
	}
	return out
}

// TestParseDocument_unfolding: a line that starts with a space or a tab
// continues the one before (RFC 5545 3.1, RFC 6350 3.2), the first
// whitespace character removed; line numbers count physical lines; blank
// lines are skipped.
func TestParseDocument_unfolding(t *testing.T) {
	raw := "BEGIN:VCARD\r\nVERSION:3.0\r\nNOTE:one\r\n  two\r\n\tthree\r\n\r\nFN:A\r\n B\r\nEND:VCARD\r\n"
	d := parseCard(t, raw)
	want := []string{"1 BEGIN=VCARD", "2 VERSION=3.0", "3 NOTE=one twothree", "7 FN=AB", "9 END=VCARD"}
	if got := lineSummary(d); !reflect.DeepEqual(got, want) {
		t.Errorf("lines = %q, want %q", got, want)
	}
	// Byte ranges cover the folded lines and their terminators.
	note := d.lines[2]
	if raw[note.start:note.end] != "NOTE:one\r\n  two\r\n\tthree\r\n" {
		t.Errorf("NOTE bytes = %q", raw[note.start:note.end])
	}
	if d.eol != "\r\n" {
		t.Errorf("eol = %q", d.eol)
	}
	// A fold at the very end of the input.
	d = parseCard(t, "BEGIN:VCARD\nFN:A\n B\nEND:VCARD\nX:1\n y")
	if got := lineSummary(d); got[len(got)-1] != "5 X=1y" || d.eol != "\n" {
		t.Errorf("lines = %q, eol %q", got, d.eol)
	}
}

// TestParseDocument_lineEndingKept: the line end a document uses (LF or
// CRLF, decided by its first line) is the one written back.
func TestParseDocument_lineEndingKept(t *testing.T) {
	for raw, want := range map[string]string{
		"BEGIN:VCARD\nFN:A\r\nEND:VCARD\n":   "\n",
		"BEGIN:VCARD\r\nFN:A\nEND:VCARD\n":   "\r\n",
		"BEGIN:VCARD\rFN:A\rEND:VCARD":       "\r\n",
		"\nBEGIN:VCARD\r\nFN:A\r\nEND:VCARD": "\r\n",
	} {
		if d := parseCard(t, raw); d.eol != want {
			t.Errorf("%q: eol = %q, want %q", raw, d.eol, want)
		}
	}
}

// TestParseDocument_quotedPrintableSoftBreaks: a vCard 2.1 value with
// ENCODING=QUOTED-PRINTABLE (or the bare QUOTED-PRINTABLE parameter)
// continues on the next physical line after a trailing "=" (RFC 2045 6.7
// soft line break), but never into an END or BEGIN line.
func TestParseDocument_quotedPrintableSoftBreaks(t *testing.T) {
	tests := []struct{ raw, wantNote string }{
		{"BEGIN:VCARD\r\nNOTE;ENCODING=QUOTED-PRINTABLE:ab=\r\ncd=\r\nef\r\nFN:x\r\nEND:VCARD\r\n", "abcdef"},
		{"BEGIN:VCARD\r\nNOTE;encoding=quoted-printable;CHARSET=UTF-8:ab=\r\ncd\r\nEND:VCARD\r\n", "abcd"},
		{"BEGIN:VCARD\r\nNOTE;QUOTED-PRINTABLE:ab=\r\ncd\r\nEND:VCARD\r\n", "abcd"},
		{"BEGIN:VCARD\r\nNOTE;QUOTED-PRINTABLE=x:ab=\r\nFN:cd\r\nEND:VCARD\r\n", "ab="},
		{"BEGIN:VCARD\r\nNOTE;ENCODING=8BIT:ab=\r\nFN:cd\r\nEND:VCARD\r\n", "ab="},
		{"BEGIN:VCARD\r\nNOTE;ENCODING:ab=\r\nFN:cd\r\nEND:VCARD\r\n", "ab="},
		{"BEGIN:VCARD\r\nNOTE;ENCODING=QUOTED-PRINTABLE:ab=\r\nEND:VCARD\r\n", "ab="},
		{"BEGIN:VCARD\r\nNOTE;ENCODING=QUOTED-PRINTABLE:ab=\r\nbegin:VCARD\r\nEND:VCARD\r\nEND:VCARD\r\n", "ab="},
		{"BEGIN:VCARD\r\nFN:x\r\nNOTE;ENCODING=QUOTED-PRINTABLE:ab=", "ab="},
	}
	for _, tc := range tests {
		d, err := parseDocument([]byte(tc.raw), "vcard")
		if err != nil {
			t.Fatalf("%q: %v", tc.raw, err)
		}
		var note *line
		for _, l := range d.lines {
			if l.name == "NOTE" {
				note = l
			}
		}
		if note == nil || note.value != tc.wantNote {
			t.Errorf("%q: NOTE = %+v, want %q", tc.raw, note, tc.wantNote)
		}
	}
	// The line after the soft breaks is numbered after them.
	d := parseCard(t, "BEGIN:VCARD\r\nNOTE;ENCODING=QUOTED-PRINTABLE:ab=\r\ncd=\r\nef\r\nFN:x\r\nEND:VCARD\r\n")
	if got := lineSummary(d); got[2] != "5 FN=x" {
		t.Errorf("lines = %q", got)
	}
}

// TestParseDocument_base64Continuation: vCard 2.1 writers (Android,
// Outlook) continue a base64 value (ENCODING=BASE64, ENCODING=b or the bare
// BASE64 parameter) on unindented lines; such a line holds only base64
// characters and no ':' or ';'.
func TestParseDocument_base64Continuation(t *testing.T) {
	tests := []struct{ params, wantPhoto string }{
		{";ENCODING=BASE64;TYPE=JPEG", "AAAABBBB+/==CC"},
		{";encoding=b", "AAAABBBB+/==CC"},
		{";BASE64", "AAAABBBB+/==CC"},
		{";ENCODING=8BIT", "AAAA"},
	}
	for _, tc := range tests {
		raw := "BEGIN:VCARD\r\nVERSION:2.1\r\nPHOTO" + tc.params + ":AAAA\r\nBBBB+/==\r\n CC\r\nFN:x\r\nEND:VCARD\r\n"
		d, err := parseDocument([]byte(raw), "vcard")
		if err != nil {
			if tc.wantPhoto == "AAAA" {
				continue // the stray line may also be read as a defect
			}
			t.Fatalf("%s: %v", tc.params, err)
		}
		var photo, fn *line
		for _, l := range d.lines {
			switch l.name {
			case "PHOTO":
				photo = l
			case "FN":
				fn = l
			}
		}
		if photo == nil || photo.value != tc.wantPhoto {
			t.Errorf("%s: PHOTO = %+v, want %q", tc.params, photo, tc.wantPhoto)
		}
		if fn == nil || fn.value != "x" {
			t.Errorf("%s: FN lost: %q", tc.params, lineSummary(d))
		}
		if tc.wantPhoto != "AAAA" && raw[photo.start:photo.end] != "PHOTO"+tc.params+":AAAA\r\nBBBB+/==\r\n CC\r\n" {
			t.Errorf("%s: PHOTO bytes = %q", tc.params, raw[photo.start:photo.end])
		}
	}
	// A line with a ':' or a non-base64 character is a new property, and a
	// blank line ends the value.
	for _, next := range []string{"NOTE:AAAA", "BB!B", "\r\nCCCC"} {
		raw := "BEGIN:VCARD\r\nPHOTO;ENCODING=BASE64:AAAA\r\n" + next + "\r\nEND:VCARD\r\n"
		d, _ := parseDocument([]byte(raw), "vcard")
		if d == nil {
			continue
		}
		for _, l := range d.lines {
			if l.name == "PHOTO" && l.value != "AAAA" {
				t.Errorf("%q joined to PHOTO: %q", next, l.value)
			}
		}
	}
}

// TestParseDocument_truncatedClosesInnermostFirst: an object cut off
// inside nested components is completed with their END lines, innermost
// first, after a line end when the input stops mid-line.
func TestParseDocument_truncatedClosesInnermostFirst(t *testing.T) {
	raw := "BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:1\nBEGIN:VALARM\nACTION:DISPLAY"
	d, err := parseDocument([]byte(raw), "ical")
	if err != nil {
		t.Fatal(err)
	}
	if !d.truncated || d.closeEnds != "END:VALARM\nEND:VEVENT\nEND:VCALENDAR\n" {
		t.Errorf("truncated %v, closeEnds %q", d.truncated, d.closeEnds)
	}
	if got := string(d.completed()); got != raw+"\nEND:VALARM\nEND:VEVENT\nEND:VCALENDAR\n" {
		t.Errorf("completed = %q", got)
	}
	if !hasDefect(d.defects, DefectMissingEnd) || d.defects[0].Line != 4 {
		t.Errorf("defects = %v, want missing END of the VALARM begun on line 4", d.defects)
	}
	ev := d.root.children[0].children[0]
	if ev.endLine == nil || ev.endLine.start != len(raw) || ev.endLine.num != 6 {
		t.Errorf("VEVENT end line = %+v", ev.endLine)
	}
	// Cut after a line end: no extra line end.
	d, _ = parseDocument([]byte("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:1\r\n"), "ical")
	if got := string(d.completed()); got != "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:1\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n" {
		t.Errorf("completed = %q", got)
	}
	// Complete input: nothing to add.
	d, _ = parseDocument([]byte("BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n"), "ical")
	if d.truncated || d.closeEnds != "" {
		t.Errorf("complete object marked truncated")
	}
}

// TestParseDocument_structureErrors: END without BEGIN, an END that does
// not match its BEGIN and input without any component are *ParseErrors
// naming the line.
func TestParseDocument_structureErrors(t *testing.T) {
	tests := []struct {
		raw  string
		line int
	}{
		{"BEGIN:VCARD\nFN:a\nEND:VCARD\nEND:VCARD\n", 4},
		{"BEGIN:VCALENDAR\nBEGIN:VEVENT\nEND:VTODO\nEND:VCALENDAR\n", 3},
		{"\n\n", 1},
	}
	for _, tc := range tests {
		_, err := parseDocument([]byte(tc.raw), "ical")
		var pe *ParseError
		if !errors.As(err, &pe) || pe.Line != tc.line || !errors.Is(err, ErrMalformed) {
			t.Errorf("%q: error %v, want a *ParseError on line %d", tc.raw, err, tc.line)
		}
	}
	// END matches BEGIN case-insensitively and with spaces around.
	if _, err := parseDocument([]byte("BEGIN:vcard\nFN:a\nEND: VCard \n"), "vcard"); err != nil {
		t.Errorf("END: VCard : %v", err)
	}
}

// TestParseDocument_implicitComponent: properties before a missing BEGIN
// form the component their END closes (starting at the first of them);
// lines outside any component followed by a real BEGIN are skipped.
func TestParseDocument_implicitComponent(t *testing.T) {
	d := parseCard(t, "\r\nVERSION:3.0\r\nFN:A\r\nEND:VCARD\r\nBEGIN:VCARD\r\nFN:B\r\nEND:VCARD\r\n")
	if len(d.root.children) != 2 || d.root.children[0].name != "VCARD" || d.root.children[0].begin.num != 2 || d.root.children[0].begin.start != 2 {
		t.Fatalf("children = %+v", d.root.children)
	}
	if !hasDefect(d.defects, DefectMissingBegin) || d.defects[0].Line != 2 || d.defects[0].Property != "BEGIN" {
		t.Errorf("defects = %v", d.defects)
	}
	d = parseCard(t, "stray:1\r\nX-A:2\r\nBEGIN:VCARD\r\nFN:B\r\nEND:VCARD\r\n")
	if len(d.root.children) != 1 || d.root.children[0].prop("FN") == nil || len(d.defects) != 1 || d.defects[0].Line != 1 || d.defects[0].Property != "" {
		t.Errorf("stray lines: children %d, defects %v", len(d.root.children), d.defects)
	}
	d = parseCard(t, "BEGIN:VCARD\r\nFN:B\r\nEND:VCARD\r\nX-TRAILER:1\r\n")
	if len(d.root.children) != 1 || len(d.defects) != 1 || d.defects[0].Kind != DefectMissingBegin || d.defects[0].Line != 4 {
		t.Errorf("trailing lines: children %d, defects %v", len(d.root.children), d.defects)
	}
}

// TestParseDocument_noColonAndBadParams: a line without ':' is skipped
// with a defect naming its line; a line whose parameters break the grammar
// is read leniently with a defect; the lines around both stay.
func TestParseDocument_noColonAndBadParams(t *testing.T) {
	d := parseCard(t, "BEGIN:VCARD\r\nFN:A\r\nJUNK LINE\r\nTEL;TYPE=,:+1\r\nEND:VCARD\r\n")
	if got := lineSummary(d); !reflect.DeepEqual(got, []string{"1 BEGIN=VCARD", "2 FN=A", "4 TEL=+1", "5 END=VCARD"}) {
		t.Errorf("lines = %q", got)
	}
	if len(d.defects) != 2 || d.defects[0].Kind != DefectNoColon || d.defects[0].Line != 3 ||
		d.defects[1].Kind != DefectBadParam || d.defects[1].Line != 4 || d.defects[1].Property != "TEL" ||
		strings.HasPrefix(d.defects[1].Detail, ErrMalformed.Error()) {
		t.Errorf("defects = %#v", d.defects)
	}
	if _, err := parseDocument([]byte("BEGIN:VCARD\r\n;X=\"a:b\r\nEND:VCARD\r\n"), "vcard"); err == nil {
		t.Errorf("a line with neither name nor value: no error")
	}
}

// TestParseDocument_icalTextIsUTF8: iCalendar text is UTF-8 (RFC 5545
// 3.1.4); other bytes are read as Windows-1252 with a defect. vCard values
// are left to their CHARSET parameter.
func TestParseDocument_icalTextIsUTF8(t *testing.T) {
	raw := "BEGIN:VCALENDAR\r\nX-A:caf\xe9\r\nX-B:café\r\nEND:VCALENDAR\r\n"
	d, err := parseDocument([]byte(raw), "ical")
	if err != nil {
		t.Fatal(err)
	}
	if d.lines[1].value != "café" || d.lines[2].value != "café" || len(d.defects) != 1 || d.defects[0].Line != 2 {
		t.Errorf("values %q %q, defects %v", d.lines[1].value, d.lines[2].value, d.defects)
	}
	d, _ = parseDocument([]byte(strings.NewReplacer("VCALENDAR", "VCARD").Replace(raw)), "vcard")
	if d.lines[1].value != "caf\xe9" || len(d.defects) != 0 {
		t.Errorf("vCard value changed: %q %v", d.lines[1].value, d.defects)
	}
}

// TestLine_parameterLookup: param returns the first value of the first
// parameter with a value; hasParam also sees bare parameters; types joins
// TYPE lists (comma-separated or repeated) and vCard 2.1 bare types,
// lower-cased.
func TestLine_parameterLookup(t *testing.T) {
	l, err := splitLine(`TEL;X;X=1;TYPE=WORK,Voice;TYPE="cell";PREF;VALUE=uri:tel:+1`)
	if err != nil {
		t.Fatal(err)
	}
	if l.param("X") != "1" || l.param("TYPE") != "WORK" || l.param("PREF") != "" || l.param("NONE") != "" {
		t.Errorf("param: %q %q %q", l.param("X"), l.param("TYPE"), l.param("PREF"))
	}
	if !l.hasParam("PREF") || !l.hasParam("VALUE") || l.hasParam("CHARSET") {
		t.Errorf("hasParam wrong")
	}
	if got := l.types(); !reflect.DeepEqual(got, []string{"x", "work", "voice", "cell", "pref"}) {
		t.Errorf("types = %q", got)
	}
	if !l.hasType("voice") || l.hasType("home") || l.hasType("VOICE") {
		t.Errorf("hasType wrong")
	}
	c := parseCard(t, "BEGIN:VCARD\r\nTEL:1\r\nEMAIL:a\r\nTEL:2\r\nEND:VCARD\r\n").root.children[0]
	if c.prop("TEL").value != "1" || c.prop("ADR") != nil || len(c.all("TEL")) != 2 || c.all("TEL")[1].value != "2" {
		t.Errorf("component lookup wrong")
	}
}
