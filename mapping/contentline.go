package mapping

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"
)

// line is one logical content line (RFC 5545 3.1, RFC 6350 3.2) of a raw
// object: the physical lines it was folded into, unfolded.
type line struct {
	start, end int    // byte range in the raw object, line terminators included
	num        int    // 1-based number of the first physical line
	group      string // vCard group (item1), as written
	name       string // upper-cased property name
	params     []param
	value      string // unfolded value, still escaped / encoded
	typs       []string
	typsOK     bool // typs computed
}

type param struct {
	name   string // upper-cased
	values []string
}

// param returns the first value of the named parameter, or "".
func (l *line) param(name string) string {
	for _, p := range l.params {
		if p.name == name && len(p.values) > 0 {
			return p.values[0]
		}
	}
	return ""
}

func (l *line) hasParam(name string) bool {
	for _, p := range l.params {
		if p.name == name {
			return true
		}
	}
	return false
}

// types returns the lower-cased TYPE values, including vCard 2.1 bare
// parameters (TEL;WORK;VOICE).
func (l *line) types() []string {
	if !l.typsOK {
		l.typs, l.typsOK = l.computeTypes(), true
	}
	return l.typs
}

func (l *line) computeTypes() []string {
	var out []string
	for _, p := range l.params {
		switch {
		case p.name == "TYPE":
			for _, v := range p.values {
				for s := range strings.SplitSeq(v, ",") {
					out = append(out, strings.ToLower(strings.TrimSpace(s)))
				}
			}
		case len(p.values) == 0:
			out = append(out, strings.ToLower(p.name))
		}
	}
	return out
}

func (l *line) hasType(t string) bool {
	for _, x := range l.types() {
		if x == t {
			return true
		}
	}
	return false
}

// isQP reports whether the value is quoted-printable (vCard 2.1).
func (l *line) isQP() bool {
	for _, p := range l.params {
		if p.name == "ENCODING" && len(p.values) > 0 && strings.EqualFold(p.values[0], "QUOTED-PRINTABLE") {
			return true
		}
		if p.name == "QUOTED-PRINTABLE" && len(p.values) == 0 {
			return true
		}
	}
	return false
}

// component is a BEGIN/END block.
type component struct {
	name     string
	begin    *line // nil for the document root
	endLine  *line
	props    []*line
	children []*component
}

// prop returns the first property with the given name, or nil.
func (c *component) prop(name string) *line {
	for _, p := range c.props {
		if p.name == name {
			return p
		}
	}
	return nil
}

func (c *component) all(name string) []*line {
	var out []*line
	for _, p := range c.props {
		if p.name == name {
			out = append(out, p)
		}
	}
	return out
}

// document is a parsed raw object: its bytes, the line ending it uses and
// its top-level components.
type document struct {
	raw     []byte
	eol     string
	lines   []*line
	root    component
	defects []Defect
	// truncated: components had no END line; closeEnds holds the END
	// lines that complete the object, innermost first.
	truncated bool
	closeEnds string
}

// errNoColon marks a content line without a value separator.
var errNoColon = errors.New("content line has no ':'")

