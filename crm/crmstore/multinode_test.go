package crmstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmserver"
	"github.com/pimbridge/pimbridge/crm/crmstore"
	"github.com/pimbridge/pimbridge/crm/crmtest"
	"golang.org/x/crypto/bcrypt"
)

// Tests of several server processes ("nodes") on one PostgreSQL database:
// each node is its own Store on the same URL. They run on PostgreSQL
// whatever crmtest.EnvBackend says (SQLite has one process).

func openNodes(t *testing.T, n int) []*crmstore.Store {
	t.Helper()
	dsn := crmtest.PostgresServer(t).NewDatabase(t)
	var out []*crmstore.Store
	for range n {
		st, err := crmstore.Open(context.Background(), dsn, &crmstore.Options{BcryptCost: bcrypt.MinCost})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		out = append(out, st)
	}
	return out
}

// syncAll runs prepare and every batch (with postsync) of one
// subscription and returns the records it was sent (id -> version).
func syncAll(t *testing.T, st *crmstore.Store, sub crmserver.Subscription, e *crm.Entity, got map[crm.ID]int64) {
	t.Helper()
	ctx := context.Background()
	spec := crmserver.SyncSpec{Entity: e, Hash: "all"}
	if _, err := st.Prepare(ctx, sub, []crmserver.SyncSpec{spec}, crm.ID{}, time.Now()); err != nil {
		t.Fatalf("prepare: %v", err)
	}
	for {
		p, ok, err := st.NextBatch(ctx, sub, crmserver.SyncBatchRequest{Spec: spec, Now: time.Now(), Max: 100})
		if err != nil {
			t.Fatalf("batch: %v", err)
		}
		if !ok {
			return
		}
		b, err := crm.DecodeBatchPayload(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range b.Upserts {
			got[r.ID] = r.Version
		}
		if _, err := st.PostSync(ctx, sub, b.ID); err != nil {
			t.Fatalf("postsync: %v", err)
		}
	}
}

// TestPostgres_LateCommitNeverSkipped is the late-commit case: node 1
// takes a version inside a long transaction; node 2 writes and commits
// meanwhile; a sync client prepares on node 2, then node 1 commits. The
// client must still get node 1's record: versions commit in version
// order (the write lock), so a prepare never moves its cursor past a
// version that commits later.
func TestPostgres_LateCommitNeverSkipped(t *testing.T) {
	nodes := openNodes(t, 2)
	ctx := context.Background()
	m, _ := nodes[0].Metadata(ctx)
	e, _ := m.Entity(crm.EntityContact)
	owner := crm.NewID()
	sub, err := nodes[1].Subscribe(ctx, owner, "laptop", crmserver.KindOffline)
	if err != nil {
		t.Fatal(err)
	}
	got := map[crm.ID]int64{}
	syncAll(t, nodes[1], sub, e, got)

	late, early := contacts(owner, 2, 0)[0], contacts(owner, 2, 0)[1]
	late.ID, early.ID = crm.NewID(), crm.NewID()
	inserted, release := make(chan struct{}), make(chan struct{})
	lateDone := make(chan error, 1)
	go func() {
		lateDone <- nodes[0].Update(ctx, func(tx crmserver.Tx) error {
			if _, err := tx.Insert(ctx, e, late); err != nil {
				return err
			}
			close(inserted)
			select { // a long transaction
			case <-release:
			case <-time.After(60 * time.Second):
			}
			return nil
		})
	}()
	<-inserted
	earlyDone := make(chan error, 1)
	go func() {
		earlyDone <- nodes[1].Update(ctx, func(tx crmserver.Tx) error {
			_, err := tx.Insert(ctx, e, early)
			return err
		})
	}()
	// The sync client prepares while node 1's transaction is open.
	synced := make(chan struct{})
	go func() {
		defer close(synced)
		select {
		case <-earlyDone:
		case <-time.After(2 * time.Second):
		}
		syncAll(t, nodes[1], sub, e, got)
	}()
	select {
	case <-synced:
	case <-time.After(2 * time.Second):
	}
	close(release)
	if err := <-lateDone; err != nil {
		t.Fatal(err)
	}
	<-synced
	syncAll(t, nodes[1], sub, e, got)
	syncAll(t, nodes[0], sub, e, got)
	for name, id := range map[string]crm.ID{"late": late.ID, "early": early.ID} {
		if _, ok := got[id]; !ok {
			t.Errorf("the %s commit (%s) never reached the sync client; it got %v", name, id, got)
		}
	}
}

// TestStore_RecordDeletedAfterPrepareLeavesTheBatch: a record deleted
// between prepare and its batch is not left pending: batches come to an
// end (BatchEmpty) without another prepare, instead of cutting a new batch
// for the gone record forever. Runs on the backend under test.
func TestStore_RecordDeletedAfterPrepareLeavesTheBatch(t *testing.T) {
	ctx := context.Background()
	st := openTest(t, t.TempDir())
	defer st.Close()
	m, _ := st.Metadata(ctx)
	e, _ := m.Entity(crm.EntityContact)
	owner := crm.NewID()
	recs := contacts(owner, 3, 0)
	if err := st.BulkInsert(ctx, crm.EntityContact, recs); err != nil {
		t.Fatal(err)
	}
	sub, err := st.Subscribe(ctx, owner, "laptop", crmserver.KindOffline)
	if err != nil {
		t.Fatal(err)
	}
	spec := crmserver.SyncSpec{Entity: e, Hash: "all"}
	if _, err := st.Prepare(ctx, sub, []crmserver.SyncSpec{spec}, owner, time.Now()); err != nil {
		t.Fatal(err)
	}
	var all []crm.Record
	st.View(ctx, func(tx crmserver.Tx) error {
		all, err = tx.Query(ctx, e, crm.Query{}, crmserver.QueryOptions{})
		return err
	})
	if err := st.Update(ctx, func(tx crmserver.Tx) error { return tx.Delete(ctx, e, all[0].ID) }); err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		if i == 10 {
			t.Fatalf("still cutting batches after %d; the deleted record stays pending", i)
		}
		p, ok, err := st.NextBatch(ctx, sub, crmserver.SyncBatchRequest{Spec: spec, Me: owner, Now: time.Now(), Max: 2, LeftRows: true})
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		b, err := crm.DecodeBatchPayload(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range b.Upserts {
			if r.ID == all[0].ID {
				t.Errorf("the deleted record was sent")
			}
		}
		if _, err := st.PostSync(ctx, sub, b.ID); err != nil {
			t.Fatal(err)
		}
	}
}
