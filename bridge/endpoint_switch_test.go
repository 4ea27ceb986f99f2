package bridge_test

import (
	"context"
	"strings"
	"testing"

	"github.com/pimbridge/pimbridge/bridge"
	"github.com/pimbridge/pimbridge/crm"
)

// TestBridge_EndpointSwitchKeepsBases: a switch of the CRM endpoint
// (go-offline, go-online) gives the bridge an outlook subscription it has
// not read, which starts over and sends the full set again with no delete
// or left rows. The pairs keep their bases: an unsynced PIM edit still
// wins over the unchanged CRM value, a record deleted or reassigned in CRM
// meanwhile (missing from the full set) leaves the PIM side, and an item
// tracked from the PIM side stays there when reassigned.
func TestBridge_EndpointSwitchKeepsBases(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	b := e.bridge(t)
	edited, moved, deleted := e.task(t, "edited"), e.task(t, "moved"), e.task(t, "deleted")
	for _, s := range []string{"a", "b", "c", "d"} {
		e.task(t, "untouched "+s) // keeps the removals under the mass-deletion guard
	}
	ics := "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\nBEGIN:VTODO\r\nUID:pim-tracked\r\nSUMMARY:from PIM\r\nEND:VTODO\r\nEND:VCALENDAR\r\n"
	if _, err := e.tasks.Create(ctx, "pim-tracked.ics", []byte(ics)); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := b.Cycle(ctx, bridge.CycleOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	tracked := e.tasks.ObjectHref("pim-tracked.ics")
	obj, err := e.tasks.Get(ctx, tracked)
	if err != nil {
		t.Fatal(err)
	}
	var trackedID crm.ID
	for _, line := range strings.Split(string(obj.Data), "\n") {
		if _, v, ok := strings.Cut(strings.TrimRight(line, "\r"), "X-CRM-ID"); ok {
			if i := strings.LastIndexByte(v, ':'); i >= 0 {
				if trackedID, err = crm.ParseID(v[i+1:]); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if trackedID == (crm.ID{}) {
		t.Fatalf("the PIM item got no X-CRM-ID:\n%s", obj.Data)
	}

	// Between the last cycle and the switch: a PIM edit, a deletion and
	// two reassignments in CRM.
	o, err := e.tasks.Get(ctx, e.href(edited.ID))
	if err != nil {
		t.Fatal(err)
	}
	data := strings.Replace(string(o.Data), "SUMMARY:edited", "SUMMARY:edited on PIM", 1)
	if _, err := e.tasks.Update(ctx, o.Href, o.ETag, []byte(data)); err != nil {
		t.Fatal(err)
	}
	if err := e.crm.Alice.Client.Delete(ctx, crm.EntityTask, deleted.ID, nil); err != nil {
		t.Fatal(err)
	}
	for _, id := range []crm.ID{moved.ID, trackedID} {
		if _, err := e.crm.Admin.Client.Update(ctx, crm.Record{Entity: crm.EntityTask, ID: id,
			Attrs: map[string]any{"ownerid": crm.Ref{Entity: crm.EntitySystemUser, ID: e.crm.Bob.ID}}}, nil); err != nil {
			t.Fatal(err)
		}
	}
	// The switch: the endpoint the bridge now talks to has another
	// subscription, which knows nothing of the changes above.
	sub, err := e.crm.Alice.Client.Subscribe(ctx, "desktop", crm.KindOutlook)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.crm.Alice.Client.DeleteSubscription(ctx, sub.ID); err != nil {
		t.Fatal(err)
	}

	for range 2 {
		if _, err := b.Cycle(ctx, bridge.CycleOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	r, err := e.crm.Admin.Client.Get(ctx, crm.EntityTask, edited.ID)
	if err != nil {
		t.Fatal(err)
	}
	if r.Attrs["subject"] != "edited on PIM" || e.pimSummary(edited.ID) != "edited on PIM" {
		t.Errorf("unsynced PIM edit: CRM %q, PIM %q, want both %q", r.Attrs["subject"], e.pimSummary(edited.ID), "edited on PIM")
	}
	for name, id := range map[string]crm.ID{"deleted in CRM": deleted.ID, "reassigned in CRM": moved.ID} {
		if _, err := e.tasks.Get(ctx, e.href(id)); err == nil {
			t.Errorf("the task %s around the switch is still on the PIM side", name)
		}
	}
	if _, err := e.tasks.Get(ctx, tracked); err != nil {
		t.Errorf("the task tracked from the PIM side and reassigned left the PIM side: %v", err)
	}
}