// parseDocument splits raw into logical lines and components. kind names the
// format for errors ("vcard" or "ical"). It repairs what it can and lists it
// in d.defects: a line without a colon is skipped, a bad parameter list is
// read as far as it goes, non-UTF-8 iCalendar text is read as Windows-1252,
// properties before a missing BEGIN form the component their END closes, a
// missing END closes the component at the end of the input. END not
// matching its BEGIN, or no component at all, is a *ParseError.
func parseDocument(rawBytes []byte, kind string) (*document, error) {
	d := &document{raw: rawBytes, eol: "\r\n"}
	if i := bytes.IndexByte(rawBytes, '\n'); i > 0 && rawBytes[i-1] != '\r' {
		d.eol = "\n"
	}
	stack := []*component{&d.root}
	raw := string(rawBytes)
	slab := make([]line, 0, strings.Count(raw, "\n")+1)
	d.lines = make([]*line, 0, cap(slab))
	pos, num := 0, 0
	if strings.HasPrefix(raw, "\ufeff") {
		pos = 3 // a UTF-8 byte order mark (some Windows exporters)
	}
	var prev *line          // last property, for 2.1 base64 blocks
	var implicit *component // open component whose BEGIN is missing
	for pos < len(raw) {
		start, startNum := pos, num+1
		// One physical line.
		text, next := physLine(raw, pos)
		pos, num = next, num+1
		if strings.TrimSpace(text) == "" {
			continue // blank lines: between cards, after 2.1 base64 blocks
		}
		logical := text
		// Folded continuation lines.
		if pos < len(raw) && (raw[pos] == ' ' || raw[pos] == '\t') {
			var sb strings.Builder
			sb.WriteString(text)
			for pos < len(raw) && (raw[pos] == ' ' || raw[pos] == '\t') {
				t, n := physLine(raw, pos)
				sb.WriteString(t[1:])
				pos, num = n, num+1
			}
			logical = sb.String()
		}
		if prev != nil && prev.end == start && isBase64Continuation(prev, logical) {
			prev.value += strings.TrimSpace(logical)
			prev.end = pos
			continue
		}
		slab = append(slab, line{})
		l := &slab[len(slab)-1]
		err := splitLineInto(l, logical)
		if errors.Is(err, errNoColon) {
			// Real clients write such lines (a property without a value);
			// skip it, keep its bytes.
			*l = line{}
			d.defects = append(d.defects, Defect{Kind: DefectNoColon, Line: startNum, Detail: fmt.Sprintf("%.40q skipped", logical)})
			slab = slab[:len(slab)-1]
			continue
		}
		if err != nil {
			// A bad parameter list: the value after the first ':' outside
			// quotes, the parameters that parse.
			if !lenientSplit(l, logical) {
				return nil, &ParseError{Item: kind, Line: startNum, Err: err}
			}
			d.defects = append(d.defects, Defect{Kind: DefectBadParam, Property: l.name, Line: startNum, Detail: strings.TrimPrefix(err.Error(), ErrMalformed.Error()+": ")})
		}
		l.start, l.num = start, startNum
		// vCard 2.1 quoted-printable soft line breaks.
		if l.isQP() {
			for strings.HasSuffix(l.value, "=") && pos < len(raw) {
				t, n := physLine(raw, pos)
				if isBeginEnd(t) {
					break
				}
				l.value = l.value[:len(l.value)-1] + t
				pos, num = n, num+1
			}
		}
		l.end = pos
		if kind == "ical" && !utf8.ValidString(l.value) {
			// iCalendar 2.0 text is UTF-8 (RFC 5545 3.1.4) and has no
			// CHARSET parameter; what else there is is mostly Latin-1.
			l.value, _ = charmap.Windows1252.NewDecoder().String(l.value)
			d.defects = append(d.defects, Defect{Kind: DefectNotUTF8, Property: l.name, Line: l.num, Detail: "read as Windows-1252"})
		}
		d.lines = append(d.lines, l)
		top := stack[len(stack)-1]
		if implicit != nil && top == implicit && l.name == "BEGIN" {
			// Lines outside any component, then a real BEGIN: not a card.
			d.defects = append(d.defects, Defect{Kind: DefectMissingBegin, Line: implicit.props[0].num, Detail: "lines outside BEGIN/END skipped"})
			stack, implicit = stack[:1], nil
			top = stack[0]
		}
		switch l.name {
		case "BEGIN":
			c := &component{name: strings.ToUpper(strings.TrimSpace(l.value)), begin: l}
			top.children = append(top.children, c)
			stack = append(stack, c)
			prev = nil
		case "END":
			name := strings.ToUpper(strings.TrimSpace(l.value))
			if len(stack) == 1 {
				return nil, &ParseError{Item: kind, Property: "END", Line: l.num, Err: fmt.Errorf("%w: END:%s without BEGIN", ErrMalformed, name)}
			}
			if top == implicit {
				// END of a component whose BEGIN is missing: it holds the
				// lines before it.
				top.name = name
				first := top.props[0]
				top.begin = &line{start: first.start, end: first.start, num: first.num, name: "BEGIN", value: name}
				d.root.children = append(d.root.children, top)
				d.defects = append(d.defects, Defect{Kind: DefectMissingBegin, Property: "BEGIN", Line: top.props[0].num, Detail: "BEGIN:" + name + " missing"})
				implicit = nil
			}
			if top.name != name {
				return nil, &ParseError{Item: kind, Property: "END", Line: l.num, Err: fmt.Errorf("%w: END:%s closes BEGIN:%s", ErrMalformed, name, top.name)}
			}
			top.endLine = l
			stack = stack[:len(stack)-1]
			prev = nil
		default:
			if len(stack) == 1 {
				implicit = &component{name: "?"}
				stack = append(stack, implicit)
				top = implicit
			}
			top.props = append(top.props, l)
			prev = l
		}
	}
	if implicit != nil {
		d.defects = append(d.defects, Defect{Kind: DefectMissingBegin, Line: implicit.props[0].num, Detail: "lines outside BEGIN/END skipped"})
		stack = stack[:len(stack)-1]
	}
	if len(stack) > 1 {
		// Truncated: every open component ends at the end of the input.
		top := stack[len(stack)-1]
		d.defects = append(d.defects, Defect{Kind: DefectMissingEnd, Property: "END", Line: top.begin.num, Detail: "BEGIN:" + top.name + " without END (truncated)"})
		d.truncated = true
		for i := len(stack) - 1; i >= 1; i-- {
			c := stack[i]
			c.endLine = &line{start: len(raw), end: len(raw), num: num + 1, name: "END"}
			d.closeEnds += "END:" + c.name + d.eol
		}
	}
	if len(d.root.children) == 0 {
		return nil, &ParseError{Item: kind, Line: 1, Err: fmt.Errorf("%w: no BEGIN line", ErrMalformed)}
	}
	return d, nil
}

