package crm

import (
	"fmt"

	"github.com/google/uuid"
)

// ID is the primary key of a record: a GUID, as in Dynamics CRM.
// The zero ID means "not yet assigned".
type ID = uuid.UUID

// NewID returns a new random (version 4) ID. Clients use it to choose the
// primary key of a record they create, so that a replayed create is
// idempotent.
func NewID() ID { return uuid.New() }

// ParseID parses the canonical 36-character form, with or without braces.
// Anything else is ErrInvalidID.
func ParseID(s string) (ID, error) {
	if len(s) == 38 && s[0] == '{' && s[37] == '}' {
		s = s[1:37]
	}
	if len(s) != 36 {
		return ID{}, fmt.Errorf("%w: %q", ErrInvalidID, s)
	}
	id, err := uuid.Parse(s)
	if err != nil {
		return ID{}, fmt.Errorf("%w: %q", ErrInvalidID, s)
	}
	return id, nil
}
