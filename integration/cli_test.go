package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pimbridge/pimbridge/crm/crmtest"
)

// pimbridgeBin is the binary built once by TestMain.
var pimbridgeBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pimbridge-integration-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	pimbridgeBin = filepath.Join(dir, "pimbridge")
	out, err := exec.Command("go", "build", "-o", pimbridgeBin, "../cmd/pimbridge").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build pimbridge: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := crmtest.Main(m)
	os.RemoveAll(dir)
	os.Exit(code)
}

// cli runs the binary against a harness with a config written for clientID.
type cli struct {
	h        *harness
	config   string
	stateDir string
}

func (h *harness) cli(clientID string, extra string) *cli {
	h.t.Helper()
	dir := h.t.TempDir()
	state := filepath.Join(dir, "state")
	cfg := fmt.Sprintf(`[crm]
url = %q
user = %q
password_env = "PIMBRIDGE_TEST_CRM_PW"

[client]
id = %q
state_dir = %q

[carddav]
url = %q
user = %q
password_env = "PIMBRIDGE_TEST_DAV_PW"
addressbook = %q

[caldav]
url = %q
user = %q
password_env = "PIMBRIDGE_TEST_DAV_PW"
calendar = %q
tasks = %q

[sync]
mass_delete_threshold = 1.0
%s
`, h.CRM.URL, h.CRM.Alice.Name, clientID, state, h.DAV.URL, h.DAV.User, h.DAV.Book, h.DAV.URL, h.DAV.User, h.DAV.Calendar, h.DAV.Tasks, extra)
	path := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		h.t.Fatal(err)
	}
	return &cli{h: h, config: path, stateDir: state}
}

func (c *cli) command(args ...string) *exec.Cmd {
	cmd := exec.Command(pimbridgeBin, append([]string{"--config", c.config}, args...)...)
	cmd.Env = append(os.Environ(), "PIMBRIDGE_TEST_CRM_PW="+c.h.CRM.Alice.Password, "PIMBRIDGE_TEST_DAV_PW="+c.h.DAV.Password)
	return cmd
}

// run runs the binary and returns stdout, stderr and the exit code.
func (c *cli) run(args ...string) (string, string, int) {
	c.h.t.Helper()
	cmd := c.command(args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		c.h.t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

func TestCLI_PlanSyncErrors(t *testing.T) {
	eachDAV(t, []davFactory{fault}, func(t *testing.T, h *harness) {
		c := h.cli("desktop", "")
		ct := h.createContact(h.CRM.Alice, map[string]any{"lastname": "Planned"})
		out, errOut, code := c.run("plan")
		if code != 0 || !strings.Contains(out, "create-on-pim") || !strings.Contains(out, ct.ID.String()) {
			t.Fatalf("plan: code %d\n%s\n%s", code, out, errOut)
		}
		if n := len(h.objects(h.Book)); n != 0 {
			t.Fatalf("plan wrote %d objects", n)
		}
		out, _, code = c.run("plan", "--json")
		var pj struct {
			Writes []map[string]any `json:"writes"`
		}
		if code != 0 || json.Unmarshal([]byte(out), &pj) != nil || len(pj.Writes) != 1 {
			t.Fatalf("plan --json: code %d %s", code, out)
		}
		out, errOut, code = c.run("sync")
		if code != 0 || !strings.Contains(out, "to PIM: 1 created") {
			t.Fatalf("sync: code %d\n%s\n%s", code, out, errOut)
		}
		// A malformed object: exit 3, listed by errors, discardable.
		h.DAV.Store(t, h.DAV.Book, "broken.vcf", []byte("BEGIN:VCARD\r\nVERSION:3.0\r\nN:Doe;Jane;;;\r\nEND:VCALENDAR\r\n"))
		_, errOut, code = c.run("sync")
		list, _, _ := c.run("errors")
		if code != 3 {
			t.Fatalf("sync with a malformed item: exit %d, want 3\n%s\n%s", code, errOut, list)
		}
		if !strings.Contains(list, "broken.vcf") {
			t.Fatalf("errors does not list broken.vcf:\n%s", list)
		}
		out, _, _ = c.run("errors", "list", "--json")
		var errs []struct{ ID int64 }
		if err := json.Unmarshal([]byte(out), &errs); err != nil || len(errs) != 1 {
			t.Fatalf("errors --json: %v %s", err, out)
		}
		if _, e, code := c.run("errors", "discard", fmt.Sprint(errs[0].ID)); code != 0 {
			t.Fatalf("discard: %d %s", code, e)
		}
		if out, _, _ := c.run("errors"); !strings.Contains(out, "no sync errors") {
			t.Fatalf("after discard: %s", out)
		}
		if _, e, code := c.run("errors", "retry", "x"); code != 2 {
			t.Fatalf("errors retry x: exit %d, want 2 (%s)", code, e)
		}
		if out, e, code := c.run("set-primary"); code != 0 || !strings.Contains(out, "primary") {
			t.Fatalf("set-primary: %d %s %s", code, out, e)
		}
	})
}

func mustRead(t testing.TB, path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func mustWrite(t testing.TB, path, s string) {
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}
