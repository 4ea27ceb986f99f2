package integration

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pimbridge/pimbridge/bridge"
	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmclient"
)

// rev is a REV line at t (the PIM side's own modification time).
func rev(t time.Time) string { return "REV:" + t.UTC().Format("20060102T150405Z") }

// Seed 003: different fields edited on both sides between cycles are both
// kept ("John" + "Rodman" -> "John Rodman").
func TestMerge_JohnRodman(t *testing.T) {
	eachDAV(t, allDAV, func(t *testing.T, h *harness) {
		b := h.alice()
		c, href := h.synced(b, h.Book, h.CRM.Alice, crm.EntityContact, map[string]any{"firstname": "Jon", "lastname": "Smith"})
		h.update(h.CRM.Alice, crm.EntityContact, c.ID, map[string]any{"firstname": "John"})
		h.editPIM(h.Book, href, func(s string) string {
			s = replaceLine(s, "N:", "N:Rodman;Jon;;;")
			return replaceLine(s, "FN:", "FN:Jon Rodman")
		})
		h.sync(b)
		r, _ := h.get(crm.EntityContact, c.ID)
		if r.Attrs["firstname"] != "John" || r.Attrs["lastname"] != "Rodman" {
			t.Errorf("CRM = %v %v, want John Rodman", r.Attrs["firstname"], r.Attrs["lastname"])
		}
		d, _, _ := h.pimGet(h.Book, href)
		if !strings.Contains(string(d), "N:Rodman;John") {
			t.Errorf("PIM N is not Rodman;John:\n%s", d)
		}
	})
}

// Seed 004's example: the PIM user edits A, B and C; a CRM user edits A and
// B. The side changed later wins A and B; C comes from the PIM side. Both
// orders.
func TestMerge_SeedABC(t *testing.T) {
	for _, crmLater := range []bool{true, false} {
		name := "pim-later"
		if crmLater {
			name = "crm-later"
		}
		t.Run(name, func(t *testing.T) {
			eachDAV(t, allDAV, func(t *testing.T, h *harness) {
				b := h.alice()
				c, href := h.synced(b, h.Book, h.CRM.Alice, crm.EntityContact, map[string]any{
					"lastname": "Base", "jobtitle": "A", "department": "B", "nickname": "C"})
				editPIM := func(at time.Time) {
					h.editPIM(h.Book, href, func(s string) string {
						s = replaceLine(s, "TITLE:", "TITLE:A1")
						s = replaceLine(s, "ORG:", "ORG:;B1")
						s = replaceLine(s, "NICKNAME:", "NICKNAME:C1")
						return replaceLine(s, "REV:", rev(at))
					})
				}
				editCRM := func() crm.Record {
					return h.update(h.CRM.Alice, crm.EntityContact, c.ID, map[string]any{"jobtitle": "A2", "department": "B2"})
				}
				var wantA, wantB string
				if crmLater {
					editPIM(time.Now().Add(-time.Hour))
					editCRM()
					wantA, wantB = "A2", "B2"
				} else {
					r := editCRM()
					editPIM(r.Attrs["modifiedon"].(time.Time).Add(time.Minute))
					wantA, wantB = "A1", "B1"
				}
				h.sync(b)
				r, _ := h.get(crm.EntityContact, c.ID)
				if r.Attrs["jobtitle"] != wantA || r.Attrs["department"] != wantB || r.Attrs["nickname"] != "C1" {
					t.Errorf("CRM = %v/%v/%v, want %s/%s/C1", r.Attrs["jobtitle"], r.Attrs["department"], r.Attrs["nickname"], wantA, wantB)
				}
				d, _, _ := h.pimGet(h.Book, href)
				for _, want := range []string{"TITLE:" + wantA, "ORG:;" + wantB, "NICKNAME:C1"} {
					if !strings.Contains(string(d), want) {
						t.Errorf("PIM lacks %q:\n%s", want, d)
					}
				}
				if st := h.sync(b); st.ToCRM.Updated+st.ToPIM.Updated != 0 {
					t.Errorf("sync after merge wrote again: %+v", st)
				}
			})
		})
	}
}

// raceCol edits the PIM object behind the bridge's back between its read and
// its first write, so the write meets a 412.
type raceCol struct {
	bridge.Collection
	once sync.Once
	edit func()
}

func (r *raceCol) Update(ctx context.Context, href, etag string, data []byte) (string, error) {
	r.once.Do(r.edit)
	return r.Collection.Update(ctx, href, etag, data)
}

// raceCRM edits the CRM record between the bridge's read and its write.
type raceCRM struct {
	bridge.CRM
	once sync.Once
	edit func()
}

func (r *raceCRM) Update(ctx context.Context, rec crm.Record, opts *crmclient.WriteOptions) (crm.Record, error) {
	r.once.Do(r.edit)
	return r.CRM.Update(ctx, rec, opts)
}