func isBeginEnd(t string) bool {
	u := strings.ToUpper(t)
	return strings.HasPrefix(u, "END:") || strings.HasPrefix(u, "BEGIN:")
}

// isBase64Continuation reports whether an unindented line continues the
// base64 value of prev, as vCard 2.1 writers (Android, Outlook) do.
func isBase64Continuation(prev *line, s string) bool {
	enc := strings.ToUpper(prev.param("ENCODING"))
	if enc != "BASE64" && enc != "B" && !prev.hasParam("BASE64") {
		return false
	}
	if strings.ContainsAny(s, ":;") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/' || c == '=' || c == ' ' || c == '\t') {
			return false
		}
	}
	return true
}

// physLine returns the physical line at pos without its terminator and the
// position after the terminator (CRLF, LF or a lone CR).
func physLine(raw string, pos int) (string, int) {
	i := strings.IndexAny(raw[pos:], "\r\n")
	if i < 0 {
		return raw[pos:], len(raw)
	}
	end := pos + i
	next := end + 1
	if raw[end] == '\r' {
		for next < len(raw) && raw[next] == '\r' {
			next++ // "\r\r\n" (seen in Apple exports) is one line end
		}
		if next < len(raw) && raw[next] == '\n' {
			next++
		} else {
			next = end + 1
		}
	}
	return raw[pos:end], next
}

// splitLine splits an unfolded content line into group, name, parameters and
// value.
func splitLine(s string) (*line, error) {
	l := &line{}
	if err := splitLineInto(l, s); err != nil {
		return nil, err
	}
	return l, nil
}

