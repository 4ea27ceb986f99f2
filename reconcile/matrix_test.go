package reconcile

import "testing"

// TestChangeMatrix has one row per cell: with and without a base, each
// side unchanged, new, modified or deleted (2 x 4 x 4 = 32 cells).
func TestChangeMatrix(t *testing.T) {
	const (
		U = Unchanged
		N = New
		M = Modified
		D = Deleted
	)
	tests := []struct {
		cell Cell
		want Outcome
	}{
		// No base: "unchanged" is "absent"; modified/deleted cannot happen.
		{Cell{false, U, U}, Nothing},
		{Cell{false, U, N}, CreateInCRM},
		{Cell{false, U, M}, Invalid},
		{Cell{false, U, D}, Invalid},
		{Cell{false, N, U}, CreateOnPIM},
		{Cell{false, N, N}, Link},
		{Cell{false, N, M}, Invalid},
		{Cell{false, N, D}, Invalid},
		{Cell{false, M, U}, Invalid},
		{Cell{false, M, N}, Invalid},
		{Cell{false, M, M}, Invalid},
		{Cell{false, M, D}, Invalid},
		{Cell{false, D, U}, Invalid},
		{Cell{false, D, N}, Invalid},
		{Cell{false, D, M}, Invalid},
		{Cell{false, D, D}, Invalid},
		// With a base: "new" cannot happen.
		{Cell{true, U, U}, Nothing},
		{Cell{true, U, N}, Invalid},
		{Cell{true, U, M}, UpdateCRM},
		{Cell{true, U, D}, ApplyPIMRemoval},
		{Cell{true, N, U}, Invalid},
		{Cell{true, N, N}, Invalid},
		{Cell{true, N, M}, Invalid},
		{Cell{true, N, D}, Invalid},
		{Cell{true, M, U}, UpdatePIM},
		{Cell{true, M, N}, Invalid},
		{Cell{true, M, M}, MergeBoth},
		{Cell{true, M, D}, ConflictPIMRemovalCRMEdit},
		{Cell{true, D, U}, ApplyCRMRemoval},
		{Cell{true, D, N}, Invalid},
		{Cell{true, D, M}, ConflictCRMRemovalPIMEdit},
		{Cell{true, D, D}, Forget},
	}
	seen := map[Cell]bool{}
	for _, tc := range tests {
		seen[tc.cell] = true
		t.Run(tc.cell.String(), func(t *testing.T) {
			if got := Classify(tc.cell); got != tc.want {
				t.Fatalf("Classify(%v) = %v, want %v", tc.cell, got, tc.want)
			}
		})
	}
	if len(seen) != 32 {
		t.Fatalf("table covers %d cells, want 32", len(seen))
	}
}

// TestChangeMatrix_MergeOutcomesAgreeWithMerge: for the update cells the
// merge sends fields only in the direction the matrix names.
func TestChangeMatrix_MergeOutcomesAgreeWithMerge(t *testing.T) {
	base := Fields{"subject": "s", "description": "d"}
	for _, tc := range []struct {
		cell     Cell
		crm, pim Fields
	}{
		{Cell{true, Modified, Unchanged}, Fields{"subject": "s2", "description": "d"}, base},
		{Cell{true, Unchanged, Modified}, base, Fields{"subject": "s", "description": "d2"}},
		{Cell{true, Unchanged, Unchanged}, base, base},
	} {
		t.Run(tc.cell.String(), func(t *testing.T) {
			p := Merge(MergeInput{Base: base, CRM: tc.crm, PIM: tc.pim})
			switch Classify(tc.cell) {
			case UpdatePIM:
				if len(p.ToCRM) != 0 || len(p.ToPIM) == 0 {
					t.Fatalf("UpdatePIM but plan %+v", p)
				}
			case UpdateCRM:
				if len(p.ToPIM) != 0 || len(p.ToCRM) == 0 {
					t.Fatalf("UpdateCRM but plan %+v", p)
				}
			case Nothing:
				if len(p.Steps) != 0 || p.SnapshotChanged(base) {
					t.Fatalf("Nothing but plan %+v", p)
				}
			}
		})
	}
}
