package reconcile

import (
	"reflect"
	"testing"
	"time"
)

var (
	t0 = time.Date(2026, 5, 4, 9, 0, 0, 0, time.UTC)
	t1 = t0.Add(time.Hour)
	t2 = t0.Add(2 * time.Hour)
)

// apply plays a plan's steps on copies of both sides, checking after each
// step that the step's snapshot is what the next run would need: every
// field either equal on both sides or different from the snapshot on the
// side that still has to send it.
func apply(t *testing.T, p Plan, crmSide, pimSide Fields) (Fields, Fields) {
	t.Helper()
	c, v := crmSide.Clone(), pimSide.Clone()
	for _, s := range p.Steps {
		dst := c
		if s.Dir == ToPIM {
			dst = v
		}
		for k, val := range s.Fields {
			dst[k] = val
		}
	}
	return c.Compact(), v.Compact()
}

// TestMerge_JohnRodman: one side changes the first name to
// John, the other the last name to Rodman; both changes are kept.
func TestMerge_JohnRodman(t *testing.T) {
	base := Fields{"firstname": "Jeff", "lastname": "Smith"}
	for _, tc := range []struct {
		name             string
		crmTime, pimTime time.Time
	}{{"crm later", t2, t1}, {"pim later", t1, t2}, {"same time", t1, t1}} {
		t.Run(tc.name, func(t *testing.T) {
			in := MergeInput{
				Base:    base,
				CRM:     Fields{"firstname": "John", "lastname": "Smith"},
				PIM:     Fields{"firstname": "Jeff", "lastname": "Rodman"},
				CRMTime: tc.crmTime, PIMTime: tc.pimTime,
			}
			p := Merge(in)
			want := Fields{"firstname": "John", "lastname": "Rodman"}
			if !p.Snapshot.Equal(want) {
				t.Errorf("Snapshot = %v, want %v", p.Snapshot, want)
			}
			if !p.ToPIM.Equal(Fields{"firstname": "John"}) || !p.ToCRM.Equal(Fields{"lastname": "Rodman"}) {
				t.Errorf("ToPIM = %v, ToCRM = %v, want firstname->PIM, lastname->CRM", p.ToPIM, p.ToCRM)
			}
			if len(p.Conflicts) != 0 {
				t.Errorf("Conflicts = %v, want none", p.Conflicts)
			}
			c, v := apply(t, p, in.CRM, in.PIM)
			if !c.Equal(want) || !v.Equal(want) {
				t.Errorf("after apply CRM = %v, PIM = %v, want both %v", c, v, want)
			}
		})
	}
}

// TestMerge_SeedABC_CRMLater is the documented example as written: the PIM user
// changes A, B and C (A1, B1, C1); later a CRM user changes A and B (A2,
// B2). CRM->PIM runs first and copies A2, B2 to the snapshot and the PIM
// item; then PIM->CRM copies C1 to the snapshot and CRM.
func TestMerge_SeedABC_CRMLater(t *testing.T) {
	in := MergeInput{
		Base: Fields{"a": "A", "b": "B", "c": "C"},
		PIM:  Fields{"a": "A1", "b": "B1", "c": "C1"}, PIMTime: t1,
		CRM: Fields{"a": "A2", "b": "B2", "c": "C"}, CRMTime: t2,
	}
	p := Merge(in)
	wantSteps := []Step{
		{Dir: ToPIM, Fields: Fields{"a": "A2", "b": "B2"}, Snapshot: Fields{"a": "A2", "b": "B2", "c": "C"}},
		{Dir: ToCRM, Fields: Fields{"c": "C1"}, Snapshot: Fields{"a": "A2", "b": "B2", "c": "C1"}},
	}
	if !reflect.DeepEqual(p.Steps, wantSteps) {
		t.Fatalf("Steps = %+v\nwant %+v", p.Steps, wantSteps)
	}
	if p.Later != SideCRM {
		t.Errorf("Later = %v, want crm", p.Later)
	}
	wantConflicts := []Conflict{
		{Field: "a", Base: "A", CRM: "A2", PIM: "A1", Winner: SideCRM},
		{Field: "b", Base: "B", CRM: "B2", PIM: "B1", Winner: SideCRM},
	}
	if !reflect.DeepEqual(p.Conflicts, wantConflicts) {
		t.Errorf("Conflicts = %+v, want %+v", p.Conflicts, wantConflicts)
	}
	final := Fields{"a": "A2", "b": "B2", "c": "C1"}
	c, v := apply(t, p, in.CRM, in.PIM)
	if !c.Equal(final) || !v.Equal(final) || !p.Snapshot.Equal(final) {
		t.Fatalf("end: CRM %v, PIM %v, snapshot %v; want all %v", c, v, p.Snapshot, final)
	}
}

