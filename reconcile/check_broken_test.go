package reconcile

import (
	"strings"
	"testing"
)

// Each invariant of the planner check must fail when the rule it guards is
// broken on purpose. The broken rules live here, as planners wrapping
// Reconcile; production code is untouched.
var brokenPlanners = []struct {
	inv  string
	name string
	p    planner
}{
	{invTerminates, "PingPongOnEveryQuietPair", func(in PairInput) PairPlan {
		out := Reconcile(in)
		if out.Outcome != Nothing || !in.Cell.HasBase {
			return out
		}
		next := "ping"
		if in.Fields.PIM["ping"] == "ping" {
			next = "pong"
		}
		p := Plan{ToPIM: Fields{"ping": next}, Snapshot: in.Fields.Base.Compact()}
		p.Steps = []Step{{Dir: ToPIM, Fields: p.ToPIM, Snapshot: p.Snapshot}}
		return PairPlan{Outcome: UpdatePIM, Merge: &p}
	}},
	{invConverges, "CRMOnlyEditsNeverSent", func(in PairInput) PairPlan {
		out := Reconcile(in)
		if out.Outcome == UpdatePIM {
			return PairPlan{Outcome: Nothing}
		}
		return out
	}},
	{invOneSideEdit, "LaterSideOverwritesTheWholeItem", func(in PairInput) PairPlan {
		if Classify(in.Cell) == MergeBoth {
			if in.Fields.PIMTime.After(in.Fields.CRMTime) {
				in.Fields.Base = in.Fields.CRM
			} else {
				in.Fields.Base = in.Fields.PIM
			}
		}
		return Reconcile(in)
	}},
	{invLaterSide, "EarlierSideWinsConflicts", func(in PairInput) PairPlan {
		in.Fields.CRMTime, in.Fields.PIMTime = in.Fields.PIMTime, in.Fields.CRMTime
		return Reconcile(in)
	}},
	{invDeletionRule, "ContactDeletedOnPIMDeletedInCRM", func(in PairInput) PairPlan {
		out := Reconcile(in)
		if out.Deletion != nil && out.Deletion.Action == MarkDeletedLocally {
			d := *out.Deletion
			d.Action = DeleteInCRM
			out.Deletion = &d
		}
		return out
	}},
	// The old bridge: a record the user can no longer read is
	// taken for a tombstone.
	{invPIMTracked, "LeftFilterTakenForTombstone", func(in PairInput) PairPlan {
		if in.CRMEvent == LeftFilter {
			in.CRMEvent = CRMDeleted
		}
		return Reconcile(in)
	}},
	// A classification that takes a real cell for impossible: both sides
	// edited since the snapshot answered as Invalid.
	{invPlanValid, "BothSidesEditedTakenForInvalid", func(in PairInput) PairPlan {
		if Classify(in.Cell) == MergeBoth {
			return PairPlan{Outcome: Invalid}
		}
		return Reconcile(in)
	}},
	{invNoDuplicates, "RelinkCreatesAgain", func(in PairInput) PairPlan {
		out := Reconcile(in)
		if out.Outcome == Link {
			in.Fields.PIM = nil
			p := Merge(in.Fields)
			return PairPlan{Outcome: CreateOnPIM, Merge: &p}
		}
		return out
	}},
}

// TestRandomizedPlanner_CatchesBrokenRule runs the check with each broken
// rule and expects its invariant to fail within the usual 2,000 cases,
// shrunk to a small case printed as a test.
func TestRandomizedPlanner_CatchesBrokenRule(t *testing.T) {
	for _, bp := range brokenPlanners {
		t.Run(bp.inv+"/"+bp.name, func(t *testing.T) {
			for seed := uint64(1); seed <= defaultPlannerCases; seed++ {
				c := genCase(seed)
				if !hasInv(runCase(c, bp.p), bp.inv) {
					continue
				}
				small := shrink(c, bp.p, bp.inv)
				if !hasInv(runCase(small, bp.p), bp.inv) || len(small.Items) > 2 {
					t.Fatalf("seed %d: the shrunk case does not fail or is not small: %d items", seed, len(small.Items))
				}
				if hasInv(runCase(small, Reconcile), bp.inv) {
					t.Fatalf("seed %d: the shrunk case also fails with the real rules", seed)
				}
				src := small.goTest("Broken")
				if !strings.Contains(src, "func TestRandomizedPlanner_Broken(t *testing.T) {") {
					t.Fatalf("printed test:\n%s", src)
				}
				t.Logf("seed %d caught it; minimal case:\n%s", seed, src)
				return
			}
			t.Fatalf("no case of %d broke %s", defaultPlannerCases, bp.inv)
		})
	}
}
