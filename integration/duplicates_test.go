package integration

import (
	"errors"
	"strings"
	"testing"

	"github.com/pimbridge/pimbridge/bridge"
	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmclient"
	"github.com/pimbridge/pimbridge/idmap"
)

// Duplicates from the PIM side (duplicate detection runs when
// synchronizing; a personal option decides whether a detected duplicate is
// created). A contact made on the phone whose e-mail matches a CRM contact
// the user can read is found by duplicate detection.

// contactsWithEmail lists the CRM contacts with e-mail address addr.
func (h *harness) contactsWithEmail(addr string) []crm.Record {
	h.t.Helper()
	rs, err := h.CRM.Admin.Client.QueryAll(h.ctx, crm.EntityContact, crmclient.Query{Filter: "emailaddress1 eq '" + addr + "'"})
	if err != nil {
		h.t.Fatalf("query contacts: %v", err)
	}
	return rs
}

// syncError returns the one sync error of the item at href.
func (h *harness) syncError(b *bridge.Bridge, href string) idmap.SyncError {
	h.t.Helper()
	es, err := h.cache(h.stateRoot() + "/desktop").SyncErrors(h.ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	for _, e := range es {
		if e.Item == href {
			return e
		}
	}
	h.t.Fatalf("no sync error for %s (errors: %+v)", href, es)
	return idmap.SyncError{}
}

// hasPhone reports whether a contact has number among its phones.
func hasPhone(r crm.Record, number string) bool {
	for _, k := range []string{"telephone1", "telephone2", "telephone3", "mobilephone"} {
		if r.Attrs[k] == number {
			return true
		}
	}
	return false
}

func (h *harness) retry(id int64) {
	h.t.Helper()
	if err := h.cache(h.stateRoot()+"/desktop").Tx(h.ctx, func(tx *idmap.Tx) error { return tx.RetrySyncError(h.ctx, id) }); err != nil {
		h.t.Fatal(err)
	}
}

// With sync.duplicates = "ask" (the default) the duplicate is a sync error
// that a plain retry does not change; `errors retry ID --allow-duplicate`
// creates it, once.
func TestDuplicates_AskIsASyncErrorUntilAllowed(t *testing.T) {
	eachDAV(t, allDAV, func(t *testing.T, h *harness) {
		h.createContact(h.CRM.Bob, map[string]any{"firstname": "Dana", "lastname": "Dup", "emailaddress1": "dana@example.com"})
		b := h.alice()
		h.sync(b)
		href := h.putPIM(h.Book, "dana.vcf", vcard("dana-1", "Dana", "Dupont", "EMAIL:dana@example.com", "TEL:+1 555 0100"))
		h.sync(b, bridge.ErrItemErrors)
		e := h.syncError(b, href)
		if !strings.Contains(e.Message, "duplicate") || !strings.Contains(e.Message, "--allow-duplicate") {
			t.Errorf("sync error message %q: want it to name the duplicate and the ways out", e.Message)
		}
		h.retry(e.ID)
		h.sync(b, bridge.ErrItemErrors)
		if n := len(h.contactsWithEmail("dana@example.com")); n != 1 {
			t.Fatalf("after a plain retry: %d contacts with the address, want 1 (the duplicate is not created)", n)
		}
		e = h.syncError(b, href)
		if err := b.AllowDuplicate(h.ctx, e.ID); err != nil {
			t.Fatal(err)
		}
		h.sync(b)
		rs := h.contactsWithEmail("dana@example.com")
		if len(rs) != 2 {
			t.Fatalf("after retry --allow-duplicate: %d contacts with the address, want 2", len(rs))
		}
		var created bool
		for _, r := range rs {
			if r.Attrs["lastname"] == "Dupont" && hasPhone(r, "+1 555 0100") {
				created = true
			}
		}
		if !created {
			t.Errorf("the PIM contact was not created with what the user typed: %+v", rs)
		}
		h.sync(b)
		if n := len(h.contactsWithEmail("dana@example.com")); n != 2 {
			t.Errorf("a later sync made %d contacts with the address, want 2", n)
		}
		if es, _ := h.cache(h.stateRoot() + "/desktop").SyncErrors(h.ctx); len(es) != 0 {
			t.Errorf("sync errors left after the duplicate was created: %+v", es)
		}
	})
}

// sync.duplicates = "allow" creates a detected duplicate at once.
func TestDuplicates_AllowSettingCreatesDuplicate(t *testing.T) {
	eachDAV(t, []davFactory{fast, radicale}, func(t *testing.T, h *harness) {
		h.createContact(h.CRM.Bob, map[string]any{"firstname": "Dana", "lastname": "Dup", "emailaddress1": "dana@example.com"})
		h.Settings.AllowDuplicates = true
		b := h.alice()
		h.putPIM(h.Book, "dana.vcf", vcard("dana-1", "Dana", "Dupont", "EMAIL:dana@example.com"))
		h.sync(b)
		if n := len(h.contactsWithEmail("dana@example.com")); n != 2 {
			t.Fatalf("%d contacts with the address, want 2 (the duplicate created)", n)
		}
	})
}

// `errors link ID CRM-ID` links the phone's contact to the existing record
// and merges them: fields set on one side only survive on both, the
// record's older copy on the phone goes, and no record is created.
func TestDuplicates_LinkMergesIntoExistingRecord(t *testing.T) {
	eachDAV(t, allDAV, func(t *testing.T, h *harness) {
		x := h.createContact(h.CRM.Alice, map[string]any{"firstname": "Dana", "lastname": "Dup", "emailaddress1": "dana@example.com", "jobtitle": "Buyer"})
		b := h.alice()
		h.sync(b)
		oldHref, _ := h.findByCRMID(h.Book, x.ID)
		if oldHref == "" {
			t.Fatal("the CRM contact did not reach the address book")
		}
		href := h.putPIM(h.Book, "dana.vcf", vcard("dana-2", "Dana", "Dup", "EMAIL:dana@example.com", "TEL:+1 555 0100"))
		h.sync(b, bridge.ErrItemErrors)
		e := h.syncError(b, href)
		if err := b.LinkSyncError(h.ctx, e.ID, crm.NewID()); !errors.Is(err, bridge.ErrNoRecord) {
			t.Errorf("link to a missing record = %v, want ErrNoRecord", err)
		}
		if err := b.LinkSyncError(h.ctx, e.ID, x.ID); err != nil {
			t.Fatal(err)
		}
		h.sync(b)
		if n := len(h.contactsWithEmail("dana@example.com")); n != 1 {
			t.Fatalf("%d contacts with the address after link, want 1", n)
		}
		r, _ := h.get(crm.EntityContact, x.ID)
		if !hasPhone(r, "+1 555 0100") || r.Attrs["jobtitle"] != "Buyer" {
			t.Errorf("CRM record after link: %v; want the phone's number and the CRM title", r.Attrs)
		}
		data, _, ok := h.pimGet(h.Book, href)
		if !ok || !strings.Contains(string(data), "Buyer") || !strings.Contains(strings.ToLower(string(data)), "x-crm-id:"+x.ID.String()) {
			t.Errorf("PIM contact after link: %q; want the CRM title and X-CRM-ID %s", data, x.ID)
		}
		if _, _, ok := h.pimGet(h.Book, oldHref); ok {
			t.Errorf("the record's older copy %s is still on the PIM side (two cards for one person)", oldHref)
		}
		if es, _ := h.cache(h.stateRoot() + "/desktop").SyncErrors(h.ctx); len(es) != 0 {
			t.Errorf("sync errors left after link: %+v", es)
		}
		// Linked for good: a PIM edit reaches the record.
		h.editPIM(h.Book, href, func(s string) string { return replaceLine(s, "TITLE", "TITLE:Head Buyer") })
		h.sync(b)
		if r, _ := h.get(crm.EntityContact, x.ID); r.Attrs["jobtitle"] != "Head Buyer" {
			t.Errorf("jobtitle after a PIM edit = %v, want Head Buyer", r.Attrs["jobtitle"])
		}
	})
}

// Linked to a record the user reads but may not write (a colleague's): the
// phone keeps what the user typed there, also when the pair is merged
// again later; CRM keeps its values.
func TestDuplicates_LinkToUnwritableRecordKeepsWhatUserTyped(t *testing.T) {
	eachDAV(t, []davFactory{fast, radicale}, func(t *testing.T, h *harness) {
		x := h.createContact(h.CRM.Bob, map[string]any{"firstname": "Dana", "lastname": "Dup", "emailaddress1": "dana@example.com"})
		b := h.alice()
		href := h.putPIM(h.Book, "dana.vcf", vcard("dana-3", "Dana", "Dupont", "EMAIL:dana@example.com", "TEL;TYPE=CELL:+1 555 0100"))
		h.sync(b, bridge.ErrItemErrors)
		if err := b.LinkSyncError(h.ctx, h.syncError(b, href).ID, x.ID); err != nil {
			t.Fatal(err)
		}
		h.sync(b)
		// Merged again: a later PIM edit of another field.
		h.editPIM(h.Book, href, func(s string) string { return replaceLine(s, "TITLE", "TITLE:Buyer") })
		h.sync(b)
		h.sync(b)
		data, _, _ := h.pimGet(h.Book, href)
		if !strings.Contains(string(data), "+1 555 0100") || !strings.Contains(string(data), "Buyer") || !strings.Contains(string(data), "Dupont") {
			t.Errorf("the phone lost what the user typed: %q", data)
		}
		if r, _ := h.get(crm.EntityContact, x.ID); hasPhone(r, "+1 555 0100") || r.Attrs["lastname"] != "Dup" {
			t.Errorf("Bob's record changed by alice: %v", r.Attrs)
		}
	})
}
