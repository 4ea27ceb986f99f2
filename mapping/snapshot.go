package mapping

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/pimbridge/pimbridge/crm"
)

// Snapshot is the canonical last-synced value of the mapped fields of a
// pair (the seeds' "OriginalXML"). Every mapped field of the entity is
// present, nil when empty; values are normalized (trimmed strings with LF
// newlines, UTC times, parties sorted by address), so two snapshots are
// equal exactly when their meaning is equal.
type Snapshot struct {
	Entity string
	Fields map[string]any
}

// NewSnapshot takes the mapped fields of rec.
func NewSnapshot(rec crm.Record) Snapshot {
	s := Snapshot{Entity: rec.Entity, Fields: map[string]any{}}
	for _, f := range MappedFields(rec.Entity) {
		v := normValue(rec.Attrs[f])
		if ps, ok := v.([]crm.Party); ok {
			ps = sortedParties(ps)
			for i := range ps {
				ps[i].Address = strings.ToLower(ps[i].Address)
			}
			v = ps
		}
		s.Fields[f] = v
	}
	return s
}

// Marshal returns the canonical JSON form: {"entity":…,"fields":{…}} with
// fields sorted by name.
func (s Snapshot) Marshal() ([]byte, error) {
	e := entityMeta(s.Entity)
	if e == nil {
		return nil, fmt.Errorf("mapping: snapshot: %w: %q", crm.ErrUnknownEntity, s.Entity)
	}
	rec, err := e.MarshalRecord(crm.Record{Entity: s.Entity, Attrs: NewSnapshot(crm.Record{Entity: s.Entity, Attrs: s.Fields}).Fields})
	if err != nil {
		return nil, fmt.Errorf("mapping: snapshot: %w", err)
	}
	var buf bytes.Buffer
	buf.WriteString(`{"entity":`)
	name, _ := json.Marshal(s.Entity)
	buf.Write(name)
	buf.WriteString(`,"fields":`)
	buf.Write(rec)
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// UnmarshalSnapshot reads the form Marshal writes.
func UnmarshalSnapshot(data []byte) (Snapshot, error) {
	var env struct {
		Entity string          `json:"entity"`
		Fields json.RawMessage `json:"fields"`
	}
	if err := json.Unmarshal(data, &env); err != nil {
		return Snapshot{}, fmt.Errorf("mapping: snapshot: %w: %v", crm.ErrInvalidArgument, err)
	}
	e := entityMeta(env.Entity)
	if e == nil {
		return Snapshot{}, fmt.Errorf("mapping: snapshot: %w: %q", crm.ErrUnknownEntity, env.Entity)
	}
	rec, err := e.UnmarshalRecord(env.Fields)
	if err != nil {
		return Snapshot{}, fmt.Errorf("mapping: snapshot: %w", err)
	}
	return NewSnapshot(rec), nil
}

// Equal reports whether a and b mean the same.
func (s Snapshot) Equal(o Snapshot) bool { return len(Diff(s, o)) == 0 && s.Entity == o.Entity }

// Diff returns the mapped fields whose meaning differs between a and b, in
// MappedFields order.
func Diff(a, b Snapshot) []string {
	ent := a.Entity
	if ent == "" {
		ent = b.Entity
	}
	var out []string
	for _, f := range MappedFields(ent) {
		if !sameValue(a.Fields[f], b.Fields[f]) {
			out = append(out, f)
		}
	}
	return slices.Clip(out)
}
