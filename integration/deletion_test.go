package integration

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pimbridge/pimbridge/bridge"
	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmserver"
	"github.com/pimbridge/pimbridge/crm/crmtest"
	"github.com/pimbridge/pimbridge/idmap"
	"github.com/pimbridge/pimbridge/pim/davext"
)

// Every row of the deletion table (reconcile.DeletionRules)
// end to end, in each direction, named after the row.

type delRow struct {
	name     string
	category bool // track by category
	untrack  bool // sync.untrack_deletes_in_crm
	run      func(t *testing.T, h *harness)
}

func vtodo(uid, summary string, extra ...string) string {
	uid = fmt.Sprintf("%s-%d", uid, eventSeq.Add(1))
	s := "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//pimbridge-test//EN\r\nBEGIN:VTODO\r\nUID:" + uid + "\r\nDTSTAMP:20260101T000000Z\r\nSUMMARY:" + summary + "\r\n"
	for _, e := range extra {
		s += e + "\r\n"
	}
	return s + "END:VTODO\r\nEND:VCALENDAR\r\n"
}

// eventSeq makes each vtodo's and vevent's UID unique within a test process: the rows
// of one server share a DAV user, and Cyrus refuses a scheduling object
// (ORGANIZER, ATTENDEE) whose UID another calendar of the user holds
// (unique-scheduling-object-resource, RFC 6638).
var eventSeq atomic.Int64

func vevent(uid, summary string, start time.Time, extra ...string) string {
	uid = fmt.Sprintf("%s-%d", uid, eventSeq.Add(1))
	s := "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//pimbridge-test//EN\r\nBEGIN:VEVENT\r\nUID:" + uid + "\r\nDTSTAMP:20260101T000000Z\r\nSUMMARY:" + summary +
		"\r\nDTSTART:" + start.UTC().Format("20060102T150405Z") + "\r\nDTEND:" + start.Add(time.Hour).UTC().Format("20060102T150405Z") + "\r\n"
	for _, e := range extra {
		s += e + "\r\n"
	}
	return s + "END:VEVENT\r\nEND:VCALENDAR\r\n"
}

// synced creates a record as u, syncs it to the PIM side with b and returns
// it with its href.
func (h *harness) synced(b *bridge.Bridge, col *davext.Collection, u crmtest.User, entity string, attrs map[string]any) (crm.Record, string) {
	h.t.Helper()
	r := h.create(u, entity, attrs)
	h.sync(b)
	href, _ := h.findByCRMID(col, r.ID)
	if href == "" {
		h.t.Fatalf("%s %s did not reach %s", entity, r.ID, col.Href())
	}
	return r, href
}

// tracked creates a PIM object and syncs it into CRM; it returns the CRM id.
func (h *harness) tracked(b *bridge.Bridge, col *davext.Collection, entity, name, data string) (crm.ID, string) {
	h.t.Helper()
	href := h.putPIM(col, name, data)
	h.sync(b)
	o, err := col.Get(h.ctx, href)
	if err != nil {
		h.t.Fatal(err)
	}
	for _, l := range strings.Split(strings.ReplaceAll(string(o.Data), "\r\n", "\n"), "\n") {
		if strings.HasPrefix(strings.ToUpper(l), "X-CRM-ID:") {
			id, err := crm.ParseID(strings.TrimSpace(l[len("X-CRM-ID:"):]))
			if err != nil {
				h.t.Fatal(err)
			}
			if _, ok := h.get(entity, id); !ok {
				h.t.Fatalf("%s %s not in CRM", entity, id)
			}
			return id, href
		}
	}
	h.t.Fatalf("%s has no X-CRM-ID after sync:\n%s", href, o.Data)
	return crm.ID{}, ""
}

func (h *harness) wantCRM(entity string, id crm.ID, want bool) {
	h.t.Helper()
	if _, ok := h.get(entity, id); ok != want {
		h.t.Errorf("%s(%s) in CRM = %v, want %v", entity, id, ok, want)
	}
}

