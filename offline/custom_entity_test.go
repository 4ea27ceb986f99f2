package offline

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmclient"
	"github.com/pimbridge/pimbridge/crm/crmtest"
)

// TestSchema_CustomEntityReachesReplica (schema propagation
// of entities and relationships): a custom entity and a
// one-to-many relationship made on the server after a first GoOffline
// (and go-online) reach the replica at the next background refresh, with their rows; the
// local API reads and writes them offline; go-online replays the writes;
// an entity made later arrives at the next GoOffline.
func TestSchema_CustomEntityReachesReplica(t *testing.T) {
	ctx := context.Background()
	srv := crmtest.Start(t, nil)
	ids := seedContacts(t, srv, srv.Alice.ID, 5, "c")
	e := openEngine(t, "", nil)
	if _, err := e.GoOffline(ctx, srv.Alice.Client, aliceCred()); err != nil {
		t.Fatal(err)
	}
	// Back online: the daemon's background refresh keeps the replica.
	if _, err := e.GoOnline(ctx, srv.Alice.Client, ReplayOptions{Cred: aliceCred()}); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Admin.Client.AddEntity(ctx, crm.EntityRequest{Name: "new_project", SetName: "new_projects", PrimaryName: "new_name"}); err != nil {
		t.Fatal(err)
	}
	_, rel, err := srv.Admin.Client.AddRelationship(ctx, crm.Relationship{Referencing: "new_project", ReferencingAttribute: "new_contactid", Referenced: "contact"})
	if err != nil {
		t.Fatal(err)
	}
	var projects []crm.ID
	for i, name := range []string{"Roof", "Garden", "Cellar"} {
		p, err := srv.Alice.Client.Create(ctx, crm.Record{Entity: "new_project", Attrs: map[string]any{
			"new_name": name, "new_contactid": crm.Ref{Entity: crm.EntityContact, ID: ids[i]}}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		projects = append(projects, p.ID)
	}
	// Bob's project is not Alice's to hold (salespeople: own records).
	if _, err := srv.Bob.Client.Create(ctx, crm.Record{Entity: "new_project", Attrs: map[string]any{"new_name": "Bob's"}}, nil); err != nil {
		t.Fatal(err)
	}

	// Status does not call a custom entity the client will copy a newer
	// schema.
	if st, err := e.Status(ctx, srv.Alice.Client, ""); err != nil || !strings.HasPrefix(st.Version, "ok") {
		t.Errorf("status version check = %q, %v; want ok (the refresh copies new_project)", st.Version, err)
	}
	rep, err := e.Refresh(ctx, srv.Alice.Client, aliceCred())
	if err != nil {
		t.Fatalf("background refresh after the server made new_project: %v", err)
	}
	if !hasChange(rep.Schema, SchemaChange{Entity: "new_project"}) || !hasChange(rep.Schema, SchemaChange{Entity: "new_project", Relationship: rel.Name}) {
		t.Errorf("schema changes = %+v, want the entity new_project and %s", rep.Schema, rel.Name)
	}
	md, _ := e.Replica().Metadata(ctx)
	le, err := md.Entity("new_projects")
	if err != nil || le.Attr("new_contactid") == nil || le.PrimaryKey != "new_projectid" {
		t.Fatalf("replica entity = %+v, %v", le, err)
	}
	found := false
	for _, r := range md.Relationships {
		found = found || r == rel
	}
	if !found {
		t.Errorf("replica relationships lack %+v", rel)
	}
	srvMD, _ := srv.Store.Metadata(ctx)
	if v, _ := e.ServerMetadataVersion(ctx); v != srvMD.Version {
		t.Errorf("replica propagated from version %d, server is at %d", v, srvMD.Version)
	}
	local := storeRecords(t, e.Replica(), "new_project", crm.ID{})
	sameRecords(t, "projects", serverRecords(t, srv, "new_project", srv.Alice.ID), local)
	if len(local) != 3 {
		t.Errorf("replica holds %d projects, want Alice's 3", len(local))
	}

	// Offline: the local API serves the entity, reads and writes.
	if err := e.SetOffline(ctx); err != nil {
		t.Fatal(err)
	}
	lc := localClient(t, e)
	got, err := lc.Get(ctx, "new_project", projects[0])
	if ref, _ := got.Attrs["new_contactid"].(crm.Ref); err != nil || got.Attrs["new_name"] != "Roof" || ref.ID != ids[0] {
		t.Fatalf("local get = %+v, %v", got.Attrs, err)
	}
	all, err := lc.QueryAll(ctx, "new_project", crmclient.Query{Filter: "new_name eq 'Garden'"})
	if err != nil || len(all) != 1 || all[0].ID != projects[1] {
		t.Errorf("local query = %v, %v", all, err)
	}
	made, err := lc.Create(ctx, crm.Record{Entity: "new_project", Attrs: map[string]any{
		"new_name": "Offline shed", "new_contactid": crm.Ref{Entity: crm.EntityContact, ID: ids[3]}}}, nil)
	if err != nil {
		t.Fatalf("local create: %v", err)
	}
	if _, err := lc.Update(ctx, crm.Record{Entity: "new_project", ID: projects[2], Attrs: map[string]any{"new_name": "Wine cellar"}}, nil); err != nil {
		t.Fatalf("local update: %v", err)
	}
	if n, _ := e.QueueLength(ctx); n != 2 {
		t.Errorf("queue length %d, want 2", n)
	}

	if _, err := e.GoOnline(ctx, srv.Alice.Client, ReplayOptions{Cred: aliceCred()}); err != nil {
		t.Fatalf("go-online: %v", err)
	}
	onSrv := serverRecords(t, srv, "new_project", srv.Alice.ID)
	if r, ok := onSrv[made.ID]; !ok || r.Attrs["new_name"] != "Offline shed" {
		t.Errorf("the offline create is on the server as %+v (present %v)", r.Attrs, ok)
	}
	if r := onSrv[projects[2]]; r.Attrs["new_name"] != "Wine cellar" {
		t.Errorf("the offline update reached the server as %v", r.Attrs["new_name"])
	}
	if len(onSrv) != 4 {
		t.Errorf("server holds %d of Alice's projects, want 4", len(onSrv))
	}

	// An entity made now reaches the replica at the next GoOffline.
	if _, err := srv.Admin.Client.AddEntity(ctx, crm.EntityRequest{Name: "new_phase", SetName: "new_phases"}); err != nil {
		t.Fatal(err)
	}
	ph, err := srv.Alice.Client.Create(ctx, crm.Record{Entity: "new_phase", Attrs: map[string]any{"new_phase_name": "Design"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// And a relationship on an entity the replica already holds.
	_, rel2, err := srv.Admin.Client.AddRelationship(ctx, crm.Relationship{Referencing: "new_project", ReferencingAttribute: "new_accountid", Referenced: "account"})
	if err != nil {
		t.Fatal(err)
	}
	rep, err = e.GoOffline(ctx, srv.Alice.Client, aliceCred())
	if err != nil {
		t.Fatalf("GoOffline after the server made new_phase: %v", err)
	}
	if !hasChange(rep.Schema, SchemaChange{Entity: "new_phase"}) || !hasChange(rep.Schema, SchemaChange{Entity: "new_project", Relationship: rel2.Name}) {
		t.Errorf("schema changes = %+v, want new_phase and %s", rep.Schema, rel2.Name)
	}
	if r, ok := storeRecords(t, e.Replica(), "new_phase", crm.ID{})[ph.ID]; !ok || r.Attrs["new_phase_name"] != "Design" {
		t.Errorf("replica phase = %+v (present %v)", r.Attrs, ok)
	}
	sameRecords(t, "projects after go-offline", serverRecords(t, srv, "new_project", srv.Alice.ID), storeRecords(t, e.Replica(), "new_project", crm.ID{}))
}

func hasChange(cs []SchemaChange, want SchemaChange) bool {
	for _, c := range cs {
		if c == want {
			return true
		}
	}
	return false
}

// futureEntity is a Remote whose metadata has a custom entity with an
// attribute type this client does not know.
type futureEntity struct{ Remote }

func (f futureEntity) Metadata(ctx context.Context) (*crm.Metadata, error) {
	m, err := f.Remote.Metadata(ctx)
	if err != nil {
		return nil, err
	}
	m = m.Clone()
	e := crm.NewCustomEntity("new_site", "new_sites", "new_name", 0)
	e.Attributes = append(e.Attributes, crm.Attribute{Name: "new_shape", Type: "geometry"})
	m.Entities = append(m.Entities, e)
	m.Version++
	return m, nil
}

// TestSchema_UnknownTypeIsClientVersionLower: a custom entity the replica
// cannot hold (an attribute type this client does not know) still stops
// GoOffline with ErrClientVersion and state ClientVersionLower, and leaves
// no table behind.
func TestSchema_UnknownTypeIsClientVersionLower(t *testing.T) {
	ctx := context.Background()
	srv := crmtest.Start(t, nil)
	e := openEngine(t, "", nil)
	_, err := e.GoOffline(ctx, futureEntity{srv.Alice.Client}, aliceCred())
	if !errors.Is(err, ErrClientVersion) || !strings.Contains(err.Error(), "new_site.new_shape") {
		t.Fatalf("GoOffline with an unknown attribute type = %v, want ErrClientVersion naming new_site.new_shape", err)
	}
	if st, _ := e.State(ctx); st != ClientVersionLower {
		t.Errorf("state %s, want ClientVersionLower", st)
	}
	md, _ := e.Replica().Metadata(ctx)
	if _, err := md.Entity("new_site"); err == nil {
		t.Error("the replica holds new_site")
	}
}
