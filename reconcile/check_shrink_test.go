package reconcile

import (
	"fmt"
	"strings"
)

// runCase drives a case with p and checks it.
func runCase(c simCase, p planner) []violation { return check(c, drive(c, p)) }

// shrink makes a failing case as small as it goes while it still breaks
// inv: fewer items, fewer operations, fewer fields, options off, equal
// times. Each candidate is one small change; it loops until none helps.
func shrink(c simCase, p planner, inv string) simCase {
	fails := func(x simCase) bool { return hasInv(runCase(x, p), inv) }
	for progress := true; progress; {
		progress = false
		for _, cand := range shrinkCandidates(c) {
			if fails(cand) {
				c, progress = cand, true
				break
			}
		}
	}
	return c
}

func shrinkCandidates(c simCase) []simCase {
	var out []simCase
	with := func(f func(*simCase)) {
		x := c.clone()
		f(&x)
		out = append(out, x)
	}
	for i := range c.Items {
		with(func(x *simCase) { x.Items = append(x.Items[:i], x.Items[i+1:]...) })
	}
	if c.UntrackDeletesInCRM {
		with(func(x *simCase) { x.UntrackDeletesInCRM = false })
	}
	for i, it := range c.Items {
		item := func(f func(*simItem)) { with(func(x *simCase) { f(&x.Items[i]) }) }
		if it.CRM != crmNone {
			item(func(y *simItem) { y.CRM, y.CRMEdit = crmNone, nil })
		}
		if it.PIM != pimNone {
			item(func(y *simItem) { y.PIM, y.PIMEdit = pimNone, nil })
		}
		if it.Origin != fromSynced {
			item(func(y *simItem) { y.Origin, y.PIMBase = fromSynced, nil })
		}
		for _, b := range []struct {
			on  bool
			off func(*simItem)
		}{
			{it.Owner, func(y *simItem) { y.Owner = false }},
			{it.Organizer, func(y *simItem) { y.Organizer = false }},
			{it.TrackedFromPIM, func(y *simItem) { y.TrackedFromPIM = false }},
			{it.CRMTime > 1, func(y *simItem) { y.CRMTime = 1 }},
			{it.PIMTime > 1, func(y *simItem) { y.PIMTime = 1 }},
			{it.Entity != "task", func(y *simItem) { y.Entity = "task" }},
		} {
			if b.on {
				item(b.off)
			}
		}
		for _, fp := range []func(*simItem) *Fields{
			func(y *simItem) *Fields { return &y.Base },
			func(y *simItem) *Fields { return &y.PIMBase },
			func(y *simItem) *Fields { return &y.CRMEdit },
			func(y *simItem) *Fields { return &y.PIMEdit },
		} {
			f := *fp(&it)
			for _, k := range f.Names() {
				item(func(y *simItem) {
					g := fp(y)
					*g = g.Clone()
					delete(*g, k)
					if len(*g) == 0 {
						*g = nil
					}
				})
			}
		}
	}
	// A shrunk edit must still be an edit.
	kept := out[:0]
	for _, x := range out {
		if x.valid() {
			kept = append(kept, x)
		}
	}
	return kept
}

func (c simCase) clone() simCase {
	x := c
	x.Items = make([]simItem, len(c.Items))
	for i, it := range c.Items {
		it.Base, it.PIMBase, it.CRMEdit, it.PIMEdit = cloneOrNil(it.Base), cloneOrNil(it.PIMBase), cloneOrNil(it.CRMEdit), cloneOrNil(it.PIMEdit)
		x.Items[i] = it
	}
	return x
}

func cloneOrNil(f Fields) Fields {
	if f == nil {
		return nil
	}
	return f.Clone()
}

func (c simCase) valid() bool {
	for _, it := range c.Items {
		if it.CRM == crmEdit && len(it.CRMEdit) == 0 || it.PIM == pimEdit && len(it.PIMEdit) == 0 {
			return false
		}
		if it.Origin == fromRelink && it.PIMBase == nil {
			return false
		}
	}
	return true
}

// goFields prints f as a Go literal, keys sorted.
func goFields(f Fields) string {
	if f == nil {
		return "nil"
	}
	parts := make([]string, 0, len(f))
	for _, k := range f.Names() {
		parts = append(parts, fmt.Sprintf("%q: %q", k, f[k]))
	}
	return "Fields{" + strings.Join(parts, ", ") + "}"
}

// goTest prints c as a test ready to paste into reconcile/check_cases_test.go.
func (c simCase) goTest(name string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "func TestRandomizedPlanner_%s(t *testing.T) {\n", name)
	fmt.Fprintf(&b, "\tc := simCase{Seed: %d, UntrackDeletesInCRM: %v, Items: []simItem{\n", c.Seed, c.UntrackDeletesInCRM)
	for _, it := range c.Items {
		fmt.Fprintf(&b, "\t\t{Entity: %q, Origin: %s, Base: %s, PIMBase: %s, Owner: %v, Organizer: %v, TrackedFromPIM: %v,\n",
			it.Entity, it.Origin, goFields(it.Base), goFields(it.PIMBase), it.Owner, it.Organizer, it.TrackedFromPIM)
		fmt.Fprintf(&b, "\t\t\tCRM: %s, CRMEdit: %s, CRMTime: %d, PIM: %s, PIMEdit: %s, PIMTime: %d},\n",
			it.CRM, goFields(it.CRMEdit), it.CRMTime, it.PIM, goFields(it.PIMEdit), it.PIMTime)
	}
	b.WriteString("\t}}\n\tassertCase(t, c, Reconcile)\n}\n")
	return b.String()
}
