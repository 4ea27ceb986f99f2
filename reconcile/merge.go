package reconcile

import (
	"fmt"
	"time"
)

// Side names one side of a pair.
type Side int

// Sides.
const (
	SideCRM Side = iota + 1
	SidePIM
)

func (s Side) String() string {
	switch s {
	case SideCRM:
		return "crm"
	case SidePIM:
		return "pim"
	}
	return fmt.Sprintf("Side(%d)", int(s))
}

// Direction is where a write goes.
type Direction int

// Directions.
const (
	ToPIM Direction = iota + 1 // CRM -> PIM
	ToCRM                      // PIM -> CRM
)

func (d Direction) String() string {
	switch d {
	case ToPIM:
		return "crm->pim"
	case ToCRM:
		return "pim->crm"
	}
	return fmt.Sprintf("Direction(%d)", int(d))
}

// MergeInput is one pair with a change on at least one side.
type MergeInput struct {
	// Base is the snapshot of the last sync (OriginalXML). nil
	// means no snapshot: every non-empty value then counts as changed,
	// which is the case of re-linking a pair after the cache was lost.
	Base Fields
	// CRM and PIM are the current values on each side, mapped to the same
	// canonical field names.
	CRM, PIM Fields
	// CRMTime and PIMTime are the modification times of each side (CRM
	// modifiedon, PIM LAST-MODIFIED/REV or the time the change was seen).
	// The later side wins a field changed on both sides; on a tie, CRM
	// wins. A zero time is older than any other.
	CRMTime, PIMTime time.Time
	// OneWay names fields that flow in one direction only, e.g. ORG from
	// the parent account and a CRM due time -> reminder ({"org": ToPIM}).
	// A change on the other side of such a field is never written back.
	OneWay map[string]Direction
}

// Step is one write of a Plan: the fields to set on the target side and
// the snapshot to store once that write has succeeded.
type Step struct {
	Dir      Direction
	Fields   Fields // name -> new value; "" clears the field
	Snapshot Fields // the snapshot after this step (compacted)
}

// Conflict is a field changed on both sides to different values.
type Conflict struct {
	Field          string
	Base, CRM, PIM string
	Winner         Side // the side changed later
}

// Plan is the outcome of Merge.
type Plan struct {
	// Later is the side changed later, whose values are applied first.
	Later Side
	// ToCRM and ToPIM are all writes per side.
	ToCRM, ToPIM Fields
	// Steps lists the non-empty writes in the order to apply them: the
	// later side's values first (CRM->PIM then PIM->CRM when CRM is
	// newer), each with the snapshot to store after it, so that a crash
	// between steps leaves a snapshot from which the next run finishes.
	Steps []Step
	// Snapshot is the new snapshot once all steps are applied (compacted).
	Snapshot Fields
	// Conflicts lists the overlapping changes and who won, sorted by field.
	Conflicts []Conflict
}

// SnapshotChanged reports whether the plan's snapshot differs from base,
// e.g. both sides made the same edit: the caller must store it even when
// there is nothing to write.
func (p Plan) SnapshotChanged(base Fields) bool { return !p.Snapshot.Equal(base) }

// Merge is the 3-way field merge (docs/sync-rules.md): a field changed
// on one side goes to the other ("John" + "Rodman" -> "John Rodman"); a
// field changed on both sides to different values takes the value of the
// side changed later; a field changed on both sides to the same value is
// only recorded in the snapshot. One-way fields flow only in their
// direction, when their source side changed. Merge never fails and is
// deterministic.
func Merge(in MergeInput) Plan {
	later := SideCRM
	if in.PIMTime.After(in.CRMTime) {
		later = SidePIM
	}
	p := Plan{Later: later, ToCRM: Fields{}, ToPIM: Fields{}}
	// first holds what the later side's step settles; rest the other's.
	first, all := Fields{}, in.Base.Clone()
	for _, k := range union(in.Base, in.CRM, in.PIM) {
		b, c, v := in.Base[k], in.CRM[k], in.PIM[k]
		crmChanged, pimChanged := c != b, v != b
		switch in.OneWay[k] {
		case ToPIM:
			if crmChanged {
				all[k] = c
				if c != v {
					p.ToPIM[k] = c
				}
				if later == SideCRM {
					first[k] = c
				}
			}
			continue
		case ToCRM:
			if pimChanged {
				all[k] = v
				if c != v {
					p.ToCRM[k] = v
				}
				if later == SidePIM {
					first[k] = v
				}
			}
			continue
		}
		switch {
		case !crmChanged && !pimChanged:
		case crmChanged && !pimChanged:
			p.ToPIM[k], all[k] = c, c
			if later == SideCRM {
				first[k] = c
			}
		case !crmChanged && pimChanged:
			p.ToCRM[k], all[k] = v, v
			if later == SidePIM {
				first[k] = v
			}
		case c == v: // same edit on both sides
			all[k], first[k] = c, c
		default:
			p.Conflicts = append(p.Conflicts, Conflict{Field: k, Base: b, CRM: c, PIM: v, Winner: later})
			if later == SideCRM {
				p.ToPIM[k], all[k] = c, c
			} else {
				p.ToCRM[k], all[k] = v, v
			}
			first[k] = all[k]
		}
	}
	p.Snapshot = all.Compact()
	mid := in.Base.Clone()
	for k, v := range first {
		mid[k] = v
	}
	order := []struct {
		dir    Direction
		fields Fields
	}{{ToPIM, p.ToPIM}, {ToCRM, p.ToCRM}}
	if later == SidePIM {
		order[0], order[1] = order[1], order[0]
	}
	// The first step's snapshot holds the later side's settled fields; the
	// second's is the final one. An empty first step is left out.
	if len(order[0].fields) > 0 {
		snap := p.Snapshot
		if len(order[1].fields) > 0 {
			snap = mid.Compact()
		}
		p.Steps = append(p.Steps, Step{Dir: order[0].dir, Fields: order[0].fields, Snapshot: snap})
	}
	if len(order[1].fields) > 0 {
		p.Steps = append(p.Steps, Step{Dir: order[1].dir, Fields: order[1].fields, Snapshot: p.Snapshot})
	}
	return p
}