// TestMerge_SeedABC_PIMLater is the same edits in the other order: the
// CRM change (A2, B2) comes first, the PIM change (A1, B1, C1) later, so
// the PIM values win every overlapping field and PIM->CRM runs first.
func TestMerge_SeedABC_PIMLater(t *testing.T) {
	in := MergeInput{
		Base: Fields{"a": "A", "b": "B", "c": "C"},
		CRM:  Fields{"a": "A2", "b": "B2", "c": "C"}, CRMTime: t1,
		PIM: Fields{"a": "A1", "b": "B1", "c": "C1"}, PIMTime: t2,
	}
	p := Merge(in)
	final := Fields{"a": "A1", "b": "B1", "c": "C1"}
	wantSteps := []Step{{Dir: ToCRM, Fields: final, Snapshot: final}}
	if !reflect.DeepEqual(p.Steps, wantSteps) {
		t.Fatalf("Steps = %+v\nwant %+v", p.Steps, wantSteps)
	}
	if p.Later != SidePIM || len(p.ToPIM) != 0 {
		t.Errorf("Later = %v, ToPIM = %v; want pim, nothing to PIM", p.Later, p.ToPIM)
	}
	c, v := apply(t, p, in.CRM, in.PIM)
	if !c.Equal(final) || !v.Equal(final) {
		t.Fatalf("end: CRM %v, PIM %v; want both %v", c, v, final)
	}
}

// TestMerge_SeedABC_CrashBetweenSteps: the bridge dies after the first step
// and its snapshot; merging again from there ends in the same state.
func TestMerge_SeedABC_CrashBetweenSteps(t *testing.T) {
	in := MergeInput{
		Base: Fields{"a": "A", "b": "B", "c": "C"},
		PIM:  Fields{"a": "A1", "b": "B1", "c": "C1"}, PIMTime: t1,
		CRM: Fields{"a": "A2", "b": "B2", "c": "C"}, CRMTime: t2,
	}
	p := Merge(in)
	pim := in.PIM.Clone()
	for k, v := range p.Steps[0].Fields {
		pim[k] = v
	}
	// The PIM server stamps the write with a newer time than the CRM edit.
	again := Merge(MergeInput{Base: p.Steps[0].Snapshot, CRM: in.CRM, PIM: pim, CRMTime: t2, PIMTime: t2.Add(time.Minute)})
	final := Fields{"a": "A2", "b": "B2", "c": "C1"}
	if !again.Snapshot.Equal(final) || !again.ToCRM.Equal(Fields{"c": "C1"}) || len(again.ToPIM) != 0 {
		t.Fatalf("resumed plan %+v, want only c=C1 to CRM and snapshot %v", again, final)
	}
}

