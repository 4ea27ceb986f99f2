package bridge_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/pimbridge/pimbridge/bridge"
	"github.com/pimbridge/pimbridge/crm"
)

// TestCycle_collectionProgressPerCollection: a first cycle with 3 tasks and
// 2 contacts reports each collection from 0 to its own total, one step per
// pair, with the cycle's total on every report.
func TestCycle_collectionProgressPerCollection(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	for i := range 3 {
		e.task(t, fmt.Sprintf("task %d", i))
	}
	me := crm.Ref{Entity: crm.EntitySystemUser, ID: e.crm.Alice.ID}
	for i := range 2 {
		if _, err := e.crm.Alice.Client.Create(ctx, crm.Record{Entity: crm.EntityContact, Attrs: map[string]any{"lastname": fmt.Sprintf("c%d", i), "ownerid": me}}, nil); err != nil {
			t.Fatal(err)
		}
	}
	var got []bridge.CollectionProgress
	e.opts.CollectionProgress = func(p bridge.CollectionProgress) { got = append(got, p) }
	if _, err := e.bridge(t).Cycle(ctx, bridge.CycleOptions{}); err != nil {
		t.Fatal(err)
	}
	want := map[string]int{e.opts.Tasks.Href(): 3, e.opts.Contacts.Href(): 2}
	next := map[string]int{}
	for _, p := range got {
		if p.CycleTotal != 5 || p.Total != want[p.Collection] || p.Done != next[p.Collection] {
			t.Fatalf("report %+v out of step (want done %d, total %d of 5); all: %+v", p, next[p.Collection], want[p.Collection], got)
		}
		next[p.Collection]++
	}
	for col, n := range want {
		if next[col] != n+1 {
			t.Errorf("%s: %d reports, want %d (0 to %d)", col, next[col], n+1, n)
		}
	}
}
