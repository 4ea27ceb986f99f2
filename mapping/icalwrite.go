package mapping

import (
	"errors"
	"fmt"

	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-ical"

	"github.com/pimbridge/pimbridge/crm"
)

// NewICal writes rec as a new iCalendar 2.0 object: a VEVENT for an
// appointment, a VTODO (with X-CRM-ENTITY) for a task, phone call, letter
// or fax; with UID, DTSTAMP (Options.Now) and PRODID.
func NewICal(rec crm.Record, opts *Options) ([]byte, error) {
	comp := "VTODO"
	switch rec.Entity {
	case crm.EntityAppointment:
		comp = "VEVENT"
		if _, ok := rec.Attrs["scheduledstart"].(time.Time); !ok {
			return nil, &crm.AttributeError{Entity: rec.Entity, ID: rec.ID, Attribute: "scheduledstart", Err: fmt.Errorf("%w: an appointment needs a start", crm.ErrRequired)}
		}
	case crm.EntityTask, crm.EntityPhoneCall, crm.EntityLetter, crm.EntityFax:
	default:
		return nil, fmt.Errorf("mapping: new ical: %w: entity %q has no iCalendar form", crm.ErrInvalidArgument, rec.Entity)
	}
	var b strings.Builder
	b.WriteString("BEGIN:VCALENDAR\r\nVERSION:2.0\r\n")
	foldLine(&b, "PRODID:"+escapeText(opts.prodID()), "\r\n")
	b.WriteString("BEGIN:" + comp + "\r\n")
	foldLine(&b, "UID:"+escapeText(opts.uid(rec)), "\r\n")
	b.WriteString("DTSTAMP:" + opts.now().Format("20060102T150405Z") + "\r\n")
	if comp == "VTODO" {
		b.WriteString("X-CRM-ENTITY:" + rec.Entity + "\r\n")
	}
	b.WriteString(opts.categoriesLine())
	b.WriteString("END:" + comp + "\r\nEND:VCALENDAR\r\n")
	return PatchICal([]byte(b.String()), rec, opts)
}

// PatchICal applies the mapped attributes present in rec.Attrs (nil
// clears) to the VEVENT or VTODO in raw whose X-CRM-ID is rec.ID (else the
// first master of the right kind) and returns the new bytes. Only the lines
// of properties whose mapped value changes are rewritten, plus DTSTAMP,
// LAST-MODIFIED and SEQUENCE when present and something changed. A time
// that changes keeps the TZID of its line; an all-day event stays all-day.
// Recurrence overrides, alarms, time zones and unknown properties are kept.
func PatchICal(raw []byte, rec crm.Record, opts *Options) ([]byte, error) {
	d, err := parseDocument(raw, "ical")
	if err != nil {
		return nil, err
	}
	want := "VTODO"
	if rec.Entity == crm.EntityAppointment {
		want = "VEVENT"
	}
	var it *calItem
	byID, itUsable := false, false
	cals, err := calendars(d)
	if err != nil {
		return nil, err
	}
	for _, cal := range cals {
		for _, c := range cal.children {
			if c.name != want || c.prop("RECURRENCE-ID") != nil {
				continue
			}
			ci := newCalItem(cal, c, opts)
			if l := c.prop("X-CRM-ID"); l != nil && rec.ID != (crm.ID{}) && strings.EqualFold(strings.TrimSpace(l.value), rec.ID.String()) {
				it, byID = ci, true
				continue
			}
			// Else the first one ICalToCRM maps (it skips empty ones).
			if !byID && (it == nil || !itUsable) {
				r, err := ci.read()
				ok := err == nil && usable(r.Record.Attrs)
				if it == nil || ok {
					it, itUsable = ci, ok
				}
			}
		}
	}
	if it == nil {
		return nil, &ParseError{Item: "ical", Property: want, Err: fmt.Errorf("%w: no %s to patch", ErrMalformed, want)}
	}
	if rec.Entity != "" && rec.Entity != crm.EntityAppointment {
		it.entity = rec.Entity
	}
	if err := checkAttrs(it.entity, rec); err != nil {
		return nil, err
	}
	cur, err := it.read()
	if err != nil {
		return nil, err
	}
	w := &icalWriter{it: it, p: newPatcher(d, ""), cur: cur.Record.Attrs, want: make(map[string]any, len(cur.Record.Attrs))}
	for k, v := range cur.Record.Attrs {
		w.want[k] = v
	}
	for _, f := range MappedFields(it.entity) {
		if v, ok := rec.Attrs[f]; ok {
			w.want[f] = normValue(v)
		}
	}
	// A field whose PIM line the CRM cannot hold keeps that line.
	for _, f := range DefectFields(cur.Defects) {
		w.want[f] = cur.Record.Attrs[f]
	}
	// statecode alone (without statuscode) means its default status.
	if sc, ok := rec.Attrs["statecode"].(int64); ok {
		if _, has := rec.Attrs["statuscode"]; !has {
			if st := entityMeta(it.entity).State(sc); st != nil && st.Value != cur.Record.Attrs["statecode"] {
				w.want["statuscode"] = st.DefaultStatus
			}
		}
	}
	if err := w.apply(rec); err != nil {
		return nil, err
	}
	if d.truncated && len(w.p.edits) > 0 {
		// A write completes a truncated object first.
		return PatchICal(d.completed(), rec, opts)
	}
	return w.p.bytes(), nil
}

