package crmserver_test

import (
	"context"
	"errors"
	"testing"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmclient"
	"github.com/pimbridge/pimbridge/crm/crmserver"
	"github.com/pimbridge/pimbridge/crm/crmtest"
)

var projectReq = crm.EntityRequest{Name: "new_project", SetName: "new_projects", PrimaryName: "new_name", MaxLength: 80}

var projectContact = crm.Relationship{Referencing: "new_project", ReferencingAttribute: "new_contactid", Referenced: "contact"}

// TestCustomEntity_AdminOnly: only a user with the Admin privilege makes
// entities and relationships; a salesperson's attempt changes nothing.
func TestCustomEntity_AdminOnly(t *testing.T) {
	srv := crmtest.Start(t, nil)
	ctx := context.Background()
	m0, _ := srv.Admin.Client.Metadata(ctx)
	if _, err := srv.Alice.Client.AddEntity(ctx, projectReq); !errors.Is(err, crm.ErrForbidden) {
		t.Errorf("salesperson AddEntity = %v, want ErrForbidden", err)
	}
	if _, err := srv.Admin.Client.AddEntity(ctx, projectReq); err != nil {
		t.Fatal(err)
	}
	if _, _, err := srv.Alice.Client.AddRelationship(ctx, projectContact); !errors.Is(err, crm.ErrForbidden) {
		t.Errorf("salesperson AddRelationship = %v, want ErrForbidden", err)
	}
	m, _ := srv.Admin.Client.Metadata(ctx)
	if m.Version != m0.Version+1 {
		t.Errorf("metadata version %d after one admin customization, want %d", m.Version, m0.Version+1)
	}
	// Offline, customization is a server-only message.
	off := crmtest.Start(t, &crmtest.Options{Server: crmserver.Options{Offline: true}})
	if _, err := off.Admin.Client.AddEntity(ctx, projectReq); !errors.Is(err, crm.ErrUnavailable) {
		t.Errorf("AddEntity on an offline server = %v, want ErrUnavailable", err)
	}
}

// TestCustomEntity_NameCollisionsRefused: a logical or entity-set name that
// any entity already has, and a relationship attribute the entity already
// has, are 409 conflicts.
func TestCustomEntity_NameCollisionsRefused(t *testing.T) {
	srv := crmtest.Start(t, nil)
	ctx := context.Background()
	if _, err := srv.Admin.Client.AddEntity(ctx, projectReq); err != nil {
		t.Fatal(err)
	}
	for _, req := range []crm.EntityRequest{
		projectReq,
		{Name: "new_project", SetName: "new_projects2"},
		{Name: "new_other", SetName: "new_projects"},
		{Name: "new_other", SetName: "new_project"},
		{Name: "new_other", SetName: "contacts"},
	} {
		if _, err := srv.Admin.Client.AddEntity(ctx, req); !errors.Is(err, crm.ErrConflict) {
			t.Errorf("AddEntity(%+v) = %v, want ErrConflict", req, err)
		}
	}
	if _, _, err := srv.Admin.Client.AddRelationship(ctx, projectContact); err != nil {
		t.Fatal(err)
	}
	for _, rel := range []crm.Relationship{
		projectContact,
		{Referencing: "new_project", ReferencingAttribute: "new_name", Referenced: "account"},
		{Referencing: "new_project", ReferencingAttribute: "ownerid", Referenced: "account"},
	} {
		if _, _, err := srv.Admin.Client.AddRelationship(ctx, rel); !errors.Is(err, crm.ErrConflict) {
			t.Errorf("AddRelationship(%+v) = %v, want ErrConflict", rel, err)
		}
	}
}

// TestCustomEntity_BadNamesRefused: names without a publisher prefix, with
// capitals or odd characters, internal column names and relationships to
// unknown or custom entities are 400s naming the problem.
func TestCustomEntity_BadNamesRefused(t *testing.T) {
	srv := crmtest.Start(t, nil)
	ctx := context.Background()
	m0, _ := srv.Admin.Client.Metadata(ctx)
	for _, req := range []crm.EntityRequest{
		{Name: "project", SetName: "projects"},
		{Name: "new_", SetName: "news"},
		{Name: "New_Project", SetName: "new_projects"},
		{Name: "new_pro-ject", SetName: "new_projects"},
		{Name: "new_project", SetName: "New Projects"},
		{Name: "new_project", SetName: ""},
		{Name: "new_project", SetName: "new_project"},
		{Name: "new_project", SetName: "new_projects", PrimaryName: "id"},
		{Name: "new_project", SetName: "new_projects", PrimaryName: "new__x"},
		{Name: "new_project", SetName: "new_projects", PrimaryName: "ownerid"},
		{Name: "new_project", SetName: "new_projects", MaxLength: -1},
	} {
		if _, err := srv.Admin.Client.AddEntity(ctx, req); !errors.Is(err, crm.ErrInvalidArgument) {
			t.Errorf("AddEntity(%+v) = %v, want ErrInvalidArgument", req, err)
		}
	}
	if _, err := srv.Admin.Client.AddEntity(ctx, projectReq); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Admin.Client.AddEntity(ctx, crm.EntityRequest{Name: "new_phase", SetName: "new_phases"}); err != nil {
		t.Fatal(err)
	}
	for _, rel := range []crm.Relationship{
		{Referencing: "new_project", ReferencingAttribute: "new_phaseid", Referenced: "new_phase"}, // custom target
		{Referencing: "new_project", ReferencingAttribute: "New_X", Referenced: "contact"},
		{Referencing: "new_project", ReferencingAttribute: "new_x__type", Referenced: "contact"},
	} {
		if _, _, err := srv.Admin.Client.AddRelationship(ctx, rel); !errors.Is(err, crm.ErrInvalidArgument) {
			t.Errorf("AddRelationship(%+v) = %v, want ErrInvalidArgument", rel, err)
		}
	}
	if _, _, err := srv.Admin.Client.AddRelationship(ctx, crm.Relationship{Referencing: "new_nothing", ReferencingAttribute: "new_x", Referenced: "contact"}); !errors.Is(err, crm.ErrUnknownEntity) {
		t.Errorf("relationship from an unknown entity = %v, want ErrUnknownEntity", err)
	}
	m, _ := srv.Admin.Client.Metadata(ctx)
	if m.Version != m0.Version+2 {
		t.Errorf("metadata version %d, want %d: refused customizations must not bump it", m.Version, m0.Version+2)
	}
}

