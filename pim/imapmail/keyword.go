package imapmail

import (
	"fmt"
	"strings"
)

// maxKeywordLen bounds keywords; servers commonly allow a few hundred
// bytes, clients rarely use more than 30.
const maxKeywordLen = 100

// ValidKeyword reports whether k may be sent as an IMAP keyword: a
// non-empty atom (RFC 3501 section 9: no SP, CTL, "(", ")", "{", "%",
// "*", '"', "\", "]", nor non-ASCII) that is not a system flag. go-imap
// v2 beta.8 tears down the whole connection on a keyword that is not an
// atom, so every keyword is checked before it reaches the wire.
func ValidKeyword(k string) error {
	if k == "" || len(k) > maxKeywordLen {
		return fmt.Errorf("imapmail: keyword %q: length: %w", k, ErrInvalidKeyword)
	}
	for i := 0; i < len(k); i++ {
		ch := k[i]
		if ch <= 0x20 || ch >= 0x7f || strings.IndexByte(`(){%*"\]`, ch) >= 0 {
			return fmt.Errorf("imapmail: keyword %q: byte %q: %w", k, ch, ErrInvalidKeyword)
		}
	}
	return nil
}

// SameKeyword compares keywords as IMAP does: case-insensitively.
func SameKeyword(a, b string) bool { return strings.EqualFold(a, b) }