type icalWriter struct {
	it        *calItem
	p         *patcher
	cur, want map[string]any
}

func (w *icalWriter) changed(fs ...string) bool {
	for _, f := range fs {
		if !sameValue(w.cur[f], w.want[f]) {
			return true
		}
	}
	return false
}

func (w *icalWriter) str(f string) string { s, _ := w.want[f].(string); return s }

func (w *icalWriter) end() int { return w.it.c.endLine.start }

// setText replaces, removes or adds a TEXT property.
func (w *icalWriter) setText(name, v string) {
	l := w.it.c.prop(name)
	switch {
	case l != nil && v == "":
		w.p.remove(l)
	case l != nil:
		c := fromLine(l)
		c.setParam("ALTREP")
		c.value = escapeText(v)
		w.p.replace(l, c)
	case v != "":
		w.p.insert(w.end(), cline{name: name, value: escapeText(v)})
	}
}

func (w *icalWriter) setRaw(name, v string) {
	l := w.it.c.prop(name)
	switch {
	case l != nil && v == "":
		w.p.remove(l)
	case l != nil:
		c := fromLine(l)
		c.value = v
		w.p.replace(l, c)
	case v != "":
		w.p.insert(w.end(), cline{name: name, value: v})
	}
}

// setTime writes a time property: in the line's own TZID when it has one,
// as a DATE when allDay, else in UTC.
func (w *icalWriter) setTime(name string, t time.Time, ok, allDay bool) {
	l := w.it.c.prop(name)
	if !ok {
		if l != nil {
			w.p.remove(l)
		}
		return
	}
	c := cline{name: name}
	if l != nil {
		c = fromLine(l)
	}
	switch {
	case allDay:
		c.setParam("TZID")
		c.setParam("VALUE", "DATE")
		c.value = t.Format("20060102")
	default:
		c.setParam("VALUE")
		var z zone
		if l != nil && l.param("TZID") != "" {
			z = lookupZone(l.param("TZID"), w.it.vtz)
		}
		if z != nil {
			c.value = z.toWall(t).Format("20060102T150405")
		} else {
			c.setParam("TZID")
			c.value = t.UTC().Format("20060102T150405Z")
		}
	}
	if l != nil {
		w.p.replace(l, c)
	} else {
		w.p.insert(w.end(), c)
	}
}

