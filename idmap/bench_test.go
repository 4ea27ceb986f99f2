package idmap

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/pimbridge/pimbridge/crm"
)

// BenchmarkTx_ChangeSet measures one cycle's commit for a collection: per
// item a lookup by PIM key, a change recorded and completed, a snapshot
// and an ETag written, plus the cursor, all in one transaction.
func BenchmarkTx_ChangeSet(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprintf("items=%d", n), func(b *testing.B) {
			ctx := context.Background()
			s, err := Open(ctx, b.TempDir()+"/bench.db")
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			entries := make([]EntryID, n)
			err = s.Tx(ctx, func(tx *Tx) error {
				for i := range entries {
					entries[i] = EntryID{Collection: "/c/", Href: fmt.Sprintf("/c/%d.vcf", i)}
					if _, err := tx.Insert(ctx, Mapping{CRMEntity: crm.EntityContact, CRMID: crm.NewID(),
						Entry: entries[i], ObjectType: ObjectContact, Linked: true}); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
			snap := Snapshot{Fields: make([]byte, 600), Raw: make([]byte, 1500)}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				err := s.Tx(ctx, func(tx *Tx) error {
					for _, e := range entries {
						m, err := tx.ByPIM(ctx, e)
						if err != nil {
							return err
						}
						p, err := tx.RecordChange(ctx, m.MapID, SidePIM, ChangeModified, time.Now())
						if err != nil {
							return err
						}
						if err := tx.PutSnapshot(ctx, m.MapID, snap); err != nil {
							return err
						}
						if err := tx.SetETag(ctx, m.MapID, fmt.Sprint(i)); err != nil {
							return err
						}
						if err := tx.Complete(ctx, m.MapID, p.Seq); err != nil {
							return err
						}
					}
					return tx.SetCursor(ctx, "a", "/c/", fmt.Sprint(i))
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "items/s")
		})
	}
}