func TestMerge_Rules(t *testing.T) {
	tests := []struct {
		name   string
		in     MergeInput
		toCRM  Fields
		toPIM  Fields
		snap   Fields
		order  []Direction
		nConfl int
	}{
		{
			name:  "no change",
			in:    MergeInput{Base: Fields{"x": "1"}, CRM: Fields{"x": "1"}, PIM: Fields{"x": "1"}},
			toCRM: Fields{}, toPIM: Fields{}, snap: Fields{"x": "1"},
		},
		{
			name:  "same edit on both sides is only recorded",
			in:    MergeInput{Base: Fields{"x": "1"}, CRM: Fields{"x": "2"}, PIM: Fields{"x": "2"}, CRMTime: t1, PIMTime: t2},
			toCRM: Fields{}, toPIM: Fields{}, snap: Fields{"x": "2"},
		},
		{
			name:  "clearing a field on PIM clears it in CRM",
			in:    MergeInput{Base: Fields{"pager": "555"}, CRM: Fields{"pager": "555"}, PIM: Fields{}, PIMTime: t1},
			toCRM: Fields{"pager": ""}, toPIM: Fields{}, snap: Fields{}, order: []Direction{ToCRM},
		},
		{
			name:  "tie goes to CRM",
			in:    MergeInput{Base: Fields{"x": "1"}, CRM: Fields{"x": "c"}, PIM: Fields{"x": "p"}, CRMTime: t1, PIMTime: t1},
			toCRM: Fields{}, toPIM: Fields{"x": "c"}, snap: Fields{"x": "c"}, order: []Direction{ToPIM}, nConfl: 1,
		},
		{
			name: "one-way ORG from the parent account flows to PIM",
			in: MergeInput{Base: Fields{"org": "Old Ltd"}, CRM: Fields{"org": "New Ltd"}, PIM: Fields{"org": "Old Ltd"},
				OneWay: map[string]Direction{"org": ToPIM}, CRMTime: t1},
			toCRM: Fields{}, toPIM: Fields{"org": "New Ltd"}, snap: Fields{"org": "New Ltd"}, order: []Direction{ToPIM},
		},
		{
			name: "one-way ORG edited on PIM never goes back to CRM",
			in: MergeInput{Base: Fields{"org": "Old Ltd"}, CRM: Fields{"org": "Old Ltd"}, PIM: Fields{"org": "Mine"},
				OneWay: map[string]Direction{"org": ToPIM}, PIMTime: t2},
			toCRM: Fields{}, toPIM: Fields{}, snap: Fields{"org": "Old Ltd"},
		},
		{
			name: "one-way ORG edited on both: CRM value wins even when PIM is later",
			in: MergeInput{Base: Fields{"org": "Old"}, CRM: Fields{"org": "New"}, PIM: Fields{"org": "Mine"},
				OneWay: map[string]Direction{"org": ToPIM}, CRMTime: t1, PIMTime: t2},
			toCRM: Fields{}, toPIM: Fields{"org": "New"}, snap: Fields{"org": "New"}, order: []Direction{ToPIM},
		},
		{
			name: "CRM due time becomes a reminder; a PIM reminder never flows back",
			in: MergeInput{Base: Fields{"reminder": "", "subject": "s"},
				CRM:    Fields{"reminder": "20260505T090000Z", "subject": "s"},
				PIM:    Fields{"reminder": "20260505T080000Z", "subject": "s2"},
				OneWay: map[string]Direction{"reminder": ToPIM}, CRMTime: t1, PIMTime: t2},
			toCRM: Fields{"subject": "s2"}, toPIM: Fields{"reminder": "20260505T090000Z"},
			snap: Fields{"reminder": "20260505T090000Z", "subject": "s2"}, order: []Direction{ToCRM, ToPIM},
		},
		{
			name: "no base (re-link after a lost cache): differing fields go to the later side",
			in: MergeInput{Base: nil, CRM: Fields{"firstname": "Ann", "lastname": "Lee", "jobtitle": "CTO"},
				PIM: Fields{"firstname": "Ann", "lastname": "Leigh", "nickname": "A"}, CRMTime: t1, PIMTime: t2},
			toCRM: Fields{"lastname": "Leigh", "nickname": "A"}, toPIM: Fields{"jobtitle": "CTO"},
			snap:  Fields{"firstname": "Ann", "lastname": "Leigh", "jobtitle": "CTO", "nickname": "A"},
			order: []Direction{ToCRM, ToPIM}, nConfl: 1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := Merge(tc.in)
			if !p.ToCRM.Equal(tc.toCRM) || len(p.ToCRM) != len(tc.toCRM) {
				t.Errorf("ToCRM = %q, want %q", p.ToCRM, tc.toCRM)
			}
			if !p.ToPIM.Equal(tc.toPIM) || len(p.ToPIM) != len(tc.toPIM) {
				t.Errorf("ToPIM = %q, want %q", p.ToPIM, tc.toPIM)
			}
			if !p.Snapshot.Equal(tc.snap) {
				t.Errorf("Snapshot = %q, want %q", p.Snapshot, tc.snap)
			}
			var order []Direction
			for _, s := range p.Steps {
				order = append(order, s.Dir)
			}
			if !reflect.DeepEqual(order, tc.order) {
				t.Errorf("order = %v, want %v", order, tc.order)
			}
			if len(p.Conflicts) != tc.nConfl {
				t.Errorf("Conflicts = %+v, want %d", p.Conflicts, tc.nConfl)
			}
		})
	}
}

