package mapping

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pimbridge/pimbridge/crm"
)

// Result is one CRM record mapped from a PIM object, with the PIM UID and
// the quirks that were tolerated on the way.
type Result struct {
	Record crm.Record
	UID    string
	// Defects lists what was repaired or stepped around; a defect with a
	// Field leaves that CRM field as it was (see the package doc).
	Defects []Defect
	// Deprecated: Warnings is the String of each of Defects.
	Warnings []string
}

// card is one parsed vCard with the lines the mapping owns located.
type card struct {
	c      *component
	ver    string
	labels map[string]string // group -> normalized X-ABLABEL
}

func newCard(c *component) *card {
	k := &card{c: c, ver: "3.0", labels: map[string]string{}}
	if v := c.prop("VERSION"); v != nil {
		k.ver = strings.TrimSpace(v.value)
	}
	for _, l := range c.props {
		if l.name == "X-ABLABEL" && l.group != "" {
			k.labels[strings.ToLower(l.group)] = normLabel(unescapeText(l.value))
		}
	}
	return k
}

func normLabel(s string) string {
	s = strings.TrimPrefix(strings.TrimSuffix(s, ">!$_"), "_$!<")
	return strings.ToLower(strings.TrimSpace(s))
}

func (k *card) label(l *line) string {
	if l.group == "" {
		return ""
	}
	return k.labels[strings.ToLower(l.group)]
}

// text returns the decoded, unescaped value of l.
func (k *card) text(l *line) string {
	if l == nil {
		return ""
	}
	if k.ver == "2.1" {
		return decodeValue(l) // 2.1 has no backslash escapes in plain values
	}
	return unescapeText(decodeValue(l))
}

// split splits a structured value (N, ADR, ORG); vCard 2.1 escapes only
// the semicolon.
func (k *card) split(l *line) []string {
	v := decodeValue(l)
	if k.ver != "2.1" {
		return splitStructured(v)
	}
	var out []string
	start := 0
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' && i+1 < len(v) && v[i+1] == ';' {
			i++
			continue
		}
		if v[i] == ';' {
			out = append(out, strings.ReplaceAll(v[start:i], `\;`, ";"))
			start = i + 1
		}
	}
	return append(out, strings.ReplaceAll(v[start:], `\;`, ";"))
}

// telKind classifies a TEL line into the CRM phone field it maps to.
func (k *card) telKind(l *line) string {
	lab := k.label(l)
	ts := l.types()
	has := func(t string) bool { return slices.Contains(ts, t) }
	switch {
	case lab == "assistantphone" || lab == "assistant" || has("x-evolution-assistant") || has("x-assistant") || has("assistant"):
		return "assistantphone"
	case has("fax"):
		return "fax"
	case has("pager"):
		return "pager"
	case has("cell") || lab == "mobile":
		return "mobilephone"
	case has("work"):
		return "telephone1"
	case has("home"):
		return "telephone2"
	}
	return "telephone3"
}

func (k *card) tel(field string) *line {
	for _, l := range k.c.props {
		if l.name == "TEL" && k.telKind(l) == field {
			return l
		}
	}
	return nil
}

func (k *card) emails() []*line {
	var out []*line
	for _, l := range k.c.props {
		if l.name == "EMAIL" && strings.TrimSpace(l.value) != "" {
			out = append(out, l)
		}
	}
	return out
}

func (k *card) isFTP(l *line) bool {
	v := strings.ToLower(k.text(l))
	return l.hasType("ftp") || l.hasType("x-ftp") || k.label(l) == "ftp" || strings.HasPrefix(v, "ftp://") || strings.HasPrefix(v, "ftps://")
}

func (k *card) url(ftp bool) *line {
	for _, l := range k.c.props {
		if l.name == "URL" && k.isFTP(l) == ftp {
			return l
		}
	}
	return nil
}

