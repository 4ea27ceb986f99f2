package reconcile

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// A field that flows to CRM only (a PIM-side value CRM takes and never
// sends back) goes to CRM when the PIM side changed it, is only recorded
// when CRM already holds the value, is settled in the first step's
// snapshot when the PIM side is the later one, and a CRM edit of it never
// reaches the PIM side.
func TestMerge_OneWayToCRM_PIMChangeFlowsToCRM(t *testing.T) {
	in := MergeInput{Base: Fields{"status": "a", "subject": "s"},
		CRM: Fields{"status": "a", "subject": "s2"}, PIM: Fields{"status": "b", "subject": "s"},
		OneWay: map[string]Direction{"status": ToCRM}, CRMTime: t1, PIMTime: t2}
	p := Merge(in)
	if !reflect.DeepEqual(p.ToCRM, Fields{"status": "b"}) || !reflect.DeepEqual(p.ToPIM, Fields{"subject": "s2"}) {
		t.Fatalf("ToCRM = %q, ToPIM = %q; want status b to CRM, subject s2 to PIM", p.ToCRM, p.ToPIM)
	}
	if !p.Snapshot.Equal(Fields{"status": "b", "subject": "s2"}) {
		t.Errorf("Snapshot = %q", p.Snapshot)
	}
	// PIM is later: its step (to CRM) comes first and its snapshot holds
	// the one-way field it settles, not yet the CRM subject.
	if len(p.Steps) != 2 || p.Steps[0].Dir != ToCRM {
		t.Fatalf("Steps = %+v, want ToCRM then ToPIM", p.Steps)
	}
	if want := (Fields{"status": "b", "subject": "s"}); !p.Steps[0].Snapshot.Equal(want) {
		t.Errorf("first step snapshot = %q, want %q", p.Steps[0].Snapshot, want)
	}
}

func TestMerge_OneWayToCRM_CRMLaterDoesNotSettleItFirst(t *testing.T) {
	in := MergeInput{Base: Fields{"status": "a", "subject": "s"},
		CRM: Fields{"status": "a", "subject": "s2"}, PIM: Fields{"status": "b", "subject": "s"},
		OneWay: map[string]Direction{"status": ToCRM}, CRMTime: t2, PIMTime: t1}
	p := Merge(in)
	if len(p.Steps) != 2 || p.Steps[0].Dir != ToPIM {
		t.Fatalf("Steps = %+v, want ToPIM then ToCRM", p.Steps)
	}
	if want := (Fields{"status": "a", "subject": "s2"}); !p.Steps[0].Snapshot.Equal(want) {
		t.Errorf("first step snapshot = %q, want %q", p.Steps[0].Snapshot, want)
	}
}

func TestMerge_OneWayToCRM_SameValueOnlyRecorded(t *testing.T) {
	in := MergeInput{Base: Fields{"status": "a"}, CRM: Fields{"status": "b"}, PIM: Fields{"status": "b"},
		OneWay: map[string]Direction{"status": ToCRM}, PIMTime: t1}
	p := Merge(in)
	if len(p.ToCRM) != 0 || len(p.ToPIM) != 0 || len(p.Steps) != 0 {
		t.Fatalf("plan writes %q / %q, want nothing", p.ToCRM, p.ToPIM)
	}
	if !p.Snapshot.Equal(Fields{"status": "b"}) {
		t.Errorf("Snapshot = %q, want status b", p.Snapshot)
	}
}

func TestMerge_OneWayToCRM_CRMEditNeverGoesToPIM(t *testing.T) {
	in := MergeInput{Base: Fields{"status": "a"}, CRM: Fields{"status": "c"}, PIM: Fields{"status": "a"},
		OneWay: map[string]Direction{"status": ToCRM}, CRMTime: t2}
	p := Merge(in)
	if len(p.ToCRM) != 0 || len(p.ToPIM) != 0 {
		t.Fatalf("plan writes %q / %q, want nothing", p.ToCRM, p.ToPIM)
	}
	if !p.Snapshot.Equal(Fields{"status": "a"}) {
		t.Errorf("Snapshot = %q, want the base", p.Snapshot)
	}
}

// The mass-delete guard's refusal names the collection and the figures.
func TestGuard_MassDeleteErrorNamesFigures(t *testing.T) {
	err := Guard{Threshold: 0.25}.Check("/alice/crm-contacts/", 3, 10)
	var me *MassDeleteError
	if !errors.As(err, &me) || !errors.Is(err, ErrMassDelete) {
		t.Fatalf("Check = %v, want a *MassDeleteError", err)
	}
	want := "reconcile: 3 of 10 items of /alice/crm-contacts/ would be deleted (more than 25%); confirm to proceed"
	if err.Error() != want {
		t.Errorf("Error() = %q, want %q", err.Error(), want)
	}
}

