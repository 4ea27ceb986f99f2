package crm

import (
	"fmt"
	"slices"
	"strings"
)

// AttrType is the type of an attribute. It decides the Go type of the value
// in a Record (see Record) and its JSON form.
type AttrType string

// Attribute types and the Go type a Record holds for them.
const (
	TypeUniqueID  AttrType = "uniqueidentifier" // ID (the primary key)
	TypeString    AttrType = "string"           // string, at most MaxLength runes
	TypeMemo      AttrType = "memo"             // string, at most MaxLength runes
	TypeInteger   AttrType = "integer"          // int64
	TypeBigInt    AttrType = "bigint"           // int64
	TypeDecimal   AttrType = "decimal"          // float64
	TypeMoney     AttrType = "money"            // float64
	TypeBoolean   AttrType = "boolean"          // bool
	TypeDateTime  AttrType = "datetime"         // time.Time in UTC
	TypeDateOnly  AttrType = "dateonly"         // time.Time at 00:00 UTC
	TypePicklist  AttrType = "picklist"         // int64, one of Options
	TypeState     AttrType = "state"            // int64, one of Entity.States
	TypeStatus    AttrType = "status"           // int64, a status of the record's state
	TypeLookup    AttrType = "lookup"           // Ref, to one of Targets
	TypeOwner     AttrType = "owner"            // Ref to a systemuser
	TypePartyList AttrType = "partylist"        // []Party
	TypeBinary    AttrType = "binary"           // []byte (base64 in JSON)
)

// Attribute describes one attribute of an entity.
type Attribute struct {
	Name      string   `json:"logicalname"`
	Type      AttrType `json:"type"`
	MaxLength int      `json:"maxlength,omitempty"` // string and memo; 0 means no limit
	Required  bool     `json:"required,omitempty"`  // must be set on create, never cleared
	Targets   []string `json:"targets,omitempty"`   // lookup: entities it may point to
	Options   []Option `json:"options,omitempty"`   // picklist values
	// MinValue and MaxValue bound an integer attribute (both ends
	// included); nil means no bound.
	MinValue *int64 `json:"minvalue,omitempty"`
	MaxValue *int64 `json:"maxvalue,omitempty"`
	// System attributes are maintained by the server (createdon, versionnumber,
	// ...); values sent by clients for them are rejected.
	System bool `json:"system,omitempty"`
	Custom bool `json:"custom,omitempty"` // added by an admin
}

// Option is one value of a picklist.
type Option struct {
	Value int64  `json:"value"`
	Label string `json:"label"`
}

// State is one statecode value with its statuscode values.
type State struct {
	Value         int64    `json:"value"`
	Name          string   `json:"name"`
	DefaultStatus int64    `json:"defaultstatus"`
	Statuses      []Option `json:"statuses"`
	// Final states (completed, canceled) make an activity read-only until
	// it is reopened by a change of statecode back to an open state.
	Final bool `json:"final,omitempty"`
}

// Entity describes one entity (a table).
type Entity struct {
	Name        string      `json:"logicalname"`
	SetName     string      `json:"entitysetname"` // plural, used in URLs: contacts, tasks
	PrimaryKey  string      `json:"primaryidattribute"`
	PrimaryName string      `json:"primarynameattribute"`
	IsActivity  bool        `json:"isactivity,omitempty"`
	Custom      bool        `json:"custom,omitempty"` // made by an admin (crm.NewCustomEntity)
	Attributes  []Attribute `json:"attributes"`
	States      []State     `json:"states,omitempty"`
}

// Attr returns the attribute with the given logical name, or nil.
func (e *Entity) Attr(name string) *Attribute {
	for i := range e.Attributes {
		if e.Attributes[i].Name == name {
			return &e.Attributes[i]
		}
	}
	return nil
}

// State returns the state with the given statecode, or nil.
func (e *Entity) State(code int64) *State {
	for i := range e.States {
		if e.States[i].Value == code {
			return &e.States[i]
		}
	}
	return nil
}

