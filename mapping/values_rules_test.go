package mapping

import (
	"strings"
	"testing"
	"time"

	"github.com/pimbridge/pimbridge/crm"
)

// TestSameValue_meaning: two mapped values are the same when they mean the
// same: strings after trimming and newline normalisation, empty and nil
// alike, times as instants, party lists in any order with addresses
// compared without case, the same CRM party (or none) on both sides, and
// the display name only for a party without an address.
func TestSameValue_meaning(t *testing.T) {
	id1, id2 := crm.NewID(), crm.NewID()
	ref := func(id crm.ID) *crm.Ref { return &crm.Ref{Entity: crm.EntityContact, ID: id} }
	berlin, _ := time.LoadLocation("Europe/Berlin")
	at := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
	tests := []struct {
		a, b any
		same bool
	}{
		{" a\r\nb ", "a\nb", true},
		{"", nil, true},
		{"a", nil, false},
		{nil, nil, true},
		{at, at.In(berlin), true},
		{at, at.Add(time.Second), false},
		{at, "2026-03-10T09:00:00Z", false},
		{[]crm.Party{}, nil, true},
		{[]crm.Party{{Address: "A@x.org"}, {Address: "b@x.org"}}, []crm.Party{{Address: "b@x.org"}, {Address: "a@X.org"}}, true},
		{[]crm.Party{{Address: "a@x.org", Name: "A"}}, []crm.Party{{Address: "a@x.org", Name: "Other"}}, true},
		{[]crm.Party{{Address: "a@x.org"}}, []crm.Party{{Address: "c@x.org"}}, false},
		{[]crm.Party{{Address: "a@x.org"}}, []crm.Party{{Address: "a@x.org"}, {Address: "b@x.org"}}, false},
		{[]crm.Party{{Address: "a@x.org", Party: ref(id1)}}, []crm.Party{{Address: "a@x.org", Party: ref(id1)}}, true},
		{[]crm.Party{{Address: "a@x.org", Party: ref(id1)}}, []crm.Party{{Address: "a@x.org", Party: ref(id2)}}, false},
		{[]crm.Party{{Address: "a@x.org", Party: ref(id1)}}, []crm.Party{{Address: "a@x.org"}}, false},
		{[]crm.Party{{Address: "a@x.org"}}, []crm.Party{{Address: "a@x.org", Party: ref(id1)}}, false},
		{[]crm.Party{{Party: ref(id1), Name: "N"}}, []crm.Party{{Party: ref(id1), Name: "N"}}, true},
		{[]crm.Party{{Party: ref(id1), Name: "N"}}, []crm.Party{{Party: ref(id1), Name: "M"}}, false},
		{[]crm.Party{{Address: "a@x.org"}}, "a@x.org", false},
		{[]byte("x"), []byte("x"), true},
		{[]byte("x"), []byte("y"), false},
		{[]byte("x"), "x", false},
		{int64(1), int64(1), true},
		{int64(1), int64(2), false},
	}
	for i, tc := range tests {
		if got := sameValue(tc.a, tc.b); got != tc.same {
			t.Errorf("%d: sameValue(%#v, %#v) = %v, want %v", i, tc.a, tc.b, got, tc.same)
		}
		if got := sameValue(tc.b, tc.a); got != tc.same {
			t.Errorf("%d: sameValue(%#v, %#v) = %v, want %v (reversed)", i, tc.b, tc.a, got, tc.same)
		}
	}
}

// TestUsable_userContent: a record is usable when it holds text, a time or
// a party; format defaults (priority, state, all-day) alone are not.
func TestUsable_userContent(t *testing.T) {
	if usable(map[string]any{"prioritycode": int64(1), "isalldayevent": false, "organizer": []crm.Party{}}) {
		t.Errorf("defaults only: usable")
	}
	if !usable(map[string]any{"prioritycode": int64(1), "organizer": []crm.Party{{Address: "a@x.org"}}}) {
		t.Errorf("a party only: not usable")
	}
	if !usable(map[string]any{"scheduledstart": time.Now()}) || !usable(map[string]any{"subject": "s"}) || usable(map[string]any{"subject": "  "}) {
		t.Errorf("time / text")
	}
}

// TestFitLengths_columnLimits: a value read from a PIM object that is
// longer than its CRM column is cut to the column's length (and trimmed)
// with a truncated defect; one of exactly that length is kept whole.
func TestFitLengths_columnLimits(t *testing.T) {
	max := entityMeta(crm.EntityContact).Attr("jobtitle").MaxLength
	if max <= 0 {
		t.Fatalf("jobtitle has no max length")
	}
	for _, n := range []int{max, max + 1} {
		v := strings.Repeat("é", n-1) + "x"
		a := map[string]any{"jobtitle": v, "birthdate": time.Now()}
		var ds []Defect
		fitLengths(crm.EntityContact, a, &ds)
		got := a["jobtitle"].(string)
		if n == max && (got != v || len(ds) != 0) {
			t.Errorf("%d characters: %q cut (%v)", n, got, ds)
		}
		if n > max && (len([]rune(got)) != max || len(ds) != 1 || ds[0].Kind != DefectTruncated) {
			t.Errorf("%d characters: %d kept, defects %v", n, len([]rune(got)), ds)
		}
	}
	// A space at the cut is trimmed.
	a := map[string]any{"jobtitle": strings.Repeat("a", max-1) + " b"}
	var ds []Defect
	fitLengths(crm.EntityContact, a, &ds)
	if got := a["jobtitle"].(string); got != strings.Repeat("a", max-1) {
		t.Errorf("cut at a space: %q", got)
	}
}
