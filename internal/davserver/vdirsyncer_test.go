package davserver

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pimbridge/pimbridge/internal/realserver"
)

// TestServer_Vdirsyncer drives the server with Debian's vdirsyncer, a real
// CardDAV/CalDAV client: discovery, first sync of contacts, events and
// tasks into folders, an edit and a deletion made in a folder pushed back
// to the server and visible through the Go API.
func TestServer_Vdirsyncer(t *testing.T) {
	bin := realserver.Require(t, "/usr/bin/vdirsyncer")
	env := newTestEnv(t)
	ctx := context.Background()
	seed := map[string]string{
		"/alice/contacts/crm/ada.vcf":      vcardText("ada", "Ada Lovelace"),
		"/alice/contacts/crm/grace.vcf":    vcardText("grace", "Grace Hopper"),
		"/alice/contacts/crm/alan.vcf":     vcardText("alan", "Alan Turing"),
		"/alice/calendars/calendar/k.ics":  eventText("kickoff", "Kick-off"),
		"/alice/calendars/calendar/r.ics":  eventText("review", "Review"),
		"/alice/calendars/tasks/call.ics":  todoText("call", "Call Ada back"),
		"/bob/contacts/crm/bob-secret.vcf": vcardText("bobs", "Not for Alice"),
	}
	for p, data := range seed {
		if _, err := env.srv.PutObject(ctx, p, []byte(data), "", ""); err != nil {
			t.Fatalf("PutObject(%s): %v", p, err)
		}
	}

	dir := t.TempDir()
	cfg := fmt.Sprintf(`[general]
status_path = "%[1]s/status/"

[pair contacts]
a = "contacts_local"
b = "contacts_remote"
collections = ["from b"]

[storage contacts_local]
type = "filesystem"
path = "%[1]s/contacts/"
fileext = ".vcf"

[storage contacts_remote]
type = "carddav"
url = "%[2]s/"
username = "alice"
password = "%[3]s"

[pair calendars]
a = "calendars_local"
b = "calendars_remote"
collections = ["from b"]

[storage calendars_local]
type = "filesystem"
path = "%[1]s/calendars/"
fileext = ".ics"

[storage calendars_remote]
type = "caldav"
url = "%[2]s/"
username = "alice"
password = "%[3]s"
`, dir, env.http.URL, alicePW)
	cfgPath := filepath.Join(dir, "config")
	mustNoErr(t, os.WriteFile(cfgPath, []byte(cfg), 0o600))

	run := func(args ...string) string {
		t.Helper()
		cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(cctx, bin, append([]string{"-c", cfgPath}, args...)...)
		cmd.Env = append(os.Environ(), "HOME="+dir, "LC_ALL=C.UTF-8", "LANG=C.UTF-8")
		cmd.Stdin = strings.NewReader(strings.Repeat("y\n", 20))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("vdirsyncer %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	t.Logf("vdirsyncer discover:\n%s", run("discover"))
	t.Logf("vdirsyncer sync:\n%s", run("sync"))

	files := func(sub string) map[string]string {
		t.Helper()
		got := map[string]string{}
		entries, err := os.ReadDir(filepath.Join(dir, sub))
		if err != nil {
			t.Fatalf("read %s: %v", sub, err)
		}
		for _, e := range entries {
			b, err := os.ReadFile(filepath.Join(dir, sub, e.Name()))
			mustNoErr(t, err)
			got[e.Name()] = string(b)
		}
		return got
	}
	contacts := files("contacts/crm")
	events := files("calendars/calendar")
	tasks := files("calendars/tasks")
	if len(contacts) != 3 || len(events) != 2 || len(tasks) != 1 {
		t.Fatalf("vdirsyncer got %d contacts, %d events, %d tasks; want 3, 2, 1", len(contacts), len(events), len(tasks))
	}
	var adaFile string
	for name, data := range contacts {
		if strings.Contains(data, "Not for Alice") {
			t.Fatalf("alice's sync got bob's contact %s", name)
		}
		if strings.Contains(data, "UID:ada") {
			adaFile = name
		}
		// vdirsyncer stores what the server served: the seeded bytes.
		if !slicesContains(seed, data) {
			t.Fatalf("contact %s = %q differs from every stored object", name, data)
		}
	}
	if adaFile == "" {
		t.Fatal("Ada's card not synced")
	}

	// Edit Ada in the folder, delete the Review event, sync back.
	edited := strings.Replace(contacts[adaFile], "FN:Ada Lovelace", "FN:Ada King, Countess of Lovelace", 1)
	mustNoErr(t, os.WriteFile(filepath.Join(dir, "contacts/crm", adaFile), []byte(edited), 0o600))
	for name, data := range events {
		if strings.Contains(data, "UID:review") {
			mustNoErr(t, os.Remove(filepath.Join(dir, "calendars/calendar", name)))
		}
	}
	run("sync")

	obj, err := env.srv.GetObject(ctx, "/alice/contacts/crm/ada.vcf")
	mustNoErr(t, err)
	if string(obj.Data) != edited {
		t.Fatalf("server copy of Ada after vdirsyncer's edit = %q, want %q", obj.Data, edited)
	}
	left, err := env.srv.ListObjects(ctx, "/alice/calendars/calendar/")
	mustNoErr(t, err)
	if len(left) != 1 || !strings.Contains(string(left[0].Data), "UID:kickoff") {
		t.Fatalf("events on the server after the deletion = %d, want only the kick-off", len(left))
	}

	// A server-side change reaches the folder on the next sync.
	_, err = env.srv.PutObject(ctx, "/alice/calendars/tasks/new.ics", []byte(todoText("new", "Send offer")), "", "*")
	mustNoErr(t, err)
	run("sync")
	if got := files("calendars/tasks"); len(got) != 2 {
		t.Fatalf("tasks in the folder after a server-side create = %d, want 2", len(got))
	}
}

func slicesContains(m map[string]string, v string) bool {
	for _, x := range m {
		if x == v {
			return true
		}
	}
	return false
}
