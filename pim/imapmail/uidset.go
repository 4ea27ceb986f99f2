package imapmail

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/emersion/go-imap/v2"
)

// UIDSet is a compact set of UIDs: sorted, disjoint, non-adjacent ranges.
// Its text form is IMAP's sequence-set syntax without "*" ("1:5,7,9:12").
// The zero value is the empty set.
type UIDSet struct {
	r []uidRange
}

type uidRange struct{ lo, hi uint32 }

// UIDSetOf returns the set of uids, in any order, duplicates allowed.
func UIDSetOf(uids ...uint32) UIDSet {
	s := slices.Clone(uids)
	slices.Sort(s)
	var b uidSetBuilder
	for _, u := range s {
		b.add(u)
	}
	return b.set()
}

// uidSetBuilder builds a UIDSet from UIDs given in ascending order.
type uidSetBuilder struct{ r []uidRange }

func (b *uidSetBuilder) add(u uint32) {
	b.addRange(u, u)
}

func (b *uidSetBuilder) addRange(lo, hi uint32) {
	if n := len(b.r); n > 0 && (b.r[n-1].hi == ^uint32(0) || lo <= b.r[n-1].hi+1) {
		if hi > b.r[n-1].hi {
			b.r[n-1].hi = hi
		}
		return
	}
	b.r = append(b.r, uidRange{lo, hi})
}

func (b *uidSetBuilder) set() UIDSet { return UIDSet{r: b.r} }

// Len returns the number of UIDs in the set.
func (s UIDSet) Len() int {
	n := 0
	for _, r := range s.r {
		n += int(r.hi-r.lo) + 1
	}
	return n
}

// Empty reports whether the set has no UID.
func (s UIDSet) Empty() bool { return len(s.r) == 0 }

// Contains reports whether uid is in the set.
func (s UIDSet) Contains(uid uint32) bool {
	i, found := slices.BinarySearchFunc(s.r, uid, func(r uidRange, u uint32) int {
		switch {
		case r.hi < u:
			return -1
		case r.lo > u:
			return 1
		}
		return 0
	})
	_ = i
	return found
}

// Max returns the largest UID, 0 for the empty set.
func (s UIDSet) Max() uint32 {
	if len(s.r) == 0 {
		return 0
	}
	return s.r[len(s.r)-1].hi
}

// All calls yield for each UID in ascending order until it returns false.
func (s UIDSet) All(yield func(uint32) bool) {
	for _, r := range s.r {
		for u := r.lo; ; u++ {
			if !yield(u) {
				return
			}
			if u == r.hi {
				break
			}
		}
	}
}

// Minus returns the UIDs of s that are not in t.
func (s UIDSet) Minus(t UIDSet) UIDSet {
	var b uidSetBuilder
	j := 0
	for _, r := range s.r {
		lo := r.lo
		for lo <= r.hi {
			for j < len(t.r) && t.r[j].hi < lo {
				j++
			}
			if j == len(t.r) || t.r[j].lo > r.hi {
				b.addRange(lo, r.hi)
				break
			}
			if t.r[j].lo > lo {
				b.addRange(lo, t.r[j].lo-1)
			}
			if t.r[j].hi >= r.hi {
				break
			}
			lo = t.r[j].hi + 1
		}
	}
	return b.set()
}

// Union returns the UIDs in s or t.
func (s UIDSet) Union(t UIDSet) UIDSet {
	all := append(slices.Clone(s.r), t.r...)
	slices.SortFunc(all, func(a, b uidRange) int { return int64cmp(int64(a.lo), int64(b.lo)) })
	var b uidSetBuilder
	for _, r := range all {
		b.addRange(r.lo, r.hi)
	}
	return b.set()
}

// UpTo returns the UIDs of s that are <= max.
func (s UIDSet) UpTo(max uint32) UIDSet {
	var b uidSetBuilder
	for _, r := range s.r {
		if r.lo > max {
			break
		}
		b.addRange(r.lo, min(r.hi, max))
	}
	return b.set()
}

func int64cmp(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// String returns the set in IMAP sequence-set syntax, "" when empty.
func (s UIDSet) String() string {
	var sb strings.Builder
	for i, r := range s.r {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(strconv.FormatUint(uint64(r.lo), 10))
		if r.hi != r.lo {
			sb.WriteByte(':')
			sb.WriteString(strconv.FormatUint(uint64(r.hi), 10))
		}
	}
	return sb.String()
}

// ParseUIDSet parses the form String returns (ranges in any order; "*" is
// refused).
func ParseUIDSet(str string) (UIDSet, error) {
	if str == "" {
		return UIDSet{}, nil
	}
	var rs []uidRange
	for part := range strings.SplitSeq(str, ",") {
		a, b, isRange := strings.Cut(part, ":")
		lo, err := parseUID(a)
		if err != nil {
			return UIDSet{}, fmt.Errorf("imapmail: uid set %q: %w", str, err)
		}
		hi := lo
		if isRange {
			if hi, err = parseUID(b); err != nil {
				return UIDSet{}, fmt.Errorf("imapmail: uid set %q: %w", str, err)
			}
		}
		if hi < lo {
			lo, hi = hi, lo
		}
		rs = append(rs, uidRange{lo, hi})
	}
	return UIDSet{}.Union(UIDSet{r: rs}), nil
}

func parseUID(s string) (uint32, error) {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("bad uid %q", s)
	}
	return uint32(n), nil
}

// MarshalText implements encoding.TextMarshaler.
func (s UIDSet) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *UIDSet) UnmarshalText(b []byte) error {
	v, err := ParseUIDSet(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// imapSet converts to go-imap's UID set.
func (s UIDSet) imapSet() imap.UIDSet {
	out := make(imap.UIDSet, 0, len(s.r))
	for _, r := range s.r {
		out = append(out, imap.UIDRange{Start: imap.UID(r.lo), Stop: imap.UID(r.hi)})
	}
	return out
}

// uidSetFromIMAP converts a static go-imap UID set (as in a SEARCH answer).
func uidSetFromIMAP(s imap.UIDSet) UIDSet {
	rs := make([]uidRange, 0, len(s))
	for _, r := range s {
		lo, hi := uint32(r.Start), uint32(r.Stop)
		if hi == 0 { // "n:*" does not occur in answers; treat as n
			hi = lo
		}
		if hi < lo {
			lo, hi = hi, lo
		}
		rs = append(rs, uidRange{lo, hi})
	}
	return UIDSet{}.Union(UIDSet{r: rs})
}
