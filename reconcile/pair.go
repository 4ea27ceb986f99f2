package reconcile

// PairInput is everything reconcile needs to decide about one pair (or one
// unpaired item) in a cycle.
type PairInput struct {
	Kind Kind
	// Cell: whether the pair has a base and the change on each side.
	Cell Cell
	// CRMEvent and PIMEvent say which removal a Deleted change is
	// (CRMDeleted or LeftFilter; PIMDeleted or PIMUntracked). Zero means
	// CRMDeleted and PIMDeleted.
	CRMEvent, PIMEvent Event
	// Facts feed the deletion rules.
	Facts Facts
	// Fields feeds the merge: Base is ignored (taken as nil) for cells
	// without a base, and the side that does not exist yet is empty.
	Fields MergeInput
}

// PairPlan is the decision for one pair.
type PairPlan struct {
	Outcome Outcome
	// Merge is set for the outcomes that write fields: CreateOnPIM,
	// CreateInCRM (all fields of the source side), Link, UpdatePIM,
	// UpdateCRM and MergeBoth.
	Merge *Plan
	// Deletion is set for the removal outcomes; Deletion.Action is already
	// adjusted by SparingEdit for the conflict cells. Forget has no rule.
	Deletion *Decision
}

// Reconcile runs the change matrix for one pair and then the merge or the
// deletion rules the cell calls for. It is pure and deterministic.
func Reconcile(in PairInput) PairPlan {
	out := PairPlan{Outcome: Classify(in.Cell)}
	mi := in.Fields
	if !in.Cell.HasBase {
		mi.Base = nil
	}
	crmEv, pimEv := in.CRMEvent, in.PIMEvent
	if crmEv == 0 {
		crmEv = CRMDeleted
	}
	if pimEv == 0 {
		pimEv = PIMDeleted
	}
	decide := func(ev Event, edited Side) {
		d, ok := Decide(in.Kind, ev, in.Facts)
		if !ok {
			out.Outcome = Invalid
			return
		}
		if edited != 0 {
			d.Action = SparingEdit(d.Action, edited)
		}
		out.Deletion = &d
	}
	switch out.Outcome {
	case CreateOnPIM:
		mi.PIM = nil
		p := Merge(mi)
		out.Merge = &p
	case CreateInCRM:
		mi.CRM = nil
		p := Merge(mi)
		out.Merge = &p
	case Link, UpdatePIM, UpdateCRM, MergeBoth:
		p := Merge(mi)
		out.Merge = &p
	case ApplyPIMRemoval:
		decide(pimEv, 0)
	case ApplyCRMRemoval:
		decide(crmEv, 0)
	case ConflictPIMRemovalCRMEdit:
		decide(pimEv, SideCRM)
	case ConflictCRMRemovalPIMEdit:
		decide(crmEv, SidePIM)
	}
	return out
}
