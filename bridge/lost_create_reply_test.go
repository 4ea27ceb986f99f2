package bridge_test

import (
	"context"
	"fmt"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/pimbridge/pimbridge/bridge"
	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/pim"
)

// lostCreateReply applies the bridge's creates on the PIM side but loses
// their replies: the bridge never learns that its write happened.
type lostCreateReply struct{ bridge.Collection }

func (c lostCreateReply) Create(ctx context.Context, name string, data []byte) (pim.Ref, error) {
	if _, err := c.Collection.Create(ctx, name, data); err != nil {
		return pim.Ref{}, err
	}
	return pim.Ref{}, fmt.Errorf("lost reply of the create of %s: %w", name, syscall.ECONNRESET)
}

// TestBridge_CreateOnPIMReplyLostKeepsPIMEdit: the bridge writes a CRM
// record to the PIM side and the reply is lost; the user edits the object,
// then the record changes in CRM (another field, later: what the replay of
// an offline create does to modifiedon). What the bridge wrote is the
// pair's base, so the user's edit is a PIM edit and both edits are kept,
// not a base-less link that the later CRM side wins whole.
func TestBridge_CreateOnPIMReplyLostKeepsPIMEdit(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, s := range []string{"a", "b"} {
		e.task(t, "other "+s)
	}
	b := e.bridge(t)
	if _, err := b.Cycle(ctx, bridge.CycleOptions{}); err != nil {
		t.Fatal(err)
	}
	r := e.task(t, "written")
	lost := e.opts
	lost.Tasks = lostCreateReply{e.opts.Tasks}
	lb, err := bridge.New(lost)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = lb.Cycle(ctx, bridge.CycleOptions{}) // the create's reply is lost
	o, err := e.tasks.Get(ctx, e.href(r.ID))
	if err != nil {
		t.Fatalf("the bridge did not write the task to the PIM side: %v", err)
	}
	edited := time.Now().UTC().Add(-time.Minute).Format("20060102T150405Z")
	data := regexp.MustCompile(`(?m)^LAST-MODIFIED:.*\r\n`).ReplaceAllString(string(o.Data), "")
	data = regexp.MustCompile(`(?m)^SUMMARY:.*\r\n`).ReplaceAllString(data, "SUMMARY:typed on PIM\r\nLAST-MODIFIED:"+edited+"\r\n")
	if _, err := e.tasks.Update(ctx, o.Href, o.ETag, []byte(data)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.crm.Alice.Client.Update(ctx, crm.Record{Entity: crm.EntityTask, ID: r.ID,
		Attrs: map[string]any{"description": "noted in CRM"}}, nil); err != nil {
		t.Fatal(err)
	}
	b = e.bridge(t)
	for range 2 {
		if _, err := b.Cycle(ctx, bridge.CycleOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := e.crm.Admin.Client.Get(ctx, crm.EntityTask, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Attrs["subject"] != "typed on PIM" || got.Attrs["description"] != "noted in CRM" {
		t.Errorf("CRM = subject %q, description %q; want %q, %q", got.Attrs["subject"], got.Attrs["description"], "typed on PIM", "noted in CRM")
	}
	if s := e.pimSummary(r.ID); s != "typed on PIM" {
		t.Errorf("PIM summary = %q, want %q", s, "typed on PIM")
	}
}

// TestBridge_CreateOnPIMReplyLostThenReassignedLeavesPIM: the bridge
// writes a CRM task to the PIM side and the reply is lost; a manager then
// reassigns the task. The object the bridge wrote is read (its pending
// base), so the removal reaches it: it leaves the PIM side, instead of
// staying there as an orphan the bridge took for never written.
func TestBridge_CreateOnPIMReplyLostThenReassignedLeavesPIM(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, s := range []string{"a", "b", "c", "d"} {
		e.task(t, "other "+s) // keeps the removal under the mass-deletion guard
	}
	b := e.bridge(t)
	if _, err := b.Cycle(ctx, bridge.CycleOptions{}); err != nil {
		t.Fatal(err)
	}
	r := e.task(t, "written")
	lost := e.opts
	lost.Tasks = lostCreateReply{e.opts.Tasks}
	lb, err := bridge.New(lost)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = lb.Cycle(ctx, bridge.CycleOptions{}) // the create's reply is lost
	if _, err := e.tasks.Get(ctx, e.href(r.ID)); err != nil {
		t.Fatalf("the bridge did not write the task to the PIM side: %v", err)
	}
	if _, err := e.crm.Admin.Client.Update(ctx, crm.Record{Entity: crm.EntityTask, ID: r.ID,
		Attrs: map[string]any{"ownerid": crm.Ref{Entity: crm.EntitySystemUser, ID: e.crm.Bob.ID}}}, nil); err != nil {
		t.Fatal(err)
	}
	b = e.bridge(t)
	for range 2 {
		if _, err := b.Cycle(ctx, bridge.CycleOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.tasks.Get(ctx, e.href(r.ID)); err == nil {
		t.Errorf("the task reassigned away is still on the PIM side")
	}
}
