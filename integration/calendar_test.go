package integration

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/internal/realserver"
)

// cyrusDAV is Cyrus's httpd: CalDAV and CardDAV under /dav/, whose default
// calendar takes events and tasks.
func cyrusDAV(t testing.TB) davEnv {
	c := realserver.Cyrus(t)
	return davEnv{Name: "cyrus", URL: c.URL, User: c.User, Password: c.Password, Rewrites: true, paths: func(n string) (string, string, string) {
		return "/dav/addressbooks/user/" + c.User + "/" + n + "/", "/dav/calendars/user/" + c.User + "/" + n + "-tasks/", "/dav/calendars/user/" + c.User + "/" + n + "-cal/"
	}}
}

var cyrus = davFactory{"cyrus", cyrusDAV}

// sharedCalendar returns env with href as both its calendar and its task
// list; href "" makes a new collection taking VEVENT and VTODO.
func sharedCalendar(t testing.TB, env davEnv, href string) davEnv {
	if href == "" {
		ctx := context.Background()
		href = strings.TrimSuffix(env.Calendar, "-cal/") + "-shared/"
		if err := env.client(t).MkCalendar(ctx, href, "CRM", "VEVENT", "VTODO"); err != nil {
			t.Fatalf("mkcalendar %s: %v", href, err)
		}
	}
	env.Tasks, env.Calendar = href, href
	return env
}

