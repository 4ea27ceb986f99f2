package reconcile

import (
	"fmt"
	"strings"
)

// The invariants of the planner check. Each is named; a violation names
// the invariant, the item and what was wrong. The expected outcome is
// computed from the generated case alone, with the README's rules table
// written out again below, so that a broken DeletionRules row or a broken
// Merge cannot agree with itself.
const (
	invTerminates   = "terminates"
	invConverges    = "converges"
	invOneSideEdit  = "one-side-edit-survives"
	invLaterSide    = "both-sides-edit-takes-later-side"
	invDeletionRule = "deleted-only-per-deletion-table"
	invPIMTracked   = "tracked-from-pim-stays-on-pim"
	invNoDuplicates = "no-duplicates"
	invPlanValid    = "plan-valid"
)

type violation struct {
	Inv  string
	Item int
	Msg  string
}

func (v violation) String() string { return fmt.Sprintf("%s: item %d: %s", v.Inv, v.Item, v.Msg) }

func completed(f Fields) bool { return f["statecode"] == "1" }
func future(f Fields) bool    { return strings.HasPrefix(f["start"], "future") }

// pimRemovalDeletesCRM is the README's "deleted on the PIM side" column
// (untracking included; a task's untrack follows the delete rule only
// with the setting, DeletionRules' documented choice where the seed is
// silent). crm are the CRM record's values.
func pimRemovalDeletesCRM(it simItem, op pimOp, crm Fields, untrackSetting bool) bool {
	kind, _ := KindOf(it.Entity)
	switch kind {
	case KindContact, KindEmail:
		return op == pimUntrack && untrackSetting
	case KindAppointment:
		st := crm["statecode"]
		return (st == "" || st == "3") && future(crm) && (it.Owner || it.Organizer)
	case KindTask:
		if op == pimUntrack && !untrackSetting {
			return false
		}
		return !completed(crm)
	}
	return false
}

// crmRemovalDeletesPIM is the README's "deleted in CRM" column, and
// docs/sync-rules.md's "Left the filter" for a record that left it: handled like a
// deletion in CRM, except what the user tracked from the PIM side, which
// stays. base are the values as of the last sync.
func crmRemovalDeletesPIM(it simItem, base Fields) bool {
	if it.CRM != crmDelete && it.TrackedFromPIM {
		return false
	}
	owner := it.Owner && it.CRM != crmReassign
	kind, _ := KindOf(it.Entity)
	switch kind {
	case KindContact:
		return !owner
	case KindAppointment:
		return future(base)
	case KindTask:
		return !completed(base)
	}
	return false // e-mail: never deleted on the PIM side
}

// expectation is the end state the rules call for.
type expectation struct {
	CRMExists, PIMExists bool
	CRM, PIM             Fields // expected values; nil: not checked
	Both                 map[string]bool
	Synced               bool // the pair still syncs: both sides equal
}

// merge3 is the merge rule in its plainest words: a field changed on one
// side takes that value; on both, the later side's (CRM on a tie).
// base nil: every non-empty value is a change.
func merge3(base, c, p Fields, crmTime, pimTime int) (Fields, map[string]bool) {
	out, both := Fields{}, map[string]bool{}
	for _, k := range union(base, c, p) {
		b, cv, pv := base[k], c[k], p[k]
		switch {
		case cv == b:
			out[k] = pv
		case pv == b || pv == cv:
			out[k] = cv
		default:
			both[k] = true
			if pimTime > crmTime {
				out[k] = pv
			} else {
				out[k] = cv
			}
		}
	}
	return out.Compact(), both
}

