// Package davcalendar is the CalDAV adapter (RFC 4791, RFC 6578, RFC
// 6764): discovery of the user's calendars through go-webdav's caldav
// client, and Calendar, the per-collection connector the bridge drives for
// events (VEVENT) and tasks (VTODO); pim/davext does the wire work.
// Objects travel as raw bytes; this package never decodes or re-encodes
// iCalendar. It imports pim, pim/davext and go-webdav, never bridge.
package davcalendar

import (
	"context"
	"fmt"

	"github.com/emersion/go-webdav/caldav"

	"github.com/pimbridge/pimbridge/pim/davext"
)

// Calendar is the connector for one CalDAV calendar: Changes, Get, Create,
// Update and Delete (see davext.Collection for their contracts).
type Calendar struct {
	*davext.Collection
}

// New returns the connector for the calendar at href (a path on c's
// server).
func New(c *davext.Client, href string) *Calendar {
	return &Calendar{davext.NewCollection(c, href, davext.Calendar)}
}

// Info describes a calendar found by Discover. Components is the
// supported-calendar-component-set (e.g. VEVENT, VTODO); empty means the
// server did not say (any component).
type Info struct {
	Href        string
	Name        string
	Description string
	Components  []string
}

// Supports reports whether the calendar accepts comp ("VEVENT", "VTODO").
func (i Info) Supports(comp string) bool {
	if len(i.Components) == 0 {
		return true
	}
	for _, c := range i.Components {
		if c == comp {
			return true
		}
	}
	return false
}

// Discover finds the user's calendars: the context path (the endpoint's
// own path, else /.well-known/caldav resolved by hand), the
// current-user-principal, the calendar-home-set and its calendars. It
// returns the home set's href too (new calendars go under it).
func Discover(ctx context.Context, c *davext.Client) (homeSet string, cals []Info, err error) {
	ctxPath, err := c.ContextPath(ctx, "caldav")
	if err != nil {
		return "", nil, fmt.Errorf("davcalendar: discover: %w", err)
	}
	cc, err := caldav.NewClient(c.ErrorDoer(), ctxPath)
	if err != nil {
		return "", nil, fmt.Errorf("davcalendar: discover: %w", err)
	}
	principal, err := cc.FindCurrentUserPrincipal(ctx)
	if err != nil {
		return "", nil, fmt.Errorf("davcalendar: discover: current-user-principal: %w", err)
	}
	homeSet, err = cc.FindCalendarHomeSet(ctx, principal)
	if err != nil {
		return "", nil, fmt.Errorf("davcalendar: discover: home set: %w", err)
	}
	found, err := cc.FindCalendars(ctx, homeSet)
	if err != nil {
		return "", nil, fmt.Errorf("davcalendar: discover: calendars: %w", err)
	}
	for _, cal := range found {
		cals = append(cals, Info{Href: davext.NormalizeHref(cal.Path), Name: cal.Name, Description: cal.Description,
			Components: cal.SupportedComponentSet})
	}
	return davext.NormalizeHref(homeSet), cals, nil
}