// TestCalendar_OneCollectionForEventsAndTasks: caldav.calendar and
// caldav.tasks may name the same collection (Cyrus, Fastmail, Nextcloud and
// Apple default calendars take both): events made there become
// appointments, VTODOs tasks, a VTODO with X-CRM-ENTITY of an activity that
// activity, and CRM's appointments and tasks are written into it; nothing
// is refused.
func TestCalendar_OneCollectionForEventsAndTasks(t *testing.T) {
	type server struct {
		f      davFactory
		shared func(t testing.TB, env davEnv) string // "" makes a new collection
	}
	for _, s := range []server{
		{radicale, nil}, {xandikos, nil}, {fast, nil}, {cyrus, nil},
		{davFactory{"cyrus-default-calendar", cyrusDAV}, func(t testing.TB, env davEnv) string {
			return "/dav/calendars/user/" + env.User + "/Default/"
		}},
	} {
		t.Run(s.f.name, func(t *testing.T) {
			env := s.f.new(t).fresh(t, "crm")
			href := ""
			if s.shared != nil {
				href = s.shared(t, env)
			}
			h := newHarness(t, sharedCalendar(t, env, href))
			b := h.alice()
			h.sync(b)
			start := time.Date(2027, 3, 1, 9, 0, 0, 0, time.UTC)
			h.putPIM(h.Cal, "ev.ics", vevent("ev-1", "Board meeting", start))
			h.putPIM(h.Cal, "todo.ics", vtodo("todo-1", "Send offer"))
			h.putPIM(h.Cal, "call.ics", vtodo("call-1", "Call Ann", "X-CRM-ENTITY:phonecall"))
			st := h.sync(b)
			if st.ToCRM.Created != 3 || st.Malformed != 0 || st.Failed != 0 {
				t.Errorf("sync of an event, a task and a phone call in one calendar = %+v, want 3 created in CRM", st)
			}
			errs, err := h.cache(filepath.Join(h.stateRoot(), "desktop")).SyncErrors(h.ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range errs {
				t.Errorf("sync error: %s %s: %s", e.Item, e.Field, e.Message)
			}
			subjects := func(entity string) []string {
				var out []string
				for _, r := range h.all(entity) {
					s, _ := r.Attrs["subject"].(string)
					out = append(out, s)
				}
				return out
			}
			for entity, want := range map[string]string{crm.EntityAppointment: "Board meeting", crm.EntityTask: "Send offer", crm.EntityPhoneCall: "Call Ann"} {
				if got := subjects(entity); len(got) != 1 || got[0] != want {
					t.Errorf("CRM %s = %q, want [%q]", entity, got, want)
				}
			}
			appt := h.create(h.CRM.Alice, crm.EntityAppointment, map[string]any{"subject": "Review",
				"scheduledstart": start.Add(48 * time.Hour), "scheduledend": start.Add(49 * time.Hour)})
			task := h.create(h.CRM.Alice, crm.EntityTask, map[string]any{"subject": "Write report"})
			st = h.sync(b)
			if st.ToPIM.Created != 2 {
				t.Errorf("sync of a CRM appointment and task = %+v, want 2 created on PIM", st)
			}
			for _, id := range []crm.ID{appt.ID, task.ID} {
				if href, _ := h.findByCRMID(h.Cal, id); href == "" {
					t.Errorf("CRM record %s not written into %s", id, h.Cal.Href())
				}
			}
			if _, d := h.findByCRMID(h.Cal, task.ID); d != nil && !strings.Contains(string(d), "BEGIN:VTODO") {
				t.Errorf("task written as\n%s", d)
			}
			st = h.sync(b)
			if st.ToCRM.Created+st.ToCRM.Updated+st.ToPIM.Created+st.ToPIM.Updated+st.Failed+st.Malformed != 0 {
				t.Errorf("no-change sync = %+v", st)
			}
		})
	}
}

// TestCLI_TasksUnsetMeansTheCalendarIfItTakesVTODO: with caldav.tasks
// unset, tasks go into caldav.calendar when its
// supported-calendar-component-set takes VTODO (Cyrus's default calendar, a
// calendar made for both), and nowhere when it takes only VEVENT.
func TestCLI_TasksUnsetMeansTheCalendarIfItTakesVTODO(t *testing.T) {
	type row struct {
		name     string
		f        davFactory
		calendar func(t testing.TB, env davEnv) string
		vtodo    bool // the calendar takes VTODO
	}
	both := func(t testing.TB, env davEnv) string { return sharedCalendar(t, env, "").Calendar }
	for _, r := range []row{
		{"cyrus-default-calendar", cyrus, func(t testing.TB, env davEnv) string { return "/dav/calendars/user/" + env.User + "/Default/" }, true},
		{"radicale-events-and-tasks", radicale, both, true},
		{"xandikos-events-and-tasks", xandikos, both, true},
		{"radicale-events-only", radicale, func(t testing.TB, env davEnv) string { return env.Calendar }, false},
	} {
		t.Run(r.name, func(t *testing.T) {
			env := r.f.new(t).fresh(t, "crm")
			env.Calendar = r.calendar(t, env)
			env.Tasks = ""
			h := newHarness(t, env)
			c := h.cli("desktop", "")
			start := time.Date(2027, 3, 1, 9, 0, 0, 0, time.UTC)
			appt := h.create(h.CRM.Alice, crm.EntityAppointment, map[string]any{"subject": "Review",
				"scheduledstart": start, "scheduledend": start.Add(time.Hour)})
			task := h.create(h.CRM.Alice, crm.EntityTask, map[string]any{"subject": "Write report"})
			out, errOut, code := c.run("sync")
			if code != 0 {
				t.Fatalf("sync: exit %d\n%s\n%s", code, out, errOut)
			}
			if href, _ := h.findByCRMID(h.Cal, appt.ID); href == "" {
				t.Errorf("appointment not in %s", env.Calendar)
			}
			href, data := h.findByCRMID(h.Cal, task.ID)
			if r.vtodo && (href == "" || !strings.Contains(string(data), "BEGIN:VTODO")) {
				t.Fatalf("task not written as a VTODO into %s (tasks unset, the calendar takes VTODO): %q", env.Calendar, data)
			}
			if !r.vtodo && href != "" {
				t.Fatalf("task written into %s, which takes only VEVENT", env.Calendar)
			}
			if !r.vtodo {
				return
			}
			h.putPIM(h.Cal, "todo.ics", vtodo("todo-1", "Send offer"))
			if out, errOut, code := c.run("sync"); code != 0 {
				t.Fatalf("sync after a PIM task: exit %d\n%s\n%s", code, out, errOut)
			}
			var found bool
			for _, rec := range h.all(crm.EntityTask) {
				found = found || rec.Attrs["subject"] == "Send offer"
			}
			if !found {
				t.Errorf("a VTODO made in %s did not reach CRM", env.Calendar)
			}
		})
	}
}
