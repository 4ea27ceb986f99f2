package offline

import (
	"context"
	"errors"
	"testing"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmserver"
)

// TestLocalAPI_ServerRoleDefinitions (the same rights offline as
// online): the local API checks the roles as the server defines them, not
// the built-in definitions of the same names. A salesperson role narrowed on
// the server (no delete of contacts) cannot delete offline; a custom role
// the replica never heard of grants its rights offline; and a refresh
// brings a later change of the definitions.
func TestLocalAPI_ServerRoleDefinitions(t *testing.T) {
	ctx := context.Background()
	t.Run("narrowed", func(t *testing.T) {
		srv, _, _ := offlineAlice(t, nil, 0)
		own := mustCreate(t, srv.Alice.Client, map[string]any{"lastname": "Mine"})
		sp, err := srv.Store.Role(ctx, crmserver.RoleSalesperson)
		if err != nil {
			t.Fatal(err)
		}
		sp.SetRight(crm.EntityContact, crmserver.Delete, crm.ScopeNone)
		if err := srv.Store.SaveRole(ctx, sp); err != nil {
			t.Fatal(err)
		}
		e := openEngine(t, "", nil)
		if _, err := e.GoOffline(ctx, srv.Alice.Client, aliceCred()); err != nil {
			t.Fatal(err)
		}
		lc := localClient(t, e)
		if err := lc.Delete(ctx, crm.EntityContact, own, nil); !errors.Is(err, crm.ErrForbidden) {
			t.Errorf("offline delete under a role without contact delete = %v, want forbidden", err)
		}
		if n, _ := e.QueueLength(ctx); n != 0 {
			t.Errorf("%d queued requests; a refused delete must not be queued", n)
		}
		// Granted back on the server: a refresh brings the new definition.
		sp.SetRight(crm.EntityContact, crmserver.Delete, crm.ScopeOwn)
		if err := srv.Store.SaveRole(ctx, sp); err != nil {
			t.Fatal(err)
		}
		if _, err := e.GoOnline(ctx, srv.Alice.Client, ReplayOptions{Cred: aliceCred()}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.Refresh(ctx, srv.Alice.Client, aliceCred()); err != nil {
			t.Fatal(err)
		}
		if err := e.SetOffline(ctx); err != nil {
			t.Fatal(err)
		}
		if err := lc.Delete(ctx, crm.EntityContact, own, nil); err != nil {
			t.Errorf("offline delete after the right came back and a refresh: %v", err)
		}
	})
	t.Run("custom", func(t *testing.T) {
		srv, _, _ := offlineAlice(t, nil, 0)
		custom := crm.Role{Name: "field-agent", Privileges: []string{crmserver.PrivGoOffline}}
		for _, a := range []crm.Access{crmserver.Create, crmserver.Read, crmserver.Write} {
			custom.SetRight(crm.EntityContact, a, crm.ScopeOwn)
		}
		if err := srv.Store.SaveRole(ctx, custom); err != nil {
			t.Fatal(err)
		}
		if err := srv.Store.AssignRole(ctx, "alice", custom.Name); err != nil {
			t.Fatal(err)
		}
		if err := srv.Store.RemoveRole(ctx, "alice", crmserver.RoleSalesperson); err != nil {
			t.Fatal(err)
		}
		e := openEngine(t, "", nil)
		if _, err := e.GoOffline(ctx, srv.Alice.Client, aliceCred()); err != nil {
			t.Fatal(err)
		}
		lc := localClient(t, e)
		id := mustCreate(t, lc, map[string]any{"lastname": "Made by a field agent"})
		if err := lc.Delete(ctx, crm.EntityContact, id, nil); !errors.Is(err, crm.ErrForbidden) {
			t.Errorf("offline delete without the custom role granting it = %v, want forbidden", err)
		}
		if _, err := lc.Create(ctx, crm.Record{Entity: crm.EntityTask, Attrs: map[string]any{"subject": "x"}}, nil); !errors.Is(err, crm.ErrForbidden) {
			t.Errorf("offline task create under a contacts-only role = %v, want forbidden", err)
		}
	})
}
