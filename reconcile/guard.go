package reconcile

import (
	"errors"
	"fmt"
)

// DefaultMassDeleteThreshold is sync.mass_delete_threshold's default.
const DefaultMassDeleteThreshold = 0.5

// ErrMassDelete: a cycle would delete more than the allowed share of a
// collection; it stops until the user confirms.
var ErrMassDelete = errors.New("reconcile: mass deletion needs confirmation")

// MassDeleteError carries the figures of a refused mass deletion.
type MassDeleteError struct {
	Collection string
	Deletes    int
	Total      int
	Threshold  float64
}

func (e *MassDeleteError) Error() string {
	return fmt.Sprintf("reconcile: %d of %d items of %s would be deleted (more than %.0f%%); confirm to proceed",
		e.Deletes, e.Total, e.Collection, e.Threshold*100)
}

// Unwrap returns ErrMassDelete.
func (e *MassDeleteError) Unwrap() error { return ErrMassDelete }

// Guard is the mass-deletion safety limit. The zero value uses
// DefaultMassDeleteThreshold and is not confirmed.
type Guard struct {
	// Threshold is the largest share of a collection one cycle may delete
	// (0 < Threshold; >= 1 never trips). If <= 0, 0.5.
	Threshold float64
	// Confirmed lets the deletions through (the user's --confirm flag).
	Confirmed bool
}

// Check returns a *MassDeleteError when deletes (of either side, planned
// for one collection in one cycle) exceed the threshold share of total
// (the mapped items of that collection before the cycle), unless
// confirmed. A collection with no items never trips.
func (g Guard) Check(collection string, deletes, total int) error {
	th := g.Threshold
	if th <= 0 {
		th = DefaultMassDeleteThreshold
	}
	if g.Confirmed || total <= 0 || deletes <= 0 {
		return nil
	}
	if float64(deletes) > th*float64(total) {
		return &MassDeleteError{Collection: collection, Deletes: deletes, Total: total, Threshold: th}
	}
	return nil
}
