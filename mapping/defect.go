package mapping

import (
	"fmt"
	"strings"
	"time"

	"github.com/pimbridge/pimbridge/crm"
)

// DefectKind names one kind of flaw in an input that the mapping repaired or
// stepped around (the package doc says where the line between "broken" and
// "repaired" runs). The names are stable: logs and tests use them.
type DefectKind string

// E-mail defects (after Python's email.errors, whose names they follow where
// one exists).
const (
	// DefectFirstLineContinuation: the header block starts with an indented
	// (or whitespace-only) line; it is dropped.
	DefectFirstLineContinuation DefectKind = "first-header-line-is-continuation"
	// DefectWhitespaceHeaderLine: a whitespace-only line inside a folded
	// header; it is dropped.
	DefectWhitespaceHeaderLine DefectKind = "whitespace-only-header-line"
	// DefectHeaderNoColon: a header line without a colon; it is joined to
	// the header before it (as Exchange folds), or starts the body when no
	// header precedes it.
	DefectHeaderNoColon DefectKind = "missing-header-body-separator"
	// DefectDuplicateHeader: a header that may appear once appears again.
	// Address lists (To, Cc, Bcc) are merged; for the others the first
	// wins and the later value is in the defect's detail.
	DefectDuplicateHeader DefectKind = "duplicate-header"
	// DefectHeader8Bit: raw 8-bit header bytes that are not UTF-8; read in
	// the message's charset, else Windows-1252.
	DefectHeader8Bit DefectKind = "non-utf8-header"
	// DefectEncodedWord: an encoded word (RFC 2047) that cannot be decoded
	// (unknown charset, bad base64); its text is kept as written.
	DefectEncodedWord DefectKind = "undecodable-encoded-word"
	// DefectUnknownCharset: a body in a charset nobody knows; read as
	// UTF-8 when valid, else as Windows-1252.
	DefectUnknownCharset DefectKind = "unknown-charset"
	// DefectTransferEncoding: an unknown or broken Content-Transfer-Encoding
	// (bad base64); what decodes is kept, an unknown encoding is taken as is.
	DefectTransferEncoding DefectKind = "invalid-transfer-encoding"
	// DefectContentType: a Content-Type that does not parse; the media type
	// and boundary are read leniently.
	DefectContentType DefectKind = "invalid-content-type"
	// DefectNoBoundary: a multipart without a boundary parameter; its body
	// is read as text.
	DefectNoBoundary DefectKind = "no-boundary-in-multipart"
	// DefectStartBoundary: a multipart whose boundary never occurs; its
	// body is read as text.
	DefectStartBoundary DefectKind = "start-boundary-not-found"
	// DefectCloseBoundary: a multipart without its closing boundary
	// (truncated); the last part runs to the end.
	DefectCloseBoundary DefectKind = "close-boundary-not-found"
	// DefectBoundarySpacing: a boundary line with trailing white space or a
	// boundary parameter written with spaces around "=".
	DefectBoundarySpacing DefectKind = "boundary-spacing"
	// DefectAddress: an address header that does not parse; its parties are
	// left out.
	DefectAddress DefectKind = "invalid-address-header"
	// DefectDate: a Date header that does not parse; senton stays empty.
	DefectDate DefectKind = "invalid-date-header"
	// DefectTooDeep: MIME nesting deeper than 20 levels; the rest is skipped.
	DefectTooDeep DefectKind = "nesting-too-deep"
)