func (h *harness) wantPIM(col *davext.Collection, href string, want bool) {
	h.t.Helper()
	if _, _, ok := h.pimGet(col, href); ok != want {
		h.t.Errorf("%s on the PIM side = %v, want %v", href, ok, want)
	}
}

func (h *harness) crmDelete(u crmtest.User, entity string, id crm.ID) {
	h.t.Helper()
	if err := u.Client.Delete(h.ctx, entity, id, nil); err != nil {
		h.t.Fatalf("delete %s: %v", entity, err)
	}
}

func (h *harness) reassign(u crmtest.User, entity string, id crm.ID, to crmtest.User) {
	h.t.Helper()
	h.update(u, entity, id, map[string]any{"ownerid": crm.Ref{Entity: crm.EntitySystemUser, ID: to.ID}})
}

// carol can read every appointment but owns none of these.
func (h *harness) carol() crmtest.User {
	h.t.Helper()
	roles := crmserver.BuiltinRoles()
	r := roles[1]
	r.Name = "appointment-reader"
	r.SetRight(crm.EntityAppointment, crmserver.Read, crm.ScopeAll)
	if err := h.CRM.Store.SaveRole(context.Background(), r); err != nil {
		h.t.Fatal(err)
	}
	return h.CRM.AddUser(h.t, "carol-"+crm.NewID().String()[:8], "carol-secret-pw", r.Name)
}

// syncUntilLeft runs alice's cycles until the CRM side's removal of
// entity(id) has reached her bridge: the pair is unlinked or gone from the
// cache. A removal that never arrives fails the test, so a row cannot pass
// by syncing too early.
func (h *harness) syncUntilLeft(b *bridge.Bridge, entity string, id crm.ID) {
	h.t.Helper()
	c := h.cache(filepath.Join(h.stateRoot(), "desktop"))
	for i := 0; i < 4; i++ {
		h.sync(b)
		m, err := c.ByCRM(h.ctx, entity, id)
		if errors.Is(err, idmap.ErrUnmapped) || err == nil && !m.Linked {
			return
		}
		if err != nil {
			h.t.Fatal(err)
		}
	}
	h.t.Fatalf("%s(%s): the CRM side's change never reached the bridge (the pair is still linked after 4 cycles)", entity, id)
}

// withPIMSyncFilters returns a harness on the same DAV collections with a
// CRM server of its own whose fixed PIM sync filters are the defaults with
// these replaced (an administrator's server setting; users cannot edit
// them).
func (h *harness) withPIMSyncFilters(t *testing.T, filters map[string]string) *harness {
	f := map[string]string{}
	for k, v := range crmserver.DefaultPIMSyncFilters {
		f[k] = v
	}
	for k, v := range filters {
		f[k] = v
	}
	h2 := newHarnessCRM(t, h.DAV, crmtest.Start(t, &crmtest.Options{Server: crmserver.Options{PIMSyncFilters: f}}))
	h2.Settings = h.Settings
	return h2
}

// trackedInFilter is tracked, then one more cycle: the record the bridge
// created in CRM enters the outlook subscription, so that a later change
// of it can reach the bridge.
func (h *harness) trackedInFilter(b *bridge.Bridge, col *davext.Collection, entity, name, data string) (crm.ID, string) {
	h.t.Helper()
	id, href := h.tracked(b, col, entity, name, data)
	h.sync(b)
	return id, href
}