// adr returns the mailing address: the preferred ADR, else the work one,
// else the first.
func (k *card) adr() *line {
	all := k.c.all("ADR")
	for _, l := range all {
		if l.hasType("pref") || l.param("PREF") == "1" {
			return l
		}
	}
	for _, l := range all {
		if l.hasType("work") {
			return l
		}
	}
	if len(all) > 0 {
		return all[0]
	}
	return nil
}

// single describes a one-line text field with the properties that may
// carry it, in priority order.
type single struct {
	field   string
	names   []string // property names
	labels  []string // X-ABLABEL of grouped X-ABRELATEDNAMES / X-ABDATE lines
	related string   // vCard 4.0 RELATED;TYPE=
	write   string   // property name for a new line
	date    bool
	uri     bool
}

var singles = []single{
	{field: "jobtitle", names: []string{"TITLE"}, write: "TITLE"},
	{field: "nickname", names: []string{"NICKNAME"}, write: "NICKNAME"},
	{field: "description", names: []string{"NOTE"}, write: "NOTE"},
	{field: "birthdate", names: []string{"BDAY"}, write: "BDAY", date: true},
	{field: "anniversary", names: []string{"ANNIVERSARY", "X-ANNIVERSARY", "X-MS-ANNIVERSARY", "X-EVOLUTION-ANNIVERSARY"}, labels: []string{"anniversary"}, write: "X-ANNIVERSARY", date: true},
	{field: "assistantname", names: []string{"X-ASSISTANT", "X-MS-ASSISTANT", "X-EVOLUTION-ASSISTANT", "X-KADDRESSBOOK-X-ASSISTANTSNAME"}, labels: []string{"assistant"}, write: "X-ASSISTANT"},
	{field: "managername", names: []string{"X-MANAGER", "X-MS-MANAGER", "X-EVOLUTION-MANAGER", "X-KADDRESSBOOK-X-MANAGERSNAME"}, labels: []string{"manager"}, write: "X-MANAGER"},
	{field: "spousesname", names: []string{"X-SPOUSE", "X-MS-SPOUSE", "X-EVOLUTION-SPOUSE", "X-KADDRESSBOOK-X-SPOUSESNAME"}, labels: []string{"spouse", "partner"}, related: "spouse", write: "X-SPOUSE"},
	{field: "childrensnames", names: []string{"X-CHILDREN", "X-MS-CHILD", "X-MS-CHILDREN"}, labels: []string{"child"}, related: "child", write: "X-CHILDREN"},
	{field: "governmentid", names: []string{"X-CRM-GOVERNMENTID", "X-GOVERNMENTID"}, write: "X-CRM-GOVERNMENTID"},
	{field: "yomifirstname", names: []string{"X-PHONETIC-FIRST-NAME", "X-MS-YOMI-FIRST-NAME"}, write: "X-PHONETIC-FIRST-NAME"},
	{field: "yomilastname", names: []string{"X-PHONETIC-LAST-NAME", "X-MS-YOMI-LAST-NAME"}, write: "X-PHONETIC-LAST-NAME"},
}

func (k *card) single(s *single) *line {
	for _, name := range s.names {
		if l := k.c.prop(name); l != nil {
			return l
		}
	}
	for _, l := range k.c.props {
		if len(s.labels) > 0 && (l.name == "X-ABRELATEDNAMES" || l.name == "X-ABDATE") && slices.Contains(s.labels, k.label(l)) {
			return l
		}
		if s.related != "" && l.name == "RELATED" && l.hasType(s.related) {
			return l
		}
	}
	return nil
}

// The CRM's date range (SQL Server datetime).
var (
	minCRMDate = time.Date(1753, 1, 1, 0, 0, 0, 0, time.UTC)
	maxCRMDate = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)
)

