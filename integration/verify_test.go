package integration

import (
	"path/filepath"
	"testing"

	"github.com/pimbridge/pimbridge/bridge"
	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/idmap"
)

// TestVerification_FindsDeletionTheDeltaMissed: the reconciliation job
// (after each synchronization a few mapped items are checked; a
// missing one becomes a deletion entry) runs after every full cycle and
// finds an object deleted on the PIM server that the change feed never
// reported, here by moving the bridge's sync token past the deletion, as
// when a notification is lost. The open task then follows the deletion
// rule: deleted in CRM.
func TestVerification_FindsDeletionTheDeltaMissed(t *testing.T) {
	eachDAV(t, allDAV, func(t *testing.T, h *harness) {
		h.Settings = bridge.Settings{MassDeleteThreshold: 1}
		b := h.alice()
		tk, href := h.synced(b, h.Tasks, h.CRM.Alice, crm.EntityTask, map[string]any{"subject": "Verify me"})
		h.sync(b) // a quiet cycle: its verification found everything in place
		h.deletePIM(h.Tasks, href)
		_, _, cur, err := h.Tasks.Changes(h.ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		cache := h.cache(filepath.Join(h.stateRoot(), "desktop"))
		if err := cache.Tx(h.ctx, func(tx *idmap.Tx) error { return tx.SetCursor(h.ctx, "dav", h.Tasks.Href(), cur) }); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 3; i++ {
			if h.sync(b); !h.has(crm.EntityTask, tk.ID) {
				return
			}
		}
		t.Errorf("task %s deleted on the PIM server behind the change feed is still in CRM after 3 full cycles: the verification job did not find it", tk.ID)
	})
}

func (h *harness) has(entity string, id crm.ID) bool {
	h.t.Helper()
	_, ok := h.get(entity, id)
	return ok
}
