package mapping

import (
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // zone data independent of the host
)

// windowsZones maps Windows time-zone names (Outlook, Exchange) to IANA
// names (CLDR windowsZones.xml, territory 001).
var windowsZones = map[string]string{
	"Dateline Standard Time": "Etc/GMT+12", "UTC-11": "Etc/GMT+11", "Hawaiian Standard Time": "Pacific/Honolulu",
	"Alaskan Standard Time": "America/Anchorage", "Pacific Standard Time": "America/Los_Angeles",
	"US Mountain Standard Time": "America/Phoenix", "Mountain Standard Time": "America/Denver",
	"Central America Standard Time": "America/Guatemala", "Central Standard Time": "America/Chicago",
	"Canada Central Standard Time": "America/Regina", "SA Pacific Standard Time": "America/Bogota",
	"Eastern Standard Time": "America/New_York", "US Eastern Standard Time": "America/Indianapolis",
	"Atlantic Standard Time": "America/Halifax", "Newfoundland Standard Time": "America/St_Johns",
	"E. South America Standard Time": "America/Sao_Paulo", "Argentina Standard Time": "America/Buenos_Aires",
	"UTC": "Etc/UTC", "GMT Standard Time": "Europe/London", "Greenwich Standard Time": "Atlantic/Reykjavik",
	"W. Europe Standard Time": "Europe/Berlin", "Central Europe Standard Time": "Europe/Budapest",
	"Romance Standard Time": "Europe/Paris", "Central European Standard Time": "Europe/Warsaw",
	"W. Central Africa Standard Time": "Africa/Lagos", "GTB Standard Time": "Europe/Bucharest",
	"E. Europe Standard Time": "Europe/Chisinau", "Egypt Standard Time": "Africa/Cairo",
	"South Africa Standard Time": "Africa/Johannesburg", "FLE Standard Time": "Europe/Kiev",
	"Israel Standard Time": "Asia/Jerusalem", "Turkey Standard Time": "Europe/Istanbul",
	"Arab Standard Time": "Asia/Riyadh", "Russian Standard Time": "Europe/Moscow",
	"Iran Standard Time": "Asia/Tehran", "Arabian Standard Time": "Asia/Dubai",
	"Pakistan Standard Time": "Asia/Karachi", "India Standard Time": "Asia/Calcutta",
	"Nepal Standard Time": "Asia/Katmandu", "Bangladesh Standard Time": "Asia/Dhaka",
	"SE Asia Standard Time": "Asia/Bangkok", "China Standard Time": "Asia/Shanghai",
	"Singapore Standard Time": "Asia/Singapore", "W. Australia Standard Time": "Australia/Perth",
	"Taipei Standard Time": "Asia/Taipei", "Tokyo Standard Time": "Asia/Tokyo",
	"Korea Standard Time": "Asia/Seoul", "Cen. Australia Standard Time": "Australia/Adelaide",
	"E. Australia Standard Time": "Australia/Brisbane", "AUS Eastern Standard Time": "Australia/Sydney",
	"Tasmania Standard Time": "Australia/Hobart", "New Zealand Standard Time": "Pacific/Auckland",
	"Mexico Standard Time": "America/Mexico_City", "Central Standard Time (Mexico)": "America/Mexico_City",
	"Venezuela Standard Time": "America/Caracas", "Morocco Standard Time": "Africa/Casablanca",
}

// zone converts between UTC and the wall clock of one TZID. Wall-clock
// times are carried as time.Time values in UTC whose fields are the local
// fields.
type zone interface {
	toUTC(wall time.Time) time.Time
	toWall(t time.Time) time.Time
}

type locZone struct{ loc *time.Location }

func (z locZone) toUTC(w time.Time) time.Time {
	return time.Date(w.Year(), w.Month(), w.Day(), w.Hour(), w.Minute(), w.Second(), 0, z.loc).UTC()
}

func (z locZone) toWall(t time.Time) time.Time {
	l := t.In(z.loc)
	return time.Date(l.Year(), l.Month(), l.Day(), l.Hour(), l.Minute(), l.Second(), 0, time.UTC)
}

// lookupZone resolves a TZID: Windows names by table, IANA names (also with
// prefixes such as /softwarestudio.org/Tzfile/ or a leading slash), then
// the calendar's own VTIMEZONE. nil means unknown.
func lookupZone(tzid string, vtz map[string]*component) zone {
	tzid = strings.TrimSpace(strings.Trim(tzid, `"`))
	if tzid == "" {
		return nil
	}
	if name, ok := windowsZones[tzid]; ok {
		if loc, err := time.LoadLocation(name); err == nil {
			return locZone{loc}
		}
	}
	if !strings.Contains(tzid, "..") {
		parts := strings.Split(strings.Trim(tzid, "/"), "/")
		for i := range parts {
			name := strings.Join(parts[i:], "/")
			if name == "" || strings.ContainsAny(name, " \\") {
				continue
			}
			if loc, err := time.LoadLocation(name); err == nil {
				return locZone{loc}
			}
		}
	}
	if c := vtz[tzid]; c != nil {
		if z := newVTZ(c); z != nil {
			return z
		}
	}
	return nil
}

// vtzZone computes offsets from a VTIMEZONE's STANDARD/DAYLIGHT rules.
type vtzZone struct{ obs []observance }

type observance struct {
	start      time.Time // DTSTART, wall clock
	from, to   int       // offsets in seconds
	month, nth int       // RRULE FREQ=YEARLY;BYMONTH;BYDAY=<nth><wd>; month 0: no rule
	weekday    time.Weekday
	until      time.Time
	rdates     []time.Time
}

