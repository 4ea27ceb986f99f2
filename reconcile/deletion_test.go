package reconcile

import (
	"testing"

	"github.com/pimbridge/pimbridge/crm"
)

func runRuleCase(t *testing.T, name string) {
	t.Helper()
	c, ok := ruleCases[name]
	if !ok {
		t.Fatalf("no rule case %q", name)
	}
	kind, ok := KindOf(c.entity)
	if !ok {
		t.Fatalf("KindOf(%q) unknown", c.entity)
	}
	d, ok := Decide(kind, c.event, c.facts)
	if !ok {
		t.Fatalf("Decide(%v, %v, %+v): no rule", kind, c.event, c.facts)
	}
	if d.Action != c.want {
		t.Fatalf("Decide(%v, %v, %+v) = %v by rule %q, want %v", kind, c.event, c.facts, d.Action, d.Rule.Name(), c.want)
	}
}

// TestDeletionRules_EveryRowTested checks that each row of DeletionRules is
// the deciding rule of at least one named case, and that every (kind,
// event) ends with an unconditional row, so Decide always answers.
func TestDeletionRules_EveryRowTested(t *testing.T) {
	hit := map[string]bool{}
	for name, c := range ruleCases {
		kind, _ := KindOf(c.entity)
		d, ok := Decide(kind, c.event, c.facts)
		if !ok {
			t.Errorf("%s: no rule", name)
			continue
		}
		hit[d.Rule.Name()] = true
	}
	seen := map[string]bool{}
	for _, r := range DeletionRules {
		if seen[r.Name()] {
			t.Errorf("rule %q appears twice", r.Name())
		}
		seen[r.Name()] = true
		if !hit[r.Name()] {
			t.Errorf("rule %q has no TestDeletionRule_ case", r.Name())
		}
	}
	for _, k := range []Kind{KindContact, KindAppointment, KindTask, KindEmail} {
		for _, ev := range []Event{PIMDeleted, PIMUntracked, CRMDeleted, LeftFilter} {
			var last *Rule
			for i := range DeletionRules {
				if r := &DeletionRules[i]; r.Kind == k && r.Event == ev {
					last = r
				}
			}
			if last == nil || len(last.When) != 0 {
				t.Errorf("%v/%v: no unconditional last row", k, ev)
			}
		}
	}
}

// TestDeletionRules_NeverDeleteWhatTheSeedKeeps sweeps every combination of
// facts and checks the seed's absolute statements.
func TestDeletionRules_NeverDeleteWhatTheSeedKeeps(t *testing.T) {
	for _, k := range []Kind{KindContact, KindAppointment, KindTask, KindEmail} {
		for _, ev := range []Event{PIMDeleted, PIMUntracked, CRMDeleted, LeftFilter} {
			for bits := 0; bits < 1<<5; bits++ {
				for st := StateOpen; st <= StateScheduled; st++ {
					f := Facts{UserIsOwner: bits&1 != 0, UserIsOrganizer: bits&2 != 0, StartInFuture: bits&4 != 0,
						TrackedFromPIM: bits&8 != 0, UntrackDeletesInCRM: bits&16 != 0, State: st}
					d, ok := Decide(k, ev, f)
					if !ok {
						t.Fatalf("Decide(%v, %v, %+v): no rule", k, ev, f)
					}
					a := d.Action
					bad := ""
					switch {
					case k == KindContact && ev == PIMDeleted && a == DeleteInCRM:
						bad = "contact deleted on PIM must not be deleted in CRM"
					case k == KindEmail && ev == PIMDeleted && a == DeleteInCRM:
						bad = "e-mail deleted on PIM must not be deleted in CRM"
					case k == KindEmail && a == DeleteOnPIM:
						bad = "e-mail is never deleted on the PIM side"
					case (ev == PIMUntracked) && !f.UntrackDeletesInCRM && a == DeleteInCRM && k != KindAppointment:
						bad = "untrack deletes in CRM only with the setting"
					case ev == LeftFilter && f.TrackedFromPIM && k != KindEmail && a != Unlink:
						bad = "items tracked from PIM stay on the PIM side, unlinked, when they leave the filter"
					case (ev == PIMDeleted || ev == PIMUntracked) && a == DeleteOnPIM,
						(ev == CRMDeleted || ev == LeftFilter) && (a == DeleteInCRM || a == MarkDeletedLocally):
						bad = "action on the side that already removed the item"
					case k == KindAppointment && a == DeleteInCRM &&
						!(f.StartInFuture && (st == StateOpen || st == StateScheduled) && (f.UserIsOwner || f.UserIsOrganizer)):
						bad = "appointment deleted in CRM without all three conditions"
					case k == KindTask && st == StateCompleted && (a == DeleteInCRM || a == DeleteOnPIM):
						bad = "completed task deleted"
					}
					if bad != "" {
						t.Errorf("Decide(%v, %v, %+v) = %v (%s): %s", k, ev, f, a, d.Rule.Name(), bad)
					}
				}
			}
		}
	}
}

func TestKindOf(t *testing.T) {
	for _, tc := range []struct {
		entity string
		want   Kind
		ok     bool
	}{
		{crm.EntityContact, KindContact, true},
		{crm.EntityAppointment, KindAppointment, true},
		{crm.EntityTask, KindTask, true},
		{crm.EntityPhoneCall, KindTask, true},
		{crm.EntityLetter, KindTask, true},
		{crm.EntityFax, KindTask, true},
		{crm.EntityEmail, KindEmail, true},
		{crm.EntityAccount, 0, false},
	} {
		if got, ok := KindOf(tc.entity); got != tc.want || ok != tc.ok {
			t.Errorf("KindOf(%q) = %v, %v, want %v, %v", tc.entity, got, ok, tc.want, tc.ok)
		}
	}
}

func TestStateOf_MatchesCRMMetadata(t *testing.T) {
	md := crm.Builtin()
	for _, entity := range []string{crm.EntityTask, crm.EntityAppointment, crm.EntityPhoneCall} {
		e, err := md.Entity(entity)
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range e.States {
			got, ok := StateOf(st.Value)
			if !ok || got.String() != lower(st.Name) {
				t.Errorf("%s: StateOf(%d) = %v, %v, want %s", entity, st.Value, got, ok, st.Name)
			}
		}
	}
	if _, ok := StateOf(9); ok {
		t.Error("StateOf(9) accepted")
	}
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

func TestSparingEdit(t *testing.T) {
	for _, tc := range []struct {
		a      Action
		edited Side
		want   Action
	}{
		{DeleteInCRM, SideCRM, Unlink},
		{DeleteOnPIM, SidePIM, Unlink},
		{DeleteOnPIM, SideCRM, DeleteOnPIM},
		{DeleteInCRM, SidePIM, DeleteInCRM},
		{MarkDeletedLocally, SideCRM, MarkDeletedLocally},
		{Keep, SidePIM, Keep},
	} {
		if got := SparingEdit(tc.a, tc.edited); got != tc.want {
			t.Errorf("SparingEdit(%v, %v) = %v, want %v", tc.a, tc.edited, got, tc.want)
		}
	}
}
