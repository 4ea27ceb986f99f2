package bridge_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/pimbridge/pimbridge/bridge"
	"github.com/pimbridge/pimbridge/crm"
)

// failPostSync fails the first n PostSync calls, as a lost reply would.
type failPostSync struct {
	bridge.CRM
	left *atomic.Int32
}

func (f failPostSync) PostSync(ctx context.Context, subID string, batchID uint64) (crm.PostSyncResult, error) {
	if f.left.Add(-1) >= 0 {
		return crm.PostSyncResult{}, errors.New("sim: postsync reply lost")
	}
	return f.CRM.PostSync(ctx, subID, batchID)
}

// Found by the end-to-end check (seed 179828114): a batch that was sent
// but not acknowledged is sent again with the rows it still covers; when
// every row of it moved on (here: the record was reassigned), it comes
// back empty, and a bridge that stops at an empty batch without
// acknowledging it gets the same empty batch on every cycle: nothing of
// that entity reaches the PIM side again.
func TestBridge_EmptyResentBatchIsAcknowledged(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	left := &atomic.Int32{}
	alice := e.crm.Alice.Client
	e.opts.CRM = failPostSync{CRM: alice, left: left}
	e.opts.Fenced = func(g int64) bridge.CRM { return failPostSync{CRM: alice.WithGeneration(g), left: left} }
	b := e.bridge(t)
	first, err := alice.Create(ctx, crm.Record{Entity: crm.EntityLetter, Attrs: map[string]any{"subject": "first"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	left.Store(1)
	if _, err := b.Cycle(ctx, bridge.CycleOptions{}); err == nil {
		t.Fatal("the cycle whose PostSync failed succeeded")
	}
	// The sent batch's only row moves on: reassigned to bob.
	if _, err := e.crm.Admin.Client.Update(ctx, crm.Record{Entity: crm.EntityLetter, ID: first.ID,
		Attrs: map[string]any{"ownerid": crm.Ref{Entity: crm.EntitySystemUser, ID: e.crm.Bob.ID}}}, nil); err != nil {
		t.Fatal(err)
	}
	second, err := alice.Create(ctx, crm.Record{Entity: crm.EntityLetter, Attrs: map[string]any{"subject": "second"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := b.Cycle(ctx, bridge.CycleOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.tasks.Get(ctx, e.href(second.ID)); err != nil {
		t.Fatalf("the letter created after the lost acknowledgement never reached the PIM side: %v", err)
	}
}