// TestCustomEntity_CRUDRightsAndSync: a custom entity's records are served
// at /api/data/{set} with the rights of any user-owned entity (admins all,
// salespeople their own), its lookup is a relationship in the metadata,
// the store keeps it all across a reopen, and the offline subscription
// sends its rows.
func TestCustomEntity_CRUDRightsAndSync(t *testing.T) {
	srv := crmtest.Start(t, nil)
	ctx := context.Background()
	if _, err := srv.Admin.Client.AddEntity(ctx, projectReq); err != nil {
		t.Fatal(err)
	}
	v, rel, err := srv.Admin.Client.AddRelationship(ctx, projectContact)
	if err != nil || rel.Name != "new_project_new_contactid_contact" {
		t.Fatalf("AddRelationship = %v, %+v, %v", v, rel, err)
	}
	m, _ := srv.Alice.Client.Metadata(ctx)
	if m.Version != v || !hasRelationship(m, rel.Name) || !hasRelationship(m, "new_project_ownerid_systemuser") {
		t.Errorf("metadata v%d (want %d) relationships %v", m.Version, v, m.Relationships)
	}
	c, err := srv.Alice.Client.Create(ctx, crm.Record{Entity: "contact", Attrs: map[string]any{"lastname": "Client"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := srv.Alice.Client.Create(ctx, crm.Record{Entity: "new_project", Attrs: map[string]any{
		"new_name": "Roof", "new_contactid": crm.Ref{Entity: "contact", ID: c.ID}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Alice.Client.Create(ctx, crm.Record{Entity: "new_project", Attrs: map[string]any{}}, nil); !errors.Is(err, crm.ErrRequired) {
		t.Errorf("create without the primary name = %v, want ErrRequired", err)
	}
	if _, err := srv.Alice.Client.Update(ctx, crm.Record{Entity: "new_project", ID: p.ID, Attrs: map[string]any{"new_name": "Roof 2"}}, nil); err != nil {
		t.Fatal(err)
	}
	got, err := srv.Alice.Client.Get(ctx, "new_project", p.ID)
	if err != nil || got.Attrs["new_name"] != "Roof 2" || got.Attrs["ownerid"].(crm.Ref).ID != srv.Alice.ID {
		t.Fatalf("get = %+v, %v", got, err)
	}
	if ref, _ := got.Attrs["new_contactid"].(crm.Ref); ref.ID != c.ID {
		t.Errorf("lookup = %v, want contact %s", got.Attrs["new_contactid"], c.ID)
	}
	// Salespeople see their own records only; admins all.
	if _, err := srv.Bob.Client.Get(ctx, "new_project", p.ID); !errors.Is(err, crm.ErrForbidden) && !errors.Is(err, crm.ErrNotFound) {
		t.Errorf("bob reads alice's project: %v, want forbidden or not found", err)
	}
	if all, err := srv.Bob.Client.QueryAll(ctx, "new_project", crmclient.Query{}); err != nil || len(all) != 0 {
		t.Errorf("bob's query = %d records, %v; want none", len(all), err)
	}
	if _, err := srv.Admin.Client.Get(ctx, "new_project", p.ID); err != nil {
		t.Errorf("admin get: %v", err)
	}
	// The offline subscription carries the entity.
	sub, err := srv.Alice.Client.Subscribe(ctx, "laptop", crm.KindOffline)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Alice.Client.Prepare(ctx, sub.ID); err != nil {
		t.Fatal(err)
	}
	b, err := srv.Alice.Client.NextBatch(ctx, sub.ID, "new_project", 10)
	if err != nil || len(b.Upserts) != 1 || b.Upserts[0].Attrs["new_name"] != "Roof 2" {
		t.Fatalf("batch = %+v, %v", b, err)
	}
	if err := srv.Alice.Client.Delete(ctx, "new_project", p.ID, nil); err != nil {
		t.Errorf("delete: %v", err)
	}
}

func hasRelationship(m *crm.Metadata, name string) bool {
	for _, r := range m.Relationships {
		if r.Name == name {
			return true
		}
	}
	return false
}