func newVTZ(c *component) *vtzZone {
	z := &vtzZone{}
	for _, ch := range c.children {
		if ch.name != "STANDARD" && ch.name != "DAYLIGHT" {
			continue
		}
		var o observance
		var ok1, ok2, ok3 bool
		if l := ch.prop("DTSTART"); l != nil {
			o.start, _, ok1 = parseWall(l.value)
		}
		if l := ch.prop("TZOFFSETFROM"); l != nil {
			o.from, ok2 = parseOffset(l.value)
		}
		if l := ch.prop("TZOFFSETTO"); l != nil {
			o.to, ok3 = parseOffset(l.value)
		}
		if !ok1 || !ok2 || !ok3 {
			continue
		}
		if l := ch.prop("RRULE"); l != nil {
			for _, part := range strings.Split(strings.ToUpper(l.value), ";") {
				k, v, _ := strings.Cut(part, "=")
				switch k {
				case "BYMONTH":
					o.month, _ = strconv.Atoi(v)
				case "BYDAY":
					v = strings.TrimSpace(v)
					if len(v) >= 2 {
						o.weekday = weekdays[v[len(v)-2:]]
						o.nth, _ = strconv.Atoi(v[:len(v)-2])
						if o.nth == 0 {
							o.nth = 1
						}
					}
				case "UNTIL":
					o.until, _, _ = parseWall(strings.TrimSuffix(v, "Z"))
				}
			}
		}
		for _, l := range ch.all("RDATE") {
			for _, v := range strings.Split(l.value, ",") {
				if t, _, ok := parseWall(v); ok {
					o.rdates = append(o.rdates, t)
				}
			}
		}
		z.obs = append(z.obs, o)
	}
	if len(z.obs) == 0 {
		return nil
	}
	return z
}

var weekdays = map[string]time.Weekday{"SU": time.Sunday, "MO": time.Monday, "TU": time.Tuesday, "WE": time.Wednesday, "TH": time.Thursday, "FR": time.Friday, "SA": time.Saturday}

// onset returns the observance's last onset (wall clock) at or before w.
func (o *observance) onset(w time.Time) (time.Time, bool) {
	var best time.Time
	found := false
	consider := func(t time.Time) {
		if !t.Before(o.start) && !t.After(w) && (!found || t.After(best)) {
			best, found = t, true
		}
	}
	consider(o.start)
	for _, r := range o.rdates {
		consider(r)
	}
	if o.month > 0 {
		for y := w.Year(); y >= w.Year()-1; y-- {
			t := nthWeekday(y, time.Month(o.month), o.weekday, o.nth, o.start)
			if o.until.IsZero() || !t.After(o.until.Add(24*time.Hour)) {
				consider(t)
			}
		}
	}
	return best, found
}

func nthWeekday(y int, m time.Month, wd time.Weekday, nth int, clock time.Time) time.Time {
	if nth > 0 {
		d := time.Date(y, m, 1, clock.Hour(), clock.Minute(), clock.Second(), 0, time.UTC)
		d = d.AddDate(0, 0, (int(wd)-int(d.Weekday())+7)%7+7*(nth-1))
		return d
	}
	d := time.Date(y, m+1, 1, clock.Hour(), clock.Minute(), clock.Second(), 0, time.UTC).AddDate(0, 0, -1)
	d = d.AddDate(0, 0, -((int(d.Weekday())-int(wd)+7)%7)+7*(nth+1))
	return d
}

func (z *vtzZone) offset(w time.Time) int {
	var best time.Time
	off, found := z.obs[0].from, false
	for i := range z.obs {
		if t, ok := z.obs[i].onset(w); ok && (!found || t.After(best)) {
			best, off, found = t, z.obs[i].to, true
		}
	}
	return off
}

func (z *vtzZone) toUTC(w time.Time) time.Time {
	return w.Add(-time.Duration(z.offset(w)) * time.Second)
}

func (z *vtzZone) toWall(t time.Time) time.Time {
	for _, o := range z.obs {
		w := t.Add(time.Duration(o.to) * time.Second)
		if z.offset(w) == o.to {
			return w
		}
	}
	return t.Add(time.Duration(z.obs[0].to) * time.Second)
}

// parseOffset parses +HHMM or +HHMMSS.
func parseOffset(s string) (int, bool) {
	s = strings.TrimSpace(s)
	if len(s) != 5 && len(s) != 7 {
		return 0, false
	}
	sign := 1
	switch s[0] {
	case '-':
		sign = -1
	case '+':
	default:
		return 0, false
	}
	n, err := strconv.Atoi(s[1:])
	if err != nil {
		return 0, false
	}
	if len(s) == 5 {
		n *= 100
	}
	return sign * (n/10000*3600 + n/100%100*60 + n%100), true
}

// parseWall parses an iCalendar DATE or DATE-TIME value. utc reports a
// trailing Z; the returned time carries the written fields in UTC.
func parseWall(s string) (t time.Time, date bool, ok bool) {
	s = strings.TrimSpace(s)
	switch len(s) {
	case 8:
		t, err := time.Parse("20060102", s)
		return t, true, err == nil
	case 15, 16:
		if len(s) == 16 && s[15] != 'Z' {
			return time.Time{}, false, false
		}
		t, err := time.Parse("20060102T150405", s[:15])
		return t, false, err == nil
	}
	return time.Time{}, false, false
}
