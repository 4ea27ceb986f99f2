package crmserver_test

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmclient"
	"github.com/pimbridge/pimbridge/crm/crmserver"
	"github.com/pimbridge/pimbridge/crm/crmtest"
)

// postUpdates counts the post-stage contact updates a plug-in saw, per record.
type postUpdates struct {
	mu sync.Mutex
	n  map[crm.ID]int
}

func (c *postUpdates) Execute(ctx context.Context, pc *crmserver.PluginContext) error {
	if pc.Stage == crmserver.PostOperation && pc.Message == crmserver.MsgUpdate && pc.Entity.Name == crm.EntityContact {
		c.mu.Lock()
		c.n[pc.ID]++
		c.mu.Unlock()
	}
	return nil
}

func (c *postUpdates) of(id crm.ID) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[id]
}

func replayContact(t *testing.T, c *crmclient.Client, name string) crm.ID {
	t.Helper()
	r, err := c.Create(context.Background(), crm.Record{Entity: crm.EntityContact, ID: crm.NewID(), Attrs: map[string]any{"lastname": name}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r.ID
}

func lastname(t *testing.T, c *crmclient.Client, id crm.ID) string {
	t.Helper()
	r, err := c.Get(context.Background(), crm.EntityContact, id)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := r.Attrs["lastname"].(string)
	return s
}

// TestReplay_SameKeyTwiceAppliedOnce: a write sent twice with the same
// MSCRM.ReplayID by the same user applies once (plug-in once, a change made
// in between stays) and the second answer equals the first.
func TestReplay_SameKeyTwiceAppliedOnce(t *testing.T) {
	plug := &postUpdates{n: map[crm.ID]int{}}
	srv := crmtest.Start(t, &crmtest.Options{Server: crmserver.Options{Plugins: []crmserver.Plugin{plug}}})
	id := replayContact(t, srv.Alice.Client, "Before")
	path := "/api/data/contacts(" + id.String() + ")"
	h := map[string]string{crmserver.HeaderReplayID: "desktop.r1/7", "Prefer": "return=representation"}
	st1, h1, b1 := raw(t, srv, "alice", crmtest.AlicePassword, "PATCH", path, h, `{"lastname":"Replayed"}`)
	if st1 != http.StatusOK {
		t.Fatalf("first replay: status %d %s", st1, b1)
	}
	if got := plug.of(id); got != 1 {
		t.Fatalf("plug-in ran %d times after the first replay, want 1", got)
	}
	// Another user changes the record in between.
	if _, err := srv.Admin.Client.Update(context.Background(), crm.Record{Entity: crm.EntityContact, ID: id, Attrs: map[string]any{"lastname": "Other"}}, nil); err != nil {
		t.Fatal(err)
	}
	st2, h2, b2 := raw(t, srv, "alice", crmtest.AlicePassword, "PATCH", path, h, `{"lastname":"Replayed"}`)
	if st2 != st1 || b2 != b1 || h2.Get("ETag") != h1.Get("ETag") {
		t.Errorf("second answer = %d %q etag %q, want the first: %d %q etag %q", st2, b2, h2.Get("ETag"), st1, b1, h1.Get("ETag"))
	}
	if got := plug.of(id); got != 2 { // the first replay and the admin's update
		t.Errorf("plug-in ran %d times, want 2 (the replay once, the admin's update once)", got)
	}
	if got := lastname(t, srv.Admin.Client, id); got != "Other" {
		t.Errorf("lastname = %q, want the in-between change %q kept", got, "Other")
	}

	// The same key on another request is refused, not answered.
	st, _, b := raw(t, srv, "alice", crmtest.AlicePassword, "PATCH", path, h, `{"lastname":"Different"}`)
	if st != http.StatusConflict {
		t.Errorf("key reused for another body: status %d %s, want 409", st, b)
	}
}

// TestReplay_FailedWriteRecordsNoKey: a replayed write that fails records
// nothing, so the same key applies once the write can succeed.
func TestReplay_FailedWriteRecordsNoKey(t *testing.T) {
	srv := crmtest.Start(t, nil)
	id := replayContact(t, srv.Admin.Client, "AdminOwned")
	path := "/api/data/contacts(" + id.String() + ")"
	h := map[string]string{crmserver.HeaderReplayID: "k-failed"}
	if st, _, b := raw(t, srv, "alice", crmtest.AlicePassword, "PATCH", path, h, `{"lastname":"Alice"}`); st != http.StatusForbidden {
		t.Fatalf("alice on admin's contact: status %d %s, want 403", st, b)
	}
	if _, err := srv.Admin.Client.Update(context.Background(), crm.Record{Entity: crm.EntityContact, ID: id,
		Attrs: map[string]any{"ownerid": crm.Ref{Entity: crm.EntitySystemUser, ID: srv.Alice.ID}}}, nil); err != nil {
		t.Fatal(err)
	}
	if st, _, b := raw(t, srv, "alice", crmtest.AlicePassword, "PATCH", path, h, `{"lastname":"Alice"}`); st != http.StatusNoContent {
		t.Fatalf("after the grant: status %d %s, want 204", st, b)
	}
	if got := lastname(t, srv.Admin.Client, id); got != "Alice" {
		t.Errorf("lastname = %q, want Alice", got)
	}
}

// TestReplay_KeysArePerUser: another user's key is not visible (the request
// runs with the sender's rights), and a user who lost the right gets the
// recorded answer of their own applied key, applying nothing.
func TestReplay_KeysArePerUser(t *testing.T) {
	plug := &postUpdates{n: map[crm.ID]int{}}
	srv := crmtest.Start(t, &crmtest.Options{Server: crmserver.Options{Plugins: []crmserver.Plugin{plug}}})
	id := replayContact(t, srv.Admin.Client, "AdminOwned")
	path := "/api/data/contacts(" + id.String() + ")"
	h := map[string]string{crmserver.HeaderReplayID: "k-shared"}
	if st, _, b := raw(t, srv, "admin", crmtest.AdminPassword, "PATCH", path, h, `{"lastname":"ByAdmin"}`); st != http.StatusNoContent {
		t.Fatalf("admin: status %d %s", st, b)
	}
	if st, _, b := raw(t, srv, "alice", crmtest.AlicePassword, "PATCH", path, h, `{"lastname":"ByAdmin"}`); st != http.StatusForbidden {
		t.Errorf("alice with admin's key: status %d %s, want 403 (her own rights)", st, b)
	}

	mine := replayContact(t, srv.Alice.Client, "Mine")
	mpath := "/api/data/contacts(" + mine.String() + ")"
	mh := map[string]string{crmserver.HeaderReplayID: "k-mine"}
	if st, _, b := raw(t, srv, "alice", crmtest.AlicePassword, "PATCH", mpath, mh, `{"lastname":"MineEdited"}`); st != http.StatusNoContent {
		t.Fatalf("alice: status %d %s", st, b)
	}
	// Reassigned to bob: alice may no longer write it.
	if _, err := srv.Admin.Client.Update(context.Background(), crm.Record{Entity: crm.EntityContact, ID: mine,
		Attrs: map[string]any{"ownerid": crm.Ref{Entity: crm.EntitySystemUser, ID: srv.Bob.ID}}}, nil); err != nil {
		t.Fatal(err)
	}
	before := plug.of(mine)
	if st, _, b := raw(t, srv, "alice", crmtest.AlicePassword, "PATCH", mpath, mh, `{"lastname":"MineEdited"}`); st != http.StatusNoContent {
		t.Errorf("alice's own applied key after losing the right: status %d %s, want the recorded 204", st, b)
	}
	if st, _, b := raw(t, srv, "alice", crmtest.AlicePassword, "PATCH", mpath, map[string]string{crmserver.HeaderReplayID: "k-new"}, `{"lastname":"MineEdited"}`); st != http.StatusForbidden {
		t.Errorf("alice's new key after losing the right: status %d %s, want 403", st, b)
	}
	if got := plug.of(mine); got != before {
		t.Errorf("plug-in ran %d more times, want 0", got-before)
	}
}

// TestReplay_BatchKeysCommitWithTheirGroup: in a $batch, an atomicity
// group's keys commit with the group (a failed group records none), and a
// batch sent again applies nothing twice and answers as the first time.
func TestReplay_BatchKeysCommitWithTheirGroup(t *testing.T) {
	ctx := context.Background()
	plug := &postUpdates{n: map[crm.ID]int{}}
	srv := crmtest.Start(t, &crmtest.Options{Server: crmserver.Options{Plugins: []crmserver.Plugin{plug}}})
	c := srv.Alice.Client
	a, b, lone := replayContact(t, c, "A"), replayContact(t, c, "B"), replayContact(t, c, "Lone")
	patch := func(rid string, id crm.ID, name, group, key string) crm.BatchRequest {
		return crm.BatchRequest{ID: rid, Method: "PATCH", URL: "contacts(" + id.String() + ")", AtomicityGroup: group,
			Headers: map[string]string{crmserver.HeaderReplayID: key}, Body: json.RawMessage(`{"lastname":"` + name + `"}`)}
	}
	// A group whose second request fails: nothing applies, no key is kept.
	failing := []crm.BatchRequest{patch("1", a, "A1", "g", "ka"), patch("2", b, "B1", "g", "kb")}
	failing[1].Body = json.RawMessage(`{"nosuchattribute":"x"}`)
	resps, err := c.Batch(ctx, failing)
	if err != nil {
		t.Fatal(err)
	}
	if resps[0].Status != http.StatusFailedDependency || resps[1].Status != http.StatusBadRequest {
		t.Fatalf("failing group: %+v", resps)
	}
	base := map[crm.ID]int{a: plug.of(a), b: plug.of(b), lone: plug.of(lone)} // a rolled-back group's plug-in calls count too
	reqs := []crm.BatchRequest{patch("1", a, "A1", "g", "ka"), patch("2", b, "B1", "g", "kb"), patch("3", lone, "L1", "", "kl")}
	first, err := c.Batch(ctx, reqs)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range first {
		if r.Status != http.StatusNoContent {
			t.Fatalf("first batch: %+v", first)
		}
	}
	for _, id := range []crm.ID{a, b, lone} {
		if _, err := srv.Admin.Client.Update(ctx, crm.Record{Entity: crm.EntityContact, ID: id, Attrs: map[string]any{"lastname": "Other"}}, nil); err != nil {
			t.Fatal(err)
		}
	}
	second, err := c.Batch(ctx, reqs)
	if err != nil {
		t.Fatal(err)
	}
	for i := range first {
		if second[i].Status != first[i].Status || string(second[i].Body) != string(first[i].Body) {
			t.Errorf("request %s: second answer %+v, want the first %+v", first[i].ID, second[i], first[i])
		}
	}
	for _, id := range []crm.ID{a, b, lone} {
		if got := plug.of(id) - base[id]; got != 2 {
			t.Errorf("contact %s: plug-in ran %d times, want 2 (the batch once, the admin once)", id, got)
		}
		if got := lastname(t, c, id); got != "Other" {
			t.Errorf("contact %s: lastname %q, want the in-between %q kept", id, got, "Other")
		}
	}
}

// TestReplay_KeysExpireAfterTTL: a replay key is kept ReplayKeyTTL (30
// days); after that the same key applies again.
func TestReplay_KeysExpireAfterTTL(t *testing.T) {
	clk := &fakeClock{now: time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)}
	plug := &postUpdates{n: map[crm.ID]int{}}
	srv := crmtest.Start(t, &crmtest.Options{Now: clk.Now, Server: crmserver.Options{Now: clk.Now, Plugins: []crmserver.Plugin{plug}}})
	id := replayContact(t, srv.Alice.Client, "Before")
	path := "/api/data/contacts(" + id.String() + ")"
	h := map[string]string{crmserver.HeaderReplayID: "k-ttl"}
	send := func() {
		t.Helper()
		if st, _, b := raw(t, srv, "alice", crmtest.AlicePassword, "PATCH", path, h, `{"lastname":"Replayed"}`); st != http.StatusNoContent {
			t.Fatalf("status %d %s", st, b)
		}
	}
	send()
	clk.Add(crmserver.ReplayKeyTTL - time.Hour)
	send()
	if got := plug.of(id); got != 1 {
		t.Fatalf("within the TTL: plug-in ran %d times, want 1", got)
	}
	clk.Add(2 * time.Hour)
	send()
	if got := plug.of(id); got != 2 {
		t.Errorf("after the TTL: plug-in ran %d times, want 2 (the key expired)", got)
	}
}
