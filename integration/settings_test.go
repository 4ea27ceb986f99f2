package integration

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pimbridge/pimbridge/crm"
)

// ORG comes from the parent account, one way: a PIM edit of the company is
// never written back to CRM.
func TestSettings_CompanyFromParentAccountOneWay(t *testing.T) {
	eachDAV(t, []davFactory{fast, radicale}, func(t *testing.T, h *harness) {
		h.Settings.UpdateCompany = true
		acc := h.create(h.CRM.Alice, crm.EntityAccount, map[string]any{"name": "Contoso"})
		b := h.alice()
		c, href := h.synced(b, h.Book, h.CRM.Alice, crm.EntityContact, map[string]any{
			"lastname": "Worker", "department": "Sales", "parentcustomerid": crm.Ref{Entity: crm.EntityAccount, ID: acc.ID}})
		d, _, _ := h.pimGet(h.Book, href)
		if !strings.Contains(string(d), "ORG:Contoso;Sales") {
			t.Fatalf("ORG not from the parent account:\n%s", d)
		}
		h.editPIM(h.Book, href, func(s string) string { return replaceLine(s, "ORG:", "ORG:Fabrikam;Sales") })
		h.sync(b)
		r, _ := h.get(crm.EntityContact, c.ID)
		if ref, _ := r.Attrs["parentcustomerid"].(crm.Ref); ref.ID != acc.ID {
			t.Errorf("parent account changed to %v", r.Attrs["parentcustomerid"])
		}
		if r.Attrs["department"] != "Sales" {
			t.Errorf("department = %v", r.Attrs["department"])
		}
		// The next CRM-side change writes the company again.
		h.update(h.CRM.Alice, crm.EntityContact, c.ID, map[string]any{"jobtitle": "Lead"})
		h.sync(b)
		if d, _, _ := h.pimGet(h.Book, href); !strings.Contains(string(d), "ORG:Contoso;Sales") {
			t.Errorf("ORG not restored from the parent account:\n%s", d)
		}
	})
}

// An unchecked type is not sent PIM-ward, but a PIM item of that type is
// still promoted to CRM.
func TestSettings_UncheckedTypeStillPromoted(t *testing.T) {
	eachDAV(t, []davFactory{fast}, func(t *testing.T, h *harness) {
		h.Settings.ToPIM = map[string]bool{crm.EntityContact: false, crm.EntityTask: true}
		h.createContact(h.CRM.Alice, map[string]any{"lastname": "Unsent"})
		tk := h.create(h.CRM.Alice, crm.EntityTask, map[string]any{"subject": "Sent"})
		h.putPIM(h.Book, "promoted.vcf", vcard("promoted", "Pro", "Moted"))
		b := h.alice()
		st := h.sync(b)
		if st.ToPIM.Created != 1 || st.ToCRM.Created != 1 {
			t.Errorf("stats %+v, want 1 task pushed and 1 contact promoted", st)
		}
		if href, _ := h.findByCRMID(h.Tasks, tk.ID); href == "" {
			t.Error("the checked type was not sent")
		}
		if n := len(h.objects(h.Book)); n != 1 {
			t.Errorf("%d objects in the address book, want only the promoted one", n)
		}
		var promoted bool
		for _, r := range h.all(crm.EntityContact) {
			promoted = promoted || r.Attrs["lastname"] == "Moted"
		}
		if !promoted {
			t.Error("the PIM contact was not promoted")
		}
	})
}

// `pimbridge daemon` syncs at once, then stops on SIGTERM.
func TestCLI_DaemonStopsOnSIGTERM(t *testing.T) {
	eachDAV(t, []davFactory{fast}, func(t *testing.T, h *harness) {
		c := h.cli("desktop", "")
		cfg := strings.Replace(mustRead(t, c.config), "[client]\n", "[client]\npoll = \"100ms\"\ninterval = \"1h\"\n", 1)
		mustWrite(t, c.config, cfg)
		ct := h.createContact(h.CRM.Alice, map[string]any{"lastname": "Daemon"})
		cmd := c.command("daemon")
		var out strings.Builder
		cmd.Stderr = &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(15 * time.Second)
		for {
			if href, _ := h.findByCRMID(h.Book, ct.ID); href != "" {
				break
			}
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("the daemon did not sync:\n%s", out.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
		// A PIM-side track between cycles is applied by the poll.
		h.putPIM(h.Book, "tracked.vcf", vcard("tracked", "Tra", "Cked"))
		for {
			found := false
			for _, r := range h.all(crm.EntityContact) {
				found = found || r.Attrs["lastname"] == "Cked"
			}
			if found {
				break
			}
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("the poll did not apply a track:\n%s", out.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		errc := make(chan error, 1)
		go func() { errc <- cmd.Wait() }()
		select {
		case err := <-errc:
			if err != nil {
				t.Fatalf("daemon exit: %v\n%s", err, out.String())
			}
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("the daemon did not stop on SIGTERM:\n%s", out.String())
		}
		if !strings.Contains(out.String(), "daemon stopped") {
			t.Errorf("no stop message:\n%s", out.String())
		}
	})
}