// leftFilterRows are the reassignment rows of every entity: a record
// reassigned to a colleague has left alice's filter (tasks, phone calls,
// letters, faxes and appointments she can then no longer read at all);
// what she tracked from the PIM side stays there, unlinked, with what she
// typed; the rest leaves the PIM side per the deletion table.
func leftFilterRows() []delRow {
	var rows []delRow
	for _, ent := range []string{crm.EntityTask, crm.EntityPhoneCall, crm.EntityLetter, crm.EntityFax} {
		rows = append(rows,
			delRow{name: ent + "/left-filter/tracked-from-pim", run: func(t *testing.T, h *harness) {
				b := h.alice()
				id, href := h.trackedInFilter(b, h.Tasks, ent, "t.ics", vtodo("t1", "Typed on the phone", "X-CRM-ENTITY:"+ent))
				h.reassign(h.CRM.Admin, ent, id, h.CRM.Bob)
				h.syncUntilLeft(b, ent, id)
				h.wantPIM(h.Tasks, href, true)
				h.wantCRM(ent, id, true)
				if d, _, _ := h.pimGet(h.Tasks, href); !strings.Contains(string(d), "Typed on the phone") {
					t.Errorf("the kept %s lost what the user typed:\n%s", ent, d)
				}
			}},
			delRow{name: ent + "/left-filter/not-completed", run: func(t *testing.T, h *harness) {
				b := h.alice()
				r, href := h.synced(b, h.Tasks, h.CRM.Alice, ent, map[string]any{"subject": "Handed over"})
				h.reassign(h.CRM.Admin, ent, r.ID, h.CRM.Bob)
				h.syncUntilLeft(b, ent, r.ID)
				h.wantPIM(h.Tasks, href, false)
				h.wantCRM(ent, r.ID, true)
			}},
		)
	}
	return append(rows,
		delRow{name: "contact/left-filter/tracked-from-pim", run: func(t *testing.T, h *harness) {
			b := h.alice()
			id, href := h.trackedInFilter(b, h.Book, crm.EntityContact, "p.vcf", vcard("p1", "Pim", "Made"))
			h.reassign(h.CRM.Admin, crm.EntityContact, id, h.CRM.Bob)
			h.syncUntilLeft(b, crm.EntityContact, id)
			h.wantPIM(h.Book, href, true)
			h.wantCRM(crm.EntityContact, id, true)
		}},
		delRow{name: "contact/left-filter/not-owner", run: func(t *testing.T, h *harness) {
			b := h.alice()
			c, href := h.synced(b, h.Book, h.CRM.Alice, crm.EntityContact, map[string]any{"lastname": "Moved"})
			h.reassign(h.CRM.Admin, crm.EntityContact, c.ID, h.CRM.Bob)
			h.syncUntilLeft(b, crm.EntityContact, c.ID)
			h.wantPIM(h.Book, href, false)
			h.wantCRM(crm.EntityContact, c.ID, true)
		}},
		delRow{name: "appointment/left-filter/tracked-from-pim", run: func(t *testing.T, h *harness) {
			b := h.alice()
			id, href := h.trackedInFilter(b, h.Cal, crm.EntityAppointment, "a.ics", vevent("a1", "Lunch I set up", future()))
			h.reassign(h.CRM.Admin, crm.EntityAppointment, id, h.CRM.Bob)
			h.syncUntilLeft(b, crm.EntityAppointment, id)
			h.wantPIM(h.Cal, href, true)
			h.wantCRM(crm.EntityAppointment, id, true)
		}},
		delRow{name: "appointment/left-filter/start-in-future", run: func(t *testing.T, h *harness) {
			b := h.alice()
			a, href := h.synced(b, h.Cal, h.CRM.Alice, crm.EntityAppointment, appt(future()))
			h.reassign(h.CRM.Admin, crm.EntityAppointment, a.ID, h.CRM.Bob)
			h.syncUntilLeft(b, crm.EntityAppointment, a.ID)
			h.wantPIM(h.Cal, href, false)
			h.wantCRM(crm.EntityAppointment, a.ID, true)
		}},
	)
}

func future() time.Time { return time.Now().Add(48 * time.Hour).UTC().Truncate(time.Second) }
func past() time.Time   { return time.Now().Add(-48 * time.Hour).UTC().Truncate(time.Second) }

