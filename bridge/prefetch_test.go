package bridge_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/pimbridge/pimbridge/bridge"
	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/pim"
	"github.com/pimbridge/pimbridge/pim/davcalendar"
	"github.com/pimbridge/pimbridge/pim/davext"
)

// countingGets is a DAV collection that counts single GETs.
type countingGets struct {
	*davext.Collection
	gets atomic.Int64
}

func (c *countingGets) Get(ctx context.Context, href string) (pim.Object, error) {
	c.gets.Add(1)
	return c.Collection.Get(ctx, href)
}

// TestBridge_PassReadsPIMObjectsByMultiget: a pass that writes CRM changes
// over PIM objects it did not list reads them with one multiget per
// collection (and per 50 pairs), not one GET each: a burst of CRM edits
// costs a round trip, not one per pair, before its PUTs.
func TestBridge_PassReadsPIMObjectsByMultiget(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	col := &countingGets{Collection: e.opts.Tasks.(*davcalendar.Calendar).Collection}
	e.opts.Tasks = col
	b := e.bridge(t)
	var ids []crm.ID
	for i := range 12 {
		ids = append(ids, e.task(t, fmt.Sprintf("t%d", i)).ID)
	}
	if _, err := b.Cycle(ctx, bridge.CycleOptions{}); err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		e.setSubject(t, id, fmt.Sprintf("edited %d", i))
	}
	col.gets.Store(0)
	st, err := b.Cycle(ctx, bridge.CycleOptions{Light: true, CRMEntities: []string{crm.EntityTask}})
	if err != nil {
		t.Fatal(err)
	}
	if st.ToPIM.Updated != len(ids) {
		t.Fatalf("light pass updated %d PIM objects, want %d (%+v)", st.ToPIM.Updated, len(ids), st)
	}
	for i, id := range ids {
		if got, want := e.pimSummary(id), fmt.Sprintf("edited %d", i); got != want {
			t.Errorf("task %d on the DAV server: %q, want %q", i, got, want)
		}
	}
	if n := col.gets.Load(); n != 0 {
		t.Errorf("the pass made %d single GETs for %d pairs, want 0 (one multiget)", n, len(ids))
	}
}
