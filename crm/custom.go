package crm

import (
	"fmt"
	"regexp"
	"slices"
)

// Custom entities and relationships. An admin makes a
// custom entity with a publisher prefix (new_project); it is user-owned, so
// it has the system columns of every entity (ownerid, createdon, modifiedon,
// versionnumber), a required primary name attribute and the Active/Inactive
// states. A custom one-to-many relationship is a custom lookup attribute on
// the referencing entity pointing at one referenced entity.

// customEntityName is a logical name with a publisher prefix: new_project.
var customEntityName = regexp.MustCompile(`^[a-z][a-z0-9]{1,7}_[a-z0-9_]{1,50}$`)

// setName is an entity-set name (plural, used in URLs).
var setName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// knownTypes are the attribute types this version holds; an entity from a
// newer server with another type cannot be held.
var knownTypes = []AttrType{TypeUniqueID, TypeString, TypeMemo, TypeInteger, TypeBigInt, TypeDecimal,
	TypeMoney, TypeBoolean, TypeDateTime, TypeDateOnly, TypePicklist, TypeState, TypeStatus,
	TypeLookup, TypeOwner, TypePartyList, TypeBinary}

// NewCustomEntity returns the definition of a user-owned custom entity:
// primary key <name>id, the system columns, a required string primary name
// attribute of at most maxLength runes (0 means 100), statecode/statuscode.
func NewCustomEntity(name, set, primaryName string, maxLength int) *Entity {
	if maxLength <= 0 {
		maxLength = 100
	}
	pk := name + "id"
	e := &Entity{
		Name: name, SetName: set, PrimaryKey: pk, PrimaryName: primaryName, Custom: true,
		Attributes: append(common(pk),
			Attribute{Name: primaryName, Type: TypeString, MaxLength: maxLength, Required: true},
			typed("statecode", TypeState), typed("statuscode", TypeStatus),
		),
		States: slices.Clone(activeStates),
	}
	return e
}

// ValidateCustomEntity checks that custom entity e can join m: a prefixed
// lower-case name, a set name, neither taken by an entity of m, a primary
// key and primary name among its attributes, attribute names valid and
// unique, and only attribute types this version knows (an unknown type is
// ErrUnknownType). Lookups may only point at entities of m.
func ValidateCustomEntity(m *Metadata, e *Entity) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: custom entity %q: %s", ErrInvalidArgument, e.Name, fmt.Sprintf(format, args...))
	}
	if !e.Custom {
		return bad("not marked custom")
	}
	if !customEntityName.MatchString(e.Name) {
		return bad("logical name must be a publisher prefix and a name, like new_project ([a-z][a-z0-9]{1,7}_[a-z0-9_]+)")
	}
	if !setName.MatchString(e.SetName) {
		return bad("entity set name %q must match [a-z][a-z0-9_]{0,63}", e.SetName)
	}
	if e.IsActivity {
		return bad("custom activity entities are not supported")
	}
	for _, x := range m.Entities {
		for _, n := range []string{e.Name, e.SetName} {
			if x.Name == n || x.SetName == n {
				return fmt.Errorf("%w: custom entity %q: the name %q is taken by entity %s", ErrConflict, e.Name, n, x.Name)
			}
		}
	}
	if e.SetName == e.Name {
		return bad("the entity set name must differ from the logical name")
	}
	if e.PrimaryKey != e.Name+"id" || e.Attr(e.PrimaryKey) == nil || e.Attr(e.PrimaryKey).Type != TypeUniqueID {
		return bad("primary key must be %sid", e.Name)
	}
	if pn := e.Attr(e.PrimaryName); pn == nil || pn.Type != TypeString {
		return bad("primary name attribute %q must be a string attribute", e.PrimaryName)
	}
	for _, want := range common(e.PrimaryKey) {
		if a := e.Attr(want.Name); a == nil || a.Type != want.Type {
			return bad("a user-owned entity needs %s (%s)", want.Name, want.Type)
		}
	}
	seen := map[string]bool{}
	for _, a := range e.Attributes {
		if !validName(a.Name) {
			return bad("attribute name %q must match [a-z][a-z0-9_]{0,63}", a.Name)
		}
		if seen[a.Name] {
			return bad("attribute %q twice", a.Name)
		}
		seen[a.Name] = true
		if !slices.Contains(knownTypes, a.Type) {
			return fmt.Errorf("%w: %s.%s has type %q", ErrUnknownType, e.Name, a.Name, a.Type)
		}
		if a.Type == TypePartyList {
			return bad("party lists belong to activities")
		}
		if a.Type == TypeLookup || a.Type == TypeOwner {
			if len(a.Targets) == 0 {
				return bad("lookup %s has no target", a.Name)
			}
			for _, t := range a.Targets {
				if _, ok := builtinSetNames[t]; !ok {
					return bad("lookup %s targets %q; custom lookups may only point at built-in entities", a.Name, t)
				}
			}
		}
	}
	return nil
}

// RelationshipName is the schema name of the one-to-many relationship a
// lookup attribute makes: <referencing>_<attribute>_<referenced>.
func RelationshipName(referencing, attribute, referenced string) string {
	return referencing + "_" + attribute + "_" + referenced
}

// ValidateCustomRelationship checks that a custom one-to-many relationship
// can be added to m: the referencing entity exists, the referencing
// attribute is a new valid name, and the referenced entity is a built-in
// one (lookups resolve entity sets of built-in entities only).
func ValidateCustomRelationship(m *Metadata, rel Relationship) error {
	from, err := m.Entity(rel.Referencing)
	if err != nil {
		return fmt.Errorf("relationship: referencing entity: %w", err)
	}
	to, err := m.Entity(rel.Referenced)
	if err != nil {
		return fmt.Errorf("relationship: referenced entity: %w", err)
	}
	if _, ok := builtinSetNames[to.Name]; !ok {
		return fmt.Errorf("%w: relationship: the referenced entity %q must be a built-in entity", ErrInvalidArgument, rel.Referenced)
	}
	return ValidateCustomAttribute(from, Attribute{Name: rel.ReferencingAttribute, Type: TypeString})
}

// RebuildRelationships sets m.Relationships to one relationship per lookup
// or owner attribute target, in entity and attribute order.
func (m *Metadata) RebuildRelationships() {
	m.Relationships = nil
	for _, e := range m.Entities {
		for _, a := range e.Attributes {
			if a.Type != TypeLookup && a.Type != TypeOwner {
				continue
			}
			for _, t := range a.Targets {
				m.Relationships = append(m.Relationships, Relationship{
					Name:                 RelationshipName(e.Name, a.Name, t),
					Referenced:           t,
					Referencing:          e.Name,
					ReferencingAttribute: a.Name,
				})
			}
		}
	}
}
