package mapping

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/pimbridge/pimbridge/crm"
)

// calItem is one VEVENT or VTODO with the calendar context it needs.
type calItem struct {
	c      *component
	cal    *component
	vtz    map[string]*component
	entity string
	opts   *Options
}

func newCalItem(cal, c *component, opts *Options) *calItem {
	it := &calItem{c: c, cal: cal, vtz: map[string]*component{}, opts: opts}
	for _, ch := range cal.children {
		if ch.name == "VTIMEZONE" {
			if l := ch.prop("TZID"); l != nil {
				it.vtz[strings.TrimSpace(unescapeText(l.value))] = ch
				it.vtz[strings.TrimSpace(l.value)] = ch
			}
		}
	}
	it.entity = crm.EntityAppointment
	if c.name == "VTODO" {
		it.entity = crm.EntityTask
		if l := c.prop("X-CRM-ENTITY"); l != nil {
			switch e := strings.ToLower(strings.TrimSpace(l.value)); e {
			case crm.EntityTask, crm.EntityPhoneCall, crm.EntityLetter, crm.EntityFax:
				it.entity = e
			}
		}
	}
	return it
}

// timeValue reads a DATE or DATE-TIME property as UTC. date reports a DATE
// value (all-day).
func (it *calItem) timeValue(l *line) (t time.Time, date bool, err error) {
	v := strings.TrimSpace(l.value)
	w, date, ok := parseWall(v)
	if !ok {
		return time.Time{}, false, propErr("ical", l, "bad date-time %q", v)
	}
	if date || strings.EqualFold(l.param("VALUE"), "DATE") && len(v) == 8 {
		return w, true, nil
	}
	if strings.HasSuffix(v, "Z") {
		return w, false, nil
	}
	if tzid := l.param("TZID"); tzid != "" {
		if z := lookupZone(tzid, it.vtz); z != nil {
			return z.toUTC(w), false, nil
		}
	}
	return time.Date(w.Year(), w.Month(), w.Day(), w.Hour(), w.Minute(), w.Second(), 0, it.opts.location()).UTC(), false, nil
}

// ICalToCRM maps every VEVENT (appointment) and VTODO (task, or the
// activity named by X-CRM-ENTITY) of raw to a CRM record. Recurrence
// overrides (RECURRENCE-ID) of a series whose master is present are not
// mapped: the series is one appointment. The decoder never panics;
// structural breakage and bad values of mapped properties are *ParseError.
func ICalToCRM(raw []byte, opts *Options) ([]Result, error) {
	d, err := parseDocument(raw, "ical")
	if err != nil {
		return nil, err
	}
	var out []Result
	empty := 0
	cals, err := calendars(d)
	if err != nil {
		return nil, err
	}
	for _, cal := range cals {
		if cal.name != "VCALENDAR" {
			return nil, &ParseError{Item: "ical", Property: "BEGIN", Line: cal.begin.num, Err: fmt.Errorf("%w: BEGIN:%s, want VCALENDAR", ErrMalformed, cal.name)}
		}
		masters := map[string]bool{}
		for _, c := range cal.children {
			if (c.name == "VEVENT" || c.name == "VTODO") && c.prop("RECURRENCE-ID") == nil {
				if l := c.prop("UID"); l != nil {
					masters[strings.TrimSpace(l.value)] = true
				}
			}
		}
		for _, c := range cal.children {
			if c.name != "VEVENT" && c.name != "VTODO" {
				continue
			}
			if c.prop("RECURRENCE-ID") != nil {
				if l := c.prop("UID"); l != nil && masters[strings.TrimSpace(l.value)] {
					continue
				}
			}
			r, err := newCalItem(cal, c, opts).read()
			if err != nil {
				return nil, err
			}
			if !usable(r.Record.Attrs) {
				d.defects = append(d.defects, Defect{Kind: DefectEmptyComponent, Property: c.name, Line: c.begin.num, Detail: "nothing to map; skipped"})
				empty++
				continue
			}
			r.Warnings = defectStrings(r.Defects)
			out = append(out, r)
		}
	}
	if len(out) > 0 && len(d.defects) > 0 {
		// Defects of the document as a whole go with the first record.
		out[0].Defects = append(d.defects, out[0].Defects...)
		out[0].Warnings = defectStrings(out[0].Defects)
	}
	if len(out) == 0 && empty > 0 {
		return nil, &ParseError{Item: "ical", Line: 1, Err: fmt.Errorf("%w: nothing usable: %d event(s) or to-do(s) without a summary, description, location, readable date or attendee", ErrMalformed, empty)}
	}
	return out, nil
}

