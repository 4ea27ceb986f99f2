package reconcile

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestSelectForVerification(t *testing.T) {
	at := func(h int) time.Time { return time.Date(2026, 1, 1, h, 0, 0, 0, time.UTC) }
	cands := []VerifyCandidate{
		{MapID: 1, VerifiedTime: at(5), Linked: true},
		{MapID: 2, VerifiedTime: at(1), Linked: true},
		{MapID: 3, Linked: true}, // never verified
		{MapID: 4, VerifiedTime: at(0), Linked: false},
		{MapID: 5, VerifiedTime: at(0), Linked: true, DeletedLocally: true},
		{MapID: 6, VerifiedTime: at(1), Linked: true},
		{MapID: 7, Linked: true},
	}
	for _, tc := range []struct {
		name string
		n    int
		want []int64
	}{
		{"oldest first, never verified first, ties by id", 4, []int64{3, 7, 2, 6}},
		{"n larger than the queue", 100, []int64{3, 7, 2, 6, 1}},
		{"one", 1, []int64{3}},
		{"default batch", 0, []int64{3, 7, 2, 6, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := SelectForVerification(cands, tc.n); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("SelectForVerification(n=%d) = %v, want %v", tc.n, got, tc.want)
			}
		})
	}
	// Verified items move to the end of the queue.
	for i := range cands {
		if cands[i].MapID == 3 || cands[i].MapID == 7 {
			cands[i].VerifiedTime = at(9)
		}
	}
	if got := SelectForVerification(cands, 2); !reflect.DeepEqual(got, []int64{2, 6}) {
		t.Fatalf("after verifying 3 and 7: %v, want [2 6]", got)
	}
}

func TestGuard_Check(t *testing.T) {
	for _, tc := range []struct {
		name           string
		g              Guard
		deletes, total int
		trips          bool
	}{
		{"half of the collection is allowed", Guard{}, 5, 10, false},
		{"more than half stops", Guard{}, 6, 10, true},
		{"everything stops", Guard{}, 10, 10, true},
		{"confirmed goes through", Guard{Confirmed: true}, 10, 10, false},
		{"custom threshold", Guard{Threshold: 0.1}, 2, 10, true},
		{"threshold 1 never trips", Guard{Threshold: 1}, 10, 10, false},
		{"empty collection", Guard{}, 0, 0, false},
		{"a collection with no items never trips", Guard{}, 3, 0, false},
		{"threshold 0 is the default half", Guard{Threshold: 0}, 5, 10, false},
		{"no deletes", Guard{}, 0, 10, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.g.Check("/alice/crm-contacts/", tc.deletes, tc.total)
			if (err != nil) != tc.trips {
				t.Fatalf("Check(%d of %d) = %v, want trips=%v", tc.deletes, tc.total, err, tc.trips)
			}
			if err == nil {
				return
			}
			var me *MassDeleteError
			if !errors.Is(err, ErrMassDelete) || !errors.As(err, &me) || me.Deletes != tc.deletes || me.Total != tc.total {
				t.Fatalf("Check error = %#v, want *MassDeleteError wrapping ErrMassDelete", err)
			}
		})
	}
}
