package mapping

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func seed(f *testing.F, dir string) {
	files, _ := filepath.Glob(filepath.Join("testdata/fixtures", dir, "*"))
	for _, file := range files {
		if raw, err := os.ReadFile(file); err == nil {
			f.Add(raw)
		}
	}
}

// FuzzVCardToCRM: no panic; an error is a *ParseError; a mapped card
// patched with its own record is unchanged, and writing it anew is stable.
func FuzzVCardToCRM(f *testing.F) {
	seed(f, "vcard")
	f.Fuzz(func(t *testing.T, raw []byte) {
		rs, err := VCardToCRM(raw, nil)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is not a *ParseError", err)
			}
			return
		}
		if len(rs) == 0 {
			return
		}
		out, err := PatchVCard(raw, rs[0].Record, nil)
		if err != nil {
			t.Fatalf("PatchVCard after a successful read: %v", err)
		}
		if len(rs) == 1 && !bytes.Equal(out, raw) {
			t.Fatalf("no-change patch changed the card:\n%q\n%q", raw, out)
		}
		opts := &Options{Now: fixedNow, NewUID: func() string { return "u" }}
		a, err := NewVCard(rs[0].Record, opts)
		if err != nil {
			return // e.g. a value too long for CRM
		}
		back, err := VCardToCRM(a, opts)
		if err != nil {
			t.Fatalf("re-read of a written card: %v\n%s", err, a)
		}
		if d := Diff(NewSnapshot(rs[0].Record), NewSnapshot(back[0].Record)); len(d) > 0 {
			t.Fatalf("round trip changed %v\n%q\n%s", d, raw, a)
		}
	})
}

// FuzzICalToCRM: no panic, typed errors, stable no-change patch.
func FuzzICalToCRM(f *testing.F) {
	seed(f, "ical")
	f.Fuzz(func(t *testing.T, raw []byte) {
		rs, err := ICalToCRM(raw, nil)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is not a *ParseError", err)
			}
			return
		}
		if len(rs) != 1 {
			return
		}
		out, err := PatchICal(raw, rs[0].Record, nil)
		if err == nil && !bytes.Equal(out, raw) {
			t.Fatalf("no-change patch changed the object:\n%q\n%q", raw, out)
		}
	})
}

// FuzzMessageToCRM: no panic; errors are typed or come from a broken MIME
// structure.
func FuzzMessageToCRM(f *testing.F) {
	seed(f, "mail")
	f.Fuzz(func(t *testing.T, raw []byte) {
		em, err := MessageToCRM(raw, false, &Options{MaxAttachmentSize: 1 << 16})
		if err == nil && em.Record.Entity != "email" {
			t.Fatalf("entity %q", em.Record.Entity)
		}
	})
}