func (it *calItem) read() (Result, error) {
	c := it.c
	res := Result{Record: crm.Record{Entity: it.entity, Attrs: make(map[string]any, len(appointmentFields))}}
	a := res.Record.Attrs
	for _, f := range MappedFields(it.entity) {
		a[f] = nil
	}
	text := func(f, prop string) {
		if l := c.prop(prop); l != nil {
			v := strings.TrimSpace(normNewlines(unescapeText(toValidUTF8(l.value))))
			if v != "" {
				a[f] = v
			}
		}
	}
	if l := c.prop("UID"); l != nil {
		res.UID = strings.TrimSpace(l.value)
	}
	if l := c.prop("X-CRM-ID"); l != nil {
		if id, err := crm.ParseID(strings.TrimSpace(l.value)); err == nil {
			res.Record.ID = id
		} else {
			res.Defects = append(res.Defects, Defect{Kind: DefectBadCRMID, Property: l.name, Line: l.num, Detail: err.Error()})
		}
	}
	text("subject", "SUMMARY")
	text("description", "DESCRIPTION")
	a["prioritycode"] = priorityFromICal(c.prop("PRIORITY"))
	for _, name := range []string{"DTSTAMP", "LAST-MODIFIED"} {
		if l := c.prop(name); l != nil {
			if _, ok := parseStamp(l.value); !ok {
				res.Defects = append(res.Defects, Defect{Kind: DefectBadStamp, Property: name, Line: l.num, Detail: fmt.Sprintf("%q kept", l.value)})
			}
		}
	}
	for _, al := range c.children {
		if l := al.prop("TRIGGER"); al.name == "VALARM" && l != nil {
			v := strings.TrimSpace(l.value)
			if _, ok := parseDuration(v); !ok {
				if _, _, ok := parseWall(v); !ok {
					res.Defects = append(res.Defects, Defect{Kind: DefectBadTrigger, Property: l.name, Line: l.num, Detail: fmt.Sprintf("%q kept", v)})
				}
			}
		}
	}
	var start, end time.Time
	var allDay, hasStart, hasEnd, badEnd bool
	endFields := "scheduledend"
	if c.name == "VEVENT" {
		endFields = "scheduledend, scheduleddurationminutes"
	}
	if l := c.prop("DTSTART"); l != nil {
		t, date, err := it.timeValue(l)
		if err != nil {
			f := "scheduledstart"
			if c.name == "VEVENT" {
				f += ", isalldayevent, scheduleddurationminutes"
			}
			res.Defects = append(res.Defects, Defect{Kind: DefectBadDate, Property: l.name, Line: l.num, Field: f, Detail: fmt.Sprintf("%q", l.value)})
			badEnd = true // the end (and duration) depend on the start
		} else {
			start, allDay, hasStart = t, date, true
			a["scheduledstart"] = t
		}
	}
	endProp := "DTEND"
	if c.name == "VTODO" {
		endProp = "DUE"
	}
	if l := c.prop(endProp); l != nil {
		if t, _, err := it.timeValue(l); err != nil {
			res.Defects = append(res.Defects, Defect{Kind: DefectBadDate, Property: l.name, Line: l.num, Field: endFields, Detail: fmt.Sprintf("%q", l.value)})
			badEnd = true
		} else {
			end, hasEnd = t, true
		}
	} else if l := c.prop("DURATION"); l != nil && hasStart {
		if dur, ok := parseDuration(l.value); ok {
			end, hasEnd = start.Add(dur), true
		} else {
			res.Defects = append(res.Defects, Defect{Kind: DefectBadDuration, Property: l.name, Line: l.num, Field: endFields, Detail: fmt.Sprintf("%q", l.value)})
			badEnd = true
		}
	}
	if !hasEnd && hasStart && !badEnd && c.name == "VEVENT" {
		end, hasEnd = start, true
		if allDay {
			end = start.AddDate(0, 0, 1)
		}
	}
	if hasEnd {
		a["scheduledend"] = end
	}
	if c.name == "VEVENT" {
		text("location", "LOCATION")
		a["isalldayevent"] = allDay
		if hasStart && hasEnd {
			a["scheduleddurationminutes"] = int64(end.Sub(start) / time.Minute)
		}
		if badEnd && !hasStart {
			a["isalldayevent"] = nil // unknown with the start
		}
		if l := c.prop("ORGANIZER"); l != nil {
			if p, ok := it.party(l); ok {
				a["organizer"] = []crm.Party{p}
			}
		}
		var req, opt []crm.Party
		for _, l := range c.all("ATTENDEE") {
			p, ok := it.party(l)
			if !ok {
				continue
			}
			switch strings.ToUpper(l.param("ROLE")) {
			case "OPT-PARTICIPANT", "NON-PARTICIPANT":
				opt = append(opt, p)
			default:
				req = append(req, p)
			}
		}
		if len(req) > 0 {
			a["requiredattendees"] = req
		}
		if len(opt) > 0 {
			a["optionalattendees"] = opt
		}
		if rp := recurrenceLines(c); rp != "" {
			a["recurrencepattern"] = rp
		}
	}
	state, status := it.status()
	a["statecode"], a["statuscode"] = state, status
	fitLengths(it.entity, a, &res.Defects)
	return res, nil
}

