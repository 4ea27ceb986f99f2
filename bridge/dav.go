package bridge

import (
	"context"

	"github.com/pimbridge/pimbridge/pim/davext"
)

// DAVCollection is a davext collection (the embedded connector of
// davcontacts.AddressBook and davcalendar.Calendar) with the Verifier
// ability: one multiget tells which hrefs are gone.
type DAVCollection struct {
	*davext.Collection
}

// NewDAVCollection wraps a davext collection.
func NewDAVCollection(c *davext.Collection) *DAVCollection { return &DAVCollection{Collection: c} }

// Missing implements Verifier with one addressbook-multiget or
// calendar-multiget REPORT.
func (c *DAVCollection) Missing(ctx context.Context, hrefs []string) ([]string, error) {
	_, missing, err := c.Client().MultiGet(ctx, c.Href(), c.Kind() == davext.Calendar, hrefs)
	return missing, err
}

var (
	_ Collection = (*DAVCollection)(nil)
	_ Verifier   = (*DAVCollection)(nil)
)
