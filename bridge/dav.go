package bridge

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/pimbridge/pimbridge/pim"
	"github.com/pimbridge/pimbridge/pim/davext"
)

// DAVCollection is a davext collection (the embedded connector of
// davcontacts.AddressBook and davcalendar.Calendar) with the Verifier
// ability (one multiget tells which hrefs are gone) and a Changes that
// survives an object the server cannot serve in a multiget.
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

// Changes is davext's Changes. When the server fails the whole
// sync-collection multiget with a 5xx (Xandikos does on an object it cannot
// parse), the changes are read one object at a time instead; an object the
// server cannot serve comes back with no Data, which the bridge records as
// a sync error naming it, so one bad object does not block the collection.
func (c *DAVCollection) Changes(ctx context.Context, cursor string) ([]pim.Object, []string, string, error) {
	changed, deleted, next, err := c.Collection.Changes(ctx, cursor)
	var se *pim.StatusError
	if err == nil || !errors.As(err, &se) || se.Code < 500 || (cursor != "" && !strings.HasPrefix(cursor, "s:")) {
		return changed, deleted, next, err
	}
	token := strings.TrimPrefix(cursor, "s:")
	changed, deleted = nil, nil
	for {
		chs, nt, more, serr := c.Client().SyncCollection(ctx, c.Href(), token, 0)
		if serr != nil {
			return nil, nil, "", fmt.Errorf("bridge: changes of %s: %w (after %v)", c.Href(), serr, err)
		}
		token = nt
		for _, ch := range chs {
			if ch.Deleted {
				if cursor != "" {
					deleted = append(deleted, ch.Href)
				}
				continue
			}
			obj, gerr := c.Get(ctx, ch.Href)
			var ge *pim.StatusError
			switch {
			case gerr == nil:
				changed = append(changed, obj)
			case errors.Is(gerr, pim.ErrNotFound):
				if cursor != "" {
					deleted = append(deleted, ch.Href)
				}
			case errors.As(gerr, &ge) && ge.Code >= 500:
				changed = append(changed, pim.Object{Href: ch.Href, ETag: ch.ETag})
			default:
				return nil, nil, "", gerr
			}
		}
		if !more {
			break
		}
	}
	return changed, deleted, "s:" + token, nil
}

var (
	_ Collection = (*DAVCollection)(nil)
	_ Verifier   = (*DAVCollection)(nil)
)
