package offline

import (
	"context"
	"errors"
	"testing"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmserver"
)

// TestDiscard_RestoresServerVersion: data changed offline
// whose replay is discarded is replicated again from the server. An offline
// edit and an offline create are rejected at go-online (the user lost the
// write rights meanwhile); discarding the edit (errors discard) puts the
// server's version back into the replica, and go-online --on-error=discard
// removes the never-made create from it.
func TestDiscard_RestoresServerVersion(t *testing.T) {
	ctx := context.Background()
	srv, e, lc := offlineAlice(t, nil, 0)
	edited := mustCreate(t, srv.Alice.Client, map[string]any{"lastname": "Edited", "jobtitle": "Engineer"})
	if _, err := e.GoOffline(ctx, srv.Alice.Client, aliceCred()); err != nil {
		t.Fatal(err)
	}
	mustUpdate(t, lc, edited, map[string]any{"jobtitle": "offline edit"})
	made := mustCreate(t, lc, map[string]any{"lastname": "Made offline"})

	viewer := crm.Role{Name: "viewer", Privileges: []string{crmserver.PrivGoOffline}}
	viewer.SetRight("*", crmserver.Read, crm.ScopeAll)
	if err := srv.Store.SaveRole(ctx, viewer); err != nil {
		t.Fatal(err)
	}
	if err := srv.Store.AssignRole(ctx, "alice", "viewer"); err != nil {
		t.Fatal(err)
	}
	if err := srv.Store.RemoveRole(ctx, "alice", crmserver.RoleSalesperson); err != nil {
		t.Fatal(err)
	}
	rep, err := e.GoOnline(ctx, srv.Alice.Client, ReplayOptions{Cred: aliceCred(), OnError: StayOffline})
	if !errors.Is(err, ErrSyncErrors) || len(rep.Errors) != 2 {
		t.Fatalf("GoOnline = %+v, %v; want two sync errors", rep, err)
	}
	replica := func(id crm.ID) (crm.Record, bool) {
		t.Helper()
		r, ok := storeRecords(t, e.Replica(), crm.EntityContact, crm.ID{})[id]
		return r, ok
	}

	// errors discard of the edit: the server's version comes back.
	var editErr int64
	for _, se := range rep.Errors {
		if se.Row.ObjectID == edited {
			editErr = se.ID
		}
	}
	if err := e.DiscardErrors(ctx, editErr); err != nil {
		t.Fatal(err)
	}
	if err := e.Restore(ctx, srv.Alice.Client); err != nil {
		t.Fatal(err)
	}
	if r, _ := replica(edited); r.Attrs["jobtitle"] != "Engineer" {
		t.Errorf("after errors discard the replica's record has jobtitle %v, want the server's Engineer", r.Attrs["jobtitle"])
	}
	if _, ok := replica(made); !ok {
		t.Errorf("the create whose error was not discarded left the replica")
	}

	// go-online --on-error=discard: the create the server never made goes.
	if _, err := e.GoOnline(ctx, srv.Alice.Client, ReplayOptions{Cred: aliceCred(), OnError: Discard}); err != nil {
		t.Fatalf("GoOnline with discard: %v", err)
	}
	if r, ok := replica(made); ok {
		t.Errorf("the discarded create is still in the replica: %v", r.Attrs)
	}
	if n, _ := e.PendingRestores(ctx); n != 0 {
		t.Errorf("%d restores pending after go-online", n)
	}
	sameRecords(t, "contacts", serverRecords(t, srv, crm.EntityContact, srv.Alice.ID), storeRecords(t, e.Replica(), crm.EntityContact, crm.ID{}))
}
