package bridge

import (
	"testing"
	"time"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/reconcile"
)

func TestFieldsOf_RoundTrip(t *testing.T) {
	start := time.Date(2027, 1, 5, 9, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		rec  crm.Record
	}{
		{"contact", crm.Record{Entity: crm.EntityContact, Attrs: map[string]any{"lastname": "Lovelace", "firstname": " Ada ", "birthdate": time.Date(1815, 12, 10, 0, 0, 0, 0, time.UTC)}}},
		{"task", crm.Record{Entity: crm.EntityTask, Attrs: map[string]any{"subject": "Call", "prioritycode": int64(2), "statecode": int64(0), "scheduledend": start}}},
		{"appointment", crm.Record{Entity: crm.EntityAppointment, Attrs: map[string]any{"subject": "Review", "scheduledstart": start, "isalldayevent": false,
			"requiredattendees": []crm.Party{{Address: "B@Example.com", Name: "Bee"}, {Address: "a@example.com"}}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := fieldsOf(tc.rec)
			if err != nil {
				t.Fatal(err)
			}
			attrs, err := attrsOf(tc.rec.Entity, f)
			if err != nil {
				t.Fatalf("attrsOf(%v): %v", f, err)
			}
			g, err := fieldsOf(crm.Record{Entity: tc.rec.Entity, Attrs: attrs})
			if err != nil {
				t.Fatal(err)
			}
			if !f.Equal(g) {
				t.Errorf("fields -> attrs -> fields = %v, want %v", g, f)
			}
		})
	}
}

func TestFieldsOf_PartiesCompareByAddress(t *testing.T) {
	me := crm.NewID()
	a, _ := fieldsOf(crm.Record{Entity: crm.EntityAppointment, Attrs: map[string]any{"organizer": []crm.Party{{Party: &crm.Ref{Entity: "systemuser", ID: me}, Address: "Alice@Example.com", Name: "Alice"}}}})
	b, _ := fieldsOf(crm.Record{Entity: crm.EntityAppointment, Attrs: map[string]any{"organizer": []crm.Party{{Address: "alice@example.com", Name: "A."}}}})
	if !a.Equal(b) {
		t.Errorf("fieldsOf organizer: %v != %v", a, b)
	}
}

func TestAttrsOf_EmptyClears(t *testing.T) {
	attrs, err := attrsOf(crm.EntityContact, reconcile.Fields{"jobtitle": ""})
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := attrs["jobtitle"]; !ok || v != nil {
		t.Errorf("attrsOf(jobtitle: \"\") = %v, want a nil value that clears", attrs)
	}
}
