package crmserver_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmclient"
	"github.com/pimbridge/pimbridge/crm/crmserver"
	"github.com/pimbridge/pimbridge/crm/crmtest"
)

// drain fetches and acknowledges batches of one entity until none is left
// and returns how often each id arrived as an upsert and as a removal
// (deleted or left the filter).
func drain(t *testing.T, c *crmclient.Client, sub, entity string, size int) (ups map[crm.ID]int, dels map[crm.ID]int, last map[crm.ID]crm.Record) {
	t.Helper()
	ctx := context.Background()
	ups, dels, last = map[crm.ID]int{}, map[crm.ID]int{}, map[crm.ID]crm.Record{}
	for i := 0; ; i++ {
		if i > 1000 {
			t.Fatal("drain: no end")
		}
		b, err := c.NextBatch(ctx, sub, entity, size)
		if err != nil {
			t.Fatal(err)
		}
		if b.Header.Result == crm.BatchEmpty {
			return
		}
		m, _ := c.Metadata(ctx)
		if int64(b.Header.MetadataVersion) != m.Version {
			t.Errorf("batch metadata version %d, server %d", b.Header.MetadataVersion, m.Version)
		}
		if len(b.Upserts)+len(b.Deletes) > size {
			t.Errorf("batch of %d rows, size %d", len(b.Upserts)+len(b.Deletes), size)
		}
		for _, r := range b.Upserts {
			ups[r.ID]++
			last[r.ID] = r
		}
		for _, id := range append(b.Deletes, b.Left...) {
			dels[id]++ // deleted or left the filter: gone from the replica
		}
		if _, err := c.PostSync(ctx, sub, b.ID); err != nil {
			t.Fatal(err)
		}
	}
}

