package integration

import (
	"strings"
	"testing"

	"github.com/pimbridge/pimbridge/bridge"
	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/mapping"
	"github.com/pimbridge/pimbridge/pim/davcontacts"
	"github.com/pimbridge/pimbridge/pim/davext"
)

// directory makes the directory address book next to the contacts book
// and returns a bridge that fills it, with the PIM user's view of it.
func (h *harness) directory() (*bridge.Bridge, *davext.Collection) {
	h.t.Helper()
	path := strings.TrimSuffix(h.DAV.Book, "/") + "-directory/"
	if err := h.PIM.MkAddressBook(h.ctx, path, "CRM directory"); err != nil {
		h.t.Fatalf("mkaddressbook %s: %v", path, err)
	}
	return h.directoryAt(path, h.stateRoot()+"/desktop")
}

// directoryAt returns a bridge with state dir state that fills the
// directory book at path.
func (h *harness) directoryAt(path, state string) (*bridge.Bridge, *davext.Collection) {
	h.t.Helper()
	dc := h.DAV.client(h.t)
	b, err := bridge.New(bridge.Options{
		CRM: h.CRM.Alice.Client, ClientID: "desktop", Cache: h.cache(state),
		Directory: davcontacts.New(dc, path),
		Logger:    h.logger(),
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return b, davext.NewCollection(h.PIM, path, davext.AddressBook)
}

func (h *harness) syncDirectory(b *bridge.Bridge) bridge.DirectoryStats {
	h.t.Helper()
	st, err := b.SyncDirectory(h.ctx)
	if err != nil {
		h.t.Fatalf("SyncDirectory: %v (stats %+v)", err, st)
	}
	return st
}

// The directory address book holds the CRM accounts and users the user can
// read, one way: PIM-side edits are overwritten from CRM and never reach
// CRM, a card deleted on the PIM side comes back, a CRM change or deletion
// reaches the card, and a card the user added is left alone.
func TestDirectory_AccountsAndUsersOneWayFromCRM(t *testing.T) {
	eachDAV(t, allDAV, func(t *testing.T, h *harness) {
		acc := h.create(h.CRM.Bob, crm.EntityAccount, map[string]any{"name": "Contoso", "emailaddress1": "info@contoso.example", "telephone1": "+1 555 0199"})
		h.update(h.CRM.Admin, crm.EntitySystemUser, h.CRM.Bob.ID, map[string]any{"fullname": "Bob Builder", "internalemailaddress": "bob@corp.example"})
		b, dir := h.directory()
		own := h.putPIM(dir, "mine.vcf", vcard("mine-1", "My", "Friend", "EMAIL:friend@example.com"))

		st := h.syncDirectory(b)
		accHref := dir.ObjectHref(mapping.DirectoryCardName(crm.EntityAccount, acc.ID))
		bobHref := dir.ObjectHref(mapping.DirectoryCardName(crm.EntitySystemUser, h.CRM.Bob.ID))
		card := func(href string) string {
			t.Helper()
			data, _, ok := h.pimGet(dir, href)
			if !ok {
				return ""
			}
			return string(data)
		}
		if c := card(accHref); !strings.Contains(c, "FN:Contoso") || !strings.Contains(c, "info@contoso.example") {
			t.Fatalf("account card after the first pass (%+v): %q", st, c)
		}
		if c := card(bobHref); !strings.Contains(c, "FN:Bob Builder") || !strings.Contains(c, "bob@corp.example") {
			t.Fatalf("user card after the first pass: %q", c)
		}
		if st := h.syncDirectory(b); st.Created+st.Updated+st.Deleted != 0 {
			t.Errorf("a pass without changes wrote: %+v", st)
		}

		// A PIM-side edit is overwritten and never sent to CRM.
		h.editPIM(dir, accHref, func(s string) string { return replaceLine(s, "FN:", "FN:Hacked Inc") })
		st = h.syncDirectory(b)
		if c := card(accHref); !strings.Contains(c, "FN:Contoso") || strings.Contains(c, "Hacked") || st.Overwritten != 1 {
			t.Errorf("after a PIM edit (%+v): card %q, want it overwritten from CRM", st, c)
		}
		if r, _ := h.get(crm.EntityAccount, acc.ID); r.Attrs["name"] != "Contoso" {
			t.Errorf("the PIM edit reached CRM: name %v", r.Attrs["name"])
		}

		// A PIM-side deletion is written again.
		h.deletePIM(dir, bobHref)
		h.syncDirectory(b)
		if c := card(bobHref); !strings.Contains(c, "FN:Bob Builder") {
			t.Errorf("after a PIM deletion: card %q, want it written again", c)
		}

		// CRM changes and deletions reach the book.
		h.update(h.CRM.Bob, crm.EntityAccount, acc.ID, map[string]any{"name": "Contoso Ltd"})
		h.syncDirectory(b)
		if c := card(accHref); !strings.Contains(c, "FN:Contoso Ltd") {
			t.Errorf("after a CRM rename: card %q", c)
		}
		if err := h.CRM.Bob.Client.Delete(h.ctx, crm.EntityAccount, acc.ID, nil); err != nil {
			t.Fatal(err)
		}
		h.syncDirectory(b)
		if c := card(accHref); c != "" {
			t.Errorf("after a CRM deletion the card is still there: %q", c)
		}
		if c := card(own); !strings.Contains(c, "friend@example.com") {
			t.Errorf("the user's own card changed or went: %q", c)
		}
	})
}

// Another directory book, or a lost client cache, starts the addressbook
// subscription over: the new book gets every card, and the old book's
// cards are matched, not written again.
func TestDirectory_NewBookOrLostCacheGetsEveryCard(t *testing.T) {
	eachDAV(t, []davFactory{fast, radicale}, func(t *testing.T, h *harness) {
		acc := h.create(h.CRM.Bob, crm.EntityAccount, map[string]any{"name": "Fabrikam"})
		b, dir := h.directory()
		h.syncDirectory(b)
		name := mapping.DirectoryCardName(crm.EntityAccount, acc.ID)
		if _, _, ok := h.pimGet(dir, dir.ObjectHref(name)); !ok {
			t.Fatal("no card in the first book")
		}
		other := strings.TrimSuffix(h.DAV.Book, "/") + "-directory2/"
		if err := h.PIM.MkAddressBook(h.ctx, other, "CRM directory 2"); err != nil {
			t.Fatal(err)
		}
		b2, dir2 := h.directoryAt(other, h.stateRoot()+"/desktop")
		h.syncDirectory(b2)
		if _, _, ok := h.pimGet(dir2, dir2.ObjectHref(name)); !ok {
			t.Error("the second book did not get the card (the subscription was not started over)")
		}
		b3, _ := h.directoryAt(dir.Href(), h.stateRoot()+"/lost")
		if st := h.syncDirectory(b3); st.Created+st.Updated+st.Deleted != 0 {
			t.Errorf("a lost cache rewrote the book: %+v", st)
		}
		if _, _, ok := h.pimGet(dir, dir.ObjectHref(name)); !ok {
			t.Error("the card went after the cache was lost")
		}
	})
}