// party reads an ORGANIZER or ATTENDEE line.
func (it *calItem) party(l *line) (crm.Party, bool) {
	v := strings.TrimSpace(unescapeText(l.value))
	addr := v
	if len(v) >= 7 && strings.EqualFold(v[:7], "mailto:") {
		addr = strings.ReplaceAll(v[7:], " ", "")
	} else if l.param("EMAIL") != "" {
		addr = l.param("EMAIL")
	}
	if addr == "" {
		return crm.Party{}, false
	}
	return it.opts.party(addr, strings.TrimSpace(l.param("CN"))), true
}

// recurrenceLines returns the RRULE, RDATE and EXDATE lines, unfolded and
// joined by "\n".
func recurrenceLines(c *component) string {
	var out []string
	for _, l := range c.props {
		if l.name == "RRULE" || l.name == "RDATE" || l.name == "EXDATE" {
			out = append(out, unfoldedText(l))
		}
	}
	return strings.Join(out, "\n")
}

func unfoldedText(l *line) string {
	var b strings.Builder
	b.WriteString(l.name)
	for _, p := range l.params {
		b.WriteByte(';')
		b.WriteString(p.name)
		for i, v := range p.values {
			if i == 0 {
				b.WriteByte('=')
			} else {
				b.WriteByte(',')
			}
			b.WriteString(paramValue(v))
		}
	}
	b.WriteByte(':')
	b.WriteString(strings.TrimSpace(l.value))
	return b.String()
}

// priorityFromICal maps PRIORITY (1-4 high, 5 normal, 6-9 low, 0 or absent
// undefined = normal) to prioritycode.
func priorityFromICal(l *line) int64 {
	if l == nil {
		return crm.PriorityNormal
	}
	n, err := strconv.Atoi(strings.TrimSpace(l.value))
	switch {
	case err != nil || n <= 0 || n == 5 || n > 9:
		return crm.PriorityNormal
	case n < 5:
		return crm.PriorityHigh
	}
	return crm.PriorityLow
}

func priorityToICal(p int64) string {
	switch p {
	case crm.PriorityHigh:
		return "1"
	case crm.PriorityLow:
		return "9"
	}
	return "5"
}

// parseDuration parses an RFC 5545 DURATION (P1DT2H, PT90M, P2W, -PT5M).
func parseDuration(s string) (time.Duration, bool) {
	s = strings.TrimSpace(strings.ToUpper(s))
	neg := false
	if strings.HasPrefix(s, "-") {
		neg, s = true, s[1:]
	} else {
		s = strings.TrimPrefix(s, "+")
	}
	if !strings.HasPrefix(s, "P") || len(s) < 3 {
		return 0, false
	}
	var d time.Duration
	inTime := false
	num := ""
	for _, r := range s[1:] {
		switch {
		case r >= '0' && r <= '9':
			num += string(r)
		case r == 'T':
			inTime = true
		default:
			n, err := strconv.Atoi(num)
			if err != nil {
				return 0, false
			}
			num = ""
			unit := map[rune]time.Duration{'W': 7 * 24 * time.Hour, 'D': 24 * time.Hour, 'H': time.Hour, 'M': time.Minute, 'S': time.Second}[r]
			if unit == 0 || inTime != (r == 'H' || r == 'M' || r == 'S') {
				return 0, false
			}
			d += time.Duration(n) * unit
		}
	}
	if num != "" {
		return 0, false
	}
	if neg {
		d = -d
	}
	return d, true
}

func formatDuration(d time.Duration) string {
	if d < 0 {
		return "-" + formatDuration(-d)
	}
	days := int64(d / (24 * time.Hour))
	rest := d % (24 * time.Hour)
	s := "P"
	if days > 0 {
		s += strconv.FormatInt(days, 10) + "D"
	}
	if rest > 0 || days == 0 {
		s += "T"
		h, m, sec := int64(rest/time.Hour), int64(rest%time.Hour/time.Minute), int64(rest%time.Minute/time.Second)
		if h > 0 {
			s += strconv.FormatInt(h, 10) + "H"
		}
		if m > 0 {
			s += strconv.FormatInt(m, 10) + "M"
		}
		if sec > 0 || h == 0 && m == 0 {
			s += strconv.FormatInt(sec, 10) + "S"
		}
	}
	return s
}

// calendars returns the VCALENDARs of d. A VEVENT or VTODO written without
// its VCALENDAR (khal, some exports) is read as if it had one
// (DefectMissingBegin); any other top-level component is a *ParseError.
func calendars(d *document) ([]*component, error) {
	var out []*component
	for _, c := range d.root.children {
		switch c.name {
		case "VCALENDAR":
			out = append(out, c)
		case "VEVENT", "VTODO":
			out = append(out, &component{name: "VCALENDAR", begin: c.begin, endLine: c.endLine, children: []*component{c}})
			d.defects = append(d.defects, Defect{Kind: DefectMissingBegin, Property: "BEGIN", Line: c.begin.num, Detail: "BEGIN:" + c.name + " outside a VCALENDAR"})
		default:
			return nil, &ParseError{Item: "ical", Property: "BEGIN", Line: c.begin.num, Err: fmt.Errorf("%w: BEGIN:%s, want VCALENDAR", ErrMalformed, c.name)}
		}
	}
	return out, nil
}
