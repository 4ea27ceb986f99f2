package mapping

import (
	"fmt"
	"strings"
	"time"

	"github.com/pimbridge/pimbridge/crm"
)

// NewVCard writes rec (a contact) as a new vCard 3.0 with UID, FN, N, the
// mapped fields that are set, X-CRM-ID and REV.
func NewVCard(rec crm.Record, opts *Options) ([]byte, error) {
	if rec.Entity != "" && rec.Entity != crm.EntityContact {
		return nil, fmt.Errorf("mapping: new vcard: %w: entity %q is not a contact", crm.ErrInvalidArgument, rec.Entity)
	}
	skel := "BEGIN:VCARD\r\nVERSION:3.0\r\nPRODID:" + escapeText(opts.prodID()) + "\r\nUID:" + escapeText(opts.uid(rec)) +
		"\r\nREV:" + opts.now().Format("20060102T150405Z") + "\r\nN:;;;;\r\nFN:" + escapeText(composeFN(normAttrs(rec.Attrs))) + "\r\n" + opts.categoriesLine() + "END:VCARD\r\n"
	return PatchVCard([]byte(skel), rec, opts)
}

// PatchVCard applies the mapped attributes present in rec.Attrs (nil
// clears) to the raw vCard and returns the new bytes. Only the lines of
// properties whose mapped value changes are rewritten (plus FN when it was
// derived from N, REV when present, and X-CRM-ID); every other byte is kept.
// With several cards in raw, the one whose X-CRM-ID is rec.ID is patched,
// else the first. The vCard version and line endings of raw are kept.
func PatchVCard(raw []byte, rec crm.Record, opts *Options) ([]byte, error) {
	d, err := parseDocument(raw, "vcard")
	if err != nil {
		return nil, err
	}
	var k *card
	kUsable := false
	for _, c := range d.root.children {
		if c.name != "VCARD" {
			continue
		}
		kc := newCard(c)
		if l := c.prop("X-CRM-ID"); l != nil && rec.ID != (crm.ID{}) && strings.EqualFold(strings.TrimSpace(l.value), rec.ID.String()) {
			k = kc
			break
		}
		// Else the first card VCardToCRM maps (it skips empty ones).
		if k == nil || !kUsable {
			r, err := readContact(kc)
			ok := err == nil && usable(r.Record.Attrs)
			if k == nil || ok {
				k, kUsable = kc, ok
			}
		}
	}
	if k == nil {
		return nil, &ParseError{Item: "vcard", Err: fmt.Errorf("%w: no VCARD", ErrMalformed)}
	}
	cur, err := readContact(k)
	if err != nil {
		return nil, err
	}
	if err := checkAttrs(crm.EntityContact, rec); err != nil {
		return nil, err
	}
	want := make(map[string]any, len(cur.Record.Attrs))
	for f, v := range cur.Record.Attrs {
		want[f] = v
	}
	for _, f := range contactFields {
		if v, ok := rec.Attrs[f]; ok {
			want[f] = normValue(v)
		}
	}
	// A field whose PIM line the CRM cannot hold (a year-less birthday)
	// keeps that line: a CRM write never clears or replaces it.
	for _, f := range DefectFields(cur.Defects) {
		want[f] = cur.Record.Attrs[f]
	}
	changed := func(fs ...string) bool {
		for _, f := range fs {
			if !sameValue(cur.Record.Attrs[f], want[f]) {
				return true
			}
		}
		return false
	}
	p := newPatcher(d, k.ver)
	end := k.c.endLine.start
	str := func(f string) string { s, _ := want[f].(string); return s }

	// N and FN.
	names := []string{"lastname", "firstname", "middlename", "salutation"}
	if changed(names...) {
		l := k.c.prop("N")
		var n []string
		if l != nil {
			n = k.split(l)
		}
		for len(n) < 5 {
			n = append(n, "")
		}
		for i, f := range names {
			n[i] = str(f)
		}
		c := cline{name: "N", value: k.structured(n)}
		if l != nil {
			c = fromLine(l)
			c.value = k.structured(n)
			p.replace(l, c)
		} else {
			p.insert(end, c)
		}
		oldFN := composeFN(cur.Record.Attrs)
		if fl := k.c.prop("FN"); fl == nil {
			p.insert(end, cline{name: "FN", value: k.esc(composeFN(want))})
		} else if v := strings.TrimSpace(k.text(fl)); v == oldFN || v == "" {
			c := fromLine(fl)
			c.value = k.esc(composeFN(want))
			p.replace(fl, c)
		}
	}
	// ORG: department, and the company one way.
	if changed("department") || opts != nil && opts.SetCompany {
		l := k.c.prop("ORG")
		var org []string
		if l != nil {
			org = k.split(l)
		}
		before := strings.Join(org, ";")
		for len(org) < 2 {
			org = append(org, "")
		}
		org[1] = str("department")
		if opts != nil && opts.SetCompany {
			org[0] = opts.Company
		}
		for len(org) > 1 && org[len(org)-1] == "" {
			org = org[:len(org)-1]
		}
		switch {
		case strings.Join(org, ";") == before:
		case l != nil && len(org) == 1 && org[0] == "":
			p.remove(l)
		case l != nil:
			c := fromLine(l)
			c.value = k.structured(org)
			p.replace(l, c)
		case len(org) > 1 || org[0] != "":
			p.insert(end, cline{name: "ORG", value: k.structured(org)})
		}
	}
	// Phones.
	for _, f := range []string{"assistantphone", "telephone1", "telephone2", "telephone3", "mobilephone", "fax", "pager"} {
		if changed(f) {
			k.setLine(p, k.tel(f), str(f), cline{name: "TEL", params: k.telParams(f)}, false)
		}
	}
	// E-mail 1..3 by position.
	emails := k.emails()
	for i := 0; i < 3; i++ {
		f := fmt.Sprintf("emailaddress%d", i+1)
		if !changed(f) {
			continue
		}
		var l *line
		if i < len(emails) {
			l = emails[i]
		}
		k.setLine(p, l, str(f), cline{name: "EMAIL", params: k.emailParams()}, false)
	}
	if changed("websiteurl") {
		k.setLine(p, k.url(false), str("websiteurl"), cline{name: "URL", params: k.typeParams("WORK")}, false)
	}
	if changed("ftpsiteurl") {
		k.setLine(p, k.url(true), str("ftpsiteurl"), cline{name: "URL", params: k.typeParams("X-FTP")}, false)
	}
	// Mailing address.
	adrFields := []string{"address1_postofficebox", "address1_line1", "address1_line2", "address1_line3",
		"address1_city", "address1_stateorprovince", "address1_postalcode", "address1_country"}
	if changed(adrFields...) {
		l := k.adr()
		var adr []string
		if l != nil {
			adr = k.split(l)
		}
		for len(adr) < 7 {
			adr = append(adr, "")
		}
		var street []string
		for _, f := range []string{"address1_line1", "address1_line2", "address1_line3"} {
			street = append(street, str(f))
		}
		for len(street) > 0 && street[len(street)-1] == "" {
			street = street[:len(street)-1]
		}
		adr[0], adr[2] = str("address1_postofficebox"), strings.Join(street, "\n")
		adr[3], adr[4], adr[5], adr[6] = str("address1_city"), str("address1_stateorprovince"), str("address1_postalcode"), str("address1_country")
		empty := strings.Join(adr, "") == ""
		switch {
		case l != nil && empty:
			k.removeGrouped(p, l)
		case l != nil:
			c := fromLine(l)
			c.value = k.structured(adr)
			p.replace(l, c)
		case !empty:
			p.insert(end, cline{name: "ADR", params: k.typeParams("WORK"), value: k.structured(adr)})
		}
	}
	for i := range singles {
		s := &singles[i]
		if !changed(s.field) {
			continue
		}
		l := k.single(s)
		var v string
		if s.date {
			if t, ok := want[s.field].(time.Time); ok {
				v = k.date(t, l)
			}
		} else {
			v = str(s.field)
		}
		name := s.write
		if s.field == "anniversary" && k.ver == "4.0" {
			name = "ANNIVERSARY"
		}
		c := cline{name: name}
		if l != nil && s.date {
			c = fromLine(l)
			c.setParam("VALUE")
			c.value = v
			if v == "" {
				k.removeGrouped(p, l)
			} else {
				p.replace(l, c)
			}
			continue
		}
		k.setLine(p, l, v, c, s.date)
	}
	if rec.ID != (crm.ID{}) {
		l := k.c.prop("X-CRM-ID")
		if l == nil || !strings.EqualFold(strings.TrimSpace(l.value), rec.ID.String()) {
			k.setLine(p, l, rec.ID.String(), cline{name: "X-CRM-ID"}, true)
		}
	}
	if d.truncated && len(p.edits) > 0 {
		// A write completes a truncated card first.
		return PatchVCard(d.completed(), rec, opts)
	}
	if len(p.edits) > 0 {
		if l := k.c.prop("REV"); l != nil && isStamp(l.value) {
			c := fromLine(l)
			c.setParam("VALUE")
			c.value = opts.now().Format("20060102T150405Z")
			p.replace(l, c)
		}
	}
	return p.bytes(), nil
}