func appt(start time.Time) map[string]any {
	return map[string]any{"subject": "Review", "scheduledstart": start, "scheduledend": start.Add(time.Hour)}
}

var deletionRows = []delRow{
	// Contacts.
	{name: "contact/deleted-on-pim", run: func(t *testing.T, h *harness) {
		b := h.alice()
		c, href := h.synced(b, h.Book, h.CRM.Alice, crm.EntityContact, map[string]any{"lastname": "Kept"})
		h.deletePIM(h.Book, href)
		h.sync(b)
		h.wantCRM(crm.EntityContact, c.ID, true)
		h.update(h.CRM.Alice, crm.EntityContact, c.ID, map[string]any{"firstname": "Still"})
		h.sync(b)
		if href2, _ := h.findByCRMID(h.Book, c.ID); href2 != "" {
			t.Errorf("deleted contact pushed back to %s", href2)
		}
	}},
	{name: "contact/untracked/untrack-setting", category: true, untrack: true, run: func(t *testing.T, h *harness) {
		b := h.alice()
		id, href := h.tracked(b, h.Book, crm.EntityContact, "u.vcf", vcard("u1", "Un", "Tracked", "CATEGORIES:CRM"))
		h.editPIM(h.Book, href, func(s string) string { return replaceLine(s, "CATEGORIES", "CATEGORIES:Personal") })
		h.sync(b)
		h.wantCRM(crm.EntityContact, id, false)
		h.wantPIM(h.Book, href, true)
	}},
	{name: "contact/untracked", category: true, run: func(t *testing.T, h *harness) {
		b := h.alice()
		id, href := h.tracked(b, h.Book, crm.EntityContact, "u.vcf", vcard("u1", "Un", "Tracked", "CATEGORIES:CRM"))
		h.editPIM(h.Book, href, func(s string) string { return replaceLine(s, "CATEGORIES", "CATEGORIES:Personal") })
		h.sync(b)
		h.wantCRM(crm.EntityContact, id, true)
		h.update(h.CRM.Alice, crm.EntityContact, id, map[string]any{"jobtitle": "Unlinked"})
		h.sync(b)
		if d, _, _ := h.pimGet(h.Book, href); strings.Contains(string(d), "Unlinked") {
			t.Error("an untracked contact still receives CRM edits")
		}
	}},
	{name: "contact/deleted-in-crm/not-owner", run: func(t *testing.T, h *harness) {
		h = h.withPIMSyncFilters(t, map[string]string{crm.EntityContact: "ownerid eq @me or lastname eq 'Bobs'"})
		b := h.alice()
		c, href := h.synced(b, h.Book, h.CRM.Bob, crm.EntityContact, map[string]any{"lastname": "Bobs"})
		h.crmDelete(h.CRM.Admin, crm.EntityContact, c.ID)
		h.sync(b)
		h.wantPIM(h.Book, href, false)
	}},
	{name: "contact/deleted-in-crm", run: func(t *testing.T, h *harness) {
		b := h.alice()
		c, href := h.synced(b, h.Book, h.CRM.Alice, crm.EntityContact, map[string]any{"lastname": "Mine"})
		h.crmDelete(h.CRM.Alice, crm.EntityContact, c.ID)
		h.sync(b)
		h.wantPIM(h.Book, href, true)
		h.editPIM(h.Book, href, func(s string) string { return replaceLine(s, "TITLE", "TITLE:Local") })
		h.sync(b)
		h.wantCRM(crm.EntityContact, c.ID, false)
	}},
	{name: "contact/left-filter", run: func(t *testing.T, h *harness) {
		h = h.withPIMSyncFilters(t, map[string]string{crm.EntityContact: "ownerid eq @me and lastname ne 'Gone'"})
		b := h.alice()
		c, href := h.synced(b, h.Book, h.CRM.Alice, crm.EntityContact, map[string]any{"lastname": "Here"})
		h.update(h.CRM.Alice, crm.EntityContact, c.ID, map[string]any{"lastname": "Gone"})
		h.syncUntilLeft(b, crm.EntityContact, c.ID)
		h.wantPIM(h.Book, href, true)
		if d, _, _ := h.pimGet(h.Book, href); strings.Contains(string(d), "Gone") {
			t.Error("a contact that left the filter was still updated")
		}
	}},

	// Appointments.
	{name: "appointment/deleted-on-pim/open-or-scheduled+start-in-future+owner-or-organizer", run: func(t *testing.T, h *harness) {
		b := h.alice()
		a, href := h.synced(b, h.Cal, h.CRM.Alice, crm.EntityAppointment, appt(future()))
		h.deletePIM(h.Cal, href)
		h.sync(b)
		h.wantCRM(crm.EntityAppointment, a.ID, false)
	}},
	{name: "appointment/deleted-on-pim/past", run: func(t *testing.T, h *harness) {
		b := h.alice()
		a, href := h.synced(b, h.Cal, h.CRM.Alice, crm.EntityAppointment, appt(past()))
		h.deletePIM(h.Cal, href)
		h.sync(b)
		h.wantCRM(crm.EntityAppointment, a.ID, true)
	}},
	{name: "appointment/deleted-on-pim/completed", run: func(t *testing.T, h *harness) {
		b := h.alice()
		attrs := appt(future())
		a, href := h.synced(b, h.Cal, h.CRM.Alice, crm.EntityAppointment, attrs)
		h.update(h.CRM.Alice, crm.EntityAppointment, a.ID, map[string]any{"statecode": int64(1), "statuscode": int64(3)})
		h.sync(b)
		h.deletePIM(h.Cal, href)
		h.sync(b)
		h.wantCRM(crm.EntityAppointment, a.ID, true)
	}},
	{name: "appointment/deleted-on-pim/not-owner-or-organizer", run: func(t *testing.T, h *harness) {
		carol := h.carol()
		b := h.bridgeFor(carol, "carol-desktop", h.stateRoot()+"/carol")
		attrs := appt(future())
		attrs["requiredattendees"] = []crm.Party{{Party: &crm.Ref{Entity: crm.EntitySystemUser, ID: carol.ID}}}
		a, href := h.synced(b, h.Cal, h.CRM.Bob, crm.EntityAppointment, attrs)
		h.deletePIM(h.Cal, href)
		h.sync(b)
		h.wantCRM(crm.EntityAppointment, a.ID, true)
	}},
	{name: "appointment/untracked/open-or-scheduled+start-in-future+owner-or-organizer", category: true, run: func(t *testing.T, h *harness) {
		b := h.alice()
		id, href := h.tracked(b, h.Cal, crm.EntityAppointment, "a.ics", vevent("a1", "Lunch", future(), "CATEGORIES:CRM"))
		h.editPIM(h.Cal, href, func(s string) string { return replaceLine(s, "CATEGORIES", "CATEGORIES:Private") })
		h.sync(b)
		h.wantCRM(crm.EntityAppointment, id, false)
	}},
	{name: "appointment/untracked/past", category: true, run: func(t *testing.T, h *harness) {
		b := h.alice()
		id, href := h.tracked(b, h.Cal, crm.EntityAppointment, "a.ics", vevent("a1", "Lunch", past(), "CATEGORIES:CRM"))
		h.editPIM(h.Cal, href, func(s string) string { return replaceLine(s, "CATEGORIES", "CATEGORIES:Private") })
		h.sync(b)
		h.wantCRM(crm.EntityAppointment, id, true)
	}},
	{name: "appointment/deleted-in-crm/start-in-future", run: func(t *testing.T, h *harness) {
		b := h.alice()
		a, href := h.synced(b, h.Cal, h.CRM.Alice, crm.EntityAppointment, appt(future()))
		h.crmDelete(h.CRM.Alice, crm.EntityAppointment, a.ID)
		h.sync(b)
		h.wantPIM(h.Cal, href, false)
	}},
	{name: "appointment/deleted-in-crm/past", run: func(t *testing.T, h *harness) {
		b := h.alice()
		a, href := h.synced(b, h.Cal, h.CRM.Alice, crm.EntityAppointment, appt(past()))
		h.crmDelete(h.CRM.Alice, crm.EntityAppointment, a.ID)
		h.sync(b)
		h.wantPIM(h.Cal, href, true)
	}},

	// Tasks (and phone calls, letters, faxes).
	{name: "task/deleted-on-pim/not-completed", run: func(t *testing.T, h *harness) {
		b := h.alice()
		tk, href := h.synced(b, h.Tasks, h.CRM.Alice, crm.EntityTask, map[string]any{"subject": "Call back"})
		h.deletePIM(h.Tasks, href)
		h.sync(b)
		h.wantCRM(crm.EntityTask, tk.ID, false)
	}},
	{name: "task/deleted-on-pim/completed", run: func(t *testing.T, h *harness) {
		b := h.alice()
		tk, href := h.synced(b, h.Tasks, h.CRM.Alice, crm.EntityTask, map[string]any{"subject": "Done"})
		h.update(h.CRM.Alice, crm.EntityTask, tk.ID, map[string]any{"statecode": int64(1), "statuscode": int64(5)})
		h.sync(b)
		h.deletePIM(h.Tasks, href)
		h.sync(b)
		h.wantCRM(crm.EntityTask, tk.ID, true)
	}},
	{name: "phonecall/deleted-on-pim/not-completed", run: func(t *testing.T, h *harness) {
		b := h.alice()
		pc, href := h.synced(b, h.Tasks, h.CRM.Alice, crm.EntityPhoneCall, map[string]any{"subject": "Ring"})
		h.deletePIM(h.Tasks, href)
		h.sync(b)
		h.wantCRM(crm.EntityPhoneCall, pc.ID, false)
	}},
	{name: "task/untracked/untrack-setting+not-completed", category: true, untrack: true, run: func(t *testing.T, h *harness) {
		b := h.alice()
		id, href := h.tracked(b, h.Tasks, crm.EntityTask, "t.ics", vtodo("t1", "Todo", "CATEGORIES:CRM"))
		h.editPIM(h.Tasks, href, func(s string) string { return replaceLine(s, "CATEGORIES", "CATEGORIES:Home") })
		h.sync(b)
		h.wantCRM(crm.EntityTask, id, false)
	}},
	{name: "task/untracked", category: true, run: func(t *testing.T, h *harness) {
		b := h.alice()
		id, href := h.tracked(b, h.Tasks, crm.EntityTask, "t.ics", vtodo("t1", "Todo", "CATEGORIES:CRM"))
		h.editPIM(h.Tasks, href, func(s string) string { return replaceLine(s, "CATEGORIES", "CATEGORIES:Home") })
		h.sync(b)
		h.wantCRM(crm.EntityTask, id, true)
	}},
	{name: "task/deleted-in-crm/not-completed", run: func(t *testing.T, h *harness) {
		b := h.alice()
		tk, href := h.synced(b, h.Tasks, h.CRM.Alice, crm.EntityTask, map[string]any{"subject": "Open"})
		h.crmDelete(h.CRM.Alice, crm.EntityTask, tk.ID)
		h.sync(b)
		h.wantPIM(h.Tasks, href, false)
	}},
	{name: "task/deleted-in-crm/completed", run: func(t *testing.T, h *harness) {
		b := h.alice()
		tk, href := h.synced(b, h.Tasks, h.CRM.Alice, crm.EntityTask, map[string]any{"subject": "Closed"})
		h.update(h.CRM.Alice, crm.EntityTask, tk.ID, map[string]any{"statecode": int64(1), "statuscode": int64(5)})
		h.sync(b)
		h.crmDelete(h.CRM.Alice, crm.EntityTask, tk.ID)
		h.sync(b)
		h.wantPIM(h.Tasks, href, true)
	}},
}

