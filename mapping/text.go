package mapping

import (
	"bytes"
	"io"
	"mime/quotedprintable"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-message/charset"
)

// unescapeText decodes a TEXT value (RFC 5545 3.3.11, RFC 6350 3.4):
// \n \N \, \; \\ ; an unknown escape keeps the character.
func unescapeText(s string) string {
	if !strings.ContainsRune(s, '\\') {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 == len(s) {
			b.WriteByte(c)
			continue
		}
		i++
		switch s[i] {
		case 'n', 'N':
			b.WriteByte('\n')
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

// escapeText encodes a TEXT value: \ ; , and newlines are escaped; CRLF and
// CR become a single \n.
func escapeText(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			b.WriteString(`\\`)
		case ';':
			b.WriteString(`\;`)
		case ',':
			b.WriteString(`\,`)
		case '\r':
			b.WriteString(`\n`)
			if i+1 < len(s) && s[i+1] == '\n' {
				i++
			}
		case '\n':
			b.WriteString(`\n`)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// splitStructured splits a structured value (N, ADR, ORG) at unescaped
// semicolons and unescapes each component. Unescaped commas are kept as
// commas.
func splitStructured(s string) []string { return splitEscaped(s, ';') }

// splitList splits a TEXT list value (CATEGORIES) at unescaped commas and
// unescapes each item.
func splitList(s string) []string { return splitEscaped(s, ',') }

// splitEscaped splits s at each sep not escaped by a backslash and
// unescapes each part.
func splitEscaped(s string, sep byte) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case sep:
			out = append(out, unescapeText(s[start:i]))
			start = i + 1
		}
	}
	return append(out, unescapeText(s[start:]))
}

// joinStructured is the inverse of splitStructured; trailing empty
// components are kept so the value has exactly len(parts) components.
func joinStructured(parts []string) string {
	esc := make([]string, len(parts))
	for i, p := range parts {
		esc[i] = escapeText(p)
	}
	return strings.Join(esc, ";")
}

// decodeValue returns the raw value of l with its transfer encoding and
// charset removed (vCard 2.1 QUOTED-PRINTABLE and CHARSET), still escaped.
func decodeValue(l *line) string {
	v := l.value
	if l.isQP() {
		r := quotedprintable.NewReader(strings.NewReader(v))
		if b, err := io.ReadAll(r); err == nil {
			v = string(b)
		} else {
			v = lenientQP(v)
		}
	}
	if cs := l.param("CHARSET"); cs != "" && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "us-ascii") {
		if r, err := charset.Reader(cs, strings.NewReader(v)); err == nil {
			if b, err := io.ReadAll(r); err == nil {
				v = string(b)
			}
		}
	}
	return toValidUTF8(v)
}

// lenientQP decodes =XX escapes and leaves anything else (Outlook writes
// garbage such as "????=0C") as it is.
func lenientQP(s string) string {
	var b bytes.Buffer
	for i := 0; i < len(s); i++ {
		if s[i] == '=' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			i += 2
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

// toValidUTF8 returns s if it is UTF-8, else s read as ISO-8859-1 (the
// usual encoding of undeclared 8-bit text in these formats).
func toValidUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		b.WriteRune(rune(s[i]))
	}
	return b.String()
}

// foldLine writes one content line folded at 75 octets (never inside a UTF-8
// sequence) with the given line ending.
func foldLine(b *strings.Builder, s, eol string) {
	const limit = 75
	first := true
	for len(s) > 0 {
		max := limit
		if !first {
			max = limit - 1
		}
		if len(s) <= max {
			if !first {
				b.WriteByte(' ')
			}
			b.WriteString(s)
			break
		}
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		if cut == 0 {
			cut = max // not UTF-8: fold at the octet limit
		}
		if !first {
			b.WriteByte(' ')
		}
		b.WriteString(s[:cut])
		b.WriteString(eol)
		s = s[cut:]
		first = false
	}
	b.WriteString(eol)
}

// paramValue quotes a parameter value when it needs it (RFC 5545 3.2).
func paramValue(v string) string {
	v = strings.Map(func(r rune) rune {
		if r == '"' || r == '\r' || r == '\n' {
			return '\''
		}
		return r
	}, v)
	if strings.ContainsAny(v, ";:,") || strings.TrimSpace(v) != v {
		return `"` + v + `"`
	}
	return v
}