func (w *icalWriter) apply(rec crm.Record) error {
	c := w.it.c
	isEvent := c.name == "VEVENT"
	if w.changed("subject") {
		w.setText("SUMMARY", w.str("subject"))
	}
	if w.changed("description") {
		w.setText("DESCRIPTION", w.str("description"))
		if l := c.prop("X-ALT-DESC"); l != nil {
			w.p.remove(l) // stale HTML copy of the old description
		}
	}
	if isEvent && w.changed("location") {
		w.setText("LOCATION", w.str("location"))
	}
	if w.changed("prioritycode") {
		p, _ := w.want["prioritycode"].(int64)
		if w.want["prioritycode"] == nil {
			p = crm.PriorityNormal
		}
		w.setRaw("PRIORITY", priorityToICal(p))
	}
	if err := w.times(isEvent); err != nil {
		return err
	}
	if isEvent {
		w.parties()
		if w.changed("recurrencepattern") {
			if err := w.recurrence(); err != nil {
				return err
			}
		}
	}
	if w.changed("statecode", "statuscode") {
		w.status(isEvent)
	}
	if rec.ID != (crm.ID{}) {
		if l := c.prop("X-CRM-ID"); l == nil || !strings.EqualFold(strings.TrimSpace(l.value), rec.ID.String()) {
			w.setRaw("X-CRM-ID", rec.ID.String())
		}
	}
	if !isEvent && w.it.entity != crm.EntityTask {
		if l := c.prop("X-CRM-ENTITY"); l == nil || strings.TrimSpace(l.value) != w.it.entity {
			w.setRaw("X-CRM-ENTITY", w.it.entity)
		}
	}
	if len(w.p.edits) > 0 {
		now := w.it.opts.now().Format("20060102T150405Z")
		for _, name := range []string{"DTSTAMP", "LAST-MODIFIED"} {
			if l := c.prop(name); l != nil && isStamp(l.value) {
				nc := fromLine(l)
				nc.params = nil
				nc.value = now
				w.p.replace(l, nc)
			}
		}
		if l := c.prop("SEQUENCE"); l != nil && w.changed("scheduledstart", "scheduledend", "isalldayevent", "scheduleddurationminutes", "recurrencepattern") {
			n, _ := strconv.Atoi(strings.TrimSpace(l.value))
			nc := fromLine(l)
			nc.value = strconv.Itoa(n + 1)
			w.p.replace(l, nc)
		}
	}
	return nil
}

func (w *icalWriter) times(isEvent bool) error {
	c := w.it.c
	start, hasStart := w.want["scheduledstart"].(time.Time)
	end, hasEnd := w.want["scheduledend"].(time.Time)
	if !isEvent {
		allDay := false
		if l := c.prop("DUE"); l != nil && strings.EqualFold(l.param("VALUE"), "DATE") {
			allDay = isMidnight(end)
		}
		if w.changed("scheduledstart") {
			startAllDay := false
			if l := c.prop("DTSTART"); l != nil && strings.EqualFold(l.param("VALUE"), "DATE") {
				startAllDay = isMidnight(start)
			}
			w.setTime("DTSTART", start, hasStart, startAllDay)
		}
		if w.changed("scheduledend") {
			w.setTime("DUE", end, hasEnd, allDay)
			if c.prop("DUE") == nil {
				if l := c.prop("DURATION"); l != nil {
					w.p.remove(l)
				}
			}
			w.alarm(end, hasEnd && !allDay)
		}
		return nil
	}
	if !w.changed("scheduledstart", "scheduledend", "isalldayevent", "scheduleddurationminutes") {
		return nil
	}
	if !hasStart {
		return &crm.AttributeError{Entity: crm.EntityAppointment, Attribute: "scheduledstart", Err: fmt.Errorf("%w: an appointment needs a start", crm.ErrRequired)}
	}
	allDay, _ := w.want["isalldayevent"].(bool)
	if !w.changed("scheduledend") && w.changed("scheduleddurationminutes") {
		if m, ok := w.want["scheduleddurationminutes"].(int64); ok {
			end, hasEnd = start.Add(time.Duration(m)*time.Minute), true
		}
	}
	if !hasEnd {
		end = start
	}
	if allDay {
		start = start.Truncate(24 * time.Hour)
		e := end.Truncate(24 * time.Hour)
		if !e.After(start) || e.Before(end) {
			e = e.AddDate(0, 0, 1)
			if !e.After(start) {
				e = start.AddDate(0, 0, 1)
			}
		}
		end = e
	}
	if end.Before(start) {
		return &crm.AttributeError{Entity: crm.EntityAppointment, Attribute: "scheduledend", Err: fmt.Errorf("%w: end before start", crm.ErrInvalidArgument)}
	}
	w.setTime("DTSTART", start, true, allDay)
	if l := c.prop("DURATION"); l != nil && c.prop("DTEND") == nil {
		nc := fromLine(l)
		nc.value = formatDuration(end.Sub(start))
		w.p.replace(l, nc)
	} else {
		w.setTime("DTEND", end, true, allDay)
	}
	return nil
}