func expect(it simItem, untrackSetting bool) expectation {
	switch it.Origin {
	case fromCRMNew, fromPIMNew:
		return expectation{CRMExists: true, PIMExists: true, CRM: it.Base, PIM: it.Base, Synced: true}
	case fromRelink:
		m, both := merge3(nil, it.Base, it.PIMBase, it.CRMTime, it.PIMTime)
		return expectation{CRMExists: true, PIMExists: true, CRM: m, PIM: m, Both: both, Synced: true}
	}
	crmVals, pimVals := overlay(it.Base, it.CRMEdit), overlay(it.Base, it.PIMEdit)
	crmAlive := it.CRM == crmNone || it.CRM == crmEdit
	pimAlive := it.PIM == pimNone || it.PIM == pimEdit
	// An edit that writes the snapshot's values is no edit.
	crmEdited, pimEdited := !crmVals.Equal(it.Base), !pimVals.Equal(it.Base)
	e := expectation{CRMExists: it.CRM != crmDelete, PIMExists: it.PIM != pimDelete}
	switch {
	case crmAlive && pimAlive:
		m, both := merge3(it.Base, crmVals, pimVals, it.CRMTime, it.PIMTime)
		e.CRM, e.PIM, e.Both, e.Synced = m, m, both, true
	case pimAlive: // removed in CRM
		e.PIM = pimVals
		if !pimEdited && crmRemovalDeletesPIM(it, it.Base) {
			e.PIMExists, e.PIM = false, nil
		}
	case crmAlive: // removed on the PIM side
		e.CRM = crmVals
		if !crmEdited && pimRemovalDeletesCRM(it, it.PIM, crmVals, untrackSetting) {
			e.CRMExists, e.CRM = false, nil
		}
	}
	return e
}

// check runs the invariants over a driven case.
func check(c simCase, res runResult) []violation {
	var out []violation
	add := func(inv string, i int, format string, args ...any) {
		out = append(out, violation{inv, i, fmt.Sprintf(format, args...)})
	}
	if res.Err != nil {
		inv := invPlanValid
		if strings.HasPrefix(res.Err.Error(), "no quiescence") {
			inv = invTerminates
		}
		add(inv, -1, "%v", res.Err)
		return out
	}
	for i, it := range c.Items {
		s, e := res.World[i], expect(it, c.UntrackDeletesInCRM)
		if s.crmCopies > 1 || s.pimCopies > 1 {
			add(invNoDuplicates, i, "%d CRM records and %d PIM objects for one item", s.crmCopies, s.pimCopies)
		}
		pimExists := s.pimCopies > 0
		if s.linked && s.crmExists && s.inFilter && pimExists && s.pimTracked && (!s.crm.Equal(s.pim) || !s.crm.Equal(s.base)) {
			add(invConverges, i, "crm %v, pim %v, snapshot %v", s.crm, s.pim, s.base)
		}
		if it.TrackedFromPIM && (it.CRM == crmReassign || it.CRM == crmLeave) && it.PIM != pimDelete && !pimExists {
			add(invPIMTracked, i, "%s tracked from the PIM side was removed from it after %s", it.Entity, it.CRM)
		}
		if s.crmExists != e.CRMExists || pimExists != e.PIMExists {
			add(invDeletionRule, i, "%s %s/%s: crm exists %v (want %v), pim exists %v (want %v)",
				it.Entity, it.CRM, it.PIM, s.crmExists, e.CRMExists, pimExists, e.PIMExists)
		}
		fieldCheck := func(side string, exists bool, got, want Fields) {
			if !exists || want == nil {
				return
			}
			for _, k := range union(got, want) {
				if got[k] == want[k] {
					continue
				}
				inv := invOneSideEdit
				if e.Both[k] {
					inv = invLaterSide
				}
				add(inv, i, "%s %s: %s = %q, want %q (crm time %d, pim time %d)", it.Entity, side, k, got[k], want[k], it.CRMTime, it.PIMTime)
			}
		}
		fieldCheck("crm", s.crmExists && s.crmExists == e.CRMExists, s.crm, e.CRM)
		fieldCheck("pim", pimExists && pimExists == e.PIMExists, s.pim, e.PIM)
	}
	return out
}

// hasInv reports whether vs holds a violation of inv.
func hasInv(vs []violation, inv string) bool {
	for _, v := range vs {
		if v.Inv == inv {
			return true
		}
	}
	return false
}
