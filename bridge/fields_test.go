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

func TestRawHelpers(t *testing.T) {
	card := []byte("BEGIN:VCARD\r\nVERSION:3.0\r\nFN:A\r\nORG:Contoso\\, Ltd;Sales\r\nitem1.CATEGORIES:Friends,C\r\n RM\r\nREV:20260102T030405Z\r\nEND:VCARD\r\n")
	if !hasCategory(card, "crm") {
		t.Error("hasCategory(CRM) = false for a folded CATEGORIES line")
	}
	if hasCategory(card, "Work") {
		t.Error("hasCategory(Work) = true")
	}
	if got := orgCompany(card); got != "Contoso, Ltd" {
		t.Errorf("orgCompany = %q", got)
	}
	if got, want := modTime(card), time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC); !got.Equal(want) {
		t.Errorf("modTime = %v, want %v", got, want)
	}
	ev := []byte("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:x\r\nLAST-MODIFIED:20260301T000000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
	if got := modTime(ev); got.Month() != 3 {
		t.Errorf("modTime(LAST-MODIFIED) = %v", got)
	}
	got := string(addCategory(ev, "CRM, Inc"))
	if want := "LAST-MODIFIED:20260301T000000Z\r\nCATEGORIES:CRM\\, Inc\r\nEND:VEVENT"; !contains(got, want) {
		t.Errorf("addCategory = %q", got)
	}
	if !hasCategory([]byte(got), "CRM, Inc") {
		t.Error("hasCategory after addCategory = false")
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}