func isMidnight(t time.Time) bool { return t.Equal(t.Truncate(24 * time.Hour)) }

// alarm keeps the reminder pimbridge adds at a task's due time (a due time
// set in CRM becomes a reminder; reminders are never read back).
// Only the VALARM marked X-CRM-REMINDER is touched.
func (w *icalWriter) alarm(due time.Time, on bool) {
	var ours *component
	for _, ch := range w.it.c.children {
		if ch.name == "VALARM" && ch.prop("X-CRM-REMINDER") != nil {
			ours = ch
		}
	}
	if ours != nil {
		w.p.edits = append(w.p.edits, edit{start: ours.begin.start, end: ours.endLine.end, seq: len(w.p.edits)})
	}
	if !on {
		return
	}
	eol := w.p.d.eol
	text := "BEGIN:VALARM" + eol + "ACTION:DISPLAY" + eol + "DESCRIPTION:" + escapeTextFold(w.str("subject"), "Reminder") + eol +
		"TRIGGER;VALUE=DATE-TIME:" + due.UTC().Format("20060102T150405Z") + eol + "X-CRM-REMINDER:TRUE" + eol + "END:VALARM" + eol
	pos := w.end()
	if ours != nil {
		pos = ours.begin.start
	}
	w.p.edits = append(w.p.edits, edit{start: pos, end: pos, text: text, seq: len(w.p.edits)})
}

func escapeTextFold(s, def string) string {
	if s == "" {
		s = def
	}
	var b strings.Builder
	foldLine(&b, escapeText(s), "\n")
	return strings.TrimSuffix(strings.ReplaceAll(b.String(), "\n", "\r\n"), "\r\n")
}

// parties rewrites ORGANIZER and ATTENDEE lines that changed, keeping the
// parameters (PARTSTAT, RSVP, ...) of attendees that stay.
func (w *icalWriter) parties() {
	c := w.it.c
	if w.changed("organizer") {
		ps, _ := w.want["organizer"].([]crm.Party)
		l := c.prop("ORGANIZER")
		switch {
		case (len(ps) == 0 || ps[0].Address == "") && l != nil:
			w.p.remove(l)
		case len(ps) > 0 && ps[0].Address != "":
			nc := cline{name: "ORGANIZER"}
			if l != nil {
				nc = fromLine(l)
			}
			setParty(&nc, ps[0])
			if l != nil {
				w.p.replace(l, nc)
			} else {
				w.p.insert(w.end(), nc)
			}
		}
	}
	if !w.changed("requiredattendees", "optionalattendees") {
		return
	}
	req, _ := w.want["requiredattendees"].([]crm.Party)
	opt, _ := w.want["optionalattendees"].([]crm.Party)
	type wanted struct {
		p    crm.Party
		role string
		done bool
	}
	var ws []*wanted
	for _, p := range req {
		ws = append(ws, &wanted{p: p, role: "REQ-PARTICIPANT"})
	}
	for _, p := range opt {
		ws = append(ws, &wanted{p: p, role: "OPT-PARTICIPANT"})
	}
	for _, l := range c.all("ATTENDEE") {
		p, ok := w.it.party(l)
		var match *wanted
		for _, x := range ws {
			if ok && !x.done && strings.EqualFold(x.p.Address, p.Address) {
				match = x
				break
			}
		}
		if match == nil {
			w.p.remove(l)
			continue
		}
		match.done = true
		oldRole := strings.ToUpper(l.param("ROLE"))
		isOpt := oldRole == "OPT-PARTICIPANT" || oldRole == "NON-PARTICIPANT"
		if isOpt != (match.role == "OPT-PARTICIPANT") || match.p.Name != "" && match.p.Name != l.param("CN") {
			nc := fromLine(l)
			nc.setParam("ROLE", match.role)
			setParty(&nc, match.p)
			w.p.replace(l, nc)
		}
	}
	for _, x := range ws {
		if !x.done && x.p.Address != "" {
			nc := cline{name: "ATTENDEE", params: []param{{name: "ROLE", values: []string{x.role}}}}
			setParty(&nc, x.p)
			w.p.insert(w.end(), nc)
		}
	}
}

