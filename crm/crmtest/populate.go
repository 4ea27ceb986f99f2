package crmtest

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmclient"
	"github.com/pimbridge/pimbridge/crm/crmserver"
)

// Population is what Populate put on a server.
type Population struct {
	// IDs of the records created, by entity logical name (deleted ones
	// excluded).
	IDs map[string][]crm.ID
	// Deleted is a contact that was created and deleted (a tombstone).
	Deleted crm.ID
	// Token is a bearer token of user.
	Token string
	// Primary is user's claimed primary client.
	Primary crm.Primary
}

// PopulateEntities are the built-in entities Populate fills (systemuser
// records come with the users).
var PopulateEntities = []string{"account", "contact", "task", "phonecall", "letter", "fax", "appointment", "email"}

// Populate fills a server through its API with some of every kind of
// state: a custom entity with a relationship to contact and records, a
// custom attribute on contact, n records of every built-in entity kind
// (owned by user), a deleted contact, an idempotent create, a replayed
// write (replay key), a local data filter, a claimed primary client and a
// bearer token. admin needs the admin role, user the salesperson role.
func Populate(t testing.TB, admin, user *crmclient.Client, n int) Population {
	t.Helper()
	ctx := context.Background()
	p := Population{IDs: map[string][]crm.ID{}}
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("crmtest: populate: %s: %v", what, err)
		}
	}
	_, err := admin.AddEntity(ctx, crm.EntityRequest{Name: "new_project", SetName: "new_projects", PrimaryName: "new_name"})
	must("add entity", err)
	_, _, err = admin.AddRelationship(ctx, crm.Relationship{Referencing: "new_project", ReferencingAttribute: "new_contactid", Referenced: "contact"})
	must("add relationship", err)
	_, err = admin.AddAttribute(ctx, "contact", crm.Attribute{Name: "new_nickname", Type: crm.TypeString, MaxLength: 50})
	must("add attribute", err)
	create := func(entity string, attrs map[string]any) crm.ID {
		t.Helper()
		r, err := user.Create(ctx, crm.Record{Entity: entity, Attrs: attrs}, &crmclient.WriteOptions{SuppressDuplicateDetection: true})
		must("create "+entity, err)
		p.IDs[entity] = append(p.IDs[entity], r.ID)
		return r.ID
	}
	for i := range n {
		acc := create("account", map[string]any{"name": fmt.Sprintf("Account %d", i)})
		c := create("contact", map[string]any{"lastname": fmt.Sprintf("Contact %d", i), "firstname": "Ann",
			"emailaddress1": fmt.Sprintf("ann%d@example.com", i), "new_nickname": fmt.Sprintf("nick %d", i),
			"parentcustomerid": crm.Ref{Entity: "account", ID: acc}})
		for _, e := range []string{"task", "phonecall", "letter", "fax", "email"} {
			create(e, map[string]any{"subject": fmt.Sprintf("%s %d", e, i), "prioritycode": int64(i % 3),
				"regardingobjectid": crm.Ref{Entity: "contact", ID: c}})
		}
		create("appointment", map[string]any{"subject": fmt.Sprintf("Meeting %d", i), "location": "Room 1",
			"requiredattendees": []crm.Party{{Party: &crm.Ref{Entity: "contact", ID: c}}, {Address: "guest@example.org"}}})
		create("new_project", map[string]any{"new_name": fmt.Sprintf("Project %d", i), "new_contactid": crm.Ref{Entity: "contact", ID: c}})
	}
	gone, err := user.Create(ctx, crm.Record{Entity: "contact", Attrs: map[string]any{"lastname": "Gone"}}, nil)
	must("create", err)
	must("delete", user.Delete(ctx, "contact", gone.ID, nil))
	p.Deleted = gone.ID
	// An idempotent create (client-chosen id: a create hash).
	id := crm.NewID()
	_, err = user.Create(ctx, crm.Record{Entity: "task", ID: id, Attrs: map[string]any{"subject": "Idempotent"}}, nil)
	must("create with id", err)
	p.IDs["task"] = append(p.IDs["task"], id)
	// A replayed write (a replay key with its answer).
	h := http.Header{crmserver.HeaderReplayID: {crm.NewID().String()}, "Content-Type": {"application/json"}}
	resp, err := user.Do(ctx, http.MethodPatch, "/api/data/tasks("+id.String()+")", h, []byte(`{"description":"replayed"}`))
	must("replayed write", err)
	if resp.Status/100 != 2 {
		t.Fatalf("crmtest: populate: replayed write = %d %s", resp.Status, resp.Body)
	}
	_, err = user.SetLocalFilter(ctx, "contact", "ownerid eq @me")
	must("local filter", err)
	p.Primary, err = user.ClaimPrimary(ctx, "laptop")
	must("claim primary", err)
	p.Token, _, err = user.Token(ctx)
	must("token", err)
	return p
}