// setLine replaces the value of l (keeping its group and parameters),
// removes l when v is empty, or adds the new line c when l is nil. raw
// values (URIs, dates, ids) are written unescaped.
func (k *card) setLine(p *patcher, l *line, v string, c cline, raw bool) {
	val := k.esc(v)
	if raw {
		val = strings.NewReplacer("\r", "", "\n", "").Replace(v)
	}
	switch {
	case l != nil && v == "":
		k.removeGrouped(p, l)
	case l != nil:
		nc := fromLine(l)
		nc.value = val
		p.replace(l, nc)
	case v != "":
		c.value = val
		p.insert(k.c.endLine.start, c)
	}
}

// removeGrouped removes l and, when its group holds nothing else, the
// group's label line.
func (k *card) removeGrouped(p *patcher, l *line) {
	p.remove(l)
	if l.group == "" {
		return
	}
	var rest []*line
	for _, o := range k.c.props {
		if o != l && strings.EqualFold(o.group, l.group) {
			rest = append(rest, o)
		}
	}
	if len(rest) == 1 && rest[0].name == "X-ABLABEL" {
		p.remove(rest[0])
	}
}

func (k *card) esc(v string) string {
	if k.ver == "2.1" {
		return v // newlines and non-ASCII go quoted-printable (patcher.render)
	}
	return escapeText(v)
}