func splitLineInto(l *line, s string) error {
	i := 0
	for i < len(s) && s[i] != ';' && s[i] != ':' {
		i++
	}
	if i == len(s) {
		name := s
		if len(name) > 40 {
			name = name[:40] + "…"
		}
		return fmt.Errorf("%w: %w: %q", ErrMalformed, errNoColon, name)
	}
	name := strings.TrimSpace(s[:i])
	if dot := strings.LastIndexByte(name, '.'); dot >= 0 {
		l.group, name = name[:dot], name[dot+1:]
	}
	if name == "" {
		return fmt.Errorf("%w: content line without a property name", ErrMalformed)
	}
	l.name = strings.ToUpper(name)
	for i < len(s) && s[i] == ';' {
		i++
		j := i
		for j < len(s) && s[j] != '=' && s[j] != ';' && s[j] != ':' {
			j++
		}
		p := param{name: strings.ToUpper(strings.TrimSpace(s[i:j]))}
		if j < len(s) && s[j] == '=' {
			j++
			for {
				var v string
				if j < len(s) && s[j] == '"' {
					k := strings.IndexByte(s[j+1:], '"')
					if k < 0 {
						return fmt.Errorf("%w: %s: unterminated quoted parameter value", ErrMalformed, l.name)
					}
					v = s[j+1 : j+1+k]
					j += k + 2
				} else {
					k := j
					for k < len(s) && s[k] != ',' && s[k] != ';' && s[k] != ':' {
						k++
					}
					v = s[j:k]
					if v == "" && k < len(s) && (s[k] == ',' || p.name == "TYPE") {
						return fmt.Errorf("%w: %s: empty value in parameter %s", ErrMalformed, l.name, p.name)
					}
					j = k
				}
				p.values = append(p.values, v)
				if j < len(s) && s[j] == ',' {
					j++
					if j >= len(s) || s[j] == ';' || s[j] == ':' {
						return fmt.Errorf("%w: %s: empty value in parameter %s", ErrMalformed, l.name, p.name)
					}
					continue
				}
				break
			}
		} else if strings.ContainsRune(p.name, ',') {
			return fmt.Errorf("%w: %s: bare parameter %q is a list", ErrMalformed, l.name, p.name)
		}
		l.params = append(l.params, p)
		i = j
	}
	if i >= len(s) || s[i] != ':' {
		return fmt.Errorf("%w: %s: %w", ErrMalformed, l.name, errNoColon)
	}
	l.value = s[i+1:]
	return nil
}

// lenientSplit reads a line whose parameter list does not parse: the name,
// the parameters up to the broken one, and the value after the first ':'
// outside double quotes (or the first ':' at all). It reports false when
// there is no ':' or no name.
func lenientSplit(l *line, s string) bool {
	inQ, colon := false, -1
	for i := 0; i < len(s); i++ {
		if s[i] == '"' {
			inQ = !inQ
		} else if s[i] == ':' && !inQ {
			colon = i
			break
		}
	}
	if colon < 0 {
		colon = strings.IndexByte(s, ':')
	}
	if colon < 0 {
		return false
	}
	head := s[:colon]
	name, rest, _ := strings.Cut(head, ";")
	name = strings.TrimSpace(name)
	group := ""
	if dot := strings.LastIndexByte(name, '.'); dot >= 0 {
		group, name = name[:dot], name[dot+1:]
	}
	if name == "" {
		return false
	}
	*l = line{group: group, name: strings.ToUpper(name), value: s[colon+1:]}
	for _, ps := range strings.Split(rest, ";") {
		pn, pv, ok := strings.Cut(ps, "=")
		pn = strings.ToUpper(strings.TrimSpace(pn))
		if pn == "" || strings.Contains(pv, `"`) {
			continue
		}
		p := param{name: pn}
		if ok {
			for _, v := range strings.Split(pv, ",") {
				if v != "" {
					p.values = append(p.values, v)
				}
			}
			if len(p.values) == 0 {
				continue
			}
		}
		l.params = append(l.params, p)
	}
	return true
}

// completed returns the raw bytes of a truncated document with its missing
// END lines appended (after a line end when the input stops mid-line).
func (d *document) completed() []byte {
	out := append([]byte(nil), d.raw...)
	if len(out) > 0 && out[len(out)-1] != '\n' {
		out = append(out, d.eol...)
	}
	return append(out, d.closeEnds...)
}