func TestFields_SnapshotRoundTrip(t *testing.T) {
	for _, f := range []Fields{
		{},
		{"firstname": "Jeff", "lastname": "Smith", "empty": ""},
		{"address1_line1": "1 Main St\nFloor 2", "description": "quote \" backslash \\ tab \t", "bad\xff": "\x00\xfe"},
	} {
		b := f.MarshalSnapshot()
		got, err := UnmarshalSnapshot(b)
		if err != nil {
			t.Fatalf("UnmarshalSnapshot(%q): %v", b, err)
		}
		if !got.Equal(f) || !reflect.DeepEqual(got, f.Compact()) {
			t.Errorf("round trip of %q = %q", f, got)
		}
		if string(got.MarshalSnapshot()) != string(b) {
			t.Errorf("re-marshal of %q differs", f)
		}
	}
	for _, bad := range []string{"x", "\"a\"", "\"a\" b\n", "\"a\"\"b\"\n"} {
		if _, err := UnmarshalSnapshot([]byte(bad)); err == nil {
			t.Errorf("UnmarshalSnapshot(%q) accepted", bad)
		}
	}
}

// FuzzMerge checks that Merge is deterministic, never loses a field changed
// on only one side, makes both sides agree on every two-way field, and
// that its steps applied in order end at its snapshot.
func FuzzMerge(f *testing.F) {
	f.Add("a=A;b=B;c=C", "a=A2;b=B2;c=C", "a=A1;b=B1;c=C1", int64(2), int64(1), "")
	f.Add("firstname=Jeff;lastname=Smith", "firstname=John;lastname=Smith", "firstname=Jeff;lastname=Rodman", int64(1), int64(1), "")
	f.Add("org=Old", "org=New", "org=Mine", int64(0), int64(5), "org")
	f.Add("", "x=1", "x=2;y=", int64(3), int64(3), "x")
	f.Fuzz(func(t *testing.T, base, crmS, pimS string, ct, pt int64, oneway string) {
		in := MergeInput{Base: parseFields(base), CRM: parseFields(crmS), PIM: parseFields(pimS),
			CRMTime: time.Unix(ct, 0), PIMTime: time.Unix(pt, 0)}
		if base == "" {
			in.Base = nil
		}
		if oneway != "" {
			in.OneWay = map[string]Direction{oneway: ToPIM}
		}
		p := Merge(in)
		if q := Merge(in); !reflect.DeepEqual(p, q) {
			t.Fatalf("Merge not deterministic:\n%+v\n%+v", p, q)
		}
		c, v := in.CRM.Clone(), in.PIM.Clone()
		for _, s := range p.Steps {
			dst := c
			if s.Dir == ToPIM {
				dst = v
			}
			for k, val := range s.Fields {
				dst[k] = val
			}
		}
		for _, k := range union(in.Base, in.CRM, in.PIM) {
			b, cv, pv := in.Base[k], in.CRM[k], in.PIM[k]
			if oneway != "" && k == oneway {
				if cv != b && v[k] != cv {
					t.Fatalf("one-way %q: CRM change %q not on PIM (%q)", k, cv, v[k])
				}
				if c[k] != cv {
					t.Fatalf("one-way %q written to CRM: %q", k, c[k])
				}
				continue
			}
			switch {
			case cv != b && pv == b && (c[k] != cv || v[k] != cv):
				t.Fatalf("field %q changed only in CRM (%q) lost: CRM %q PIM %q", k, cv, c[k], v[k])
			case pv != b && cv == b && (c[k] != pv || v[k] != pv):
				t.Fatalf("field %q changed only on PIM (%q) lost: CRM %q PIM %q", k, pv, c[k], v[k])
			}
			if c[k] != v[k] || p.Snapshot[k] != c[k] {
				t.Fatalf("field %q: CRM %q PIM %q snapshot %q after apply", k, c[k], v[k], p.Snapshot[k])
			}
		}
		if n := len(p.Steps); n > 0 && !p.Steps[n-1].Snapshot.Equal(p.Snapshot) {
			t.Fatalf("last step snapshot %v != plan snapshot %v", p.Steps[n-1].Snapshot, p.Snapshot)
		}
		if len(p.Steps) == 2 && p.Steps[0].Dir == p.Steps[1].Dir {
			t.Fatalf("two steps in one direction: %+v", p.Steps)
		}
	})
}

// parseFields reads "k=v;k2=v2" (later keys win).
func parseFields(s string) Fields {
	f := Fields{}
	if s == "" {
		return f
	}
	for _, kv := range splitNonEmpty(s, ';') {
		k, v := kv, ""
		for i := 0; i < len(kv); i++ {
			if kv[i] == '=' {
				k, v = kv[:i], kv[i+1:]
				break
			}
		}
		f[k] = v
	}
	return f
}

func splitNonEmpty(s string, sep byte) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == sep {
			if i > start {
				out = append(out, s[start:i])
			}
			start = i + 1
		}
	}
	return out
}
