package imapmail

import (
	"slices"
	"testing"
)

func collect(s UIDSet) []uint32 {
	var out []uint32
	s.All(func(u uint32) bool {
		out = append(out, u)
		return true
	})
	return out
}

func TestUIDSet(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []uint32
		str  string
		n    int
	}{
		{"empty", nil, "", 0},
		{"one", []uint32{7}, "7", 1},
		{"ranges", []uint32{5, 1, 2, 3, 9, 10, 12, 2}, "1:3,5,9:10,12", 7},
		{"max uid", []uint32{4294967295, 4294967294, 1}, "1,4294967294:4294967295", 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := UIDSetOf(tc.in...)
			if got := s.String(); got != tc.str {
				t.Errorf("UIDSetOf(%v).String() = %q, want %q", tc.in, got, tc.str)
			}
			if s.Len() != tc.n {
				t.Errorf("Len = %d, want %d", s.Len(), tc.n)
			}
			p, err := ParseUIDSet(tc.str)
			if err != nil || p.String() != tc.str {
				t.Errorf("ParseUIDSet(%q) = %q, %v", tc.str, p, err)
			}
			for _, u := range tc.in {
				if !s.Contains(u) {
					t.Errorf("Contains(%d) = false", u)
				}
			}
		})
	}
	a := UIDSetOf(1, 2, 3, 4, 5, 8, 9, 10, 20)
	b := UIDSetOf(2, 3, 9, 11, 20)
	if got, want := collect(a.Minus(b)), []uint32{1, 4, 5, 8, 10}; !slices.Equal(got, want) {
		t.Errorf("Minus = %v, want %v", got, want)
	}
	if got, want := a.Union(b).String(), "1:5,8:11,20"; got != want {
		t.Errorf("Union = %q, want %q", got, want)
	}
	if got, want := a.UpTo(8).String(), "1:5,8"; got != want {
		t.Errorf("UpTo(8) = %q, want %q", got, want)
	}
	if a.Contains(6) || a.Contains(0) || a.Contains(21) {
		t.Errorf("Contains of absent UIDs = true")
	}
	for _, bad := range []string{"0", "a", "1:", ":3", "1,,2", "*", "4294967296"} {
		if _, err := ParseUIDSet(bad); err == nil {
			t.Errorf("ParseUIDSet(%q) = nil error", bad)
		}
	}
}

func TestCursor_MarshalBinary(t *testing.T) {
	cur := Cursor{
		UIDValidity: 42, HighestModSeq: 1 << 40, LastUID: 12,
		KnownUIDs: UIDSetOf(1, 2, 3, 10, 12),
		FlagSets:  map[string]UIDSet{`$crmtracked \seen`: UIDSetOf(1, 2), "": UIDSetOf(3, 10, 12)},
	}
	b, err := cur.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var got Cursor
	if err := got.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if got.UIDValidity != 42 || got.HighestModSeq != 1<<40 || got.LastUID != 12 ||
		got.KnownUIDs.String() != "1:3,10,12" || got.FlagSets[`$crmtracked \seen`].String() != "1:2" {
		t.Fatalf("round trip of %s = %+v", b, got)
	}
	if err := got.UnmarshalBinary(nil); err != nil || got.UIDValidity != 0 {
		t.Fatalf("UnmarshalBinary(nil) = %v, %+v; want the zero cursor", err, got)
	}
	for _, bad := range []string{"{", `{"v":2}`, `{"v":1,"known":"x"}`} {
		if err := got.UnmarshalBinary([]byte(bad)); err == nil {
			t.Errorf("UnmarshalBinary(%s) = nil error", bad)
		}
	}
}

func TestFlagKey(t *testing.T) {
	if got, want := flagKey([]string{`\Seen`, "$CRMTracked", `\Recent`, "$crmtracked"}), `$crmtracked \seen`; got != want {
		t.Errorf("flagKey = %q, want %q", got, want)
	}
}
