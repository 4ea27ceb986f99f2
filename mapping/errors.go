package mapping

import (
	"errors"
	"fmt"
)

// ErrMalformed is wrapped by every error about input that cannot be mapped:
// broken structure, bad values, undecodable encodings.
var ErrMalformed = errors.New("malformed input")

// ParseError names where bad input was found: the item kind (vcard, ical,
// mail), the property or header (when known) and the 1-based line (0 when
// unknown). It wraps ErrMalformed.
type ParseError struct {
	Item     string
	Property string
	Line     int
	Err      error
}

func (e *ParseError) Error() string {
	s := "mapping: " + e.Item
	if e.Line > 0 {
		s += fmt.Sprintf(": line %d", e.Line)
	}
	if e.Property != "" {
		s += ": " + e.Property
	}
	return s + ": " + e.Err.Error()
}

func (e *ParseError) Unwrap() error { return e.Err }

// propErr returns a *ParseError for property l.
func propErr(kind string, l *line, format string, args ...any) error {
	return &ParseError{Item: kind, Property: l.name, Line: l.num, Err: fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)}
}
