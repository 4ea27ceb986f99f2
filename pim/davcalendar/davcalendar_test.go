package davcalendar_test

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/pimbridge/pimbridge/internal/realserver"
	"github.com/pimbridge/pimbridge/pim/davcalendar"
	"github.com/pimbridge/pimbridge/pim/davext"
	"github.com/pimbridge/pimbridge/pim/pimtest"
)

func client(t testing.TB, url, user, pass string) *davext.Client {
	t.Helper()
	c, err := davext.New(url, &davext.Options{Username: user, Password: pass})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var kinds = []struct {
	name string
	kind pimtest.Kind
	comp string
}{
	{"Events", pimtest.Events, "VEVENT"},
	{"Tasks", pimtest.Tasks, "VTODO"},
}

func TestCalendar_DAVServer(t *testing.T) {
	s := pimtest.NewDAVServer(t)
	c := client(t, s.URL, "alice", "x")
	var n atomic.Int32
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			pimtest.Run(t, pimtest.Options{Kind: k.kind, UIDConflict: true, SyncToken: true}, func(t *testing.T) pimtest.Collection {
				return davcalendar.New(c, s.AddCalendar(fmt.Sprintf("cal%d", n.Add(1)), k.comp))
			})
		})
	}
}

func TestCalendar_Radicale(t *testing.T) {
	r := realserver.StartRadicale(t)
	c := client(t, r.URL, r.User, r.Password)
	var n atomic.Int32
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			pimtest.Run(t, pimtest.Options{Kind: k.kind, UIDConflict: true, SyncToken: true}, func(t *testing.T) pimtest.Collection {
				href := r.CollectionPath(fmt.Sprintf("cal%d", n.Add(1)))
				if err := c.MkCalendar(t.Context(), href, "Cal", k.comp); err != nil {
					t.Fatal(err)
				}
				return davcalendar.New(c, href)
			})
		})
	}
}

func TestCalendar_Xandikos(t *testing.T) {
	x := realserver.StartXandikos(t)
	c := client(t, x.URL, x.User, x.Password)
	var n atomic.Int32
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			pimtest.Run(t, pimtest.Options{Kind: k.kind, UIDConflict: true, SyncToken: true}, func(t *testing.T) pimtest.Collection {
				href := x.CalendarsHome() + fmt.Sprintf("cal%d/", n.Add(1))
				if err := c.MkCalendar(t.Context(), href, "Cal", k.comp); err != nil {
					t.Fatal(err)
				}
				return davcalendar.New(c, href)
			})
		})
	}
}

func TestDiscover(t *testing.T) {
	ctx := context.Background()
	type cal struct{ href, comp string }
	tests := []struct {
		name string
		open func(t *testing.T) (*davext.Client, []cal)
	}{
		{"davserver", func(t *testing.T) (*davext.Client, []cal) {
			s := pimtest.NewDAVServer(t)
			return client(t, s.URL, "alice", "x"), []cal{{s.AddCalendar("appts", "VEVENT"), "VEVENT"}, {s.AddCalendar("tasks", "VTODO"), "VTODO"}}
		}},
		{"radicale", func(t *testing.T) (*davext.Client, []cal) {
			r := realserver.StartRadicale(t)
			c := client(t, r.URL, r.User, r.Password)
			want := []cal{{r.CollectionPath("appts"), "VEVENT"}, {r.CollectionPath("tasks"), "VTODO"}}
			for _, w := range want {
				if err := c.MkCalendar(ctx, w.href, "x", w.comp); err != nil {
					t.Fatal(err)
				}
			}
			return c, want
		}},
		{"xandikos", func(t *testing.T) (*davext.Client, []cal) {
			x := realserver.StartXandikos(t)
			c := client(t, x.URL, x.User, x.Password)
			href := x.CalendarsHome() + "tasks/"
			if err := c.MkCalendar(ctx, href, "Tasks", "VTODO"); err != nil {
				t.Fatal(err)
			}
			return c, []cal{{x.CalendarsHome() + "calendar/", "VEVENT"}, {href, "VTODO"}}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, want := tt.open(t)
			home, cals, err := davcalendar.Discover(ctx, c)
			if err != nil {
				t.Fatalf("Discover = %v", err)
			}
			var got []string
			for _, ci := range cals {
				got = append(got, ci.Href)
				for _, w := range want {
					if w.href == ci.Href && !ci.Supports(w.comp) {
						t.Errorf("%s components = %q, want %s", ci.Href, ci.Components, w.comp)
					}
				}
			}
			slices.Sort(got)
			var hrefs []string
			for _, w := range want {
				hrefs = append(hrefs, w.href)
			}
			if !slices.Equal(got, hrefs) || home == "" {
				t.Errorf("Discover = %q, %q; want home set and %q", home, got, hrefs)
			}
		})
	}
}
