// The planner check (in the role of Dropbox's CanopyCheck): a random base
// snapshot perturbed into a CRM side and a PIM side, driven through
// Reconcile until it proposes nothing, then checked against invariants
// computed from the perturbation alone (never from Reconcile). This file
// holds the model: the generated case, the simulated world and the
// driver. check_oracle_test.go holds the invariants, check_shrink_test.go
// the shrinker and the Go-test printer, check_test.go the tests.

package reconcile

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// simEntity is the CRM entity of an item; the kinds the rules know are
// derived with KindOf, so every entity of the issue is generated.
var simEntities = []string{"contact", "task", "phonecall", "letter", "fax", "appointment", "email"}

// CRM-side and PIM-side operations of the perturbation.
type crmOp int

const (
	crmNone crmOp = iota
	crmEdit
	crmDelete   // a tombstone
	crmReassign // reassigned to a colleague: left the filter, no longer the owner
	crmLeave    // left the filter, still the user's
)

var crmOpNames = [...]string{"crmNone", "crmEdit", "crmDelete", "crmReassign", "crmLeave"}

func (o crmOp) String() string { return crmOpNames[o] }

type pimOp int

const (
	pimNone pimOp = iota
	pimEdit
	pimDelete
	pimUntrack
)

var pimOpNames = [...]string{"pimNone", "pimEdit", "pimDelete", "pimUntrack"}

func (o pimOp) String() string { return pimOpNames[o] }

// origin is how the item stood before the perturbation.
type origin int

const (
	fromSynced origin = iota // mapped, snapshot = both sides
	fromCRMNew               // a new CRM record in the filter, not on the PIM side yet
	fromPIMNew               // a new tracked PIM object, not in CRM yet
	fromRelink               // both sides exist, the cache was lost (Link)
)

var originNames = [...]string{"fromSynced", "fromCRMNew", "fromPIMNew", "fromRelink"}

func (o origin) String() string { return originNames[o] }

// simItem is one generated item: its base and the two perturbations.
type simItem struct {
	Entity         string
	Origin         origin
	Base           Fields // the synced values (fromSynced), or the values of the side(s) that exist
	PIMBase        Fields // fromRelink only: the PIM side's values
	Owner          bool   // the user owns the CRM record
	Organizer      bool   // the user organizes the appointment
	TrackedFromPIM bool
	CRM            crmOp
	CRMEdit        Fields
	CRMTime        int
	PIM            pimOp
	PIMEdit        Fields
	PIMTime        int
}

// simCase is one generated scenario.
type simCase struct {
	Seed                uint64
	UntrackDeletesInCRM bool
	Items               []simItem
}

// Field vocabulary: statecode drives State, start drives StartInFuture.
var (
	simFieldNames = []string{"subject", "description", "location", "statecode", "start"}
	simValues     = []string{"", "a", "b", "c"}
	simStates     = []string{"", "1", "2", "3"} // "" is open (0)
	simStarts     = []string{"past-1", "past-2", "future-1", "future-2"}
)

func simValue(r *rand.Rand, field string) string {
	switch field {
	case "statecode":
		return simStates[r.IntN(len(simStates))]
	case "start":
		return simStarts[r.IntN(len(simStarts))]
	}
	return simValues[r.IntN(len(simValues))]
}

func simFields(r *rand.Rand) Fields {
	f := Fields{}
	for _, k := range simFieldNames {
		if r.IntN(3) > 0 {
			f[k] = simValue(r, k)
		}
	}
	return f.Compact()
}

// simEditOf edits a random non-empty subset of fields; overlap (when not
// nil) is the other side's edit, reused field by field half the time so
// that the two sides collide on the same fields, sometimes with the same
// value.
func simEditOf(r *rand.Rand, overlap Fields) Fields {
	e := Fields{}
	for _, k := range overlap.Names() { // sorted: map order must not reach r
		switch r.IntN(4) {
		case 0:
			e[k] = overlap[k] // the same edit
		case 1:
			e[k] = simValue(r, k) // a colliding edit
		}
	}
	for len(e) == 0 || r.IntN(3) == 0 {
		k := simFieldNames[r.IntN(len(simFieldNames))]
		e[k] = simValue(r, k)
	}
	return e
}

