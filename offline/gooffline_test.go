package offline

import (
	"context"
	"testing"
	"time"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmtest"
)

func TestSizer(t *testing.T) {
	set := BatchSettings{RowsBatchSize: 100, MinBatchTime: 10 * time.Second, MaxBatchTime: 60 * time.Second, IncreaseRate: 2, DecreaseRate: 2}
	tests := []struct {
		name  string
		count int64
		steps []time.Duration
		want  []int
	}{
		{"initial is min(count, rows)", 30, nil, []int{30}},
		{"initial capped by rows_batch_size", 1000, nil, []int{100}},
		{"fast grows", 1000, []time.Duration{time.Second, time.Second}, []int{100, 200, 400}},
		{"slow shrinks", 1000, []time.Duration{61 * time.Second, 61 * time.Second}, []int{100, 50, 25}},
		{"in between keeps", 1000, []time.Duration{30 * time.Second}, []int{100, 100}},
		{"never below one", 1, []time.Duration{time.Minute * 2, time.Minute * 2}, []int{1, 1, 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := NewSizer(set, tc.count)
			got := []int{s.Size()}
			for _, d := range tc.steps {
				s.Observe(d)
				got = append(got, s.Size())
			}
			for i := range tc.want {
				if got[i] != tc.want[i] {
					t.Fatalf("sizes = %v, want %v", got, tc.want)
				}
			}
		})
	}
}

func TestEngine_GoOffline(t *testing.T) {
	ctx := context.Background()
	srv := crmtest.Start(t, nil)
	seedContacts(t, srv, srv.Alice.ID, 250, "alice")
	seedContacts(t, srv, srv.Bob.ID, 40, "bob")
	var steps []Progress
	e := openEngine(t, "", &Options{Batch: BatchSettings{RowsBatchSize: 64}, Progress: func(p Progress) { steps = append(steps, p) }})
	rep, err := e.GoOffline(ctx, srv.Alice.Client, aliceCred())
	if err != nil {
		t.Fatalf("GoOffline: %v", err)
	}
	sameRecords(t, "contacts", serverRecords(t, srv, crm.EntityContact, srv.Alice.ID), storeRecords(t, e.Replica(), crm.EntityContact, crm.ID{}))
	if st, _ := e.State(ctx); st != Offline {
		t.Errorf("state = %v, want Offline", st)
	}
	// 250 contacts at 64, 128 (grown: fast batches) -> 2 batches + the rest.
	if rep.Batches < 2 || len(steps) == 0 || steps[len(steps)-1].Done != rep.Rows {
		t.Errorf("report %+v, progress %+v", rep, steps)
	}
	var sizes []int
	for _, p := range steps {
		if p.Entity == crm.EntityContact {
			sizes = append(sizes, p.BatchSize)
		}
	}
	if len(sizes) != 3 || sizes[0] != 128 || sizes[1] != 256 {
		t.Errorf("contact batch sizes after each batch = %v, want [128 256 512] (64 grown by increase_rate)", sizes)
	}
	// Incremental: a change, a delete and an ownership change on the server.
	all := serverRecords(t, srv, crm.EntityContact, srv.Alice.ID)
	var ids []crm.ID
	for id := range all {
		ids = append(ids, id)
	}
	if _, err := srv.Alice.Client.Update(ctx, crm.Record{Entity: crm.EntityContact, ID: ids[0], Attrs: map[string]any{"jobtitle": "Boss"}}, nil); err != nil {
		t.Fatal(err)
	}
	if err := srv.Alice.Client.Delete(ctx, crm.EntityContact, ids[1], nil); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Admin.Client.Update(ctx, crm.Record{Entity: crm.EntityContact, ID: ids[2], Attrs: map[string]any{"ownerid": crm.Ref{Entity: crm.EntitySystemUser, ID: srv.Bob.ID}}}, nil); err != nil {
		t.Fatal(err)
	}
	rep, err = e.GoOffline(ctx, srv.Alice.Client, aliceCred())
	if err != nil {
		t.Fatalf("incremental GoOffline: %v", err)
	}
	if rep.Rows != 3 {
		t.Errorf("incremental run moved %d rows, want 3", rep.Rows)
	}
	sameRecords(t, "contacts after refresh", serverRecords(t, srv, crm.EntityContact, srv.Alice.ID), storeRecords(t, e.Replica(), crm.EntityContact, crm.ID{}))
	infos, err := srv.Alice.Client.SyncInfo(ctx, rep.Subscription)
	if err != nil || len(infos) != 2 {
		t.Fatalf("syncinfo = %v, %v; want 2 runs", infos, err)
	}
}