func TestDeletionRules(t *testing.T) {
	eachRow(t, allDAV, append(deletionRows, leftFilterRows()...), func(r delRow) string { return r.name }, func(t *testing.T, h *harness, r delRow) {
		h.Settings = bridge.Settings{TrackByCategory: r.category, UntrackDeletesInCRM: r.untrack, MassDeleteThreshold: 1}
		r.run(t, h)
	})
}

// TestPIMSyncFilter_NotTheOfflineFilter: narrowing the offline data filter
// (a small laptop replica) removes nothing from the PIM side, and the pairs
// stay linked: the PIM sync filter is the server's, fixed, and the
// local data filter shapes the offline subscription only.
func TestPIMSyncFilter_NotTheOfflineFilter(t *testing.T) {
	eachDAV(t, allDAV, func(t *testing.T, h *harness) {
		h.Settings = bridge.Settings{MassDeleteThreshold: 1}
		b := h.alice()
		c, chref := h.synced(b, h.Book, h.CRM.Alice, crm.EntityContact, map[string]any{"lastname": "Phone"})
		_, ahref := h.synced(b, h.Cal, h.CRM.Alice, crm.EntityAppointment, appt(future()))
		_, thref := h.synced(b, h.Tasks, h.CRM.Alice, crm.EntityTask, map[string]any{"subject": "Keep on the phone"})
		for ent, f := range map[string]string{crm.EntityContact: "lastname eq 'Nobody'", crm.EntityAppointment: "subject eq 'Nothing'", crm.EntityTask: "subject eq 'Nothing'"} {
			if _, err := h.CRM.Alice.Client.SetLocalFilter(h.ctx, ent, f); err != nil {
				t.Fatal(err)
			}
		}
		// Two cycles: a removal the filter caused would arrive in the first.
		h.sync(b)
		h.sync(b)
		h.wantPIM(h.Book, chref, true)
		h.wantPIM(h.Cal, ahref, true)
		h.wantPIM(h.Tasks, thref, true)
		h.update(h.CRM.Alice, crm.EntityContact, c.ID, map[string]any{"jobtitle": "Still synced"})
		h.sync(b)
		if d, _, _ := h.pimGet(h.Book, chref); !strings.Contains(string(d), "Still synced") {
			t.Errorf("the contact no longer receives CRM edits after the offline filter narrowed:\n%s", d)
		}
	})
}

