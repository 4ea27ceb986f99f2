package integration

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/pimbridge/pimbridge/bridge"
	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmserver"
	"github.com/pimbridge/pimbridge/idmap"
	"github.com/pimbridge/pimbridge/pim/davext"
)

// crmIDs returns X-CRM-ID -> number of objects carrying it, and the number
// of objects without one.
func (h *harness) crmIDs(col *davext.Collection) (map[string]int, int) {
	h.t.Helper()
	ids := map[string]int{}
	none := 0
	for _, data := range h.objects(col) {
		found := false
		for _, l := range contentLinesOf(data) {
			if strings.HasPrefix(strings.ToUpper(l), "X-CRM-ID:") {
				ids[strings.ToLower(strings.TrimSpace(l[9:]))]++
				found = true
				break
			}
		}
		if !found {
			none++
		}
	}
	return ids, none
}

func contentLinesOf(data []byte) []string {
	var out []string
	for _, l := range strings.Split(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n") {
		if (strings.HasPrefix(l, " ") || strings.HasPrefix(l, "\t")) && len(out) > 0 {
			out[len(out)-1] += l[1:]
			continue
		}
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}

// wantOneToOne checks that every CRM record of entities owned by the user
// has exactly one PIM object and no PIM object is without a CRM id.
func (h *harness) wantOneToOne(col *davext.Collection, entities ...string) {
	h.t.Helper()
	ids, none := h.crmIDs(col)
	if none != 0 {
		h.t.Errorf("%s: %d objects without X-CRM-ID", col.Href(), none)
	}
	for id, n := range ids {
		if n != 1 {
			h.t.Errorf("%s: %d objects carry X-CRM-ID %s", col.Href(), n, id)
		}
	}
	var recs int
	for _, e := range entities {
		for _, r := range h.all(e) {
			recs++
			if ids[r.ID.String()] == 0 {
				h.t.Errorf("%s(%s) has no PIM object", e, r.ID)
			}
		}
	}
	if recs != len(ids) {
		h.t.Errorf("%s: %d CRM records, %d PIM objects", col.Href(), recs, len(ids))
	}
}

// Delete the state dir and sync again: every item re-links,
// zero duplicates, nothing rewritten.
func TestRelink_StateDirDeleted(t *testing.T) {
	eachDAV(t, allDAV, func(t *testing.T, h *harness) {
		dir := filepath.Join(h.stateRoot(), "desktop")
		b := h.alice()
		for i := range 3 {
			h.createContact(h.CRM.Alice, map[string]any{"lastname": fmt.Sprintf("CRM%d", i)})
		}
		h.create(h.CRM.Alice, crm.EntityTask, map[string]any{"subject": "Task from CRM"})
		h.create(h.CRM.Alice, crm.EntityAppointment, appt(future()))
		h.putPIM(h.Book, "p1.vcf", vcard("p1", "Pim", "One"))
		h.putPIM(h.Tasks, "t1.ics", vtodo("t1", "Task from PIM"))
		h.sync(b)
		h.closeCache(dir)
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		b = h.alice()
		st := h.sync(b)
		if st.Linked != 7 || st.ToCRM.Created+st.ToPIM.Created != 0 {
			t.Errorf("after losing the cache: %+v, want 7 linked and nothing created", st)
		}
		if st.ToCRM.Updated+st.ToPIM.Updated != 0 {
			t.Errorf("re-link rewrote items: %+v", st)
		}
		h.wantOneToOne(h.Book, crm.EntityContact)
		h.wantOneToOne(h.Tasks, crm.EntityTask)
		h.wantOneToOne(h.Cal, crm.EntityAppointment)
		if st := h.sync(b); st.Linked+st.ToCRM.Created+st.ToPIM.Created+st.ToCRM.Updated+st.ToPIM.Updated != 0 {
			t.Errorf("second sync after re-link: %+v", st)
		}
	})
}

// Revoking Sync to Outlook stops the sync with a clear error.
func TestPrivilege_SyncToOutlookRevoked(t *testing.T) {
	eachDAV(t, []davFactory{fast}, func(t *testing.T, h *harness) {
		b := h.alice()
		h.createContact(h.CRM.Alice, map[string]any{"lastname": "Before"})
		h.sync(b)
		ctx := context.Background()
		r := crmserver.BuiltinRoles()[1]
		r.Name = "no-outlook"
		r.Privileges = slices.DeleteFunc(slices.Clone(r.Privileges), func(p string) bool { return p == crmserver.PrivSyncToOutlook })
		if err := h.CRM.Store.SaveRole(ctx, r); err != nil {
			t.Fatal(err)
		}
		if err := h.CRM.Store.AssignRole(ctx, "alice", "no-outlook"); err != nil {
			t.Fatal(err)
		}
		if err := h.CRM.Store.RemoveRole(ctx, "alice", crmserver.RoleSalesperson); err != nil {
			t.Fatal(err)
		}
		h.createContact(h.CRM.Admin, map[string]any{"lastname": "After"})
		_, err := b.Cycle(ctx, bridge.CycleOptions{})
		var fe *bridge.FatalError
		if !errors.Is(err, bridge.ErrNoPrivilege) || !errors.As(err, &fe) {
			t.Fatalf("Cycle = %v, want a FatalError wrapping ErrNoPrivilege", err)
		}
		if !strings.Contains(err.Error(), "Sync to Outlook") {
			t.Errorf("error %q does not name the privilege", err)
		}
		// The CLI says the same and exits 1.
		c := h.cli("desktop2", "")
		_, stderr, code := c.run("sync")
		if code != 1 || !strings.Contains(stderr, "Sync to Outlook") {
			t.Errorf("pimbridge sync: exit %d, stderr %q", code, stderr)
		}
	})
}

// Two bridges of one user against the same CRM and DAV
// server, run concurrently over many cycles with edits on all sides.
func TestTwoBridges_Concurrent(t *testing.T) {
	eachDAV(t, []davFactory{fast, radicale}, func(t *testing.T, h *harness) {
		desktop := h.bridgeFor(h.CRM.Alice, "desktop", filepath.Join(h.stateRoot(), "desktop"))
		laptop := h.bridgeFor(h.CRM.Alice, "laptop", filepath.Join(h.stateRoot(), "laptop"))
		h.sync(desktop) // desktop becomes the primary
		rounds := 4
		for i := range rounds {
			c := h.createContact(h.CRM.Alice, map[string]any{"lastname": fmt.Sprintf("Crm%d", i)})
			h.putPIM(h.Book, fmt.Sprintf("pim%d.vcf", i), vcard(fmt.Sprintf("pim%d", i), "Pim", fmt.Sprintf("Pim%d", i)))
			h.putPIM(h.Tasks, fmt.Sprintf("t%d.ics", i), vtodo(fmt.Sprintf("t%d", i), fmt.Sprintf("Task %d", i)))
			if i > 0 {
				h.update(h.CRM.Alice, crm.EntityContact, c.ID, map[string]any{"jobtitle": "Edited"})
			}
			var wg sync.WaitGroup
			var dst, lst bridge.Stats
			var derr, lerr error
			wg.Add(2)
			go func() { defer wg.Done(); dst, derr = desktop.Cycle(h.ctx, bridge.CycleOptions{}) }()
			go func() { defer wg.Done(); lst, lerr = laptop.Cycle(h.ctx, bridge.CycleOptions{}) }()
			wg.Wait()
			if derr != nil || lerr != nil {
				t.Fatalf("round %d: desktop %v, laptop %v", i, derr, lerr)
			}
			if !dst.Primary || lst.Primary {
				t.Fatalf("round %d: desktop primary %v, laptop primary %v", i, dst.Primary, lst.Primary)
			}
			if n := lst.ToCRM.Created + lst.ToCRM.Updated + lst.ToPIM.Created + lst.ToPIM.Updated + lst.Linked; n != 0 {
				t.Fatalf("round %d: the secondary synced %d non-e-mail items: %+v", i, n, lst)
			}
		}
		h.wantOneToOne(h.Book, crm.EntityContact)
		h.wantOneToOne(h.Tasks, crm.EntityTask)
		if n := len(h.all(crm.EntityContact)); n != 2*rounds {
			t.Errorf("%d CRM contacts, want %d", n, 2*rounds)
		}

		// The laptop takes over; the desktop's fenced requests are refused.
		old, err := h.CRM.Alice.Client.Primary(h.ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := laptop.ClaimPrimary(h.ctx); err != nil {
			t.Fatal(err)
		}
		_, err = h.CRM.Alice.Client.WithGeneration(old.Generation).Create(h.ctx, crm.Record{Entity: crm.EntityContact, Attrs: map[string]any{"lastname": "Stale"}}, nil)
		if !errors.Is(err, crm.ErrStalePrimary) {
			t.Fatalf("stale primary write = %v, want ErrStalePrimary", err)
		}
		dst := h.sync(desktop)
		if dst.Primary {
			t.Error("the old primary still syncs")
		}
		h.createContact(h.CRM.Alice, map[string]any{"lastname": "ForLaptop"})
		if st := h.sync(laptop); !st.Primary || st.Linked+st.ToPIM.Created == 0 {
			t.Errorf("new primary: %+v", st)
		}
		h.wantOneToOne(h.Book, crm.EntityContact)
	})
}

// A primary that loses the role during a cycle is refused mid-cycle and
// stops with ErrNotPrimary.
func TestTwoBridges_StalePrimaryMidCycle(t *testing.T) {
	eachDAV(t, []davFactory{fast}, func(t *testing.T, h *harness) {
		var laptop *bridge.Bridge
		h.WrapCRM = func(c bridge.CRM) bridge.CRM {
			return &raceCRM{CRM: c, edit: func() {}}
		}
		desktop := h.bridgeFor(h.CRM.Alice, "desktop", filepath.Join(h.stateRoot(), "desktop"))
		h.WrapCRM = nil
		laptop = h.bridgeFor(h.CRM.Alice, "laptop", filepath.Join(h.stateRoot(), "laptop"))
		c := h.createContact(h.CRM.Alice, map[string]any{"lastname": "X"})
		h.sync(desktop)
		href, _ := h.findByCRMID(h.Book, c.ID)
		h.editPIM(h.Book, href, func(s string) string { return replaceLine(s, "TITLE:", "TITLE:Late") })
		h.WrapCRM = func(c bridge.CRM) bridge.CRM {
			return &raceCRM{CRM: c, edit: func() {
				if _, err := laptop.ClaimPrimary(context.Background()); err != nil {
					t.Error(err)
				}
			}}
		}
		desktop = h.bridgeFor(h.CRM.Alice, "desktop", filepath.Join(h.stateRoot(), "desktop"))
		_, err := desktop.Cycle(h.ctx, bridge.CycleOptions{})
		if !errors.Is(err, bridge.ErrNotPrimary) {
			t.Fatalf("Cycle = %v, want ErrNotPrimary", err)
		}
		if r, _ := h.get(crm.EntityContact, c.ID); r.Attrs["jobtitle"] == "Late" {
			t.Error("the stale primary's write went through")
		}
		h.sync(laptop)
		if r, _ := h.get(crm.EntityContact, c.ID); r.Attrs["jobtitle"] != "Late" {
			t.Errorf("the new primary did not sync the edit: %v", r.Attrs["jobtitle"])
		}
	})
}

// Malformed objects on the DAV server become sync errors
// naming the item; all other items sync. Only objects with
// nothing usable are malformed (the malformed-* fixtures map best effort).
func TestMalformed_ItemsBecomeSyncErrors(t *testing.T) {
	bad := []struct{ col, name, data string }{
		{"book", "end-mismatch.vcf", "BEGIN:VCARD\r\nVERSION:3.0\r\nN:Doe;Jane;;;\r\nEND:VCALENDAR\r\n"},
		{"book", "no-card.vcf", "this is not a vCard\r\n"},
		{"cal", "truncated.ics", "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//x//EN\r\nBEGIN:VEVENT\r\nUID:trunc\r\nDTSTART:2026010"},
	}
	eachDAV(t, []davFactory{fault, xandikos}, func(t *testing.T, h *harness) {
		for _, b := range bad {
			col := h.DAV.Book
			if b.col == "cal" {
				col = h.DAV.Calendar
			}
			h.DAV.Store(t, col, b.name, []byte(b.data))
		}
		h.putPIM(h.Book, "good.vcf", vcard("good", "Good", "Contact"))
		h.putPIM(h.Cal, "good.ics", vevent("good-ev", "Good event", future()))
		h.createContact(h.CRM.Alice, map[string]any{"lastname": "FromCRM"})
		b := h.alice()
		st := h.sync(b, bridge.ErrItemErrors)
		if st.Malformed != len(bad) {
			t.Errorf("malformed = %d, want %d (%+v)", st.Malformed, len(bad), st)
		}
		if st.ToCRM.Created != 2 || st.ToPIM.Created != 1 {
			t.Errorf("the good items did not all sync: %+v", st)
		}
		errs, err := h.cache(filepath.Join(h.stateRoot(), "desktop")).SyncErrors(h.ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range bad {
			if !slices.ContainsFunc(errs, func(e idmap.SyncError) bool { return strings.HasSuffix(e.Item, "/"+b.name) && e.Message != "" }) {
				t.Errorf("no sync error names %s: %+v", b.name, errs)
			}
		}
		// The next cycle does not trip over them again.
		if st := h.sync(b); st.Malformed != 0 {
			t.Errorf("second cycle: %+v", st)
		}
	})
}
