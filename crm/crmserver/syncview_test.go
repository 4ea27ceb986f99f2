package crmserver_test

import (
	"bytes"
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmclient"
	"github.com/pimbridge/pimbridge/crm/crmserver"
	"github.com/pimbridge/pimbridge/crm/crmtest"
)

// leaks reports whether a batch carries id with its content, or any row
// holding the secret text.
func leaks(b *crm.Batch, id crm.ID, secret string) bool {
	for _, r := range b.Upserts {
		if r.ID == id {
			return true
		}
		for _, v := range r.Attrs {
			if s, ok := v.(string); ok && strings.Contains(s, secret) {
				return true
			}
		}
	}
	return false
}

func nextBatch(t *testing.T, c *crmclient.Client, sub, entity string) *crm.Batch {
	t.Helper()
	b, err := c.NextBatch(context.Background(), sub, entity, 100)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSecurity_SyncBatchRechecksView: a batch re-checks the subscription's
// filter and the caller's rights when it is encoded, also when it is sent
// again before it is acknowledged; a record that left the caller's view is
// sent as removed (left the filter), never with its current content
// (a batch is re-checked against the view as it is encoded).
func TestSecurity_SyncBatchRechecksView(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		kind  string
		fetch bool // fetch the batch once before the change (re-sent batch)
		leave func(t *testing.T, srv *crmtest.Server, u crmtest.User, id crm.ID)
	}{
		{name: "reassigned after prepare", kind: crm.KindOutlook, leave: reassignTask},
		{name: "reassigned before a re-sent batch", kind: crm.KindOutlook, fetch: true, leave: reassignTask},
		{name: "read right revoked after prepare", kind: crm.KindOutlook, leave: revokeTaskRead},
		{name: "read right revoked before a re-sent batch", kind: crm.KindOutlook, fetch: true, leave: revokeTaskRead},
		{name: "offline filter narrowed before a re-sent batch", kind: crm.KindOffline, fetch: true, leave: func(t *testing.T, _ *crmtest.Server, u crmtest.User, _ crm.ID) {
			if _, err := u.Client.SetLocalFilter(ctx, crm.EntityTask, "subject eq 'something else'"); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := crmtest.Start(t, nil)
			role := crmserver.BuiltinRoles()[1]
			role.Name = "tasker"
			if err := srv.Store.SaveRole(ctx, role); err != nil {
				t.Fatal(err)
			}
			u := srv.AddUser(t, "dave", "dave-secret-pw", "tasker")
			const secret = "merger-plan-7"
			task, err := u.Client.Create(ctx, crm.Record{Entity: crm.EntityTask, Attrs: map[string]any{"subject": secret}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			sub, err := u.Client.Subscribe(ctx, "phone", tc.kind)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := u.Client.Prepare(ctx, sub.ID); err != nil {
				t.Fatal(err)
			}
			if tc.fetch {
				if b := nextBatch(t, u.Client, sub.ID, crm.EntityTask); !leaks(b, task.ID, secret) {
					t.Fatalf("first batch does not carry the task it may still read: %+v", b)
				}
			}
			tc.leave(t, srv, u, task.ID)
			b := nextBatch(t, u.Client, sub.ID, crm.EntityTask)
			if leaks(b, task.ID, secret) {
				t.Fatalf("batch %d carries a record the caller can no longer read: %+v", b.ID, b.Upserts)
			}
			// It is reported as removed, in this batch or the next one.
			removed := slices.Contains(b.Left, task.ID)
			if _, err := u.Client.PostSync(ctx, sub.ID, b.ID); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 3 && !removed; i++ {
				b := nextBatch(t, u.Client, sub.ID, crm.EntityTask)
				if b.Header.Result == crm.BatchEmpty {
					break
				}
				if leaks(b, task.ID, secret) {
					t.Fatalf("later batch %d carries it: %+v", b.ID, b.Upserts)
				}
				removed = slices.Contains(b.Left, task.ID)
				if _, err := u.Client.PostSync(ctx, sub.ID, b.ID); err != nil {
					t.Fatal(err)
				}
			}
			if !removed {
				t.Errorf("the task that left the view was never sent as removed (left the filter)")
			}
		})
	}
}

func reassignTask(t *testing.T, srv *crmtest.Server, _ crmtest.User, id crm.ID) {
	t.Helper()
	if _, err := srv.Admin.Client.Update(context.Background(), crm.Record{Entity: crm.EntityTask, ID: id,
		Attrs: map[string]any{"ownerid": crm.Ref{Entity: crm.EntitySystemUser, ID: srv.Bob.ID}}}, nil); err != nil {
		t.Fatal(err)
	}
}

func revokeTaskRead(t *testing.T, srv *crmtest.Server, _ crmtest.User, _ crm.ID) {
	t.Helper()
	role := crmserver.BuiltinRoles()[1]
	role.Name = "tasker"
	role.SetRight(crm.EntityTask, crmserver.Read, crm.ScopeNone)
	if err := srv.Store.SaveRole(context.Background(), role); err != nil {
		t.Fatal(err)
	}
}

// TestSync_LeftFilterIsNotADeletion: the sync protocol tells a deletion
// (tombstone) apart from a record that left the user's view (reassigned):
// the first comes as a delete row, the second as a left-filter row. A
// client that does not ask for left-filter rows gets both as deletes, as
// before.
func TestSync_LeftFilterIsNotADeletion(t *testing.T) {
	srv := crmtest.Start(t, nil)
	ctx := context.Background()
	a := srv.Alice.Client
	var ids []crm.ID
	for _, s := range []string{"deleted", "reassigned", "kept"} {
		r, err := a.Create(ctx, crm.Record{Entity: crm.EntityTask, Attrs: map[string]any{"subject": s}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	for _, kind := range []string{crm.KindOutlook, crm.KindOffline} {
		sub, err := a.Subscribe(ctx, "left-"+kind, kind)
		if err != nil {
			t.Fatal(err)
		}
		a.Prepare(ctx, sub.ID)
		if ups, _, _ := drain(t, a, sub.ID, crm.EntityTask, 10); len(ups) != 3 {
			t.Fatalf("%s: initial = %v", kind, ups)
		}
	}
	if err := a.Delete(ctx, crm.EntityTask, ids[0], nil); err != nil {
		t.Fatal(err)
	}
	reassignTask(t, srv, srv.Alice, ids[1])

	sub, _ := a.Subscribe(ctx, "left-"+crm.KindOutlook, crm.KindOutlook)
	a.Prepare(ctx, sub.ID)
	b := nextBatch(t, a, sub.ID, crm.EntityTask)
	if !slices.Equal(b.Deletes, ids[:1]) || !slices.Equal(b.Left, ids[1:2]) || len(b.Upserts) != 0 {
		t.Errorf("batch: deletes %v, left %v, upserts %d; want deletes [%s], left [%s]", b.Deletes, b.Left, len(b.Upserts), ids[0], ids[1])
	}

	// An older client (no leftfilter=1) reads both as deletes.
	old, _ := a.Subscribe(ctx, "left-"+crm.KindOffline, crm.KindOffline)
	a.Prepare(ctx, old.ID)
	resp, err := a.Open(ctx, http.MethodGet, "/api/sync/subscriptions/"+old.ID+"/batches?entity=task", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body)
	ob, err := crm.ReadBatch(&buf)
	if err != nil {
		t.Fatal(err)
	}
	got := slices.Clone(ob.Deletes)
	slices.SortFunc(got, func(x, y crm.ID) int { return strings.Compare(x.String(), y.String()) })
	want := slices.Clone(ids[:2])
	slices.SortFunc(want, func(x, y crm.ID) int { return strings.Compare(x.String(), y.String()) })
	if !slices.Equal(got, want) || len(ob.Left) != 0 {
		t.Errorf("old client: deletes %v, left %v; want deletes %v", ob.Deletes, ob.Left, want)
	}
}

// TestSync_PIMSyncFilterIsTheServers: the outlook (PIM sync) subscription
// uses the server's fixed filters, not the user's local data filter, which
// shapes the offline subscription only: the PIM-sync filters are not the
// user's to edit, and local data filters belong to the offline client.
func TestSync_PIMSyncFilterIsTheServers(t *testing.T) {
	srv := crmtest.Start(t, nil)
	ctx := context.Background()
	a := srv.Alice.Client
	keep := newContact(t, a, "Keep")
	drop := newContact(t, a, "Drop")
	subs := map[string]string{}
	for _, kind := range []string{crm.KindOutlook, crm.KindOffline} {
		sub, err := a.Subscribe(ctx, "laptop", kind)
		if err != nil {
			t.Fatal(err)
		}
		subs[kind] = sub.ID
		a.Prepare(ctx, sub.ID)
		if ups, _, _ := drain(t, a, sub.ID, crm.EntityContact, 10); ups[keep.ID] != 1 || ups[drop.ID] != 1 {
			t.Fatalf("%s initial = %v", kind, ups)
		}
	}
	if _, err := a.SetLocalFilter(ctx, crm.EntityContact, "lastname eq 'Keep'"); err != nil {
		t.Fatal(err)
	}
	prep, _ := a.Prepare(ctx, subs[crm.KindOutlook])
	if c := prep.Count(crm.EntityContact); c.DeleteCount != 0 {
		t.Errorf("outlook subscription after the offline filter narrowed = %+v, want no deletes", c)
	}
	prep, _ = a.Prepare(ctx, subs[crm.KindOffline])
	if c := prep.Count(crm.EntityContact); c.DeleteCount != 1 {
		t.Errorf("offline subscription after the filter narrowed = %+v, want 1 delete", c)
	}
}