// A one-way field to the PIM side that CRM changed is settled by CRM's
// step when CRM is the later side (the first step's snapshot holds it),
// and not before the PIM side's step when the PIM side is later.
func TestMerge_OneWayToPIM_SettledInTheLaterSidesStep(t *testing.T) {
	base := Fields{"org": "Old", "subject": "s"}
	crm := Fields{"org": "New", "subject": "s"}
	pim := Fields{"org": "Old", "subject": "s2"}
	ow := map[string]Direction{"org": ToPIM}

	p := Merge(MergeInput{Base: base, CRM: crm, PIM: pim, OneWay: ow, CRMTime: t2, PIMTime: t1})
	if len(p.Steps) != 2 || p.Steps[0].Dir != ToPIM {
		t.Fatalf("CRM later: Steps = %+v, want ToPIM then ToCRM", p.Steps)
	}
	if want := (Fields{"org": "New", "subject": "s"}); !p.Steps[0].Snapshot.Equal(want) {
		t.Errorf("CRM later: first step snapshot = %q, want %q", p.Steps[0].Snapshot, want)
	}

	p = Merge(MergeInput{Base: base, CRM: crm, PIM: pim, OneWay: ow, CRMTime: t1, PIMTime: t2})
	if len(p.Steps) != 2 || p.Steps[0].Dir != ToCRM {
		t.Fatalf("PIM later: Steps = %+v, want ToCRM then ToPIM", p.Steps)
	}
	if want := (Fields{"org": "Old", "subject": "s2"}); !p.Steps[0].Snapshot.Equal(want) {
		t.Errorf("PIM later: first step snapshot = %q, want %q", p.Steps[0].Snapshot, want)
	}
}

// A plan with one step stores the final snapshot after it, including what
// no step writes (a one-way field both sides set to the same value).
func TestMerge_SingleStepStoresTheFinalSnapshot(t *testing.T) {
	in := MergeInput{Base: Fields{"status": "a", "subject": "s"},
		CRM: Fields{"status": "b", "subject": "s2"}, PIM: Fields{"status": "b", "subject": "s"},
		OneWay: map[string]Direction{"status": ToCRM}, CRMTime: t2, PIMTime: t1}
	p := Merge(in)
	if len(p.Steps) != 1 || p.Steps[0].Dir != ToPIM {
		t.Fatalf("Steps = %+v, want one ToPIM step", p.Steps)
	}
	want := Fields{"status": "b", "subject": "s2"}
	if !p.Snapshot.Equal(want) || !p.Steps[0].Snapshot.Equal(want) {
		t.Errorf("snapshots: plan %q, step %q; want %q", p.Snapshot, p.Steps[0].Snapshot, want)
	}
}

// A malformed snapshot's error names the line, for a bad key and for a
// bad value.
func TestUnmarshalSnapshot_ErrorNamesTheLine(t *testing.T) {
	for _, in := range []string{"\"a\" \"1\"\nx", "\"a\" \"1\"\n\"b\" x"} {
		_, err := UnmarshalSnapshot([]byte(in))
		if !errors.Is(err, ErrBadSnapshot) || !strings.Contains(err.Error(), "line 2:") {
			t.Errorf("UnmarshalSnapshot(%q) = %v, want ErrBadSnapshot at line 2", in, err)
		}
	}
}

// Every outcome has its name; a number outside the list prints as a number.
func TestOutcome_String(t *testing.T) {
	want := map[Outcome]string{Nothing: "nothing", CreateOnPIM: "create-on-pim", CreateInCRM: "create-in-crm",
		Link: "link", UpdatePIM: "update-pim", UpdateCRM: "update-crm", MergeBoth: "merge",
		ApplyPIMRemoval: "apply-pim-removal", ApplyCRMRemoval: "apply-crm-removal",
		ConflictPIMRemovalCRMEdit: "conflict-pim-removal-crm-edit", ConflictCRMRemovalPIMEdit: "conflict-crm-removal-pim-edit",
		Forget: "forget", Invalid: "invalid", 0: "Outcome(0)", Invalid + 1: "Outcome(14)", -1: "Outcome(-1)"}
	for o, w := range want {
		if got := o.String(); got != w {
			t.Errorf("Outcome(%d).String() = %q, want %q", int(o), got, w)
		}
	}
}
