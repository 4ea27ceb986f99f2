package crm

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every layer wraps them with %w so that callers (and the
// HTTP layer mapping them to status codes) compare with errors.Is.
var (
	ErrNotFound           = errors.New("not found")                  // 404
	ErrInvalidID          = errors.New("invalid id")                 // 400
	ErrInvalidArgument    = errors.New("invalid argument")           // 400
	ErrUnknownEntity      = errors.New("unknown entity")             // 404
	ErrUnknownAttribute   = errors.New("unknown attribute")          // 400
	ErrRequired           = errors.New("required attribute missing") // 400
	ErrPreconditionFailed = errors.New("precondition failed")        // 412: stale If-Match version
	ErrConflict           = errors.New("conflict")                   // 409: same id, different body
	ErrDuplicate          = errors.New("duplicate record")           // 409: duplicate detection
	ErrReadOnly           = errors.New("record is read-only")        // 400: completed/canceled activity
	ErrUnauthenticated    = errors.New("unauthenticated")            // 401
	ErrForbidden          = errors.New("forbidden")                  // 403
	ErrUnavailable        = errors.New("message not available")      // 400/501: server-only message offline
	// ErrStalePrimary: the request carried a fencing generation of the
	// synchronizing (primary) client that is no longer current (409).
	ErrStalePrimary = errors.New("stale primary client generation")
	// ErrUnknownType: an attribute type this version does not know (400).
	ErrUnknownType = fmt.Errorf("%w: unknown attribute type", ErrInvalidArgument)
)

// AttributeError names the attribute (and the record, when known) a value
// problem belongs to. It wraps one of the sentinels above, usually
// ErrInvalidArgument, ErrUnknownAttribute or ErrRequired.
type AttributeError struct {
	Entity    string
	ID        ID // zero when the record has no id yet
	Attribute string
	Err       error
}

func (e *AttributeError) Error() string {
	rec := e.Entity
	if e.ID != (ID{}) {
		rec += "(" + e.ID.String() + ")"
	}
	return fmt.Sprintf("%s.%s: %v", rec, e.Attribute, e.Err)
}

func (e *AttributeError) Unwrap() error { return e.Err }
