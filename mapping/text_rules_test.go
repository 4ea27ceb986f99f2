package mapping

import (
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestTextEscaping: TEXT values escape backslash, semicolon, comma and
// line breaks (RFC 5545 3.3.11, RFC 6350 3.4); CRLF and a lone CR become
// one \n; reading undoes it, \N included, and an unknown escape or a
// trailing backslash keeps the character.
func TestTextEscaping(t *testing.T) {
	esc := []struct{ in, want string }{
		{`a\b;c,d`, `a\\b\;c\,d`},
		{"l1\r\nl2\rl3\nl4", `l1\nl2\nl3\nl4`},
		{"end\r", `end\n`},
		{"\r\r\n", `\n\n`},
		{"Grüße: ok", "Grüße: ok"},
	}
	for _, tc := range esc {
		if got := escapeText(tc.in); got != tc.want {
			t.Errorf("escapeText(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	unesc := []struct{ in, want string }{
		{`a\\b\;c\,d`, `a\b;c,d`},
		{`l1\nl2\Nl3`, "l1\nl2\nl3"},
		{`\:x\"`, `:x"`},
		{`trailing\`, `trailing\`},
		{`plain`, `plain`},
	}
	for _, tc := range unesc {
		if got := unescapeText(tc.in); got != tc.want {
			t.Errorf("unescapeText(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestStructuredValue: N, ADR and ORG split at unescaped semicolons
// (RFC 6350 5.1); an escaped semicolon stays in its component; joining
// keeps every component, empty trailing ones included.
func TestStructuredValue(t *testing.T) {
	got := splitStructured(`Doe\;Smith;Jane;;Dr.\, PhD;`)
	want := []string{"Doe;Smith", "Jane", "", "Dr., PhD", ""}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("splitStructured = %q, want %q", got, want)
	}
	if got := splitStructured(`a\\;b`); !reflect.DeepEqual(got, []string{`a\`, "b"}) {
		t.Errorf(`splitStructured(a\\;b) = %q`, got)
	}
	if got := joinStructured(want); got != `Doe\;Smith;Jane;;Dr.\, PhD;` {
		t.Errorf("joinStructured = %q", got)
	}
}

// TestDecodeValue_lenientQuotedPrintable: a vCard 2.1 QUOTED-PRINTABLE
// value that is not valid quoted-printable (a raw control byte, "=ZZ") has
// its =XX escapes decoded and everything else kept as written.
func TestDecodeValue_lenientQuotedPrintable(t *testing.T) {
	tests := []struct{ value, want string }{
		{"J=C3=BCrgen", "Jürgen"},
		{"????=0C=ZZ=c3=bc=", "????\x0c=ZZü"}, // the standard decoder is lenient here
		// A raw control byte makes the standard decoder fail: the lenient one
		// decodes the escapes and keeps the rest.
		{"\x01????=0C=ZZ=c3=bc=", "\x01????\x0c=ZZü="},
		{"\x01=4a=4A=e", "\x01JJ=e"},
		{"\x01=09=3D=4", "\x01\t==4"},
		{"\x01=", "\x01="},
	}
	for _, tc := range tests {
		l, err := splitLine("NOTE;ENCODING=QUOTED-PRINTABLE:" + tc.value)
		if err != nil {
			t.Fatal(err)
		}
		if got := decodeValue(l); got != tc.want {
			t.Errorf("decodeValue(%q) = %q, want %q", tc.value, got, tc.want)
		}
	}
	for c := 0; c < 256; c++ {
		want := c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
		if isHex(byte(c)) != want {
			t.Errorf("isHex(%q) = %v", byte(c), !want)
		}
	}
}

// TestDecodeValue_charset: a vCard 2.1 CHARSET parameter decodes the value;
// UTF-8 and US-ASCII values and unknown charsets are left as they are,
// and undeclared 8-bit text is read as ISO-8859-1.
func TestDecodeValue_charset(t *testing.T) {
	tests := []struct{ line, want string }{
		{"FN;CHARSET=ISO-8859-1:J\xfcrgen", "Jürgen"},
		{"FN;CHARSET=windows-1252:\x80", "€"},
		{"FN;CHARSET=UTF-8:Jürgen", "Jürgen"},
		{"FN;CHARSET=us-ascii:plain", "plain"},
		{"FN;CHARSET=x-unknown:plain", "plain"},
		{"FN:J\xfcrgen", "Jürgen"},
	}
	for _, tc := range tests {
		l, err := splitLine(tc.line)
		if err != nil {
			t.Fatal(err)
		}
		if got := decodeValue(l); got != tc.want {
			t.Errorf("decodeValue(%q) = %q, want %q", tc.line, got, tc.want)
		}
	}
}

// TestFoldLine_75Octets: content lines are folded so that no physical line
// is longer than 75 octets without its line end (RFC 5545 3.1, RFC 6350
// 3.2), never inside a UTF-8 sequence, continuation lines starting with one
// space; unfolding gives the line back.
func TestFoldLine_75Octets(t *testing.T) {
	for _, s := range []string{
		strings.Repeat("a", 75),
		strings.Repeat("a", 76),
		strings.Repeat("b", 74*3+1),
		"DESCRIPTION:" + strings.Repeat("ü", 100),
		"SUMMARY:" + strings.Repeat("東", 60),
		"X:" + strings.Repeat("\xff", 160),
	} {
		var b strings.Builder
		foldLine(&b, s, "\r\n")
		out := b.String()
		if !strings.HasSuffix(out, "\r\n") {
			t.Fatalf("no line end: %q", out)
		}
		phys := strings.Split(strings.TrimSuffix(out, "\r\n"), "\r\n")
		var un strings.Builder
		for i, p := range phys {
			if len(p) > 75 {
				t.Errorf("line %d is %d octets: %q", i, len(p), p)
			}
			if i > 0 {
				if p[0] != ' ' {
					t.Errorf("continuation %d does not start with a space", i)
				}
				p = p[1:]
			}
			if utf8.ValidString(s) && !utf8.ValidString(p) {
				t.Errorf("line %d split a UTF-8 sequence: %q", i, p)
			}
			un.WriteString(p)
		}
		if un.String() != s {
			t.Errorf("unfolded %q, want %q", un.String(), s)
		}
		// As short as allowed: every physical line but the last is full
		// (up to one UTF-8 sequence).
		for i, p := range phys[:len(phys)-1] {
			if len(p) < 75-utf8.UTFMax {
				t.Errorf("line %d folded early at %d octets", i, len(p))
			}
		}
	}
	var b strings.Builder
	foldLine(&b, strings.Repeat("a", 76), "\n")
	if b.String() != strings.Repeat("a", 75)+"\n a\n" {
		t.Errorf("76 octets = %q", b.String())
	}
}

// TestParamValue_quoting: a parameter value with ';', ':' or ',' or
// leading or trailing space is DQUOTE-quoted (RFC 5545 3.2); a DQUOTE or
// line break inside becomes an apostrophe, as a parameter cannot hold them.
func TestParamValue_quoting(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Jane Doe", "Jane Doe"},
		{"Doe, Jane", `"Doe, Jane"`},
		{"a;b", `"a;b"`},
		{"mailto:x", `"mailto:x"`},
		{" padded", `" padded"`},
		{`say "hi"`, `say 'hi'`},
		{"two\r\nlines", "two''lines"},
	}
	for _, tc := range tests {
		if got := paramValue(tc.in); got != tc.want {
			t.Errorf("paramValue(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