// genCase generates one case from seed. Everything flows from one PCG so
// that the same seed always gives the same case.
func genCase(seed uint64) simCase {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	c := simCase{Seed: seed, UntrackDeletesInCRM: r.IntN(2) == 0}
	n := 1 + r.IntN(6)
	for range n {
		it := simItem{Entity: simEntities[r.IntN(len(simEntities))], Base: simFields(r)}
		it.Owner, it.Organizer, it.TrackedFromPIM = r.IntN(2) == 0, r.IntN(3) == 0, r.IntN(3) == 0
		switch x := r.IntN(10); {
		case x < 7:
			it.Origin = fromSynced
		case x < 8:
			it.Origin = fromCRMNew
		case x < 9:
			it.Origin = fromPIMNew
		default:
			it.Origin = fromRelink
			it.PIMBase = simFields(r)
			// Some fields alike: a re-link mostly finds the same values.
			for _, k := range it.Base.Names() {
				if r.IntN(2) == 0 {
					it.PIMBase[k] = it.Base[k]
				}
			}
			it.PIMBase = it.PIMBase.Compact()
		}
		if it.Entity == "email" && it.Origin == fromCRMNew {
			it.Origin = fromPIMNew // nothing is created PIM-ward for e-mail
		}
		if it.Origin == fromPIMNew {
			it.TrackedFromPIM, it.Owner = true, true
		}
		if it.Origin != fromSynced {
			c.Items = append(c.Items, it)
			continue
		}
		// Correlated perturbation: half the items get an action on both sides.
		both := r.IntN(2) == 0
		if both || r.IntN(2) == 0 {
			it.CRM = crmOp(1 + r.IntN(4))
			if it.CRM == crmEdit || r.IntN(4) == 0 {
				it.CRMEdit = simEditOf(r, nil)
				if it.CRM != crmEdit && it.CRM != crmDelete {
					// An edit before the record left the filter is not
					// seen by the user; keep the op a pure removal.
					it.CRMEdit = nil
				}
				if it.CRM == crmDelete {
					it.CRMEdit = nil
				}
			}
		}
		if both || it.CRM == crmNone {
			it.PIM = pimOp(1 + r.IntN(3))
			if it.PIM == pimEdit {
				it.PIMEdit = simEditOf(r, it.CRMEdit)
			}
		}
		it.CRMTime, it.PIMTime = 1+r.IntN(5), 1+r.IntN(5)
		c.Items = append(c.Items, it)
	}
	return c
}

// simState is the world of one item while the driver runs.
type simState struct {
	crmExists, inFilter, owner bool
	crm                        Fields
	crmTime                    int
	pimCopies                  int // PIM objects of this item (more than 1 is a duplicate)
	crmCopies                  int // CRM records of this item
	pimTracked                 bool
	pim                        Fields
	pimTime                    int
	// The mapping.
	mapped, linked, deletedLocally, trackedFromPIM bool
	base                                           Fields
}