// vCard and iCalendar defects. Those with a Field leave that CRM field as it
// was and the PIM line untouched.
const (
	// DefectYearlessDate: a date without a year (vCard 4 --MMDD, or the
	// 1604 "no year" of Apple and CardBook).
	DefectYearlessDate DefectKind = "yearless-date"
	// DefectDateRange: a date outside the CRM's 1753-01-01..9999-12-31.
	DefectDateRange DefectKind = "date-out-of-range"
	// DefectBadDate: a date or date-time value that does not parse (or a
	// VALUE=text date).
	DefectBadDate DefectKind = "invalid-date"
	// DefectBadDuration: a DURATION that does not parse.
	DefectBadDuration DefectKind = "invalid-duration"
	// DefectBadTrigger: a VALARM TRIGGER that is neither a duration nor a
	// date-time (alarms are not mapped; the line is kept).
	DefectBadTrigger DefectKind = "invalid-alarm-trigger"
	// DefectBadStamp: a REV, DTSTAMP or LAST-MODIFIED that does not parse;
	// a write leaves it as it is.
	DefectBadStamp DefectKind = "invalid-timestamp"
	// DefectBadCRMID: an X-CRM-ID that is not an id; the record has none.
	DefectBadCRMID DefectKind = "invalid-crm-id"
	// DefectNotUTF8: iCalendar or vCard 3/4 text that is not UTF-8; read as
	// Windows-1252.
	DefectNotUTF8 DefectKind = "non-utf8-text"
	// DefectQPInV3: quoted-printable in a vCard 3.0 or 4.0 (a 2.1 habit);
	// decoded anyway.
	DefectQPInV3 DefectKind = "quoted-printable-in-vcard3"
	// DefectBadParam: a parameter list that does not parse (an empty value,
	// a trailing comma, an unterminated quote); the line's value is read, its
	// parameters as far as they go.
	DefectBadParam DefectKind = "invalid-parameter"
	// DefectNoColon: a content line without ':'; skipped, its bytes kept.
	DefectNoColon DefectKind = "line-without-colon"
	// DefectMissingBegin: properties before the first BEGIN (a card whose
	// BEGIN:VCARD is missing); they are read as the first card.
	DefectMissingBegin DefectKind = "missing-begin"
	// DefectMissingEnd: an object without its END line (truncated); what was
	// read is mapped, and a write appends the missing END lines.
	DefectMissingEnd DefectKind = "missing-end"
	// DefectEmptyComponent: a VCARD, VEVENT or VTODO from which no mapped
	// field can be read; it is skipped (an object with nothing else is a
	// *ParseError).
	DefectEmptyComponent DefectKind = "empty-component"
	// DefectNoN: a vCard without N; the names are taken from FN.
	DefectNoN DefectKind = "names-from-fn"
)

// DefectTruncated: a value longer than its CRM attribute allows, cut to fit
// (any kind of input).
const DefectTruncated DefectKind = "value-truncated"

// Defect is one flaw of an input and what was done about it.
type Defect struct {
	Kind DefectKind
	// Property is the header or property name, "" when none.
	Property string
	// Line is the 1-based line, 0 when unknown.
	Line int
	// Field is the CRM attribute the flaw touches, several joined by ", ":
	// left as it was (vCard, iCalendar) or left empty (e-mail). "" when
	// none.
	Field string
	// Detail says what was found, with the text as written.
	Detail string
}

func (d Defect) String() string {
	var b strings.Builder
	if d.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", d.Line)
	}
	if d.Property != "" {
		b.WriteString(d.Property + ": ")
	}
	b.WriteString(string(d.Kind))
	if d.Detail != "" {
		b.WriteString(": " + d.Detail)
	}
	if d.Field != "" {
		b.WriteString(" (" + d.Field + " left as it was)")
	}
	return b.String()
}

// defectStrings renders defects for the deprecated Warnings fields.
func defectStrings(ds []Defect) []string {
	if len(ds) == 0 {
		return nil
	}
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.String()
	}
	return out
}

// DefectFields returns the CRM attributes the defects leave as they were;
// a caller merging the record keeps its own values of these.
func DefectFields(ds []Defect) []string {
	var out []string
	for _, d := range ds {
		if d.Field == "" {
			continue
		}
		for _, f := range strings.Split(d.Field, ", ") {
			if !containsStr(out, f) {
				out = append(out, f)
			}
		}
	}
	return out
}

func containsStr(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// usable reports whether a mapped record holds anything a user wrote: a
// non-empty text, time or party field (format defaults such as priority,
// state or all-day do not count).
func usable(a map[string]any) bool {
	for _, v := range a {
		switch x := normValue(v).(type) {
		case string, time.Time:
			return true
		case []crm.Party:
			return len(x) > 0
		}
	}
	return false
}
