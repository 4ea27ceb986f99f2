package mapping

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pimbridge/pimbridge/crm"
)

func TestSnapshot_MarshalDiff(t *testing.T) {
	a := NewSnapshot(crm.Record{Entity: "appointment", Attrs: map[string]any{
		"subject": "  Termin ", "description": "a\r\nb", "scheduledstart": time.Date(2026, 1, 1, 10, 0, 0, 0, time.FixedZone("x", 3600)),
		"requiredattendees": []crm.Party{{Address: "B@example.com"}, {Address: "a@example.com"}}, "location": "",
	}})
	b := NewSnapshot(crm.Record{Entity: "appointment", Attrs: map[string]any{
		"subject": "Termin", "description": "a\nb", "scheduledstart": time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC),
		"requiredattendees": []crm.Party{{Address: "a@example.com"}, {Address: "b@example.com"}},
	}})
	if d := Diff(a, b); len(d) > 0 {
		t.Errorf("Diff of equal meaning = %v", d)
	}
	ja, err := a.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	jb, _ := b.Marshal()
	if string(ja) != string(jb) {
		t.Errorf("Marshal not canonical:\n%s\n%s", ja, jb)
	}
	back, err := UnmarshalSnapshot(ja)
	if err != nil || !back.Equal(a) {
		t.Fatalf("UnmarshalSnapshot = %v, %v", back, err)
	}
	b.Fields["location"] = "Raum"
	b.Fields["subject"] = nil
	if d := Diff(a, b); !slices.Equal(d, []string{"subject", "location"}) {
		t.Errorf("Diff = %v", d)
	}
}

func TestPatchVCard_companyOneWay(t *testing.T) {
	raw := []byte("BEGIN:VCARD\r\nVERSION:3.0\r\nFN:A B\r\nN:B;A;;;\r\nORG:Old Co;Sales\r\nEND:VCARD\r\n")
	out, err := PatchVCard(raw, crm.Record{Entity: "contact"}, &Options{SetCompany: true, Company: "Contoso; Ltd"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "ORG:Contoso\\; Ltd;Sales\r\n") {
		t.Errorf("company not written:\n%s", out)
	}
	rs, _ := VCardToCRM(out, nil)
	if rs[0].Record.Attrs["department"] != "Sales" {
		t.Errorf("department = %v", rs[0].Record.Attrs["department"])
	}
	if _, ok := rs[0].Record.Attrs["parentcustomerid"]; ok {
		t.Error("company read back into CRM")
	}
	same, _ := PatchVCard(raw, crm.Record{Entity: "contact"}, nil)
	if string(same) != string(raw) {
		t.Errorf("ORG touched without the option:\n%s", same)
	}
}
