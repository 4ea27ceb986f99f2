package davserver

import (
	"errors"
	"fmt"
)

// Sentinel errors of the package; compare with errors.Is.
var (
	// ErrNotFound: no such user, collection or object.
	ErrNotFound = errors.New("not found")
	// ErrPreconditionFailed: an If-Match / If-None-Match condition failed (HTTP 412).
	ErrPreconditionFailed = errors.New("precondition failed")
	// ErrInvalidSyncToken: a sync token that is unknown, malformed or older
	// than the tombstones kept (HTTP 403 DAV:valid-sync-token).
	ErrInvalidSyncToken = errors.New("invalid sync token")
	// ErrInvalidName: a user, collection or object name that is not one
	// safe path segment.
	ErrInvalidName = errors.New("invalid name")
	// ErrInvalidObject: data that does not parse as a vCard / iCalendar
	// object fit for the collection.
	ErrInvalidObject = errors.New("invalid object")
	// ErrExists: the collection already exists (MKCOL/MKCALENDAR 405).
	ErrExists = errors.New("already exists")
	// ErrSchemaTooNew: the database was written by a newer program.
	ErrSchemaTooNew = errors.New("database schema too new")
)

// UIDConflictError reports a PUT whose UID is already used by another
// object of the collection (RFC 6352 / RFC 4791 no-uid-conflict, HTTP 409).
type UIDConflictError struct {
	UID  string // the UID of the rejected object
	Name string // the object that already holds it
}

func (e *UIDConflictError) Error() string {
	return fmt.Sprintf("davserver: UID %q already used by %q", e.UID, e.Name)
}