func setParty(c *cline, p crm.Party) {
	if p.Name != "" {
		c.setParam("CN", p.Name)
	}
	c.value = "mailto:" + p.Address
}

// recurrence replaces the RRULE, RDATE and EXDATE lines with the pattern.
func (w *icalWriter) recurrence() error {
	c := w.it.c
	pos := w.end()
	first := true
	for _, l := range c.props {
		if l.name == "RRULE" || l.name == "RDATE" || l.name == "EXDATE" {
			if first {
				pos, first = l.start, false
			}
			w.p.remove(l)
		}
	}
	for _, s := range strings.Split(w.str("recurrencepattern"), "\n") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		l, err := splitLine(s)
		if err != nil || l.name != "RRULE" && l.name != "RDATE" && l.name != "EXDATE" {
			if err == nil {
				err = errors.New("only RRULE, RDATE and EXDATE lines are allowed")
			}
			return &crm.AttributeError{Entity: crm.EntityAppointment, Attribute: "recurrencepattern", Err: fmt.Errorf("%w: %v", crm.ErrInvalidArgument, err)}
		}
		if l.name == "RRULE" {
			if err := checkRRule(l.value); err != nil {
				return &crm.AttributeError{Entity: crm.EntityAppointment, Attribute: "recurrencepattern", Err: fmt.Errorf("%w: %v", crm.ErrInvalidArgument, err)}
			}
		}
		w.p.insert(pos, fromLine(l))
	}
	return nil
}

// checkRRule validates an RRULE value with go-ical (rrule-go) before it is
// sent to a PIM server.
func checkRRule(v string) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("RRULE %q: %v", v, r)
		}
	}()
	p := ical.NewProp(ical.PropRecurrenceRule)
	p.Value = strings.ReplaceAll(v, " ", "") // Exchange writes "BYDAY=MO, TU"
	_, err = ical.Props{ical.PropRecurrenceRule: {*p}}.RecurrenceRule()
	return err
}

func (w *icalWriter) status(isEvent bool) {
	code, _ := w.want["statuscode"].(int64)
	e := entityMeta(w.it.entity)
	if e.StateOfStatus(code) == nil {
		if sc, ok := w.want["statecode"].(int64); ok && e.State(sc) != nil {
			code = e.State(sc).DefaultStatus
		} else {
			code = e.States[0].DefaultStatus
		}
	}
	lk := look(w.it.entity, code)
	w.setRaw("STATUS", lk.status)
	if isEvent {
		w.setRaw("TRANSP", lk.transp)
		if l := w.it.c.prop("X-MICROSOFT-CDO-BUSYSTATUS"); l != nil || lk.busy == "OOF" {
			w.setRaw("X-MICROSOFT-CDO-BUSYSTATUS", lk.busy)
		}
	} else if l := w.it.c.prop("PERCENT-COMPLETE"); lk.status == "COMPLETED" || l != nil && strings.TrimSpace(l.value) == "100" {
		if lk.status == "COMPLETED" {
			w.setRaw("PERCENT-COMPLETE", "100")
		} else {
			w.p.remove(l)
		}
	}
	w.setRaw("X-CRM-STATUSCODE", strconv.FormatInt(code, 10))

}

// isStamp reports whether a REV, DTSTAMP or LAST-MODIFIED value parses; one
// that does not is left as written.
func isStamp(v string) bool {
	_, ok := parseStamp(v)
	return ok
}
