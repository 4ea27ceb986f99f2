package crmclient_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmclient"
	"github.com/pimbridge/pimbridge/crm/crmserver"
	"github.com/pimbridge/pimbridge/crm/crmstore"
)

// Example shows a whole round: records, a query, and one offline sync run
// (subscribe, prepare, batches, postsync) against a real server. Tests
// usually get the server and clients from crmtest.Start instead.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "crmclient-example-")
	defer os.RemoveAll(dir)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := crmstore.Open(ctx, dir+"/crm.db", &crmstore.Options{Logger: quiet, BcryptCost: 4})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer st.Close()
	st.CreateUser(ctx, "alice", "alice-password", crmserver.RoleSalesperson)
	srv := httptest.NewServer(crmserver.New(st, &crmserver.Options{Logger: quiet}))
	defer srv.Close()

	c, _ := crmclient.New(srv.URL, &crmclient.Options{User: "alice", Password: "alice-password"})
	ann, err := c.Create(ctx, crm.Record{Entity: "contact", Attrs: map[string]any{
		"firstname": "Ann", "lastname": "Smith", "emailaddress1": "ann@example.com",
	}}, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("created", ann.Attrs["fullname"])

	// PATCH with If-Match: a stale version is refused.
	if _, err := c.Update(ctx, crm.Record{Entity: "contact", ID: ann.ID, Attrs: map[string]any{"jobtitle": "CTO"}},
		&crmclient.WriteOptions{IfMatch: ann.Version}); err != nil {
		fmt.Println(err)
	}
	_, err = c.Update(ctx, crm.Record{Entity: "contact", ID: ann.ID, Attrs: map[string]any{"jobtitle": "CEO"}},
		&crmclient.WriteOptions{IfMatch: ann.Version})
	fmt.Println("stale update refused:", errors.Is(err, crm.ErrPreconditionFailed))

	recs, _ := c.QueryAll(ctx, "contact", crmclient.Query{Filter: "contains(emailaddress1,'@example.com')", Select: []string{"fullname", "jobtitle"}})
	fmt.Println("query:", len(recs), recs[0].Attrs["jobtitle"])

	// One GoOffline run for the contacts.
	sub, _ := c.Subscribe(ctx, "laptop", crm.KindOffline)
	prep, _ := c.Prepare(ctx, sub.ID)
	fmt.Println("to send:", prep.Count("contact").InsertCount)
	for {
		b, err := c.NextBatch(ctx, sub.ID, "contact", 500)
		if err != nil || b.Header.Result == crm.BatchEmpty {
			break
		}
		fmt.Println("batch rows:", len(b.Upserts), "deletes:", len(b.Deletes))
		c.PostSync(ctx, sub.ID, b.ID)
	}
	// Output:
	// created Ann Smith
	// stale update refused: true
	// query: 1 CTO
	// to send: 1
	// batch rows: 1 deletes: 0
}
