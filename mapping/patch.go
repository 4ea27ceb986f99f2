package mapping

import (
	"mime/quotedprintable"
	"slices"
	"strings"
)

// edit replaces raw[start:end] with text (start == end inserts).
type edit struct {
	start, end int
	text       string
	seq        int
}

// patcher collects line edits over a document and applies them, copying
// every byte outside the edited lines unchanged.
type patcher struct {
	d       *document
	edits   []edit
	removed map[*line]bool
	ver     string // vCard version ("2.1", "3.0", "4.0"); "" for iCalendar
}

func newPatcher(d *document, ver string) *patcher {
	return &patcher{d: d, removed: map[*line]bool{}, ver: ver}
}

// cline is a content line to write.
type cline struct {
	group  string
	name   string
	params []param
	value  string // already escaped
}

func fromLine(l *line) cline {
	return cline{group: l.group, name: l.name, params: slices.Clone(l.params), value: l.value}
}

func (c *cline) setParam(name string, values ...string) {
	for i := range c.params {
		if c.params[i].name == name {
			if len(values) == 0 {
				c.params = slices.Delete(c.params, i, i+1)
			} else {
				c.params[i].values = values
			}
			return
		}
	}
	if len(values) > 0 {
		c.params = append(c.params, param{name: name, values: values})
	}
}

// dropEncoding removes vCard 2.1 transfer encoding and charset parameters;
// the patcher adds them again when a 2.1 value needs them.
func (c *cline) dropEncoding() {
	c.params = slices.DeleteFunc(c.params, func(p param) bool {
		return p.name == "CHARSET" || p.name == "QUOTED-PRINTABLE" ||
			p.name == "ENCODING" && len(p.values) > 0 && strings.EqualFold(p.values[0], "QUOTED-PRINTABLE")
	})
}

// render returns the folded text of c with the document's line ending.
func (p *patcher) render(c cline) string {
	var head strings.Builder
	if c.group != "" {
		head.WriteString(c.group)
		head.WriteByte('.')
	}
	head.WriteString(c.name)
	value := c.value
	qp := false
	if p.ver == "2.1" {
		c.dropEncoding()
		if needsQP(value) {
			c.params = append(c.params, param{name: "CHARSET", values: []string{"UTF-8"}}, param{name: "ENCODING", values: []string{"QUOTED-PRINTABLE"}})
			value = encodeQP(value)
			qp = true
		}
	}
	for _, pa := range c.params {
		head.WriteByte(';')
		head.WriteString(pa.name)
		for i, v := range pa.values {
			if i == 0 {
				head.WriteByte('=')
			} else {
				head.WriteByte(',')
			}
			head.WriteString(paramValue(v))
		}
	}
	head.WriteByte(':')
	head.WriteString(value)
	var b strings.Builder
	if qp {
		b.WriteString(head.String())
		b.WriteString(p.d.eol)
	} else {
		foldLine(&b, head.String(), p.d.eol)
	}
	return b.String()
}

func needsQP(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 || s[i] == '\n' || s[i] == '\r' {
			return true
		}
	}
	return false
}

func encodeQP(s string) string {
	s = strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\n", "\r\n")
	var b strings.Builder
	w := quotedprintable.NewWriter(&b)
	w.Binary = true
	w.Write([]byte(s))
	w.Close()
	// One logical line: drop the writer's soft breaks.
	return strings.ReplaceAll(b.String(), "=\r\n", "")
}

func (p *patcher) replace(l *line, c cline) {
	p.edits = append(p.edits, edit{start: l.start, end: l.end, text: p.render(c), seq: len(p.edits)})
}

func (p *patcher) remove(l *line) {
	if p.removed[l] {
		return
	}
	p.removed[l] = true
	p.edits = append(p.edits, edit{start: l.start, end: l.end, seq: len(p.edits)})
}

// insert adds c before byte offset pos (the start of a line).
func (p *patcher) insert(pos int, c cline) {
	p.edits = append(p.edits, edit{start: pos, end: pos, text: p.render(c), seq: len(p.edits)})
}

// bytes applies the edits. Overlapping edits of the same line keep the first.
func (p *patcher) bytes() []byte {
	if len(p.edits) == 0 {
		return p.d.raw
	}
	slices.SortStableFunc(p.edits, func(a, b edit) int {
		if a.start != b.start {
			return a.start - b.start
		}
		// Insertions before replacements at the same offset.
		if (a.end == a.start) != (b.end == b.start) {
			if a.end == a.start {
				return -1
			}
			return 1
		}
		return a.seq - b.seq
	})
	var out []byte
	pos := 0
	for _, e := range p.edits {
		if e.start < pos {
			continue
		}
		out = append(out, p.d.raw[pos:e.start]...)
		out = append(out, e.text...)
		pos = e.end
	}
	// A raw object that does not end with a line terminator: keep it so.
	out = append(out, p.d.raw[pos:]...)
	return out
}