func (k *card) structured(parts []string) string {
	if k.ver == "2.1" {
		esc := make([]string, len(parts))
		for i, s := range parts {
			esc[i] = strings.ReplaceAll(s, ";", `\;`)
		}
		return strings.Join(esc, ";")
	}
	return joinStructured(parts)
}

func (k *card) date(t time.Time, l *line) string {
	if k.ver == "4.0" && (l == nil || l.name != "X-ABDATE") {
		return t.Format("20060102")
	}
	if k.ver == "2.1" {
		return t.Format("20060102")
	}
	return t.Format("2006-01-02")
}

// typeParams returns TYPE parameters in the card's version's syntax.
func (k *card) typeParams(types ...string) []param {
	if k.ver == "2.1" {
		var ps []param
		for _, t := range types {
			ps = append(ps, param{name: t})
		}
		return ps
	}
	return []param{{name: "TYPE", values: types}}
}

func (k *card) telParams(field string) []param {
	switch field {
	case "telephone1":
		return k.typeParams("WORK", "VOICE")
	case "telephone2":
		return k.typeParams("HOME", "VOICE")
	case "telephone3":
		return k.typeParams("VOICE")
	case "mobilephone":
		return k.typeParams("CELL")
	case "fax":
		return k.typeParams("WORK", "FAX")
	case "pager":
		return k.typeParams("PAGER")
	}
	return k.typeParams("X-ASSISTANT")
}

func (k *card) emailParams() []param {
	if k.ver == "4.0" {
		return nil
	}
	return k.typeParams("INTERNET")
}

func composeFN(a map[string]any) string {
	var parts []string
	for _, f := range []string{"firstname", "middlename", "lastname"} {
		if s, _ := a[f].(string); s != "" {
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, " ")
}
