package reconcile

import (
	"cmp"
	"slices"
	"time"
)

// VerifyCandidate is a mapping as the verification job sees it.
type VerifyCandidate struct {
	MapID          int64
	VerifiedTime   time.Time // zero: never verified
	Linked         bool
	DeletedLocally bool
}

// DefaultVerifyBatch is how many mappings the verification job checks
// after each cycle (a few items at a time).
const DefaultVerifyBatch = 20

// SelectForVerification returns the map ids of up to n linked, not locally
// deleted candidates with the oldest VerifiedTime first (never verified
// first, ties by map id). n <= 0 means DefaultVerifyBatch. Those the PIM
// server no longer has get a PIMDeleted change; the others get their
// VerifiedTime set to now, which moves them to the end of the queue.
func SelectForVerification(cands []VerifyCandidate, n int) []int64 {
	if n <= 0 {
		n = DefaultVerifyBatch
	}
	live := make([]VerifyCandidate, 0, len(cands))
	for _, c := range cands {
		if c.Linked && !c.DeletedLocally {
			live = append(live, c)
		}
	}
	slices.SortFunc(live, func(a, b VerifyCandidate) int {
		if c := a.VerifiedTime.Compare(b.VerifiedTime); c != 0 {
			return c // the zero time sorts first
		}
		return cmp.Compare(a.MapID, b.MapID)
	})
	out := make([]int64, 0, min(n, len(live)))
	for _, c := range live[:min(n, len(live))] {
		out = append(out, c.MapID)
	}
	return out
}
