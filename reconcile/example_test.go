package reconcile_test

import (
	"fmt"
	"time"

	"github.com/pimbridge/pimbridge/reconcile"
)

// Seed 004's example: the PIM user edits A, B and C; later a CRM user edits
// A and B. CRM->PIM runs first, then PIM->CRM.
func ExampleMerge() {
	t1 := time.Date(2026, 5, 4, 9, 0, 0, 0, time.UTC)
	p := reconcile.Merge(reconcile.MergeInput{
		Base: reconcile.Fields{"a": "A", "b": "B", "c": "C"},
		PIM:  reconcile.Fields{"a": "A1", "b": "B1", "c": "C1"}, PIMTime: t1,
		CRM: reconcile.Fields{"a": "A2", "b": "B2", "c": "C"}, CRMTime: t1.Add(time.Hour),
	})
	for _, s := range p.Steps {
		fmt.Println(s.Dir, s.Fields, "snapshot", s.Snapshot)
	}
	// Output:
	// crm->pim map[a:A2 b:B2] snapshot map[a:A2 b:B2 c:C]
	// pim->crm map[c:C1] snapshot map[a:A2 b:B2 c:C1]
}
