package reconcile

import "slices"

// CRMReport is what the CRM sync reported of a pair's record since the
// last cycle, beyond an edit.
type CRMReport int

const (
	CRMReportNone       CRMReport = iota
	CRMReportDeleted              // a delete row: a tombstone, or (from an older server) a record gone from the view
	CRMReportLeftFilter           // a left-filter row: the record exists but left the user's view
)

// Observation is what the bridge read of one mapped pair: the snapshot of
// the last sync, both sides as they are now, and what each side's sync
// reported. Deltas turns it into the cell of the change matrix.
type Observation struct {
	// HasBase: the pair has a snapshot; Base is its fields, PIMBase the
	// fields the PIM object itself had then (they differ where the PIM
	// format cannot hold a CRM value).
	HasBase       bool
	Base, PIMBase Fields
	// CRMExists: the record could be read; CRM is its fields.
	CRMExists bool
	CRM       Fields
	// PIMExists: the object is on the PIM server; PIM is its fields,
	// Tracked whether it is still tracked (in the collection, or carrying
	// the category).
	PIMExists, Tracked bool
	PIM                Fields
	// TrackedFromPIM: the pair began as an item made or tracked on the PIM
	// side.
	TrackedFromPIM bool
	// Generated is what the CRM record alone would be written as on the
	// PIM side, mapped back (format defaults included); used only to
	// re-link a pair with no snapshot, nil when unknown.
	Generated Fields
	// CRMReport and PIMDeletionReported are what each side's sync said.
	CRMReport           CRMReport
	PIMDeletionReported bool
}

// Delta is the pair's cell of the change matrix with the fields the merge
// is to compare.
type Delta struct {
	Cell               Cell
	CRMEvent, PIMEvent Event
	// Base, CRM and PIM feed MergeInput. PIM holds only what the PIM side
	// changed since the last sync (the rest is the base's value).
	Base, CRM, PIM Fields
	// PIMStandsForRecord: the record cannot be read and there is no
	// snapshot, so the PIM values stand for the record in the deletion
	// rules.
	PIMStandsForRecord bool
	// UnknownOrigin: nothing tells whether the user tracked the item from
	// the PIM side; the deletion rules treat it as tracked (kept there).
	UnknownOrigin bool
}

// crmRemoval is the CRM side's removal of a pair, or 0. Only a deletion the
// sync reported for a record that is gone is a deletion in CRM; a record
// still readable, or unreadable with no tombstone, left the filter.
func crmRemoval(r CRMReport, crmExists bool) Event {
	switch {
	case r == CRMReportDeleted && !crmExists:
		return CRMDeleted
	case r == CRMReportDeleted, r == CRMReportLeftFilter, !crmExists:
		return LeftFilter
	}
	return 0
}

// Deltas finds the cell of the change matrix for one pair (what happened
// on each side against the last sync). It is pure.
func Deltas(o Observation) Delta {
	d := Delta{CRM: o.CRM, PIM: o.PIM}
	leftFilter := o.CRMExists && (o.CRMReport == CRMReportDeleted || o.CRMReport == CRMReportLeftFilter)
	switch {
	case o.HasBase:
		d.Cell.HasBase = true
		d.Base = o.Base
		switch ev := crmRemoval(o.CRMReport, o.CRMExists); {
		case ev != 0:
			d.Cell.CRM, d.CRMEvent = Deleted, ev
		case !o.CRM.Equal(o.Base):
			d.Cell.CRM = Modified
		}
		switch {
		case !o.PIMExists:
			d.Cell.PIM, d.PIMEvent = Deleted, PIMDeleted
		case !o.Tracked:
			d.Cell.PIM, d.PIMEvent = Deleted, PIMUntracked
		default:
			// Only what the PIM side changed since the last sync counts
			// as a PIM edit; the rest is the base's value.
			adj := o.Base.Clone()
			for _, k := range unionNames(o.PIM, o.PIMBase) {
				if o.PIM[k] != o.PIMBase[k] {
					adj[k] = o.PIM[k]
				}
			}
			d.PIM = adj.Compact()
			if !d.PIM.Equal(o.Base) {
				d.Cell.PIM = Modified
			}
		}
	case o.CRMExists && !o.PIMExists && o.PIMDeletionReported:
		// No snapshot, but the server reported the removal of the object
		// at the pair's href: a write whose outcome the bridge never
		// learned (a create with its reply lost, or cut by a kill) did
		// happen, and the user deleted the object. A PIM deletion, judged
		// by the deletion table against the record as it is, not an
		// object never written to create again.
		d.Cell = Cell{HasBase: true, PIM: Deleted}
		d.PIMEvent = PIMDeleted
		if ev := crmRemoval(o.CRMReport, true); ev != 0 {
			d.Cell.CRM, d.CRMEvent = Deleted, ev
		}
		d.Base = o.CRM
	case !o.CRMExists && o.PIMExists && !o.TrackedFromPIM:
		// The object names a CRM record (X-CRM-ID) that cannot be read, and
		// there is no snapshot (the cache was lost): a removal in CRM,
		// judged on the PIM values. Unless a tombstone said so it left the
		// filter, and since nothing tells whether the user tracked it from
		// the PIM side, it is treated as tracked: kept there, unlinked.
		d.Cell = Cell{HasBase: true, CRM: Deleted}
		d.CRMEvent = crmRemoval(o.CRMReport, false)
		d.UnknownOrigin = d.CRMEvent == LeftFilter
		d.Base = o.PIM
		d.PIMStandsForRecord = true
	default:
		if o.CRMExists && o.PIMExists && o.Tracked && !leftFilter && o.Generated != nil {
			// Re-linking (no snapshot): a PIM value that is what the CRM
			// record itself would be written as (format defaults such as
			// PRIORITY included) is not a PIM edit.
			adj := Fields{}
			for _, k := range unionNames(o.PIM, o.Generated) {
				if o.PIM[k] == o.Generated[k] {
					adj[k] = o.CRM[k]
				} else {
					adj[k] = o.PIM[k]
				}
			}
			d.PIM = adj.Compact()
		}
		if o.CRMExists && !leftFilter {
			d.Cell.CRM = New
		}
		if o.PIMExists && o.Tracked {
			d.Cell.PIM = New
		}
	}
	return d
}

// unionNames returns the field names of a and b, sorted.
func unionNames(a, b Fields) []string {
	names := make([]string, 0, len(a)+len(b))
	for k := range a {
		names = append(names, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	return names
}