// An edit made between the bridge's read and write (412 on either side) is
// merged, not lost.
func TestMerge_PreconditionFailedMerged(t *testing.T) {
	eachDAV(t, allDAV, func(t *testing.T, h *harness) {
		b := h.alice()
		c, href := h.synced(b, h.Book, h.CRM.Alice, crm.EntityContact, map[string]any{"lastname": "Race"})

		// PIM side: CRM edits jobtitle; the user edits NICKNAME just before
		// the bridge's PUT.
		h.WrapCol = func(col bridge.Collection) bridge.Collection {
			return &raceCol{Collection: col, edit: func() {
				if strings.Contains(col.Href(), strings.TrimSuffix(h.DAV.Book, "/")) {
					h.editPIM(h.Book, href, func(s string) string { return replaceLine(s, "NICKNAME:", "NICKNAME:Racer") })
				}
			}}
		}
		b = h.bridgeFor(h.CRM.Alice, "desktop", h.stateRoot()+"/desktop")
		h.update(h.CRM.Alice, crm.EntityContact, c.ID, map[string]any{"jobtitle": "Pilot"})
		st := h.sync(b)
		if st.Retried == 0 {
			t.Errorf("no 412 was met: %+v", st)
		}
		d, _, _ := h.pimGet(h.Book, href)
		if !strings.Contains(string(d), "TITLE:Pilot") || !strings.Contains(string(d), "NICKNAME:Racer") {
			t.Errorf("PIM lost an edit:\n%s", d)
		}
		if r, _ := h.get(crm.EntityContact, c.ID); r.Attrs["nickname"] != "Racer" || r.Attrs["jobtitle"] != "Pilot" {
			t.Errorf("CRM = %v", r.Attrs)
		}

		// CRM side: the user edits TITLE on the PIM side; someone edits the
		// department in CRM just before the bridge's PATCH.
		h.WrapCol = nil
		h.WrapCRM = func(c2 bridge.CRM) bridge.CRM {
			return &raceCRM{CRM: c2, edit: func() {
				h.update(h.CRM.Alice, crm.EntityContact, c.ID, map[string]any{"department": "Ops"})
			}}
		}
		b = h.bridgeFor(h.CRM.Alice, "desktop", h.stateRoot()+"/desktop")
		h.editPIM(h.Book, href, func(s string) string { return replaceLine(s, "TITLE:", "TITLE:Captain") })
		st = h.sync(b)
		if st.Retried == 0 {
			t.Errorf("no CRM 412 was met: %+v", st)
		}
		if r, _ := h.get(crm.EntityContact, c.ID); r.Attrs["jobtitle"] != "Captain" || r.Attrs["department"] != "Ops" {
			t.Errorf("CRM = %v, want Captain and Ops", r.Attrs)
		}
		if d, _, _ := h.pimGet(h.Book, href); !strings.Contains(string(d), "Ops") {
			t.Errorf("PIM lacks the CRM department:\n%s", d)
		}
	})
}

// A merge with edits on both sides, CRM changed later, writes the PIM side
// first; when the CRM write then meets a 412 (a new CRM edit), the PIM
// side's edit not yet written to CRM must still count as a PIM edit on the
// re-read: it reaches CRM, and both sides converge.
func TestMerge_TwoStepMergeCutBy412KeepsPIMEdit(t *testing.T) {
	eachDAV(t, allDAV, func(t *testing.T, h *harness) {
		b := h.alice()
		c, href := h.synced(b, h.Book, h.CRM.Alice, crm.EntityContact, map[string]any{"lastname": "Cut", "nickname": "Old"})
		h.editPIM(h.Book, href, func(s string) string {
			s = replaceLine(s, "NICKNAME:", "NICKNAME:Typed")
			return replaceLine(s, "REV:", rev(time.Now().Add(-time.Hour)))
		})
		h.update(h.CRM.Alice, crm.EntityContact, c.ID, map[string]any{"jobtitle": "Pilot"})
		h.WrapCRM = func(c2 bridge.CRM) bridge.CRM {
			return &raceCRM{CRM: c2, edit: func() {
				h.update(h.CRM.Alice, crm.EntityContact, c.ID, map[string]any{"department": "Ops"})
			}}
		}
		b = h.bridgeFor(h.CRM.Alice, "desktop", h.stateRoot()+"/desktop")
		st := h.sync(b)
		if st.Retried == 0 {
			t.Errorf("no CRM 412 was met: %+v", st)
		}
		h.WrapCRM = nil
		b = h.bridgeFor(h.CRM.Alice, "desktop", h.stateRoot()+"/desktop")
		h.sync(b)
		r, _ := h.get(crm.EntityContact, c.ID)
		if r.Attrs["nickname"] != "Typed" || r.Attrs["jobtitle"] != "Pilot" || r.Attrs["department"] != "Ops" {
			t.Errorf("CRM = nickname %v, jobtitle %v, department %v; want Typed, Pilot, Ops", r.Attrs["nickname"], r.Attrs["jobtitle"], r.Attrs["department"])
		}
		d, _, _ := h.pimGet(h.Book, href)
		for _, want := range []string{"NICKNAME:Typed", "TITLE:Pilot", "Ops"} {
			if !strings.Contains(string(d), want) {
				t.Errorf("PIM lacks %q:\n%s", want, d)
			}
		}
	})
}
