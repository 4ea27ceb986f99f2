package integration

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/pimbridge/pimbridge/bridge"
	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmclient"
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
