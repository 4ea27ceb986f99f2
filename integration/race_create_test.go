package integration

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/pimbridge/pimbridge/bridge"
	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmclient"
	"github.com/pimbridge/pimbridge/pim"
)

// raceCreateCRM runs edit once just before the bridge's first create in CRM
// is sent: the bridge creates the record from its older read of the PIM
// object.
type raceCreateCRM struct {
	bridge.CRM
	once sync.Once
	edit func()
}

func (r *raceCreateCRM) Create(ctx context.Context, rec crm.Record, opts *crmclient.WriteOptions) (crm.Record, error) {
	r.once.Do(r.edit)
	return r.CRM.Create(ctx, rec, opts)
}

// A PIM edit made while the bridge creates the item's CRM record from the
// older read (the X-CRM-ID write-back then meets a 412) is a PIM edit: it
// reaches CRM and is not overwritten by the value the bridge created the
// record with.
func TestCreate_PIMEditRacingCreateInCRMKept(t *testing.T) {
	eachDAV(t, allDAV, func(t *testing.T, h *harness) {
		var href string
		h.WrapCRM = func(c bridge.CRM) bridge.CRM {
			return &raceCreateCRM{CRM: c, edit: func() {
				h.editPIM(h.Tasks, href, func(s string) string { return replaceLine(s, "SUMMARY:", "SUMMARY:Typed later") })
			}}
		}
		b := h.alice()
		href = h.putPIM(h.Tasks, "race.ics", vtodo("race-create-1", "Typed first"))
		st := h.sync(b)
		if st.Retried == 0 {
			t.Errorf("no 412 was met on the write-back: %+v", st)
		}
		h.WrapCRM = nil
		b = h.bridgeFor(h.CRM.Alice, "desktop", h.stateRoot()+"/desktop")
		h.sync(b)
		d, _, _ := h.pimGet(h.Tasks, href)
		if !strings.Contains(string(d), "SUMMARY:Typed later") {
			t.Errorf("the PIM edit was overwritten:\n%s", d)
		}
		recs := h.all(crm.EntityTask)
		if len(recs) != 1 || recs[0].Attrs["subject"] != "Typed later" {
			var subj []any
			for _, r := range recs {
				subj = append(subj, r.Attrs["subject"])
			}
			t.Errorf("CRM tasks = %v, want one \"Typed later\"", subj)
		}
	})
}

// lostReplyCol applies the bridge's creates on the PIM side but loses their
// replies: the bridge never learns that its write happened.
type lostReplyCol struct {
	bridge.Collection
}

func (c *lostReplyCol) Create(ctx context.Context, name string, data []byte) (pim.Ref, error) {
	if _, err := c.Collection.Create(ctx, name, data); err != nil {
		return pim.Ref{}, err
	}
	return pim.Ref{}, fmt.Errorf("lost reply of the create of %s: %w", name, syscall.ECONNRESET)
}

// A PIM object the bridge created (its reply lost) and the user deleted
// before the bridge's next cycle stays deleted: the server's report of its
// removal is a user deletion, judged by the deletion table (an open task:
// deleted in CRM), not an object never written that is created again.
// Xandikos reports no removal of an object created and deleted between two
// sync tokens; there the bridge still cannot tell the two apart.
func TestCreate_PIMDeletionAfterUnconfirmedCreateKept(t *testing.T) {
	eachDAV(t, []davFactory{fast, radicale}, func(t *testing.T, h *harness) {
		b := h.alice()
		for _, n := range []string{"one", "two"} {
			h.putPIM(h.Tasks, n+".ics", vtodo("lost-reply-"+n, "Other "+n))
		}
		h.sync(b)
		h.WrapCol = func(c bridge.Collection) bridge.Collection { return &lostReplyCol{Collection: c} }
		b = h.bridgeFor(h.CRM.Alice, "desktop", h.stateRoot()+"/desktop")
		r := h.create(h.CRM.Alice, crm.EntityTask, map[string]any{"subject": "Lost reply"})
		_, _ = b.Cycle(h.ctx, bridge.CycleOptions{}) // the create's reply is lost
		href, _ := h.findByCRMID(h.Tasks, r.ID)
		if href == "" {
			t.Fatalf("the bridge did not create task %s on the PIM side", r.ID)
		}
		h.deletePIM(h.Tasks, href)
		h.WrapCol = nil
		b = h.bridgeFor(h.CRM.Alice, "desktop", h.stateRoot()+"/desktop")
		h.sync(b)
		h.sync(b)
		if got, _ := h.findByCRMID(h.Tasks, r.ID); got != "" {
			t.Errorf("the deleted task is back on the PIM side at %s", got)
		}
		h.wantCRM(crm.EntityTask, r.ID, false)
	})
}

// A record the bridge created in CRM from a PIM item and that is deleted in
// CRM before the bridge's next cycle gets a tombstone in that cycle's batch
// (the subscription had no SyncEntry row for it yet): an open task deleted
// in CRM is deleted on the PIM side, not kept linked to nothing.
func TestCreate_BridgeCreatedRecordDeletedBeforeNextPrepareGetsTombstone(t *testing.T) {
	eachDAV(t, []davFactory{fast}, func(t *testing.T, h *harness) {
		b := h.alice()
		for _, n := range []string{"one", "two"} {
			h.putPIM(h.Tasks, n+".ics", vtodo("tomb-"+n, "Other "+n))
		}
		h.sync(b)
		id, href := h.tracked(b, h.Tasks, crm.EntityTask, "gone.ics", vtodo("tomb-gone", "Deleted in CRM"))
		h.crmDelete(h.CRM.Alice, crm.EntityTask, id)
		h.sync(b)
		h.sync(b)
		h.wantPIM(h.Tasks, href, false)
	})
}
