package davext

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"strconv"
	"strings"
)

const (
	nsDAV     = "DAV:"
	nsCardDAV = "urn:ietf:params:xml:ns:carddav"
	nsCalDAV  = "urn:ietf:params:xml:ns:caldav"
	nsCS      = "http://calendarserver.org/ns/"
)

type multistatus struct {
	XMLName   xml.Name   `xml:"DAV: multistatus"`
	Responses []response `xml:"DAV: response"`
	SyncToken string     `xml:"DAV: sync-token"`
}

type response struct {
	Hrefs     []string   `xml:"DAV: href"`
	Status    string     `xml:"DAV: status"`
	Propstats []propstat `xml:"DAV: propstat"`
}

type propstat struct {
	Status string `xml:"DAV: status"`
	Prop   prop   `xml:"DAV: prop"`
}

type prop struct {
	GetETag      *string       `xml:"DAV: getetag"`
	GetCTag      *string       `xml:"http://calendarserver.org/ns/ getctag"`
	SyncToken    *string       `xml:"DAV: sync-token"`
	ResourceType *resourceType `xml:"DAV: resourcetype"`
	AddressData  *string       `xml:"urn:ietf:params:xml:ns:carddav address-data"`
	CalendarData *string       `xml:"urn:ietf:params:xml:ns:caldav calendar-data"`
	// CompSet is supported-calendar-component-set (RFC 4791 5.2.3).
	CompSet *compSet `xml:"urn:ietf:params:xml:ns:caldav supported-calendar-component-set"`
}

type compSet struct {
	Comps []struct {
		Name string `xml:"name,attr"`
	} `xml:"urn:ietf:params:xml:ns:caldav comp"`
}

type resourceType struct {
	Inner []byte `xml:",innerxml"`
}

// collection reports whether the resourcetype holds DAV:collection.
func (r *resourceType) collection() bool {
	if r == nil {
		return false
	}
	d := xml.NewDecoder(bytes.NewReader(r.Inner))
	for {
		tok, err := d.Token()
		if err != nil {
			return false
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Space == nsDAV && se.Name.Local == "collection" {
			return true
		}
	}
}

// statusCode parses "HTTP/1.1 404 Not Found"; an empty status means 200.
func statusCode(s string) int {
	s = strings.TrimSpace(s)
	if s == "" {
		return 200
	}
	f := strings.Fields(s)
	if len(f) < 2 {
		return 0
	}
	n, err := strconv.Atoi(f[1])
	if err != nil {
		return 0
	}
	return n
}

// okProp merges the props of every propstat whose status is 2xx.
func (r *response) okProp() prop {
	var p prop
	for _, ps := range r.Propstats {
		if c := statusCode(ps.Status); c < 200 || c > 299 {
			continue
		}
		q := ps.Prop
		if q.GetETag != nil {
			p.GetETag = q.GetETag
		}
		if q.GetCTag != nil {
			p.GetCTag = q.GetCTag
		}
		if q.SyncToken != nil {
			p.SyncToken = q.SyncToken
		}
		if q.ResourceType != nil {
			p.ResourceType = q.ResourceType
		}
		if q.AddressData != nil {
			p.AddressData = q.AddressData
		}
		if q.CalendarData != nil {
			p.CalendarData = q.CalendarData
		}
		if q.CompSet != nil {
			p.CompSet = q.CompSet
		}
	}
	return p
}

func (r *response) href() string {
	if len(r.Hrefs) == 0 {
		return ""
	}
	return NormalizeHref(r.Hrefs[0])
}

func decodeMultistatus(b []byte) (*multistatus, error) {
	var ms multistatus
	if err := xml.Unmarshal(b, &ms); err != nil {
		return nil, fmt.Errorf("decode multistatus: %w", err)
	}
	return &ms, nil
}

func xmlText(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

const xmlHeader = `<?xml version="1.0" encoding="utf-8"?>` + "\n"

// etagValue returns an ETag as sent, trimming only XML whitespace around it.
func etagValue(s *string) string {
	if s == nil {
		return ""
	}
	return strings.TrimSpace(*s)
}

// restoreCRLF undoes XML line-end normalisation on vCard/iCalendar text
// (which must use CRLF): when the text has no CR at all, every LF becomes
// CRLF.
func restoreCRLF(s string) []byte {
	if strings.Contains(s, "\r") {
		return []byte(s)
	}
	return []byte(strings.ReplaceAll(s, "\n", "\r\n"))
}
