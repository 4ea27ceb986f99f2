package integration

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pimbridge/pimbridge/crm"
)

// twoWay is the data set of the fault tests: n/2 contacts made in CRM and
// n/2 on the PIM side, then edits on both sides and a few new items.
type twoWay struct {
	h       *harness
	crmEdit map[crm.ID]string // CRM edits: jobtitle
	pimEdit map[string]string // PIM edits by href: nickname
}

func (h *harness) seedTwoWay(n int) *twoWay {
	h.t.Helper()
	for i := range n / 2 {
		h.createContact(h.CRM.Alice, map[string]any{"firstname": "Crm", "lastname": fmt.Sprintf("Contact%03d", i)})
		h.putPIM(h.Book, fmt.Sprintf("pim%03d.vcf", i), vcard(fmt.Sprintf("pim-%03d", i), "Pim", fmt.Sprintf("Contact%03d", i)))
	}
	return &twoWay{h: h, crmEdit: map[crm.ID]string{}, pimEdit: map[string]string{}}
}

// edit makes k edits on each side (different contacts) and k new items on
// each side.
func (w *twoWay) edit(k int) {
	h := w.h
	h.t.Helper()
	cs := h.all(crm.EntityContact)
	objs := h.objects(h.Book)
	var hrefs []string
	for href := range objs {
		hrefs = append(hrefs, href)
	}
	for i := 0; i < k && i < len(cs); i++ {
		v := fmt.Sprintf("crm-edit-%d", i)
		h.update(h.CRM.Alice, crm.EntityContact, cs[i].ID, map[string]any{"jobtitle": v})
		w.crmEdit[cs[i].ID] = v
	}
	n := 0
	for _, href := range hrefs {
		if n == k {
			break
		}
		if w.editedInCRM(objs[href]) {
			continue
		}
		v := fmt.Sprintf("pim-edit-%d", n)
		h.editPIM(h.Book, href, func(s string) string { return replaceLine(s, "NICKNAME:", "NICKNAME:"+v) })
		w.pimEdit[href] = v
		n++
	}
	for i := range k {
		h.createContact(h.CRM.Alice, map[string]any{"lastname": fmt.Sprintf("NewCrm%03d", i)})
		h.putPIM(h.Book, fmt.Sprintf("new%03d.vcf", i), vcard(fmt.Sprintf("new-%03d", i), "New", fmt.Sprintf("Pim%03d", i)))
	}
}

func (w *twoWay) editedInCRM(data []byte) bool {
	for id := range w.crmEdit {
		if strings.Contains(strings.ToLower(string(data)), "x-crm-id:"+id.String()) {
			return true
		}
	}
	return false
}

// check verifies zero duplicates and zero lost edits.
func (w *twoWay) check(total int) {
	h := w.h
	h.t.Helper()
	h.wantOneToOne(h.Book, crm.EntityContact)
	cs := h.all(crm.EntityContact)
	if len(cs) != total {
		h.t.Errorf("%d CRM contacts, want %d", len(cs), total)
	}
	objs := h.objects(h.Book)
	if len(objs) != total {
		h.t.Errorf("%d PIM contacts, want %d", len(objs), total)
	}
	byID := map[crm.ID]crm.Record{}
	for _, c := range cs {
		byID[c.ID] = c
	}
	byCRMID := map[string][]byte{}
	for _, data := range objs {
		for _, l := range contentLinesOf(data) {
			if strings.HasPrefix(strings.ToUpper(l), "X-CRM-ID:") {
				byCRMID[strings.ToLower(strings.TrimSpace(l[9:]))] = data
			}
		}
	}
	for id, v := range w.crmEdit {
		if byID[id].Attrs["jobtitle"] != v {
			h.t.Errorf("CRM edit lost in CRM: %s jobtitle %v", id, byID[id].Attrs["jobtitle"])
		}
		if data := byCRMID[id.String()]; !strings.Contains(string(data), "TITLE:"+v) {
			h.t.Errorf("CRM edit %q did not reach the PIM object of %s", v, id)
		}
	}
	nick := map[string]bool{}
	for _, c := range cs {
		if s, _ := c.Attrs["nickname"].(string); s != "" {
			nick[s] = true
		}
	}
	for href, v := range w.pimEdit {
		if !nick[v] {
			h.t.Errorf("PIM edit %q of %s lost in CRM", v, href)
		}
		if !strings.Contains(string(objs[href]), "NICKNAME:"+v) {
			h.t.Errorf("PIM edit %q of %s lost on the PIM side", v, href)
		}
	}
}

// killRuns starts `pimbridge sync` k times and kills it with SIGKILL at a
// random point of its run.
func (c *cli) killRuns(k int, maxDelay time.Duration, rng *rand.Rand) {
	t := c.h.t
	t.Helper()
	landed := 0
	for range k {
		cmd := c.command("sync")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(rng.Int64N(int64(maxDelay))))
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			landed++
		}
	}
	t.Logf("%d of %d kills landed in the middle of a run", landed, k)
}

// faultItems is the size of the two-way data set of the fault tests: 300
// items, or 120 in a -race build unless PIMBRIDGE_KILL_POINTS is
// set (make faults).
func faultItems() int {
	if raceDetector && os.Getenv("PIMBRIDGE_KILL_POINTS") == "" {
		return 120
	}
	return 300
}

func killPoints() int {
	if n, err := strconv.Atoi(os.Getenv("PIMBRIDGE_KILL_POINTS")); err == nil && n > 0 {
		return n
	}
	return 4
}

// Kill -9 at random points of a two-way sync of 300 items
// with edits on both sides, then a normal run: zero lost edits, zero
// duplicates. PIMBRIDGE_KILL_POINTS=30 (make faults) runs 30 kill points
// per phase and adds Radicale.
func TestCrash_KillNineTwoWay(t *testing.T) {
	servers := []davFactory{fast}
	if os.Getenv("PIMBRIDGE_KILL_POINTS") != "" {
		servers = append(servers, radicale)
	}
	eachDAV(t, servers, func(t *testing.T, h *harness) {
		rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 4))
		n := faultItems()
		w := h.seedTwoWay(n)
		c := h.cli("desktop", "")
		// Each killed run keeps what it committed, so kills within a window
		// shorter than a full run (300 items: ~0.35 s on davserver, ~5.7 s
		// on Radicale here) cut the sync at many points as it advances. A
		// window longer than the run (Radicale's was 20 s) lets the first
		// run finish before its kill and makes every later run a no-change
		// one: make faults then logged 0 of 30 kills mid-run.
		maxDelay := 450 * time.Millisecond
		if h.DAV.Name == "radicale" {
			maxDelay = 1500 * time.Millisecond
		}
		k := killPoints()
		c.killRuns(k, maxDelay, rng)
		if out, errOut, code := c.run("sync"); code != 0 {
			t.Fatalf("normal run after kills: exit %d\n%s\n%s", code, out, errOut)
		}
		w.check(n)
		w.edit(20)
		c.killRuns(k, maxDelay/2, rng)
		if out, errOut, code := c.run("sync"); code != 0 {
			t.Fatalf("normal run after the second kills: exit %d\n%s\n%s", code, out, errOut)
		}
		w.check(n + 40)
		out, _, code := c.run("sync", "--json")
		if code != 0 || !strings.Contains(out, `"created": 0`) || strings.Contains(out, `"updated": 1`) {
			t.Errorf("a sync after convergence still wrote: %s", out)
		}
	})
}
