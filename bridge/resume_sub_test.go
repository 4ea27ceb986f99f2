package bridge_test

import (
	"context"
	"strings"
	"testing"

	"github.com/pimbridge/pimbridge/bridge"
	"github.com/pimbridge/pimbridge/crm"
)

// otherEndpoint is the same server under another subscription: what the
// bridge meets at go-offline (the local API's subscription).
type otherEndpoint struct{ bridge.CRM }

func (o otherEndpoint) Subscribe(ctx context.Context, _ string, kind string) (crm.Subscription, error) {
	return o.CRM.Subscribe(ctx, "elsewhere", kind)
}

// TestBridge_SwitchBackResumesTheSubscription: the bridge leaves the
// server's subscription for another endpoint's (go-offline) with its full
// set read, and comes back to it (go-online). It resumes it instead of
// starting it over, so a record deleted meanwhile comes as a deletion: a
// task tracked from the PIM side and deleted in CRM leaves the PIM side,
// where a restarted full set would take it for left the view and keep it.
// A task made while away and reassigned before the server's subscription
// held it leaves the PIM side too: the resumed pass does not list it.
func TestBridge_SwitchBackResumesTheSubscription(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, s := range []string{"a", "b", "c", "d"} {
		e.task(t, "other "+s) // keeps the removal under the mass-deletion guard
	}
	ics := "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\nBEGIN:VTODO\r\nUID:pim-tracked\r\nSUMMARY:from PIM\r\nEND:VTODO\r\nEND:VCALENDAR\r\n"
	if _, err := e.tasks.Create(ctx, "pim-tracked.ics", []byte(ics)); err != nil {
		t.Fatal(err)
	}
	online := e.opts
	cycles := func(o bridge.Options) {
		b, err := bridge.New(o)
		if err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if _, err := b.Cycle(ctx, bridge.CycleOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	cycles(online)
	tracked := e.tasks.ObjectHref("pim-tracked.ics")
	obj, err := e.tasks.Get(ctx, tracked)
	if err != nil {
		t.Fatal(err)
	}
	var id crm.ID
	for _, line := range strings.Split(string(obj.Data), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimRight(line, "\r"), "X-CRM-ID:"); ok {
			if id, err = crm.ParseID(v); err != nil {
				t.Fatal(err)
			}
		}
	}
	if id == (crm.ID{}) {
		t.Fatalf("the PIM item got no X-CRM-ID:\n%s", obj.Data)
	}
	offline := e.opts
	offline.CRM = otherEndpoint{e.opts.CRM}
	fenced := e.opts.Fenced
	offline.Fenced = func(g int64) bridge.CRM { return otherEndpoint{fenced(g)} }
	cycles(offline)
	// Made while away and linked through the other endpoint, then moved
	// out of the user's view before the server's subscription ever held
	// it: it reports no removal of it, but its first pass leaves it out.
	away := e.task(t, "made while away")
	cycles(offline)
	if _, err := e.tasks.Get(ctx, e.href(away.ID)); err != nil {
		t.Fatalf("the task made while away did not reach the PIM side: %v", err)
	}
	if _, err := e.crm.Admin.Client.Update(ctx, crm.Record{Entity: crm.EntityTask, ID: away.ID,
		Attrs: map[string]any{"ownerid": crm.Ref{Entity: crm.EntitySystemUser, ID: e.crm.Bob.ID}}}, nil); err != nil {
		t.Fatal(err)
	}
	// Deleted before the bridge reads the other endpoint again.
	if err := e.crm.Alice.Client.Delete(ctx, crm.EntityTask, id, nil); err != nil {
		t.Fatal(err)
	}
	cycles(online)
	if _, err := e.tasks.Get(ctx, tracked); err == nil {
		t.Errorf("the task tracked from the PIM side and deleted in CRM is still on the PIM side")
	}
	if _, err := e.tasks.Get(ctx, e.href(away.ID)); err == nil {
		t.Errorf("the task made while away and reassigned is still on the PIM side")
	}
}