// readDate reads a date property for a CRM date field; kind is the defect
// when it cannot be held (no year, out of range, not a date).
func readDate(l *line, v string) (time.Time, DefectKind) {
	s := strings.TrimSpace(v)
	if strings.EqualFold(l.param("VALUE"), "text") {
		return time.Time{}, DefectBadDate
	}
	if strings.HasPrefix(s, "--") {
		return time.Time{}, DefectYearlessDate // vCard 4 --MMDD, --MM-DD
	}
	t, ok := parseDate(s)
	switch {
	case !ok:
		return time.Time{}, DefectBadDate
	case t.Year() == 1604 || l.param("X-APPLE-OMIT-YEAR") == strconv.Itoa(t.Year()):
		// Apple and CardBook write 1604 for "no year".
		return time.Time{}, DefectYearlessDate
	case t.Before(minCRMDate) || t.After(maxCRMDate):
		return time.Time{}, DefectDateRange
	}
	return t, ""
}

// parseStamp reads a REV, DTSTAMP or LAST-MODIFIED value.
func parseStamp(v string) (time.Time, bool) {
	v = strings.TrimSpace(v)
	for _, layout := range []string{"20060102T150405Z", "2006-01-02T15:04:05Z07:00", "20060102T150405", "2006-01-02T15:04:05", "2006-01-02T15:04:05.999Z07:00", "20060102T150405.999Z", "20060102", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UTC(), true
		}
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil && n > 0 {
		return time.Unix(n, 0).UTC(), true // seconds since 1970 (some Android exports)
	}
	return time.Time{}, false
}