// StateOfStatus returns the state a statuscode belongs to, or nil.
func (e *Entity) StateOfStatus(status int64) *State {
	for i := range e.States {
		for _, s := range e.States[i].Statuses {
			if s.Value == status {
				return &e.States[i]
			}
		}
	}
	return nil
}

// Relationship is a one-to-many relationship: Referencing.ReferencingAttribute
// points at a Referenced record.
type Relationship struct {
	Name                 string `json:"schemaname"`
	Referenced           string `json:"referencedentity"`
	Referencing          string `json:"referencingentity"`
	ReferencingAttribute string `json:"referencingattribute"`
}

// Metadata is the whole schema of an organization. Version increases on every
// customization; clients compare it before trusting cached metadata or
// inserting synced rows.
type Metadata struct {
	Version       int64          `json:"version"`
	Entities      []*Entity      `json:"entities"`
	Relationships []Relationship `json:"relationships"`
}

// Entity returns the entity with the given logical name or entity-set name.
func (m *Metadata) Entity(name string) (*Entity, error) {
	for _, e := range m.Entities {
		if e.Name == name || e.SetName == name {
			return e, nil
		}
	}
	return nil, fmt.Errorf("%w: %q", ErrUnknownEntity, name)
}

// Clone returns a deep copy, so that a customization can be prepared without
// touching metadata other goroutines read.
func (m *Metadata) Clone() *Metadata {
	c := &Metadata{Version: m.Version, Relationships: slices.Clone(m.Relationships)}
	for _, e := range m.Entities {
		ce := *e
		ce.Attributes = slices.Clone(e.Attributes)
		for i := range ce.Attributes {
			ce.Attributes[i].Targets = slices.Clone(ce.Attributes[i].Targets)
			ce.Attributes[i].Options = slices.Clone(ce.Attributes[i].Options)
		}
		ce.States = slices.Clone(e.States)
		for i := range ce.States {
			ce.States[i].Statuses = slices.Clone(ce.States[i].Statuses)
		}
		c.Entities = append(c.Entities, &ce)
	}
	return c
}

// ValidateCustomAttribute checks that a an admin-defined attribute can be
// added to entity e: a lower-case name that is not taken, and a type that
// custom attributes may have.
func ValidateCustomAttribute(e *Entity, a Attribute) error {
	if !validName(a.Name) {
		return &AttributeError{Entity: e.Name, Attribute: a.Name, Err: fmt.Errorf("%w: name must match [a-z][a-z0-9_]{0,63}", ErrInvalidArgument)}
	}
	if e.Attr(a.Name) != nil {
		return &AttributeError{Entity: e.Name, Attribute: a.Name, Err: fmt.Errorf("%w: attribute exists", ErrConflict)}
	}
	switch a.Type {
	case TypeString, TypeMemo, TypeInteger, TypeBigInt, TypeDecimal, TypeMoney, TypeBoolean, TypeDateTime, TypeDateOnly, TypePicklist:
	default:
		return &AttributeError{Entity: e.Name, Attribute: a.Name, Err: fmt.Errorf("%w: type %q cannot be used for a custom attribute", ErrInvalidArgument, a.Type)}
	}
	if a.MaxLength < 0 {
		return &AttributeError{Entity: e.Name, Attribute: a.Name, Err: fmt.Errorf("%w: negative maxlength", ErrInvalidArgument)}
	}
	if a.MinValue != nil && a.MaxValue != nil && *a.MinValue > *a.MaxValue {
		return &AttributeError{Entity: e.Name, Attribute: a.Name, Err: fmt.Errorf("%w: minvalue above maxvalue", ErrInvalidArgument)}
	}
	return nil
}

func validName(s string) bool {
	if len(s) == 0 || len(s) > 64 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	return strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_')
	}) < 0
}
