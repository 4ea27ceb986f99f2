package mapping

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/pimbridge/pimbridge/crm"
)

// normValue normalizes a CRM value for comparison and writing: strings are
// trimmed with newlines as LF, and an empty string or empty party list is
// nil; times are UTC.
func normValue(v any) any {
	switch x := v.(type) {
	case string:
		x = strings.TrimSpace(normNewlines(x))
		if x == "" {
			return nil
		}
		return x
	case time.Time:
		return x.UTC()
	case []crm.Party:
		if len(x) == 0 {
			return nil
		}
	}
	return v
}

func normAttrs(a map[string]any) map[string]any {
	out := make(map[string]any, len(a))
	for k, v := range a {
		out[k] = normValue(v)
	}
	return out
}

// sameValue reports whether two normalized mapped values mean the same.
func sameValue(a, b any) bool {
	a, b = normValue(a), normValue(b)
	switch x := a.(type) {
	case nil:
		return b == nil
	case time.Time:
		y, ok := b.(time.Time)
		return ok && x.Equal(y)
	case []crm.Party:
		y, ok := b.([]crm.Party)
		return ok && slices.EqualFunc(sortedParties(x), sortedParties(y), func(p, q crm.Party) bool {
			return strings.EqualFold(p.Address, q.Address) && (p.Party == nil) == (q.Party == nil) &&
				(p.Party == nil || p.Party.ID == q.Party.ID) && (p.Address != "" || p.Name == q.Name)
		})
	case []byte:
		y, ok := b.([]byte)
		return ok && string(x) == string(y)
	}
	return a == b
}

func sortedParties(ps []crm.Party) []crm.Party {
	out := slices.Clone(ps)
	slices.SortStableFunc(out, func(a, b crm.Party) int {
		return strings.Compare(strings.ToLower(a.Address), strings.ToLower(b.Address))
	})
	return out
}

// checkAttrs checks the mapped values of rec against the CRM metadata, so
// that a wrongly typed value is an error and not a silent no-op.
func checkAttrs(entity string, rec crm.Record) error {
	e := entityMeta(entity)
	if e == nil {
		return fmt.Errorf("mapping: %w: %q", crm.ErrUnknownEntity, entity)
	}
	for k, v := range rec.Attrs {
		a := e.Attr(k)
		if a == nil {
			return &crm.AttributeError{Entity: entity, ID: rec.ID, Attribute: k, Err: crm.ErrUnknownAttribute}
		}
		if err := e.CheckValue(a, v); err != nil {
			return &crm.AttributeError{Entity: entity, ID: rec.ID, Attribute: k, Err: err}
		}
	}
	return nil
}

// fitLengths truncates string values longer than their attribute allows
// (a PIM field can be longer than the CRM column) and says so.
func fitLengths(entity string, a map[string]any, defects *[]Defect) {
	e := entityMeta(entity)
	for k, v := range a {
		s, ok := v.(string)
		if !ok {
			continue
		}
		if at := e.Attr(k); at != nil && at.MaxLength > 0 {
			if utf8.RuneCountInString(s) <= at.MaxLength {
				continue
			}
			if r := []rune(s); len(r) > at.MaxLength {
				a[k] = strings.TrimSpace(string(r[:at.MaxLength]))
				*defects = append(*defects, Defect{Kind: DefectTruncated, Detail: fmt.Sprintf("%s cut to %d characters", k, at.MaxLength)})
			}
		}
	}
}