// simWorld starts the world of a case, perturbation applied.
func simWorld(c simCase) []*simState {
	out := make([]*simState, len(c.Items))
	for i, it := range c.Items {
		s := &simState{owner: it.Owner}
		switch it.Origin {
		case fromSynced:
			s.crmExists, s.inFilter, s.crm, s.crmCopies = true, true, it.Base.Clone(), 1
			s.pimCopies, s.pimTracked, s.pim = 1, true, it.Base.Clone()
			s.mapped, s.linked, s.base, s.trackedFromPIM = true, true, it.Base.Clone(), it.TrackedFromPIM
		case fromCRMNew:
			s.crmExists, s.inFilter, s.crm, s.crmCopies, s.crmTime = true, true, it.Base.Clone(), 1, 1
		case fromPIMNew:
			s.pimCopies, s.pimTracked, s.pim, s.pimTime = 1, true, it.Base.Clone(), 1
		case fromRelink:
			s.crmExists, s.inFilter, s.crm, s.crmCopies, s.crmTime = true, true, it.Base.Clone(), 1, it.CRMTime
			s.pimCopies, s.pimTracked, s.pim, s.pimTime = 1, true, it.PIMBase.Clone(), it.PIMTime
		}
		switch it.CRM {
		case crmEdit:
			s.crm, s.crmTime = overlay(s.crm, it.CRMEdit), it.CRMTime
		case crmDelete:
			s.crmExists, s.crmCopies = false, 0
		case crmReassign:
			s.inFilter, s.owner = false, false
		case crmLeave:
			s.inFilter = false
		}
		switch it.PIM {
		case pimEdit:
			s.pim, s.pimTime = overlay(s.pim, it.PIMEdit), it.PIMTime
		case pimDelete:
			s.pimCopies = 0
		case pimUntrack:
			s.pimTracked = false
		}
		out[i] = s
	}
	return out
}

func overlay(f, e Fields) Fields {
	out := f.Clone()
	for k, v := range e {
		out[k] = v
	}
	return out.Compact()
}

// facts derives the rule facts the bridge would give: the current CRM
// record, or the snapshot when the record is gone.
func (s *simState) facts(it simItem, untrack bool) Facts {
	src := s.crm
	if !s.crmExists {
		src = s.base
	}
	st, _ := StateOf(int64(atoiOr0(src["statecode"])))
	return Facts{
		UserIsOwner: s.owner, UserIsOrganizer: it.Organizer, State: st,
		StartInFuture: strings.HasPrefix(src["start"], "future"), TrackedFromPIM: s.trackedFromPIM,
		UntrackDeletesInCRM: untrack,
	}
}

func atoiOr0(s string) int {
	if s == "" {
		return 0
	}
	return int(s[0] - '0')
}

// planner is what the driver asks; Reconcile in production, a broken
// variant in the tests that prove an invariant can fail.
type planner func(PairInput) PairPlan

// classify builds the PairInput of an item, as the bridge should: only a
// tombstone is CRMDeleted; a record out of the filter is LeftFilter.
func (s *simState) classify(it simItem, untrack bool) (PairInput, bool) {
	kind, _ := KindOf(it.Entity)
	in := PairInput{Kind: kind, Facts: s.facts(it, untrack)}
	in.Fields = MergeInput{Base: s.base, CRM: s.crm, PIM: s.pim, CRMTime: simTime(s.crmTime), PIMTime: simTime(s.pimTime)}
	switch {
	case s.mapped && (!s.linked || s.deletedLocally):
		return in, false
	case s.mapped:
		in.Cell.HasBase = true
		switch {
		case !s.crmExists:
			in.Cell.CRM, in.CRMEvent = Deleted, CRMDeleted
		case !s.inFilter:
			in.Cell.CRM, in.CRMEvent = Deleted, LeftFilter
		case !s.crm.Equal(s.base):
			in.Cell.CRM = Modified
		}
		switch {
		case s.pimCopies == 0:
			in.Cell.PIM, in.PIMEvent = Deleted, PIMDeleted
		case !s.pimTracked:
			in.Cell.PIM, in.PIMEvent = Deleted, PIMUntracked
		case !s.pim.Equal(s.base):
			in.Cell.PIM = Modified
		}
	default:
		if s.crmExists && s.inFilter {
			in.Cell.CRM = New
		}
		if s.pimCopies > 0 && s.pimTracked {
			in.Cell.PIM = New
		}
	}
	return in, true
}

