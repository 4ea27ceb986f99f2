package reconcile

import "testing"

func TestReconcile(t *testing.T) {
	base := Fields{"subject": "Call Ann", "description": "old"}
	for _, tc := range []struct {
		name     string
		in       PairInput
		outcome  Outcome
		action   Action // for removals
		toCRM    Fields // for writes
		toPIM    Fields
		noMerge  bool
		noRemove bool
	}{
		{
			name:    "new CRM task is created on PIM with all fields",
			in:      PairInput{Kind: KindTask, Cell: Cell{false, New, Unchanged}, Fields: MergeInput{CRM: base}},
			outcome: CreateOnPIM, toCRM: Fields{}, toPIM: base,
		},
		{
			name: "new tracked PIM contact is created in CRM without the one-way ORG",
			in: PairInput{Kind: KindContact, Cell: Cell{false, Unchanged, New}, Fields: MergeInput{
				PIM: Fields{"firstname": "Ann", "org": "Acme"}, OneWay: map[string]Direction{"org": ToPIM}}},
			outcome: CreateInCRM, toCRM: Fields{"firstname": "Ann"}, toPIM: Fields{},
		},
		{
			name: "stale base is ignored without a base",
			in: PairInput{Kind: KindTask, Cell: Cell{false, New, New}, Fields: MergeInput{
				Base: Fields{"subject": "stale"}, CRM: base, PIM: base}},
			outcome: Link, toCRM: Fields{}, toPIM: Fields{},
		},
		{
			name: "both edited: merge",
			in: PairInput{Kind: KindTask, Cell: Cell{true, Modified, Modified}, Fields: MergeInput{Base: base,
				CRM: Fields{"subject": "Call Ann", "description": "new"}, PIM: Fields{"subject": "Call Bob", "description": "old"}}},
			outcome: MergeBoth, toCRM: Fields{"subject": "Call Bob"}, toPIM: Fields{"description": "new"},
		},
		{
			name: "contact untracked on PIM with the setting is deleted in CRM",
			in: PairInput{Kind: KindContact, Cell: Cell{true, Unchanged, Deleted}, PIMEvent: PIMUntracked,
				Facts: Facts{UntrackDeletesInCRM: true}},
			outcome: ApplyPIMRemoval, action: DeleteInCRM,
		},
		{
			name:    "open task deleted on PIM but edited in CRM is unlinked, not deleted",
			in:      PairInput{Kind: KindTask, Cell: Cell{true, Modified, Deleted}},
			outcome: ConflictPIMRemovalCRMEdit, action: Unlink,
		},
		{
			name:    "future appointment deleted in CRM but edited on PIM is unlinked, not deleted",
			in:      PairInput{Kind: KindAppointment, Cell: Cell{true, Deleted, Modified}, Facts: Facts{StartInFuture: true}},
			outcome: ConflictCRMRemovalPIMEdit, action: Unlink,
		},
		{
			name: "reassigned contact leaves the PIM side",
			in: PairInput{Kind: KindContact, Cell: Cell{true, Deleted, Unchanged}, CRMEvent: LeftFilter,
				Facts: Facts{UserIsOwner: false}},
			outcome: ApplyCRMRemoval, action: DeleteOnPIM,
		},
		{
			name:    "gone on both sides: forget",
			in:      PairInput{Kind: KindContact, Cell: Cell{true, Deleted, Deleted}},
			outcome: Forget, noMerge: true, noRemove: true,
		},
		{
			name:    "invalid cell",
			in:      PairInput{Kind: KindContact, Cell: Cell{true, New, Unchanged}},
			outcome: Invalid, noMerge: true, noRemove: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := Reconcile(tc.in)
			if p.Outcome != tc.outcome {
				t.Fatalf("Outcome = %v, want %v", p.Outcome, tc.outcome)
			}
			switch {
			case tc.action != 0:
				if p.Deletion == nil || p.Deletion.Action != tc.action || p.Merge != nil {
					t.Fatalf("Deletion = %+v, Merge = %+v, want action %v only", p.Deletion, p.Merge, tc.action)
				}
			case tc.noMerge && tc.noRemove:
				if p.Deletion != nil || p.Merge != nil {
					t.Fatalf("plan = %+v, want neither merge nor deletion", p)
				}
			default:
				if p.Merge == nil || p.Deletion != nil {
					t.Fatalf("plan = %+v, want a merge", p)
				}
				if !p.Merge.ToCRM.Equal(tc.toCRM) || !p.Merge.ToPIM.Equal(tc.toPIM) {
					t.Fatalf("ToCRM = %v, ToPIM = %v, want %v, %v", p.Merge.ToCRM, p.Merge.ToPIM, tc.toCRM, tc.toPIM)
				}
			}
		})
	}
}
