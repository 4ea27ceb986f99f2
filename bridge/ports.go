package bridge

import (
	"context"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmclient"
	"github.com/pimbridge/pimbridge/pim"
	"github.com/pimbridge/pimbridge/pim/davcalendar"
	"github.com/pimbridge/pimbridge/pim/davcontacts"
)

// CRM is the CRM server as the bridge drives it; *crmclient.Client
// implements it. Errors wrap the crm sentinels: crm.ErrNotFound for a
// missing record, crm.ErrPreconditionFailed for a stale If-Match,
// crm.ErrStalePrimary when the fencing generation is no longer current,
// crm.ErrForbidden when the user lacks a right or privilege.
type CRM interface {
	Get(ctx context.Context, entity string, id crm.ID, sel ...string) (crm.Record, error)
	Create(ctx context.Context, r crm.Record, opts *crmclient.WriteOptions) (crm.Record, error)
	Update(ctx context.Context, r crm.Record, opts *crmclient.WriteOptions) (crm.Record, error)
	Delete(ctx context.Context, entity string, id crm.ID, opts *crmclient.WriteOptions) error
	WhoAmI(ctx context.Context) (crmclient.WhoAmI, error)
	Subscribe(ctx context.Context, clientID, kind string) (crm.Subscription, error)
	DeleteSubscription(ctx context.Context, subID string) error
	Prepare(ctx context.Context, subID string) (crmclient.PrepareResult, error)
	NextBatch(ctx context.Context, subID, entity string, size int) (*crm.Batch, error)
	PostSync(ctx context.Context, subID string, batchID uint64) (crm.PostSyncResult, error)
	Primary(ctx context.Context) (crm.Primary, error)
	ClaimPrimary(ctx context.Context, clientID string) (crm.Primary, error)
}

// Collection is one PIM collection (address book, task list or calendar)
// as the bridge drives it; davcontacts.AddressBook and davcalendar.Calendar
// implement it. Errors wrap the pim sentinels: pim.ErrNotFound,
// pim.ErrPreconditionFailed (412: stale If-Match, or an existing object on
// Create), pim.ErrTokenExpired (start again from an empty cursor).
type Collection interface {
	// Changes returns the objects changed and the hrefs deleted since
	// cursor; an empty cursor lists every object.
	Changes(ctx context.Context, cursor string) (changed []pim.Object, deleted []string, newCursor string, err error)
	Get(ctx context.Context, href string) (pim.Object, error)
	// Create stores a new object named name with If-None-Match: *.
	Create(ctx context.Context, name string, data []byte) (pim.Ref, error)
	// Update replaces the object if its ETag is still etag (If-Match).
	Update(ctx context.Context, href, etag string, data []byte) (string, error)
	// Delete removes the object if its ETag is still etag.
	Delete(ctx context.Context, href, etag string) error
	// Href is the collection's path with a trailing slash.
	Href() string
	// ObjectHref is the href Create(name) would use.
	ObjectHref(name string) string
}

// Verifier is the optional ability of a Collection to check in one request
// which of some hrefs are gone (the verification job). Without it the job
// uses one Get per href.
type Verifier interface {
	Missing(ctx context.Context, hrefs []string) ([]string, error)
}

var (
	_ CRM        = (*crmclient.Client)(nil)
	_ Collection = (*davcontacts.AddressBook)(nil)
	_ Collection = (*davcalendar.Calendar)(nil)
	_ Verifier   = (*davcontacts.AddressBook)(nil)
	_ Verifier   = (*davcalendar.Calendar)(nil)
	_ Fetcher    = (*davcontacts.AddressBook)(nil)
	_ Fetcher    = (*davcalendar.Calendar)(nil)
)
