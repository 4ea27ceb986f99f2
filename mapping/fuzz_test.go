package mapping

import (
	"bytes"
	"errors"
	"mime"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/emersion/go-message/charset"
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

// FuzzMessageToCRM: no panic; an error is a *ParseError; a message that is
// accepted keeps its Message-ID, From and Subject whenever the standard
// library can read those headers.
func FuzzMessageToCRM(f *testing.F) {
	seed(f, "mail")
	f.Fuzz(func(t *testing.T, raw []byte) {
		em, err := MessageToCRM(raw, false, &Options{MaxAttachmentSize: 1 << 16})
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not a *ParseError", err)
			}
			return
		}
		if em.Record.Entity != "email" {
			t.Fatalf("entity %q", em.Record.Entity)
		}
		keepsHeaders(t, raw, em)
	})
}

// keepsHeaders fails when the standard library reads a Message-ID, From
// address or Subject from raw that em lost.
func keepsHeaders(t *testing.T, raw []byte, em *Email) {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return // the oracle cannot read it either
	}
	a := em.Record.Attrs
	if id := strings.TrimSpace(msg.Header.Get("Message-Id")); id != "" && a["messageid"] == nil {
		t.Fatalf("Message-ID %q lost; defects %v", id, em.Defects)
	}
	if list, err := msg.Header.AddressList("From"); err == nil && len(list) > 0 && list[0].Address != "" && a["sender"] == nil {
		t.Fatalf("From %q lost; defects %v", msg.Header.Get("From"), em.Defects)
	}
	dec := &mime.WordDecoder{CharsetReader: charset.Reader}
	if s, err := dec.DecodeHeader(msg.Header.Get("Subject")); err == nil && utf8.ValidString(s) && strings.TrimSpace(s) != "" && a["subject"] == nil {
		t.Fatalf("Subject %q lost; defects %v", msg.Header.Get("Subject"), em.Defects)
	}
}
