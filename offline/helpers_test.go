package offline

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmclient"
	"github.com/pimbridge/pimbridge/crm/crmserver"
	"github.com/pimbridge/pimbridge/crm/crmtest"
)

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func openEngine(t testing.TB, path string, opts *Options) *Engine {
	t.Helper()
	o := Options{}
	if opts != nil {
		o = *opts
	}
	if o.Path == "" {
		o.Path = path
	}
	if o.Path == "" {
		o.Path = filepath.Join(t.TempDir(), "replica.db")
	}
	if o.Logger == nil {
		o.Logger = quietLog()
	}
	o.BcryptCost = bcrypt.MinCost
	e, err := Open(context.Background(), &o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func aliceCred() Credentials { return Credentials{User: "alice", Password: crmtest.AlicePassword} }

// localClient serves e's local API on 127.0.0.1 and returns a client for
// it with alice's credentials.
func localClient(t testing.TB, e *Engine) *crmclient.Client {
	t.Helper()
	hs := httptest.NewServer(e.Handler())
	t.Cleanup(hs.Close)
	c, err := crmclient.New(hs.URL, &crmclient.Options{User: "alice", Password: crmtest.AlicePassword, HTTPClient: hs.Client()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func seedContacts(t testing.TB, srv *crmtest.Server, owner crm.ID, n int, prefix string) []crm.ID {
	t.Helper()
	recs := make([]crm.Record, n)
	ids := make([]crm.ID, n)
	for i := range recs {
		ids[i] = crm.NewID()
		recs[i] = crm.Record{ID: ids[i], Attrs: map[string]any{
			"lastname": fmt.Sprintf("%s%06d", prefix, i), "firstname": "F", "emailaddress1": fmt.Sprintf("%s%d@example.com", prefix, i),
			"ownerid": crm.Ref{Entity: crm.EntitySystemUser, ID: owner}, "statecode": int64(0), "statuscode": int64(1),
		}}
	}
	if err := srv.Store.BulkInsert(context.Background(), crm.EntityContact, recs); err != nil {
		t.Fatal(err)
	}
	return ids
}

// serverRecords returns the server's records of an entity owned by owner.
func serverRecords(t testing.TB, srv *crmtest.Server, entity string, owner crm.ID) map[crm.ID]crm.Record {
	t.Helper()
	return storeRecords(t, srv.Store, entity, owner)
}

type viewer interface {
	View(ctx context.Context, fn func(crmserver.Tx) error) error
	Metadata(ctx context.Context) (*crm.Metadata, error)
}

func storeRecords(t testing.TB, st viewer, entity string, owner crm.ID) map[crm.ID]crm.Record {
	t.Helper()
	ctx := context.Background()
	md, _ := st.Metadata(ctx)
	e, err := md.Entity(entity)
	if err != nil {
		t.Fatal(err)
	}
	out := map[crm.ID]crm.Record{}
	err = st.View(ctx, func(tx crmserver.Tx) error {
		rs, err := tx.Query(ctx, e, crm.Query{}, crmserver.QueryOptions{Owner: owner, Now: time.Now()})
		for _, r := range rs {
			out[r.ID] = r
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// sameRecords fails unless want and got hold the same records (ids,
// versions and every attribute).
func sameRecords(t testing.TB, what string, want, got map[crm.ID]crm.Record) {
	t.Helper()
	if len(want) != len(got) {
		t.Fatalf("%s: replica has %d records, server %d", what, len(got), len(want))
	}
	bad := 0
	for id, w := range want {
		g, ok := got[id]
		if !ok {
			t.Errorf("%s: %s missing from the replica", what, id)
		} else if w.Version != g.Version || !reflect.DeepEqual(w.Attrs, g.Attrs) {
			t.Errorf("%s: %s differs:\nserver  %v %v\nreplica %v %v", what, id, w.Version, w.Attrs, g.Version, g.Attrs)
		} else {
			continue
		}
		if bad++; bad > 5 {
			t.FailNow()
		}
	}
}
