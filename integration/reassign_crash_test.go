package integration

import (
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pimbridge/pimbridge/crm"
)

// TestCrash_KillNineReassign: contacts reassigned to a colleague while
// `pimbridge sync` is killed with SIGKILL at random points, then a normal
// run: those made in CRM have left the PIM side, those tracked from the PIM
// side stay there (unlinked, not duplicated, not deleted in CRM), and
// nothing else is lost or duplicated. PIMBRIDGE_KILL_POINTS (make faults)
// sets the number of kills and adds Radicale.
func TestCrash_KillNineReassign(t *testing.T) {
	servers := []davFactory{fast}
	if os.Getenv("PIMBRIDGE_KILL_POINTS") != "" {
		servers = append(servers, radicale)
	}
	eachDAV(t, servers, func(t *testing.T, h *harness) {
		rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 5))
		const n, moves = 60, 8
		h.seedTwoWay(n)
		c := h.cli("desktop", "")
		// Two runs: the second puts the contacts made on the PIM side into
		// the outlook subscription, so that their reassignment reaches it.
		for range 2 {
			if out, errOut, code := c.run("sync"); code != 0 {
				t.Fatalf("first runs: exit %d\n%s\n%s", code, out, errOut)
			}
		}
		moved, kept := map[crm.ID]bool{}, map[crm.ID]bool{}
		for _, r := range h.all(crm.EntityContact) {
			switch first, _ := r.Attrs["firstname"].(string); {
			case first == "Crm" && len(moved) < moves:
				moved[r.ID] = true
			case first == "Pim" && len(kept) < moves:
				kept[r.ID] = true
			default:
				continue
			}
			h.reassign(h.CRM.Admin, crm.EntityContact, r.ID, h.CRM.Bob)
		}
		maxDelay := 150 * time.Millisecond
		if h.DAV.Name == "radicale" {
			maxDelay = 1500 * time.Millisecond
		}
		c.killRuns(killPoints(), maxDelay, rng)
		if out, errOut, code := c.run("sync"); code != 0 {
			t.Fatalf("normal run after kills: exit %d\n%s\n%s", code, out, errOut)
		}
		if cs := h.all(crm.EntityContact); len(cs) != n {
			t.Errorf("%d CRM contacts, want %d (nothing deleted in CRM)", len(cs), n)
		}
		ids, none := h.crmIDs(h.Book)
		if none != 0 {
			t.Errorf("%d PIM contacts without X-CRM-ID", none)
		}
		for id, k := range ids {
			if k != 1 {
				t.Errorf("%d PIM contacts carry X-CRM-ID %s", k, id)
			}
		}
		for _, r := range h.all(crm.EntityContact) {
			switch on := ids[r.ID.String()] > 0; {
			case moved[r.ID] && on:
				t.Errorf("contact %s made in CRM and reassigned is still on the PIM side", r.ID)
			case !moved[r.ID] && !on:
				t.Errorf("contact %s (tracked from PIM: %v) is missing on the PIM side", r.ID, kept[r.ID])
			}
		}
		if len(ids) != n-moves {
			t.Errorf("%d PIM contacts, want %d", len(ids), n-moves)
		}
		out, _, code := c.run("sync", "--json")
		if code != 0 || !strings.Contains(out, `"created": 0`) || strings.Contains(out, `"deleted": 1`) {
			t.Errorf("a sync after convergence still wrote: %s", out)
		}
	})
}