// apply carries out a plan on the world. stopAfter > 0 applies only that
// many merge steps (a crash between steps). It returns whether it changed
// anything, and an error for a plan the world cannot take.
func (s *simState) apply(plan PairPlan, now *int, stopAfter int) (bool, error) {
	*now++
	switch plan.Outcome {
	case Nothing:
		return false, nil
	case Invalid:
		return false, fmt.Errorf("planner returned invalid for a valid cell")
	case CreateOnPIM:
		s.pimCopies++
		s.pim, s.pimTracked, s.pimTime = plan.Merge.ToPIM.Compact(), true, *now
		s.mapped, s.linked, s.base = true, true, plan.Merge.Snapshot.Clone()
		return true, nil
	case CreateInCRM:
		s.crmCopies++
		s.crmExists, s.inFilter, s.owner = true, true, true
		s.crm, s.crmTime = plan.Merge.ToCRM.Compact(), *now
		s.mapped, s.linked, s.trackedFromPIM, s.base = true, true, true, plan.Merge.Snapshot.Clone()
		return true, nil
	case Link, UpdatePIM, UpdateCRM, MergeBoth:
		s.mapped, s.linked = true, true
		changed := false
		for i, st := range plan.Merge.Steps {
			if stopAfter > 0 && i >= stopAfter {
				break
			}
			if st.Dir == ToPIM {
				s.pim, s.pimTime = overlay(s.pim, st.Fields), *now
			} else {
				s.crm, s.crmTime = overlay(s.crm, st.Fields), *now
			}
			s.base, changed = st.Snapshot.Clone(), true
		}
		if len(plan.Merge.Steps) == 0 && plan.Merge.SnapshotChanged(s.base) {
			s.base, changed = plan.Merge.Snapshot.Clone(), true
		}
		if plan.Outcome == Link && !changed {
			s.base, changed = plan.Merge.Snapshot.Clone(), true
		}
		return changed, nil
	case Forget:
		// The mapping is kept unlinked, as for every ended pair: neither
		// side is taken for a new item again.
		s.linked = false
		return true, nil
	}
	if plan.Deletion == nil {
		return false, fmt.Errorf("outcome %s without a deletion", plan.Outcome)
	}
	switch plan.Deletion.Action {
	case Keep:
		return false, nil
	case DeleteInCRM:
		s.crmExists, s.crmCopies = false, 0
	case DeleteOnPIM:
		s.pimCopies = 0
	case MarkDeletedLocally:
		s.deletedLocally = true
		return true, nil
	case Unlink:
	}
	// The pair ends; the mapping is kept unlinked so that neither side is
	// taken for a new item again.
	s.linked = false
	return true, nil
}

// simTime turns a logical time into the time.Time Merge compares.
func simTime(t int) time.Time { return time.Unix(1_700_000_000+int64(t), 0).UTC() }

// runResult is what one driven case gave.
type runResult struct {
	World  []*simState
	Rounds int
	Trace  []string
	Err    error
}

const simMaxRounds = 8

// drive runs plan over the case until no item changes, visiting items in
// a random order each round and, for one plan in four with two steps,
// applying only the first step (a crash between the steps; the next round
// must finish the pair).
func drive(c simCase, plan planner) runResult {
	r := rand.New(rand.NewPCG(c.Seed, 0xd21e))
	res := runResult{World: simWorld(c)}
	now := 100
	for res.Rounds = 1; res.Rounds <= simMaxRounds; res.Rounds++ {
		order := r.Perm(len(c.Items))
		changed := false
		for _, i := range order {
			s, it := res.World[i], c.Items[i]
			in, ok := s.classify(it, c.UntrackDeletesInCRM)
			if !ok {
				continue
			}
			p := plan(in)
			stop := 0
			if p.Merge != nil && len(p.Merge.Steps) > 1 && r.IntN(4) == 0 {
				stop = 1
			}
			ch, err := s.apply(p, &now, stop)
			if err != nil {
				res.Err = fmt.Errorf("item %d (%s, %s): %w", i, it.Entity, in.Cell, err)
				return res
			}
			if ch {
				res.Trace = append(res.Trace, fmt.Sprintf("r%d i%d %s %s", res.Rounds, i, in.Cell, p.Outcome))
			}
			changed = changed || ch
		}
		if !changed {
			return res
		}
	}
	res.Err = fmt.Errorf("no quiescence after %d rounds: %s", simMaxRounds, strings.Join(lastN(res.Trace, 6), "; "))
	return res
}

func lastN(s []string, n int) []string { return s[max(0, len(s)-n):] }
