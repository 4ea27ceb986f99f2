package mapping

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/pimbridge/pimbridge/crm"
)

// Strings returns the snapshot's fields as the canonical strings the merge
// compares: the JSON form of each non-empty value, with party lists reduced
// to their addresses (or names where there is no address), so that a CRM
// party resolved to a record and the same address read from the PIM side
// are equal. AttrsOfStrings is its inverse.
func (s Snapshot) Strings() (map[string]string, error) {
	e, err := builtin.Entity(s.Entity)
	if err != nil {
		return nil, fmt.Errorf("mapping: %w", err)
	}
	attrs := map[string]any{}
	for k, v := range s.Fields {
		if v == nil {
			continue
		}
		if ps, ok := v.([]crm.Party); ok {
			canon := make([]crm.Party, 0, len(ps))
			for _, p := range ps {
				q := crm.Party{Address: strings.ToLower(p.Address)}
				if q.Address == "" {
					q.Name = p.Name
				}
				canon = append(canon, q)
			}
			v = canon
		}
		attrs[k] = v
	}
	b, err := e.MarshalRecord(crm.Record{Entity: s.Entity, Attrs: attrs})
	if err != nil {
		return nil, fmt.Errorf("mapping: fields of %s: %w", s.Entity, err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("mapping: fields of %s: %w", s.Entity, err)
	}
	out := make(map[string]string, len(attrs))
	for k := range attrs {
		if v, ok := raw[k]; ok && string(v) != "null" {
			out[k] = string(v)
		}
	}
	return out, nil
}

// AttrsOfStrings converts canonical field strings (Snapshot.Strings) back
// to CRM attribute values; "" clears the attribute (a nil value).
func AttrsOfStrings(entity string, f map[string]string) (map[string]any, error) {
	e, err := builtin.Entity(entity)
	if err != nil {
		return nil, fmt.Errorf("mapping: %w", err)
	}
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, k := range slices.Sorted(maps.Keys(f)) {
		if i > 0 {
			buf.WriteByte(',')
		}
		name, _ := json.Marshal(k)
		buf.Write(name)
		buf.WriteByte(':')
		if v := f[k]; v == "" {
			buf.WriteString("null")
		} else {
			buf.WriteString(v)
		}
	}
	buf.WriteByte('}')
	attrs, err := e.DecodeAttrs(buf.Bytes(), crm.DecodeOptions{})
	if err != nil {
		return nil, fmt.Errorf("mapping: values of %s: %w", entity, err)
	}
	return attrs, nil
}
