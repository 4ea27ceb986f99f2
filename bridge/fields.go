package bridge

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/mapping"
	"github.com/pimbridge/pimbridge/reconcile"
)

var meta = crm.Builtin()

func entityMeta(name string) (*crm.Entity, error) {
	e, err := meta.Entity(name)
	if err != nil {
		return nil, fmt.Errorf("bridge: %w", err)
	}
	return e, nil
}

// fieldsOf returns the mapped fields of rec as reconcile's canonical strings:
// the JSON form of each normalized value (mapping.NewSnapshot), with party
// lists reduced to their addresses (or names when there is no address), so
// that a CRM party resolved to a record and the same address read from the
// PIM side compare equal.
func fieldsOf(rec crm.Record) (reconcile.Fields, error) {
	e, err := entityMeta(rec.Entity)
	if err != nil {
		return nil, err
	}
	snap := mapping.NewSnapshot(rec)
	out := reconcile.Fields{}
	attrs := map[string]any{}
	for k, v := range snap.Fields {
		if v == nil {
			continue
		}
		if ps, ok := v.([]crm.Party); ok {
			canon := make([]crm.Party, 0, len(ps))
			for _, p := range ps {
				q := crm.Party{Address: strings.ToLower(p.Address)}
				if q.Address == "" {
					q.Name = p.Name
				}
				canon = append(canon, q)
			}
			v = canon
		}
		attrs[k] = v
	}
	b, err := e.MarshalRecord(crm.Record{Entity: rec.Entity, Attrs: attrs})
	if err != nil {
		return nil, fmt.Errorf("bridge: fields of %s: %w", rec.Entity, err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("bridge: fields of %s: %w", rec.Entity, err)
	}
	for k := range attrs {
		if v, ok := raw[k]; ok && string(v) != "null" {
			out[k] = string(v)
		}
	}
	return out, nil
}

// attrsOf converts canonical field strings back to CRM values ("" clears).
func attrsOf(entity string, f reconcile.Fields) (map[string]any, error) {
	e, err := entityMeta(entity)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	buf.WriteByte('{')
	first := true
	for _, k := range f.Names() {
		if !first {
			buf.WriteByte(',')
		}
		first = false
		name, _ := json.Marshal(k)
		buf.Write(name)
		buf.WriteByte(':')
		if v := f[k]; v == "" {
			buf.WriteString("null")
		} else {
			buf.WriteString(v)
		}
	}
	buf.WriteByte('}')
	attrs, err := e.DecodeAttrs(buf.Bytes(), crm.DecodeOptions{})
	if err != nil {
		return nil, fmt.Errorf("bridge: values of %s: %w", entity, err)
	}
	return attrs, nil
}

// contentLines returns the unfolded content lines of raw.
func contentLines(raw []byte) []string {
	s := strings.ReplaceAll(string(raw), "\r\n", "\n")
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if (strings.HasPrefix(l, " ") || strings.HasPrefix(l, "\t")) && len(out) > 0 {
			out[len(out)-1] += l[1:]
			continue
		}
		out = append(out, strings.TrimRight(l, "\r"))
	}
	return out
}

// propValues returns the values of every line of property name (any
// parameters, any group prefix), in order.
func propValues(raw []byte, name string) []string {
	var out []string
	for _, l := range contentLines(raw) {
		i := strings.IndexByte(l, ':')
		if i < 0 {
			continue
		}
		n := l[:i]
		if j := strings.IndexByte(n, ';'); j >= 0 {
			n = n[:j]
		}
		if j := strings.LastIndexByte(n, '.'); j >= 0 {
			n = n[j+1:]
		}
		if strings.EqualFold(n, name) {
			out = append(out, l[i+1:])
		}
	}
	return out
}

// hasCategory reports whether the object lists cat in CATEGORIES.
func hasCategory(raw []byte, cat string) bool {
	for _, v := range propValues(raw, "CATEGORIES") {
		for _, c := range splitUnescaped(v, ',') {
			if strings.EqualFold(strings.TrimSpace(c), cat) {
				return true
			}
		}
	}
	return false
}

func splitUnescaped(s string, sep byte) []string {
	var out []string
	var cur strings.Builder
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\\' && i+1 < len(s):
			cur.WriteByte(s[i+1])
			i++
		case s[i] == sep:
			out = append(out, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(s[i])
		}
	}
	return append(out, cur.String())
}

// orgCompany returns the company component of the first ORG line.
func orgCompany(raw []byte) string {
	v := propValues(raw, "ORG")
	if len(v) == 0 {
		return ""
	}
	return strings.TrimSpace(splitUnescaped(v[0], ';')[0])
}

// modTime returns the PIM object's own modification time: REV for a vCard,
// LAST-MODIFIED (else DTSTAMP) for iCalendar; zero when absent or
// unreadable.
func modTime(raw []byte) time.Time {
	for _, name := range []string{"REV", "LAST-MODIFIED", "DTSTAMP"} {
		for _, v := range propValues(raw, name) {
			if t, ok := parseStamp(v); ok {
				return t
			}
		}
	}
	return time.Time{}
}

func parseStamp(v string) (time.Time, bool) {
	v = strings.TrimSpace(v)
	for _, layout := range []string{"20060102T150405Z", "2006-01-02T15:04:05Z07:00", "20060102T150405", "2006-01-02T15:04:05Z", "20060102"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

// addCategory adds a CATEGORIES line to a new object written by mapping
// (one component, CRLF line ends), before its END:VCARD, END:VTODO or
// END:VEVENT line.
func addCategory(data []byte, cat string) []byte {
	s := string(data)
	for _, end := range []string{"END:VCARD\r\n", "END:VTODO\r\n", "END:VEVENT\r\n"} {
		if i := strings.Index(s, end); i >= 0 {
			return []byte(s[:i] + "CATEGORIES:" + escapeText(cat) + "\r\n" + s[i:])
		}
	}
	return data
}

func escapeText(s string) string {
	return strings.NewReplacer("\\", "\\\\", ",", "\\,", ";", "\\;", "\n", "\\n").Replace(s)
}