func newContact(t *testing.T, c *crmclient.Client, last string) crm.Record {
	t.Helper()
	r, err := c.Create(context.Background(), crm.Record{Entity: "contact", Attrs: map[string]any{"lastname": last}}, &crmclient.WriteOptions{SuppressDuplicateDetection: true})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestSync_Protocol(t *testing.T) {
	srv := crmtest.Start(t, nil)
	ctx := context.Background()
	a, b := srv.Alice.Client, srv.Bob.Client
	var mine []crm.Record
	for i := range 5 {
		mine = append(mine, newContact(t, a, "Alice"+string(rune('A'+i))))
	}
	bobs := newContact(t, b, "Bob's")
	openTask, err := a.Create(ctx, crm.Record{Entity: "task", Attrs: map[string]any{"subject": "open"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// A task of bob's where alice is a party: out of alice's security (own read on tasks).
	if _, err := b.Create(ctx, crm.Record{Entity: "task", Attrs: map[string]any{"subject": "bob's"}}, nil); err != nil {
		t.Fatal(err)
	}

	sub, err := a.Subscribe(ctx, "laptop", crm.KindOffline)
	if err != nil {
		t.Fatal(err)
	}
	prep, err := a.Prepare(ctx, sub.ID)
	if err != nil {
		t.Fatal(err)
	}
	if c := prep.Count("contact"); c.InsertCount != 5 || c.DeleteCount != 0 {
		t.Errorf("prepare contact counts = %+v, want 5/0", c)
	}
	if c := prep.Count("task"); c.InsertCount != 1 {
		t.Errorf("prepare task counts = %+v, want 1 insert", c)
	}

	// An unacknowledged batch comes again; an acknowledged one never.
	b1, err := a.NextBatch(ctx, sub.ID, "contact", 2)
	if err != nil {
		t.Fatal(err)
	}
	b1again, err := a.NextBatch(ctx, sub.ID, "contact", 2)
	if err != nil {
		t.Fatal(err)
	}
	if b1.ID != b1again.ID || len(b1again.Upserts) != 2 || b1.Upserts[0].ID != b1again.Upserts[0].ID {
		t.Fatalf("unacknowledged batch not re-sent: %d vs %d", b1.ID, b1again.ID)
	}
	// A record changed after its batch was cut is sent again.
	changed := b1.Upserts[0]
	if _, err := a.Update(ctx, crm.Record{Entity: "contact", ID: changed.ID, Attrs: map[string]any{"jobtitle": "changed"}}, nil); err != nil {
		t.Fatal(err)
	}
	res, err := a.PostSync(ctx, sub.ID, b1.ID)
	if err != nil {
		t.Fatal(err)
	}
	if res.Synced != 1 || res.Resend != 1 {
		t.Errorf("postsync = %+v, want 1 synced and 1 to resend", res)
	}
	again, err := a.PostSync(ctx, sub.ID, b1.ID)
	if err != nil || !again.Already {
		t.Errorf("second postsync = %+v, %v", again, err)
	}
	ups, dels, last := drain(t, a, sub.ID, "contact", 2)
	seen := map[crm.ID]int{}
	for _, r := range b1.Upserts {
		seen[r.ID]++
	}
	for id, n := range ups {
		seen[id] += n
	}
	for _, r := range mine {
		want := 1
		if r.ID == changed.ID {
			want = 2 // once as cut, once more with the change
		}
		if seen[r.ID] != want {
			t.Errorf("contact %s delivered %d times, want %d", r.Attrs["lastname"], seen[r.ID], want)
		}
	}
	if last[changed.ID].Attrs["jobtitle"] != "changed" {
		t.Errorf("re-sent record = %v, want the change", last[changed.ID].Attrs["jobtitle"])
	}
	if seen[bobs.ID] != 0 || len(dels) != 0 {
		t.Errorf("bob's contact delivered %d times, deletes %v", seen[bobs.ID], dels)
	}
	// A change after a complete run is sent by the next prepare.
	if _, err := a.Update(ctx, crm.Record{Entity: "contact", ID: mine[4].ID, Attrs: map[string]any{"jobtitle": "later"}}, nil); err != nil {
		t.Fatal(err)
	}
	prep, err = a.Prepare(ctx, sub.ID)
	if err != nil {
		t.Fatal(err)
	}
	if c := prep.Count("contact"); c.InsertCount != 1 || c.DeleteCount != 0 {
		t.Errorf("after change: prepare = %+v, want 1/0", c)
	}
	ups, _, last = drain(t, a, sub.ID, "contact", 10)
	if len(ups) != 1 || ups[mine[4].ID] != 1 || last[mine[4].ID].Attrs["jobtitle"] != "later" {
		t.Errorf("re-sent after change: %v", ups)
	}

	// Nothing changed: nothing to send.
	prep, _ = a.Prepare(ctx, sub.ID)
	if c := prep.Count("contact"); c.InsertCount != 0 || c.DeleteCount != 0 {
		t.Errorf("idle prepare = %+v", c)
	}

	// Deleted and out-of-filter records arrive as ids to delete.
	if err := a.Delete(ctx, "contact", mine[1].ID, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Admin.Client.Update(ctx, crm.Record{Entity: "contact", ID: mine[2].ID, Attrs: map[string]any{
		"ownerid": crm.Ref{Entity: crm.EntitySystemUser, ID: srv.Bob.ID}}}, nil); err != nil {
		t.Fatal(err)
	}
	newOne := newContact(t, a, "Newer")
	prep, _ = a.Prepare(ctx, sub.ID)
	if c := prep.Count("contact"); c.InsertCount != 1 || c.DeleteCount != 2 {
		t.Errorf("prepare after delete/reassign = %+v, want 1/2", c)
	}
	ups, dels, _ = drain(t, a, sub.ID, "contact", 10)
	if len(ups) != 1 || ups[newOne.ID] != 1 || len(dels) != 2 || dels[mine[1].ID] != 1 || dels[mine[2].ID] != 1 {
		t.Errorf("after delete/reassign: ups %v dels %v", ups, dels)
	}
	tu, _, _ := drain(t, a, sub.ID, "task", 10)
	if len(tu) != 1 || tu[openTask.ID] != 1 {
		t.Errorf("tasks = %v", tu)
	}

	// Another user never sees the subscription or its batches.
	if _, err := b.Prepare(ctx, sub.ID); !errors.Is(err, crm.ErrNotFound) {
		t.Errorf("bob prepares alice's subscription: %v", err)
	}
	if _, err := b.PostSync(ctx, sub.ID, b1.ID); !errors.Is(err, crm.ErrNotFound) {
		t.Errorf("bob acknowledges alice's batch: %v", err)
	}

	// syncinfo.
	info := crm.SyncInfo{RunID: "r1", Started: time.Now().UTC().Truncate(time.Second), Batches: 4, Bytes: 1234,
		Entities: []crm.SyncInfoCount{{Entity: "contact", Inserted: 6, Deleted: 2, DurationMS: 12}}}
	if err := a.RecordSyncInfo(ctx, sub.ID, info); err != nil {
		t.Fatal(err)
	}
	infos, err := a.SyncInfo(ctx, sub.ID)
	if err != nil || len(infos) != 1 || infos[0].RunID != "r1" || infos[0].Entities[0].Inserted != 6 {
		t.Errorf("syncinfo = %+v, %v", infos, err)
	}
}

func TestSync_Primary(t *testing.T) {
	srv := crmtest.Start(t, nil)
	ctx := context.Background()
	a := srv.Alice.Client
	p1, err := a.ClaimPrimary(ctx, "desktop")
	if err != nil {
		t.Fatal(err)
	}
	desk := a.WithGeneration(p1.Generation)
	if _, err := desk.Subscribe(ctx, "desktop", crm.KindOutlook); err != nil {
		t.Fatalf("current primary refused: %v", err)
	}
	p2, err := a.ClaimPrimary(ctx, "laptop")
	if err != nil || p2.Generation != p1.Generation+1 {
		t.Fatalf("second claim = %+v, %v", p2, err)
	}
	_, err = desk.Subscribe(ctx, "desktop", crm.KindOutlook)
	var ae *crmclient.APIError
	if !errors.Is(err, crm.ErrStalePrimary) || !errors.As(err, &ae) || ae.Status != 409 || ae.Code != "stale_primary" {
		t.Errorf("stale primary = %v, want 409 stale_primary", err)
	}
	if _, err := desk.Create(ctx, crm.Record{Entity: "contact", Attrs: map[string]any{"lastname": "x"}}, nil); !errors.Is(err, crm.ErrStalePrimary) {
		t.Errorf("stale primary write = %v", err)
	}
	if _, err := a.WithGeneration(p2.Generation).Subscribe(ctx, "laptop", crm.KindOutlook); err != nil {
		t.Errorf("new primary refused: %v", err)
	}
	// bob's generation is his own.
	if p, err := srv.Bob.Client.Primary(ctx); err != nil || p.Generation != 0 {
		t.Errorf("bob's primary = %+v, %v", p, err)
	}
}

func TestSync_LocalFilters(t *testing.T) {
	srv := crmtest.Start(t, nil)
	ctx := context.Background()
	a := srv.Alice.Client
	keep := newContact(t, a, "Keep")
	drop := newContact(t, a, "Drop")
	sub, err := a.Subscribe(ctx, "laptop", crm.KindOffline)
	if err != nil {
		t.Fatal(err)
	}
	f, err := a.LocalFilter(ctx, "contact")
	if err != nil || f.Filter != "ownerid eq @me" {
		t.Errorf("default filter = %+v, %v", f, err)
	}
	a.Prepare(ctx, sub.ID)
	if ups, _, _ := drain(t, a, sub.ID, "contact", 10); len(ups) != 2 {
		t.Fatalf("initial = %v", ups)
	}
	if _, err := a.SetLocalFilter(ctx, "contact", "lastname eq 'Keep'"); err != nil {
		t.Fatal(err)
	}
	prep, _ := a.Prepare(ctx, sub.ID)
	if c := prep.Count("contact"); c.DeleteCount != 1 || c.InsertCount != 0 {
		t.Errorf("after filter change = %+v, want 0/1", c)
	}
	if _, dels, _ := drain(t, a, sub.ID, "contact", 10); dels[drop.ID] != 1 || dels[keep.ID] != 0 {
		t.Errorf("deletes = %v", dels)
	}
	if _, err := a.SetLocalFilter(ctx, "contact", "nosuch eq 1"); !errors.Is(err, crm.ErrUnknownAttribute) {
		t.Errorf("bad filter = %v", err)
	}
	if _, err := a.SetDefaultLocalFilter(ctx, "contact", "ownerid eq @me", true); !errors.Is(err, crm.ErrForbidden) {
		t.Errorf("salesperson sets default = %v", err)
	}
	if _, err := srv.Admin.Client.SetDefaultLocalFilter(ctx, "contact", "ownerid eq @me", true); err != nil {
		t.Fatal(err)
	}
	if f, _ := a.LocalFilter(ctx, "contact"); f.Filter != "ownerid eq @me" || !f.Locked {
		t.Errorf("locked default not effective: %+v", f)
	}
	if _, err := a.SetLocalFilter(ctx, "contact", "lastname eq 'x'"); !errors.Is(err, crm.ErrForbidden) {
		t.Errorf("override of a locked filter = %v", err)
	}
	prep, _ = a.Prepare(ctx, sub.ID)
	if c := prep.Count("contact"); c.InsertCount != 1 {
		t.Errorf("after locked default = %+v, want the dropped contact back", c)
	}
}

// TestSync_PartyFilter: the default activity filter includes activities
// where the user is a party, if security lets them read them.
func TestSync_PartyFilter(t *testing.T) {
	srv := crmtest.Start(t, nil)
	ctx := context.Background()
	role := crmserver.BuiltinRoles()[1]
	role.Name = "manager"
	role.SetRight("*", crmserver.Read, crm.ScopeAll)
	if err := srv.Store.SaveRole(ctx, role); err != nil {
		t.Fatal(err)
	}
	meg := srv.AddUser(t, "meg", "meg-secret-pw", "manager")
	party := []crm.Party{{Party: &crm.Ref{Entity: crm.EntitySystemUser, ID: meg.ID}}}
	invited, err := srv.Bob.Client.Create(ctx, crm.Record{Entity: "appointment", Attrs: map[string]any{"subject": "with meg", "requiredattendees": party}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Bob.Client.Create(ctx, crm.Record{Entity: "appointment", Attrs: map[string]any{"subject": "without meg"}}, nil); err != nil {
		t.Fatal(err)
	}
	sub, err := meg.Client.Subscribe(ctx, "desk", crm.KindOutlook)
	if err != nil {
		t.Fatal(err)
	}
	prep, err := meg.Client.Prepare(ctx, sub.ID)
	if err != nil {
		t.Fatal(err)
	}
	if c := prep.Count("appointment"); c.InsertCount != 1 {
		t.Errorf("appointments for meg = %+v, want the one she attends", c)
	}
	ups, _, _ := drain(t, meg.Client, sub.ID, "appointment", 10)
	if ups[invited.ID] != 1 {
		t.Errorf("delivered %v", ups)
	}
	// Removing meg from the party list removes it from her replica.
	if _, err := srv.Bob.Client.Update(ctx, crm.Record{Entity: "appointment", ID: invited.ID, Attrs: map[string]any{"requiredattendees": []crm.Party{}}}, nil); err != nil {
		t.Fatal(err)
	}
	prep, _ = meg.Client.Prepare(ctx, sub.ID)
	if c := prep.Count("appointment"); c.DeleteCount != 1 {
		t.Errorf("after removal = %+v, want 1 delete", c)
	}
}

// TestSync_AddressBookCarriesAccountsAndUsers: the addressbook (directory)
// subscription carries what the directory book shows, accounts and users;
// contacts reach the PIM side through the outlook subscription, so an
// addressbook subscription holding them would keep one pending sync entry
// per contact that no client ever fetches.
func TestSync_AddressBookCarriesAccountsAndUsers(t *testing.T) {
	srv := crmtest.Start(t, nil)
	ctx := context.Background()
	sub, err := srv.Alice.Client.Subscribe(ctx, "desk", crm.KindAddressBook)
	if err != nil {
		t.Fatal(err)
	}
	p, err := srv.Alice.Client.Prepare(ctx, sub.ID)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range p.Entities {
		got = append(got, c.Entity)
	}
	if len(got) != 2 || !slices.Contains(got, crm.EntityAccount) || !slices.Contains(got, crm.EntitySystemUser) {
		t.Errorf("addressbook prepare entities = %v, want [account systemuser]", got)
	}
}
