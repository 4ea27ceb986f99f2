package mapping

import (
	"bytes"
	"strings"
	"time"
)

// ObjectInfo is what the bridge reads of a raw PIM object before mapping it:
// whether it is tracked by category, and when its author last changed it.
type ObjectInfo struct {
	// Categories are the CATEGORIES of the card, or of the VEVENT and
	// VTODO components, unescaped and trimmed, in order.
	Categories []string
	// Modified is the object's own modification time: a vCard's REV; for
	// iCalendar the latest LAST-MODIFIED of its VEVENT and VTODO components
	// (a recurrence override edited later counts), else their latest
	// DTSTAMP. A VTIMEZONE's or VALARM's stamps never count: a time zone
	// definition last changed years ago says nothing of the event. Zero
	// when absent or unreadable.
	Modified time.Time
}

// Inspect reads the ObjectInfo of a vCard or iCalendar object. It fails
// only where parsing the object fails (no component, mismatched END).
func Inspect(raw []byte) (ObjectInfo, error) {
	kind := "vcard"
	if bytes.Contains(bytes.ToUpper(raw[:min(len(raw), 1024)]), []byte("BEGIN:VCALENDAR")) {
		kind = "ical"
	}
	d, err := parseDocument(raw, kind)
	if err != nil {
		return ObjectInfo{}, err
	}
	var info ObjectInfo
	var lastMod, stamp time.Time
	own := func(c *component, modProps ...string) {
		for _, l := range c.all("CATEGORIES") {
			for _, v := range splitList(decodeValue(l)) {
				if v = strings.TrimSpace(v); v != "" {
					info.Categories = append(info.Categories, v)
				}
			}
		}
		for _, l := range c.all(modProps[0]) {
			if t, ok := parseStamp(l.value); ok && t.After(lastMod) {
				lastMod = t
			}
		}
		for _, p := range modProps[1:] {
			for _, l := range c.all(p) {
				if t, ok := parseStamp(l.value); ok && t.After(stamp) {
					stamp = t
				}
			}
		}
	}
	for _, c := range d.root.children {
		switch c.name {
		case "VCARD":
			own(c, "REV")
		case "VCALENDAR":
			for _, s := range c.children {
				if s.name == "VEVENT" || s.name == "VTODO" {
					own(s, "LAST-MODIFIED", "DTSTAMP")
				}
			}
		}
	}
	info.Modified = lastMod
	if info.Modified.IsZero() {
		info.Modified = stamp
	}
	return info, nil
}

// HasCategory reports whether the object lists name among its categories
// (compared case-insensitively).
func (i ObjectInfo) HasCategory(name string) bool {
	for _, c := range i.Categories {
		if strings.EqualFold(c, name) {
			return true
		}
	}
	return false
}
