package reconcile

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// ErrBadSnapshot: bytes that MarshalSnapshot did not write.
var ErrBadSnapshot = errors.New("reconcile: malformed snapshot")

// Fields holds the mapped fields of one item as canonical strings, keyed
// by CRM attribute name (or a name the mapping package gives a computed
// field). "" means empty; a missing key is the same as "".
type Fields map[string]string

// Get returns the value of name ("" if absent).
func (f Fields) Get(name string) string { return f[name] }

// Clone returns a copy; a nil Fields gives an empty, non-nil map.
func (f Fields) Clone() Fields {
	out := make(Fields, len(f))
	maps.Copy(out, f)
	return out
}

// Compact returns a copy without empty values: the canonical form of a
// snapshot, in which "" and absent are not distinguished.
func (f Fields) Compact() Fields {
	out := make(Fields, len(f))
	for k, v := range f {
		if v != "" {
			out[k] = v
		}
	}
	return out
}

// Equal reports whether f and g hold the same values, "" and absent being
// the same.
func (f Fields) Equal(g Fields) bool {
	for k, v := range f {
		if g[k] != v {
			return false
		}
	}
	for k, v := range g {
		if f[k] != v {
			return false
		}
	}
	return true
}

// Names returns the sorted field names of f.
func (f Fields) Names() []string { return slices.Sorted(maps.Keys(f)) }

// MarshalSnapshot encodes f (compacted) as canonical bytes for
// idmap.Snapshot.Fields: one line per non-empty field in name order,
// `"name" "value"` with both Go-quoted, so equal fields give equal bytes
// and any byte string round-trips exactly.
func (f Fields) MarshalSnapshot() []byte {
	var b []byte
	for _, k := range f.Compact().Names() {
		b = strconv.AppendQuote(b, k)
		b = append(b, ' ')
		b = strconv.AppendQuote(b, f[k])
		b = append(b, '\n')
	}
	return b
}

// UnmarshalSnapshot decodes bytes written by MarshalSnapshot. Empty input
// is an empty snapshot.
func UnmarshalSnapshot(b []byte) (Fields, error) {
	f := Fields{}
	for n, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		if line == "" && len(b) == 0 {
			break
		}
		qk, err := strconv.QuotedPrefix(line)
		if err != nil || len(line) <= len(qk) || line[len(qk)] != ' ' {
			return nil, fmt.Errorf("reconcile: unmarshal snapshot: line %d: %w", n+1, ErrBadSnapshot)
		}
		k, _ := strconv.Unquote(qk)
		v, err := strconv.Unquote(line[len(qk)+1:])
		if err != nil {
			return nil, fmt.Errorf("reconcile: unmarshal snapshot: line %d: %w", n+1, ErrBadSnapshot)
		}
		f[k] = v
	}
	return f, nil
}

func union(fs ...Fields) []string {
	seen := map[string]bool{}
	for _, f := range fs {
		for k := range f {
			seen[k] = true
		}
	}
	return slices.Sorted(maps.Keys(seen))
}
