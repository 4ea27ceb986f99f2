package integration

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/idmap"
)

// Kill -9 while duplicate resolutions are applied.
// Contacts made on the phone duplicate colleagues' CRM contacts; the user
// resolves half with `errors retry ID --allow-duplicate` and half with
// `errors link ID CRM-ID`, then runs of `pimbridge sync` are killed at
// random points. A normal run afterwards leaves exactly one new record per
// allowed duplicate, none per linked one, one PIM object per record, and
// what the user typed on the phone. Named so that `make faults`
// (-run TestCrash_KillNineTwoWay) runs it too.
func TestCrash_KillNineTwoWayDuplicates(t *testing.T) {
	servers := []davFactory{fast}
	if os.Getenv("PIMBRIDGE_KILL_POINTS") != "" {
		servers = append(servers, radicale)
	}
	eachDAV(t, servers, func(t *testing.T, h *harness) {
		rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 12))
		const n = 20
		bob := make([]crm.ID, n)
		for i := range n {
			bob[i] = h.createContact(h.CRM.Bob, map[string]any{"firstname": "Dup", "lastname": fmt.Sprintf("Bob%03d", i), "emailaddress1": fmt.Sprintf("dup%03d@example.com", i)}).ID
			h.putPIM(h.Book, fmt.Sprintf("dup%03d.vcf", i), vcard(fmt.Sprintf("dup-%03d", i), "Dup", fmt.Sprintf("Pim%03d", i),
				fmt.Sprintf("EMAIL:dup%03d@example.com", i), fmt.Sprintf("TEL;TYPE=CELL:+1 555 %04d", i)))
		}
		c := h.cli("desktop", "")
		if out, errOut, code := c.run("sync"); code != 3 {
			t.Fatalf("first sync: exit %d, want 3 (duplicates)\n%s\n%s", code, out, errOut)
		}
		out, _, code := c.run("errors", "--json")
		var es []idmap.SyncError
		if err := json.Unmarshal([]byte(out), &es); code != 0 || err != nil || len(es) != n {
			t.Fatalf("errors --json: exit %d, %v, %d errors; want %d\n%s", code, err, len(es), n, out)
		}
		for _, e := range es {
			var i int
			if _, err := fmt.Sscanf(e.Item[strings.LastIndex(e.Item, "/")+1:], "dup%03d.vcf", &i); err != nil {
				t.Fatalf("sync error item %q: %v", e.Item, err)
			}
			args := []string{"errors", "retry", fmt.Sprint(e.ID), "--allow-duplicate"}
			if i%2 == 1 {
				args = []string{"errors", "link", fmt.Sprint(e.ID), bob[i].String()}
			}
			if out, errOut, code := c.run(args...); code != 0 {
				t.Fatalf("%v: exit %d\n%s\n%s", args, code, out, errOut)
			}
		}
		// Within the length of a run here (20 items: ~0.3 s on davserver,
		// ~0.8 s on Radicale), so most kills cut a run.
		maxDelay := 300 * time.Millisecond
		if h.DAV.Name == "radicale" {
			maxDelay = 800 * time.Millisecond
		}
		c.killRuns(killPoints(), maxDelay, rng)
		if out, errOut, code := c.run("sync"); code != 0 {
			t.Fatalf("normal run after kills: exit %d\n%s\n%s", code, out, errOut)
		}
		// Bob's contacts are not in alice's filter: only the phone's side
		// is one to one.
		ids, none := h.crmIDs(h.Book)
		if none != 0 || len(ids) != n {
			t.Errorf("%d PIM objects with distinct X-CRM-IDs and %d without, want %d and 0", len(ids), none, n)
		}
		byEmail := map[string][]crm.Record{}
		inCRM := map[string]bool{}
		for _, r := range h.all(crm.EntityContact) {
			e, _ := r.Attrs["emailaddress1"].(string)
			byEmail[e] = append(byEmail[e], r)
			inCRM[r.ID.String()] = true
		}
		for id, k := range ids {
			if k != 1 || !inCRM[id] {
				t.Errorf("X-CRM-ID %s: on %d PIM objects, in CRM %v; want 1, true", id, k, inCRM[id])
			}
		}
		objs := h.objects(h.Book)
		for i := range n {
			rs := byEmail[fmt.Sprintf("dup%03d@example.com", i)]
			want := 1 + (1 - i%2) // allowed: Bob's and the new one; linked: Bob's
			if len(rs) != want {
				t.Errorf("dup%03d: %d CRM contacts, want %d", i, len(rs), want)
			}
			data := string(objs[h.Book.ObjectHref(fmt.Sprintf("dup%03d.vcf", i))])
			if !strings.Contains(data, fmt.Sprintf("+1 555 %04d", i)) {
				t.Errorf("dup%03d.vcf lost the number the user typed: %q", i, data)
			}
			if i%2 == 1 && !strings.Contains(strings.ToLower(data), "x-crm-id:"+bob[i].String()) {
				t.Errorf("dup%03d.vcf is not linked to Bob's contact %s: %q", i, bob[i], data)
			}
		}
		if out, _, code := c.run("errors"); code != 0 || !strings.Contains(out, "no sync errors") {
			t.Errorf("sync errors left: %s", out)
		}
	})
}
