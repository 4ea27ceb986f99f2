package integration

import (
	"strings"
	"testing"

	"github.com/pimbridge/pimbridge/crm"
)

// Both directions for contacts: a CRM contact reaches the address book with
// X-CRM-ID, a PIM edit reaches CRM, a new PIM contact becomes a CRM contact.
func TestBasic_ContactsBothWays(t *testing.T) {
	eachDAV(t, allDAV, func(t *testing.T, h *harness) {
		c := h.createContact(h.CRM.Alice, map[string]any{"firstname": "Ada", "lastname": "Lovelace", "emailaddress1": "ada@example.com"})
		b := h.alice()
		st := h.sync(b)
		if st.ToPIM.Created != 1 {
			t.Fatalf("first sync: %+v, want 1 created on PIM", st)
		}
		href, data := h.findByCRMID(h.Book, c.ID)
		if href == "" || !strings.Contains(string(data), "Lovelace") {
			t.Fatalf("contact not in address book: %q", data)
		}
		// No change: nothing written.
		st = h.sync(b)
		if st.ToPIM.Created+st.ToPIM.Updated+st.ToCRM.Created+st.ToCRM.Updated != 0 {
			t.Fatalf("no-change sync wrote: %+v", st)
		}
		h.editPIM(h.Book, href, func(s string) string { return replaceLine(s, "TITLE", "TITLE:Countess") })
		h.sync(b)
		if r, _ := h.get(crm.EntityContact, c.ID); r.Attrs["jobtitle"] != "Countess" {
			t.Fatalf("jobtitle = %v, want Countess", r.Attrs["jobtitle"])
		}
		h.putPIM(h.Book, "grace.vcf", vcard("grace-1", "Grace", "Hopper", "EMAIL:grace@example.com"))
		st = h.sync(b)
		if st.ToCRM.Created != 1 {
			t.Fatalf("PIM create: %+v", st)
		}
		var found bool
		for _, r := range h.all(crm.EntityContact) {
			if r.Attrs["lastname"] == "Hopper" {
				found = true
				if _, d := h.findByCRMID(h.Book, r.ID); d == nil {
					t.Errorf("grace.vcf has no X-CRM-ID %s", r.ID)
				}
			}
		}
		if !found {
			t.Fatal("Hopper not created in CRM")
		}
		st = h.sync(b)
		if st.ToCRM.Created+st.ToCRM.Updated+st.ToPIM.Created+st.ToPIM.Updated != 0 {
			t.Fatalf("third sync wrote: %+v", st)
		}
	})
}
