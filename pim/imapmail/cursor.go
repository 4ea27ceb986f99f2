package imapmail

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// Cursor is what Changes remembers about one mailbox between calls. The
// caller stores it (MarshalBinary) with the data it covers, in the same
// transaction, and passes it back; the zero Cursor means "never synced".
// Its fields are exported for logs and tests; treat them as opaque.
type Cursor struct {
	// UIDValidity of the mailbox when the cursor was made.
	UIDValidity uint32 `json:"uidvalidity,omitempty"`
	// HighestModSeq (CONDSTORE) when the cursor was made; 0 without it.
	HighestModSeq uint64 `json:"highestmodseq,omitempty"`
	// LastUID is the highest UID reported so far.
	LastUID uint32 `json:"lastuid,omitempty"`
	// KnownUIDs are the UIDs (<= LastUID) that existed at the last call.
	KnownUIDs UIDSet `json:"known,omitempty"`
	// FlagSets, kept only when the server has no CONDSTORE, maps each
	// combination of flags (lower-cased, sorted, space-separated) to the
	// UIDs that carry it, so that a flag scan reports only changes.
	FlagSets map[string]UIDSet `json:"flagsets,omitempty"`
}

// cursorVersion is the version of the serialised form.
const cursorVersion = 1

type cursorJSON struct {
	V int `json:"v"`
	Cursor
}

// MarshalBinary serialises the cursor (as JSON, versioned).
func (c Cursor) MarshalBinary() ([]byte, error) {
	return json.Marshal(cursorJSON{V: cursorVersion, Cursor: c})
}

// UnmarshalBinary reads what MarshalBinary wrote; an empty input is the
// zero Cursor.
func (c *Cursor) UnmarshalBinary(b []byte) error {
	if len(b) == 0 {
		*c = Cursor{}
		return nil
	}
	var v cursorJSON
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("imapmail: cursor: %w", err)
	}
	if v.V != cursorVersion {
		return fmt.Errorf("imapmail: cursor: unknown version %d", v.V)
	}
	*c = v.Cursor
	return nil
}

// flagKey is the canonical form of a flag list used in Cursor.FlagSets:
// lower-cased (servers differ in keyword case), sorted, without \Recent
// (which changes on every session).
func flagKey(flags []string) string {
	fs := make([]string, 0, len(flags))
	for _, f := range flags {
		if strings.EqualFold(f, `\Recent`) {
			continue
		}
		fs = append(fs, strings.ToLower(f))
	}
	slices.Sort(fs)
	fs = slices.Compact(fs)
	return strings.Join(fs, " ")
}

// flagKeyOf returns the key of uid in sets, and whether uid was found.
func flagKeyOf(sets map[string]UIDSet, uid uint32) (string, bool) {
	for k, s := range sets {
		if s.Contains(uid) {
			return k, true
		}
	}
	return "", false
}