// TestRelink_UnreadableRecordKeptOnPIM: after the cache is lost, a PIM item
// whose X-CRM-ID names a record the user can no longer read (here one she
// tracked from the phone and that was then reassigned, so it was kept,
// unlinked) is kept on the PIM side, unlinked: no tombstone says it was
// deleted, and nothing tells whether it was tracked from the PIM side, so
// nothing the user typed is removed.
func TestRelink_UnreadableRecordKeptOnPIM(t *testing.T) {
	eachDAV(t, []davFactory{fast, radicale}, func(t *testing.T, h *harness) {
		h.Settings = bridge.Settings{MassDeleteThreshold: 1}
		dir := filepath.Join(h.stateRoot(), "desktop")
		b := h.alice()
		id, href := h.trackedInFilter(b, h.Tasks, crm.EntityTask, "t.ics", vtodo("t1", "Typed on the phone"))
		h.reassign(h.CRM.Admin, crm.EntityTask, id, h.CRM.Bob)
		h.syncUntilLeft(b, crm.EntityTask, id)
		h.wantPIM(h.Tasks, href, true)
		h.closeCache(dir)
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		b = h.alice()
		h.sync(b)
		h.sync(b)
		h.wantPIM(h.Tasks, href, true)
		h.wantCRM(crm.EntityTask, id, true)
	})
}
