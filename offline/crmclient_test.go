package offline

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmclient"
	"github.com/pimbridge/pimbridge/crm/crmtest"
)

// TestLocalAPI_CrmclientSuite runs crmclient's representative behaviour
// (CRUD, paged queries, $batch atomicity groups, optimistic concurrency)
// against the local API of an offline engine, unchanged from how it is
// used against the server (acceptance item 3).
func TestLocalAPI_CrmclientSuite(t *testing.T) {
	ctx := context.Background()
	srv := crmtest.Start(t, nil)
	seeded := seedContacts(t, srv, srv.Alice.ID, 30, "p")
	e := openEngine(t, "", nil)
	if _, err := e.GoOffline(ctx, srv.Alice.Client, aliceCred()); err != nil {
		t.Fatal(err)
	}
	lc := localClient(t, e)
	tests := []struct {
		name string
		run  func(t *testing.T, c *crmclient.Client)
	}{
		{"crud", func(t *testing.T, c *crmclient.Client) {
			r, err := c.Create(ctx, crm.Record{Entity: crm.EntityContact, Attrs: map[string]any{"lastname": "Crud", "emailaddress1": "crud@example.com"}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if r.ID == (crm.ID{}) || r.Version == 0 {
				t.Fatalf("created %+v: no id or version", r)
			}
			got, err := c.Get(ctx, crm.EntityContact, r.ID)
			if err != nil || got.Attrs["lastname"] != "Crud" {
				t.Fatalf("get = %v, %v", got.Attrs, err)
			}
			up, err := c.Update(ctx, crm.Record{Entity: crm.EntityContact, ID: r.ID, Attrs: map[string]any{"jobtitle": "Tester"}}, nil)
			if err != nil || up.Version <= r.Version {
				t.Fatalf("update = %+v, %v", up, err)
			}
			got, _ = c.Get(ctx, crm.EntityContact, r.ID)
			if got.Attrs["jobtitle"] != "Tester" || got.Attrs["lastname"] != "Crud" {
				t.Errorf("after update: %v", got.Attrs)
			}
			if err := c.Delete(ctx, crm.EntityContact, r.ID, nil); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Get(ctx, crm.EntityContact, r.ID); !errors.Is(err, crm.ErrNotFound) {
				t.Errorf("get after delete: %v, want ErrNotFound", err)
			}
		}},
		{"query with paging", func(t *testing.T, c *crmclient.Client) {
			pages := 0
			var names []string
			err := c.QueryPages(ctx, crm.EntityContact, crmclient.Query{Select: []string{"lastname"}, Filter: "startswith(lastname,'p')", OrderBy: "lastname", PageSize: 7},
				func(p []crm.Record) error {
					pages++
					if len(p) > 7 {
						return fmt.Errorf("page of %d records, asked for 7", len(p))
					}
					for _, r := range p {
						names = append(names, r.Attrs["lastname"].(string))
					}
					return nil
				})
			if err != nil {
				t.Fatal(err)
			}
			if len(names) != len(seeded) || pages != 5 {
				t.Fatalf("%d records in %d pages, want %d in 5", len(names), pages, len(seeded))
			}
			for i, n := range names {
				if want := fmt.Sprintf("p%06d", i); n != want {
					t.Fatalf("record %d = %s, want %s (order across pages)", i, n, want)
				}
			}
			top, err := c.QueryAll(ctx, crm.EntityContact, crmclient.Query{Filter: "startswith(lastname,'p')", Top: 3, PageSize: 2})
			if err != nil || len(top) != 3 {
				t.Errorf("$top 3 over pages of 2: %d records, %v", len(top), err)
			}
		}},
		{"batch groups", func(t *testing.T, c *crmclient.Client) {
			ok1, ok2, bad := crm.NewID(), crm.NewID(), crm.NewID()
			resps, err := c.Batch(ctx, []crm.BatchRequest{
				{ID: "1", Method: "POST", URL: "/api/data/contacts", Body: []byte(fmt.Sprintf(`{"contactid":"%s","lastname":"g1"}`, ok1)), AtomicityGroup: "a"},
				{ID: "2", Method: "POST", URL: "/api/data/contacts", Body: []byte(fmt.Sprintf(`{"contactid":"%s","lastname":"g2"}`, ok2)), AtomicityGroup: "a"},
				{ID: "3", Method: "POST", URL: "/api/data/contacts", Body: []byte(fmt.Sprintf(`{"contactid":"%s","lastname":"g3"}`, bad)), AtomicityGroup: "b"},
				{ID: "4", Method: "POST", URL: "/api/data/contacts", Body: []byte(`{"nosuchattribute":"x"}`), AtomicityGroup: "b"},
			})
			if err != nil || len(resps) != 4 {
				t.Fatalf("batch = %v, %v", resps, err)
			}
			for i, want := range []int{http.StatusNoContent, http.StatusNoContent, http.StatusFailedDependency, http.StatusBadRequest} {
				if got := resps[i].Status; got/100 != want/100 || (want >= 400 && got != want) {
					t.Errorf("part %s: status %d, want %d", resps[i].ID, got, want)
				}
			}
			for id, want := range map[crm.ID]bool{ok1: true, ok2: true, bad: false} {
				_, err := c.Get(ctx, crm.EntityContact, id)
				if have := err == nil; have != want {
					t.Errorf("%s present = %v, want %v (%v)", id, have, want, err)
				}
			}
		}},
		{"stale If-Match is 412", func(t *testing.T, c *crmclient.Client) {
			cur, err := c.Get(ctx, crm.EntityContact, seeded[0])
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Update(ctx, crm.Record{Entity: crm.EntityContact, ID: cur.ID, Attrs: map[string]any{"jobtitle": "first"}}, &crmclient.WriteOptions{IfMatch: cur.Version}); err != nil {
				t.Fatalf("update with the current version: %v", err)
			}
			_, err = c.Update(ctx, crm.Record{Entity: crm.EntityContact, ID: cur.ID, Attrs: map[string]any{"jobtitle": "second"}}, &crmclient.WriteOptions{IfMatch: cur.Version})
			if !errors.Is(err, crm.ErrPreconditionFailed) {
				t.Fatalf("update with a stale version: %v, want ErrPreconditionFailed", err)
			}
			var ae *crmclient.APIError
			if !errors.As(err, &ae) || ae.Status != http.StatusPreconditionFailed {
				t.Errorf("error %v: want an APIError with status 412", err)
			}
			if got, _ := c.Get(ctx, crm.EntityContact, cur.ID); got.Attrs["jobtitle"] != "first" {
				t.Errorf("jobtitle = %v after the refused update", got.Attrs["jobtitle"])
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, lc) })
	}
	// Every accepted write is queued for replay; the refused ones are not.
	if n, _ := e.QueueLength(ctx); n != 3+2+1 {
		t.Errorf("queue holds %d rows, want 6 (create, update, delete, 2 batch creates, 1 update)", n)
	}
}
