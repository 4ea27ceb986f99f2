package crmstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmserver"
	"github.com/pimbridge/pimbridge/crm/crmstore"
	"golang.org/x/crypto/bcrypt"
)

// TestStore_FullSetReportsTombstones: a store opened with
// FullSetReportsTombstones (the offline engine's replica) gives a new
// subscription's full set a delete row for a record deleted before the
// subscription existed; a store without it (the server) does not.
func TestStore_FullSetReportsTombstones(t *testing.T) {
	for _, on := range []bool{true, false} {
		st, err := crmstore.Open(context.Background(), t.TempDir()+"/crm.db", &crmstore.Options{BcryptCost: bcrypt.MinCost, FullSetReportsTombstones: on})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		u, _ := st.CreateUser(ctx, "alice", "alice-password")
		if err := st.BulkInsert(ctx, "contact", contacts(u.ID, 3, 0)); err != nil {
			t.Fatal(err)
		}
		m, _ := st.Metadata(ctx)
		e, _ := m.Entity("contact")
		var gone crm.ID
		if err := st.Update(ctx, func(tx crmserver.Tx) error {
			recs, err := tx.Query(ctx, e, crm.Query{}, crmserver.QueryOptions{})
			if err != nil {
				return err
			}
			gone = recs[0].ID
			return tx.Delete(ctx, e, gone)
		}); err != nil {
			t.Fatal(err)
		}
		x, _ := crm.ParseFilter("ownerid eq @me")
		specs := []crmserver.SyncSpec{{Entity: e, Filter: x, Hash: "h"}}
		sub, _ := st.Subscribe(ctx, u.ID, "c", crm.KindOutlook)
		if _, err := st.Prepare(ctx, sub, specs, u.ID, time.Now()); err != nil {
			t.Fatal(err)
		}
		var ups int
		var dels []crm.ID
		for {
			p, ok, err := st.NextBatch(ctx, sub, crmserver.SyncBatchRequest{Spec: crmserver.SyncSpec{Entity: e}, Max: 100})
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
			ups += len(b.Upserts)
			dels = append(dels, b.Deletes...)
			if _, err := st.PostSync(ctx, sub, b.ID); err != nil {
				t.Fatal(err)
			}
		}
		st.Close()
		switch {
		case ups != 2:
			t.Errorf("FullSetReportsTombstones=%v: %d upserts, want 2", on, ups)
		case on && (len(dels) != 1 || dels[0] != gone):
			t.Errorf("FullSetReportsTombstones=%v: deletes %v, want the record deleted before the subscription, %s", on, dels, gone)
		case !on && len(dels) != 0:
			t.Errorf("FullSetReportsTombstones=%v: deletes %v, want none", on, dels)
		}
	}
}
