package crmserver

import (
	"slices"
	"strings"
	"time"

	"github.com/pimbridge/pimbridge/crm"
)

// The security model's types are crm's (crm/roles.go), which clients
// share; these names keep the server's and the stores' code unchanged.
type (
	Access = crm.Access
	Scope  = crm.Scope
	Role   = crm.Role
)

// The four rights a role grants per entity.
const (
	Create = crm.AccessCreate
	Read   = crm.AccessRead
	Write  = crm.AccessWrite
	Delete = crm.AccessDelete
)

// Accesses lists every Access.
var Accesses = []Access{Create, Read, Write, Delete}

// Scopes, in increasing order.
const (
	ScopeNone = crm.ScopeNone
	ScopeOwn  = crm.ScopeOwn
	ScopeAll  = crm.ScopeAll
)

// ParseScope parses "none", "own" or "all".
func ParseScope(s string) (Scope, error) { return crm.ParseScope(s) }

// Privileges that are not per-entity.
const (
	PrivGoOffline     = "GoOffline"
	PrivSyncToOutlook = "SyncToOutlook"
	// PrivAdmin allows customization, user and role management and setting
	// default local data filters.
	PrivAdmin = "Admin"
)

// Privileges lists the known privileges.
var Privileges = []string{PrivGoOffline, PrivSyncToOutlook, PrivAdmin}

// Built-in role names.
const (
	RoleAdmin       = "admin"
	RoleSalesperson = "salesperson"
)

// BuiltinRoles returns the roles every store starts with: admin (all rights
// on everything and every privilege) and salesperson (full rights on own
// records, read on all accounts, contacts and users, Go Offline and Sync to
// Outlook).
func BuiltinRoles() []Role {
	all := map[Access]string{Create: "all", Read: "all", Write: "all", Delete: "all"}
	own := map[Access]string{Create: "own", Read: "own", Write: "own", Delete: "own"}
	readAll := map[Access]string{Create: "own", Read: "all", Write: "own", Delete: "own"}
	return []Role{
		{Name: RoleAdmin, Privileges: slices.Clone(Privileges), Rights: map[string]map[Access]string{"*": all}},
		{Name: RoleSalesperson, Privileges: []string{PrivGoOffline, PrivSyncToOutlook}, Rights: map[string]map[Access]string{
			"*":                   own,
			crm.EntityAccount:     readAll,
			crm.EntityContact:     readAll,
			crm.EntitySystemUser:  {Read: "all"},
			crm.EntityAttachment:  own,
			crm.EntityAppointment: own,
		}},
	}
}

// Principal is an authenticated user with the union of their roles.
type Principal struct {
	UserID crm.ID
	Name   string
	Roles  []Role
	// Generation is the user's token generation: it changes when the
	// password changes or the user is disabled, which ends every token
	// and cached login of the user.
	Generation int64
	// TokenExpires is the expiry of the bearer token the request came
	// with (zero for Basic): a token cannot mint one that outlives it.
	TokenExpires time.Time
}

// Has reports whether any role grants the privilege.
func (p *Principal) Has(priv string) bool {
	for _, r := range p.Roles {
		for _, x := range r.Privileges {
			if strings.EqualFold(x, priv) {
				return true
			}
		}
	}
	return false
}

// IsAdmin reports whether the user holds the Admin privilege.
func (p *Principal) IsAdmin() bool { return p.Has(PrivAdmin) }

// Scope returns the widest scope any role grants for access a on entity.
// An entity's own entry overrides the role's "*" entry.
func (p *Principal) Scope(entity string, a Access) Scope {
	best := ScopeNone
	for _, r := range p.Roles {
		m, ok := r.Rights[entity]
		if !ok {
			m = r.Rights["*"]
		}
		s, err := ParseScope(m[a])
		if err == nil && s > best {
			best = s
		}
	}
	return best
}
