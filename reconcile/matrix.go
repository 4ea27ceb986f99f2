package reconcile

import "fmt"

// Change is what happened on one side since the last sync. Deleted
// covers every removal Event (deleted, untracked, left the filter).
type Change int

// Changes. Without a base, Unchanged means "does not exist on this side".
const (
	Unchanged Change = iota
	New
	Modified
	Deleted
)

func (c Change) String() string {
	switch c {
	case Unchanged:
		return "unchanged"
	case New:
		return "new"
	case Modified:
		return "modified"
	case Deleted:
		return "deleted"
	}
	return fmt.Sprintf("Change(%d)", int(c))
}

// Cell is one cell of the change matrix: whether the pair has a base
// (a mapping with a snapshot) and the change on each side.
type Cell struct {
	HasBase  bool
	CRM, PIM Change
}

func (c Cell) String() string {
	b := "base"
	if !c.HasBase {
		b = "nobase"
	}
	return fmt.Sprintf("%s/crm-%s/pim-%s", b, c.CRM, c.PIM)
}

// Outcome is what the change matrix asks for.
type Outcome int

// Outcomes.
const (
	// Nothing to do.
	Nothing Outcome = iota + 1
	// CreateOnPIM: a new CRM record in the filter gets a PIM object.
	CreateOnPIM
	// CreateInCRM: a new tracked PIM object gets a CRM record (client-chosen id).
	CreateInCRM
	// Link: both sides exist but no mapping does (found by the CRM id in
	// the PIM object after the cache was lost): map them and Merge with a
	// nil base.
	Link
	// UpdatePIM: only CRM changed; Merge sends its fields to the PIM side.
	UpdatePIM
	// UpdateCRM: only the PIM side changed; Merge sends its fields to CRM.
	UpdateCRM
	// MergeBoth: both changed; Merge, later side first.
	MergeBoth
	// ApplyPIMRemoval: the PIM side removed the item; Decide with the PIM Event.
	ApplyPIMRemoval
	// ApplyCRMRemoval: the CRM side removed the item; Decide with the CRM Event.
	ApplyCRMRemoval
	// ConflictPIMRemovalCRMEdit: removed on the PIM side, edited in CRM:
	// Decide with the PIM Event, then SparingEdit(action, SideCRM).
	ConflictPIMRemovalCRMEdit
	// ConflictCRMRemovalPIMEdit: removed in CRM, edited on the PIM side:
	// Decide with the CRM Event, then SparingEdit(action, SidePIM).
	ConflictCRMRemovalPIMEdit
	// Forget: gone on both sides; drop the mapping.
	Forget
	// Invalid: the cell cannot happen (New with a base, Modified or
	// Deleted without one); the caller has a bug or a corrupt cache and
	// should re-list the pair.
	Invalid
)

func (o Outcome) String() string {
	names := [...]string{"?", "nothing", "create-on-pim", "create-in-crm", "link", "update-pim", "update-crm",
		"merge", "apply-pim-removal", "apply-crm-removal", "conflict-pim-removal-crm-edit",
		"conflict-crm-removal-pim-edit", "forget", "invalid"}
	if o < 1 || int(o) >= len(names) {
		return fmt.Sprintf("Outcome(%d)", int(o))
	}
	return names[o]
}

// ChangeMatrix gives the outcome of every cell. Cells not listed are
// Invalid (see Classify).
var ChangeMatrix = map[Cell]Outcome{
	// No base: the pair is not mapped yet.
	{false, Unchanged, Unchanged}: Nothing,
	{false, New, Unchanged}:       CreateOnPIM,
	{false, Unchanged, New}:       CreateInCRM,
	{false, New, New}:             Link,

	// With a base.
	{true, Unchanged, Unchanged}: Nothing,
	{true, Modified, Unchanged}:  UpdatePIM,
	{true, Unchanged, Modified}:  UpdateCRM,
	{true, Modified, Modified}:   MergeBoth,
	{true, Unchanged, Deleted}:   ApplyPIMRemoval,
	{true, Deleted, Unchanged}:   ApplyCRMRemoval,
	{true, Modified, Deleted}:    ConflictPIMRemovalCRMEdit,
	{true, Deleted, Modified}:    ConflictCRMRemovalPIMEdit,
	{true, Deleted, Deleted}:     Forget,
}

// Classify returns the outcome of a cell.
func Classify(c Cell) Outcome {
	if o, ok := ChangeMatrix[c]; ok {
		return o
	}
	return Invalid
}
