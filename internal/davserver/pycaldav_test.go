package davserver

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pimbridge/pimbridge/internal/realserver"
)

// pyScript lists alice's calendars with python3-caldav, syncs the calendar
// with RFC 6578 from the token in argv[2] (empty: initial), optionally
// creates an event, and prints one JSON object.
const pyScript = `
import json, sys, caldav
from caldav.lib import error
url, token, create = sys.argv[1], sys.argv[2] or None, sys.argv[3] == "create"
client = caldav.DAVClient(url=url, username="alice", password=sys.argv[4])
principal = client.principal()
out = {"calendars": sorted(str(c.name) for c in principal.calendars())}
cal = principal.calendar(cal_id="calendar")
out["events"] = sorted(str(e.icalendar_component["SUMMARY"]) for e in cal.events())
coll = cal.objects_by_sync_token(sync_token=token, load_objects=False)
out["token"] = coll.sync_token
out["updated"], out["deleted"] = [], []
for obj in coll:
    try:
        obj.load()
        out["updated"].append(str(obj.url.path))
    except error.NotFoundError:
        out["deleted"].append(str(obj.url.path))
if create:
    cal.save_event("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//py//EN\r\nBEGIN:VEVENT\r\nUID:from-python\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:20260401T090000Z\r\nDTEND:20260401T100000Z\r\nSUMMARY:Made in Python\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
print(json.dumps(out))
`

type pyResult struct {
	Calendars []string `json:"calendars"`
	Events    []string `json:"events"`
	Token     string   `json:"token"`
	Updated   []string `json:"updated"`
	Deleted   []string `json:"deleted"`
}

// TestServer_PythonCaldav drives the server with Debian's python3-caldav:
// discovery, listing, sync-collection (initial and incremental, with a
// deletion) and a PUT whose result is checked through the Go API.
func TestServer_PythonCaldav(t *testing.T) {
	py := realserver.Require(t, "/usr/bin/python3")
	if err := exec.Command(py, "-c", "import caldav").Run(); err != nil {
		realserver.Require(t, "/usr/lib/python3/dist-packages/caldav/__init__.py")
		t.Fatalf("python3-caldav is installed but does not import: %v", err)
	}
	env := newTestEnv(t)
	ctx := context.Background()
	const coll = "/alice/calendars/calendar/"
	for _, e := range []struct{ name, uid, summary string }{{"a.ics", "a", "Alpha"}, {"b.ics", "b", "Beta"}} {
		_, err := env.srv.PutObject(ctx, coll+e.name, []byte(eventText(e.uid, e.summary)), "", "")
		mustNoErr(t, err)
	}
	script := filepath.Join(t.TempDir(), "client.py")
	mustNoErr(t, os.WriteFile(script, []byte(pyScript), 0o600))
	run := func(token string, create bool) pyResult {
		t.Helper()
		cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		mode := "read"
		if create {
			mode = "create"
		}
		cmd := exec.CommandContext(cctx, py, script, env.http.URL+"/", token, mode, alicePW)
		cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
		out, err := cmd.Output()
		if err != nil {
			var stderr string
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = string(ee.Stderr)
			}
			t.Fatalf("python3-caldav: %v\n%s%s", err, out, stderr)
		}
		var res pyResult
		if err := json.Unmarshal(out, &res); err != nil {
			t.Fatalf("python output %q: %v", out, err)
		}
		return res
	}

	first := run("", true)
	if !slices.Equal(first.Calendars, []string{"CRM appointments", "CRM tasks"}) {
		t.Fatalf("calendars = %q", first.Calendars)
	}
	if !slices.Equal(first.Events, []string{"Alpha", "Beta"}) || len(first.Updated) != 2 || !strings.HasPrefix(first.Token, syncTokenPrefix) {
		t.Fatalf("first run = %+v", first)
	}
	objs, err := env.srv.ListObjects(ctx, coll)
	mustNoErr(t, err)
	var made bool
	for _, o := range objs {
		made = made || strings.Contains(string(o.Data), "SUMMARY:Made in Python")
	}
	if len(objs) != 3 || !made {
		t.Fatalf("the event python3-caldav created is not on the server (%d objects)", len(objs))
	}

	mustNoErr(t, env.srv.DeleteObject(ctx, coll+"a.ics", ""))
	_, err = env.srv.PutObject(ctx, coll+"b.ics", []byte(eventText("b", "Beta moved")), "", "")
	mustNoErr(t, err)
	second := run(first.Token, false)
	if !slices.Equal(second.Deleted, []string{coll + "a.ics"}) {
		t.Fatalf("incremental sync deleted = %q, want [%sa.ics]", second.Deleted, coll)
	}
	// The python event and the edited Beta changed since the first token.
	if len(second.Updated) != 2 || !slices.Contains(second.Updated, coll+"b.ics") {
		t.Fatalf("incremental sync updated = %q", second.Updated)
	}
	if !slices.Contains(second.Events, "Beta moved") || second.Token == first.Token {
		t.Fatalf("second run = %+v", second)
	}
}