// parseDate reads a vCard date (1980-03-22, 19800322, with an optional time
// part). A date without a year (--0322) or a text value gives ok == false.
func parseDate(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, 'T'); i >= 0 {
		s = s[:i]
	}
	for _, layout := range []string{"2006-01-02", "20060102"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// VCardToCRM maps every vCard in raw (2.1, 3.0 or 4.0) to a contact record.
// The record holds every mapped field (MappedFields), nil for an absent one;
// its ID comes from X-CRM-ID. Structural breakage is a *ParseError; quirks
// of real clients are tolerated and listed in Result.Warnings.
func VCardToCRM(raw []byte, opts *Options) ([]Result, error) {
	d, err := parseDocument(raw, "vcard")
	if err != nil {
		return nil, err
	}
	var out []Result
	empty := 0
	for _, c := range d.root.children {
		if c.name != "VCARD" {
			return nil, &ParseError{Item: "vcard", Property: "BEGIN", Line: c.begin.num, Err: fmt.Errorf("%w: BEGIN:%s, want VCARD", ErrMalformed, c.name)}
		}
		r, err := readContact(newCard(c))
		if err != nil {
			return nil, err
		}
		if !usable(r.Record.Attrs) {
			d.defects = append(d.defects, Defect{Kind: DefectEmptyComponent, Property: "VCARD", Line: c.begin.num, Detail: "nothing to map; skipped"})
			empty++
			continue
		}
		r.Warnings = defectStrings(r.Defects)
		out = append(out, r)
	}
	if len(out) > 0 && len(d.defects) > 0 {
		// Defects of the document as a whole go with the first record.
		out[0].Defects = append(d.defects, out[0].Defects...)
		out[0].Warnings = defectStrings(out[0].Defects)
	}
	if len(out) == 0 && empty > 0 {
		return nil, &ParseError{Item: "vcard", Line: 1, Err: fmt.Errorf("%w: nothing usable: %d card(s) without a name, address, phone, e-mail or other mapped field", ErrMalformed, empty)}
	}
	return out, nil
}

func readContact(k *card) (Result, error) {
	res := Result{Record: crm.Record{Entity: crm.EntityContact, Attrs: make(map[string]any, len(contactFields))}}
	a := res.Record.Attrs
	for _, f := range contactFields {
		a[f] = nil
	}
	set := func(f, v string) {
		if v = strings.TrimSpace(v); v != "" {
			a[f] = v
		} else {
			a[f] = nil
		}
	}
	if k.ver != "2.1" {
		for _, l := range k.c.props {
			if l.isQP() {
				res.Defects = append(res.Defects, Defect{Kind: DefectQPInV3, Property: l.name, Line: l.num, Detail: "decoded anyway (vCard " + k.ver + ")"})
			}
		}
	}
	if l := k.c.prop("REV"); l != nil {
		if _, ok := parseStamp(l.value); !ok {
			res.Defects = append(res.Defects, Defect{Kind: DefectBadStamp, Property: l.name, Line: l.num, Detail: fmt.Sprintf("%q kept", l.value)})
		}
	}
	if l := k.c.prop("UID"); l != nil {
		res.UID = strings.TrimSpace(k.text(l))
	}
	if l := k.c.prop("X-CRM-ID"); l != nil {
		id, err := crm.ParseID(strings.TrimSpace(k.text(l)))
		if err != nil {
			res.Defects = append(res.Defects, Defect{Kind: DefectBadCRMID, Property: l.name, Line: l.num, Detail: err.Error()})
		} else {
			res.Record.ID = id
		}
	}
	if l := k.c.prop("N"); l != nil {
		n := k.split(l)
		for i, f := range []string{"lastname", "firstname", "middlename", "salutation"} {
			if i < len(n) {
				set(f, n[i])
			}
		}
	} else if l := k.c.prop("FN"); l != nil {
		// No N (vCard 4.0 allows that): the last word of FN is the last name.
		fn := strings.Fields(k.text(l))
		if len(fn) > 0 {
			set("lastname", fn[len(fn)-1])
			set("firstname", strings.Join(fn[:len(fn)-1], " "))
			res.Defects = append(res.Defects, Defect{Kind: DefectNoN, Property: "FN", Line: l.num})
		}
	}
	if l := k.c.prop("ORG"); l != nil {
		org := k.split(l)
		if len(org) > 1 {
			set("department", org[1])
		}
	}
	for _, f := range []string{"assistantphone", "telephone1", "telephone2", "telephone3", "mobilephone", "fax", "pager"} {
		if l := k.tel(f); l != nil {
			set(f, telValue(k.text(l)))
		}
	}
	for i, l := range k.emails() {
		if i == 3 {
			break
		}
		set(fmt.Sprintf("emailaddress%d", i+1), strings.TrimPrefix(k.text(l), "mailto:"))
	}
	if l := k.url(false); l != nil {
		set("websiteurl", k.text(l))
	}
	if l := k.url(true); l != nil {
		set("ftpsiteurl", k.text(l))
	}
	if l := k.adr(); l != nil {
		adr := k.split(l)
		for len(adr) < 7 {
			adr = append(adr, "")
		}
		set("address1_postofficebox", adr[0])
		lines := splitStreet(adr[2])
		for i, f := range []string{"address1_line1", "address1_line2", "address1_line3"} {
			if i < len(lines) {
				set(f, lines[i])
			}
		}
		set("address1_city", adr[3])
		set("address1_stateorprovince", adr[4])
		set("address1_postalcode", adr[5])
		set("address1_country", adr[6])
	}
	for i := range singles {
		s := &singles[i]
		l := k.single(s)
		if l == nil {
			continue
		}
		v := k.text(l)
		if s.date {
			t, kind := readDate(l, v)
			if kind != "" {
				res.Defects = append(res.Defects, Defect{Kind: kind, Property: l.name, Line: l.num, Field: s.field, Detail: fmt.Sprintf("%q", v)})
				continue
			}
			a[s.field] = t
			continue
		}
		if s.field == "description" {
			v = normNewlines(v)
		}
		set(s.field, v)
	}
	fitLengths(crm.EntityContact, a, &res.Defects)
	return res, nil
}

// telValue strips a tel: URI prefix.
func telValue(s string) string {
	return strings.TrimPrefix(strings.TrimSpace(s), "tel:")
}

func normNewlines(s string) string {
	if !strings.ContainsRune(s, '\r') {
		return s
	}
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\r", "\n")
}

// splitStreet splits the street component into at most three lines; extra
// lines stay in the third.
func splitStreet(s string) []string {
	s = normNewlines(s)
	if s == "" {
		return nil
	}
	parts := strings.SplitN(s, "\n", 3)
	return parts
}
