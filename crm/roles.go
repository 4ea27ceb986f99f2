package crm

import "fmt"

// The security model as the CRM API describes it to clients (WhoAmI's role
// definitions): crm/crmserver enforces it, crm/crmclient and the offline
// replica read it.

// Access is one of the per-entity rights.
type Access string

// The four rights a role grants per entity.
const (
	AccessCreate Access = "create"
	AccessRead   Access = "read"
	AccessWrite  Access = "write"
	AccessDelete Access = "delete"
)

// Scope is the depth of a right: none, the user's own records, or all.
type Scope int

// Scopes, in increasing order.
const (
	ScopeNone Scope = iota
	ScopeOwn
	ScopeAll
)

func (s Scope) String() string {
	switch s {
	case ScopeOwn:
		return "own"
	case ScopeAll:
		return "all"
	}
	return "none"
}

// ParseScope parses "none", "own" or "all".
func ParseScope(s string) (Scope, error) {
	switch s {
	case "none":
		return ScopeNone, nil
	case "own":
		return ScopeOwn, nil
	case "all":
		return ScopeAll, nil
	}
	return 0, fmt.Errorf("%w: scope %q (want none, own or all)", ErrInvalidArgument, s)
}

// Role is a named set of rights. Rights maps an entity logical name, or "*"
// for every entity, to the scope of each Access.
type Role struct {
	Name       string                       `json:"name"`
	Privileges []string                     `json:"privileges"`
	Rights     map[string]map[Access]string `json:"rights"` // scope names, as stored
}

// SetRight sets the scope of one access on an entity ("*" for all).
func (r *Role) SetRight(entity string, a Access, s Scope) {
	if r.Rights == nil {
		r.Rights = map[string]map[Access]string{}
	}
	if r.Rights[entity] == nil {
		r.Rights[entity] = map[Access]string{}
	}
	r.Rights[entity][a] = s.String()
}

// Availability says where a message (an API operation) can run.
type Availability string

// Availabilities of the message table.
const (
	MessageServerOnly Availability = "server"
	MessageClientOnly Availability = "client"
	MessageBoth       Availability = "both"
)

// Message is one row of the message availability table (GET /api/messages).
type Message struct {
	Name         string       `json:"name"`
	Availability Availability `json:"availability"`
	Description  string       `json:"description"`
}
