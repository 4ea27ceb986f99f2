package crmstore_test

import (
	"context"
	"errors"
	"testing"

	"github.com/pimbridge/pimbridge/crm"
)

// TestCustomEntity_SurvivesReopen: a custom entity and relationship are
// stored (migration 0003) and come back, table and all, when the store is
// opened again; an entity definition with an attribute type this version
// does not know is refused as ErrUnknownType.
func TestCustomEntity_SurvivesReopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st := openTest(t, dir)
	if _, err := st.AddEntity(ctx, *crm.NewCustomEntity("new_project", "new_projects", "new_name", 80)); err != nil {
		t.Fatal(err)
	}
	m, rel, err := st.AddRelationship(ctx, crm.Relationship{Referencing: "new_project", ReferencingAttribute: "new_contactid", Referenced: "contacts"})
	if err != nil {
		t.Fatal(err)
	}
	bad := crm.NewCustomEntity("new_future", "new_futures", "new_name", 0)
	bad.Attributes = append(bad.Attributes, crm.Attribute{Name: "new_shape", Type: "geometry"})
	if _, err := st.AddEntity(ctx, *bad); !errors.Is(err, crm.ErrUnknownType) {
		t.Errorf("entity with an unknown type = %v, want ErrUnknownType", err)
	}
	st.Close()
	st = openTest(t, dir)
	defer st.Close()
	m2, _ := st.Metadata(ctx)
	e, err := m2.Entity("new_projects")
	if err != nil || m2.Version != m.Version || e.Attr("new_contactid") == nil || e.PrimaryKey != "new_projectid" {
		t.Fatalf("after reopen: version %d (want %d), entity %+v, %v", m2.Version, m.Version, e, err)
	}
	found := false
	for _, r := range m2.Relationships {
		found = found || r == rel
	}
	if !found || rel.Referenced != "contact" {
		t.Errorf("relationship %+v not in the reopened metadata", rel)
	}
}
