package offline

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/pimbridge/pimbridge/crm"
)

// The local API serves the change feed over the replica: a write made
// there while offline wakes a wait on a local subscription at once.
func TestLocalAPI_ChangeFeedWakesOnOfflineWrite(t *testing.T) {
	ctx := context.Background()
	_, _, lc := offlineAlice(t, nil, 2)
	sub, err := lc.Subscribe(ctx, "pim", crm.KindOutlook)
	if err != nil {
		t.Fatal(err)
	}
	first, err := lc.WaitChanges(ctx, sub.ID, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	type res struct {
		a   crm.FeedAnswer
		err error
		at  time.Time
	}
	ch := make(chan res, 1)
	go func() {
		a, err := lc.WaitChanges(ctx, sub.ID, first.Cursor, 20*time.Second)
		ch <- res{a, err, time.Now()}
	}()
	time.Sleep(300 * time.Millisecond)
	if _, err := lc.Create(ctx, crm.Record{Entity: crm.EntityContact, Attrs: map[string]any{"lastname": "Offline live"}}, nil); err != nil {
		t.Fatal(err)
	}
	committed := time.Now()
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	if !r.a.Changed || !slices.Contains(r.a.Entities, crm.EntityContact) {
		t.Fatalf("answer %+v, want contact changed", r.a)
	}
	if d := r.at.Sub(committed); d > time.Second {
		t.Errorf("woken %v after the offline write, want at once", d)
	}
}
