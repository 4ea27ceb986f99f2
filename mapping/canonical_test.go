package mapping

import (
	"testing"
	"time"

	"github.com/pimbridge/pimbridge/crm"
)

func TestStrings_RoundTrip(t *testing.T) {
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
			f, err := NewSnapshot(tc.rec).Strings()
			if err != nil {
				t.Fatal(err)
			}
			if f["firstname"] == `" Ada "` {
				t.Errorf("firstname not normalized: %q", f["firstname"])
			}
			attrs, err := AttrsOfStrings(tc.rec.Entity, f)
			if err != nil {
				t.Fatalf("AttrsOfStrings(%v): %v", f, err)
			}
			g, err := NewSnapshot(crm.Record{Entity: tc.rec.Entity, Attrs: attrs}).Strings()
			if err != nil {
				t.Fatal(err)
			}
			if len(f) != len(g) {
				t.Fatalf("strings -> attrs -> strings = %v, want %v", g, f)
			}
			for k, v := range f {
				if g[k] != v {
					t.Errorf("%s: %q after the round trip, want %q", k, g[k], v)
				}
			}
		})
	}
}

func TestStrings_PartiesCompareByAddress(t *testing.T) {
	me := crm.NewID()
	a, err := NewSnapshot(crm.Record{Entity: crm.EntityAppointment, Attrs: map[string]any{"organizer": []crm.Party{{Party: &crm.Ref{Entity: "systemuser", ID: me}, Address: "Alice@Example.com", Name: "Alice"}}}}).Strings()
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewSnapshot(crm.Record{Entity: crm.EntityAppointment, Attrs: map[string]any{"organizer": []crm.Party{{Address: "alice@example.com", Name: "A."}}}}).Strings()
	if err != nil {
		t.Fatal(err)
	}
	if a["organizer"] != b["organizer"] || a["organizer"] == "" {
		t.Errorf("organizer: %q != %q", a["organizer"], b["organizer"])
	}
	c, _ := NewSnapshot(crm.Record{Entity: crm.EntityAppointment, Attrs: map[string]any{"organizer": []crm.Party{{Name: "Room 4"}}}}).Strings()
	if c["organizer"] == "" || c["organizer"] == a["organizer"] {
		t.Errorf("a party without address keeps its name: %q", c["organizer"])
	}
}

func TestAttrsOfStrings_EmptyClearsUnknownFails(t *testing.T) {
	attrs, err := AttrsOfStrings(crm.EntityContact, map[string]string{"jobtitle": ""})
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := attrs["jobtitle"]; !ok || v != nil {
		t.Errorf("AttrsOfStrings(jobtitle: \"\") = %v, want a nil value that clears", attrs)
	}
	if _, err := AttrsOfStrings("nosuchentity", nil); err == nil {
		t.Error("AttrsOfStrings(nosuchentity) = nil error")
	}
	if _, err := NewSnapshot(crm.Record{Entity: "nosuchentity"}).Strings(); err == nil {
		t.Error("Strings of nosuchentity = nil error")
	}
}
