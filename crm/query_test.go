package crm

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
	"testing/iotest"
	"time"
)

func TestParseFilter(t *testing.T) {
	m := Builtin()
	contact, _ := m.Entity(EntityContact)
	task, _ := m.Entity(EntityTask)
	tests := []struct {
		name, filter string
		e            *Entity
		wantErr      error
	}{
		{"eq string", "lastname eq 'O''Brien'", contact, nil},
		{"and or not", "not (lastname eq 'a' or firstname ne null) and telephone1 ne '1'", contact, nil},
		{"functions", "contains(lastname,'x') and startswith(firstname,'y') or endswith(emailaddress1,'.com')", contact, nil},
		{"datetime and guid", "createdon ge 2024-01-01T00:00:00Z and _ownerid_value eq 6f1c2c3e-8d2a-4c44-9a59-0b1a2b3c4d5e", contact, nil},
		{"dateonly", "birthdate lt 2000-01-01", contact, nil},
		{"local filter", "(ownerid eq @me or isparty(@me)) and (statecode eq 0 or modifiedon ge @now-30d)", task, nil},
		{"isparty on contact", "isparty(@me)", contact, ErrInvalidArgument},
		{"unknown attr", "nosuch eq 1", contact, ErrUnknownAttribute},
		{"bad type", "lastname eq 5", contact, ErrInvalidArgument},
		{"gt on bool", "statecode eq 0 and isdisabled gt true", contact, ErrUnknownAttribute},
		{"injection", "lastname eq 'x' or 1=1", contact, ErrInvalidArgument},
		{"semicolon", "lastname eq 'x'; DROP TABLE x", contact, ErrInvalidArgument},
		{"unterminated", "lastname eq 'x", contact, ErrInvalidArgument},
		{"empty", "", contact, ErrInvalidArgument},
		{"unbalanced", "(lastname eq 'x'", contact, ErrInvalidArgument},
		{"null ordering", "lastname gt null", contact, ErrInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x, err := ParseFilter(tt.filter)
			if err == nil {
				err = tt.e.CheckQuery(Query{Filter: x})
			}
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("ParseFilter(%q) error = %v, want %v", tt.filter, err, tt.wantErr)
			}
		})
	}
	x, _ := ParseFilter("modifiedon ge @now-30d")
	now := time.Date(2026, 3, 31, 12, 0, 0, 0, time.UTC)
	v, err := LiteralValue(task.Attr("modifiedon"), x.(*Compare).Value, ID{}, now)
	if err != nil || v != now.Add(-30*24*time.Hour) {
		t.Errorf("@now-30d = %v, %v", v, err)
	}
}

func FuzzParseFilter(f *testing.F) {
	for _, s := range []string{
		"lastname eq 'x'", "not (a eq 1 or b ne null)", "contains(lastname,'%_\\')",
		"(ownerid eq @me or isparty(@me)) and (statecode eq 0 or modifiedon ge @now-30d)",
		"createdon ge 2024-01-01T00:00:00Z", "_parentcustomerid_value eq 6f1c2c3e-8d2a-4c44-9a59-0b1a2b3c4d5e",
		"lastname eq 'x'' or 1=1 --'", "birthdate lt 2000-01-01", "versionnumber gt -5",
	} {
		f.Add(s)
	}
	m := Builtin()
	f.Fuzz(func(t *testing.T, s string) {
		x, err := ParseFilter(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidArgument) {
				t.Fatalf("ParseFilter(%q) error %v does not wrap ErrInvalidArgument", s, err)
			}
			return
		}
		if x == nil {
			t.Fatalf("ParseFilter(%q) = nil, nil", s)
		}
		for _, e := range m.Entities {
			e.CheckQuery(Query{Filter: x})
		}
	})
}

func FuzzRecordRoundTrip(f *testing.F) {
	for _, s := range []string{
		`{"lastname":"x","birthdate":"1980-02-29","parentcustomerid@odata.bind":"/accounts(6f1c2c3e-8d2a-4c44-9a59-0b1a2b3c4d5e)"}`,
		`{"subject":"s","requiredattendees":[{"partyid":{"logicalname":"contact","id":"6f1c2c3e-8d2a-4c44-9a59-0b1a2b3c4d5e"},"addressused":"a@b"}],"prioritycode":2}`,
		`{"@odata.etag":"W/\"3\"","scheduledstart":"2024-03-31T01:30:00+02:00","isalldayevent":true}`,
		`{"statecode":1.5}`, `[]`, `{"x":1}`,
	} {
		f.Add([]byte(s))
	}
	m := Builtin()
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, name := range []string{EntityContact, EntityAppointment, EntityEmail} {
			e, _ := m.Entity(name)
			attrs, err := e.DecodeAttrs(data, DecodeOptions{AllowPrimaryKey: true})
			if err != nil {
				continue
			}
			r := Record{Entity: name, Attrs: attrs}
			if id, ok := attrs[e.PrimaryKey].(ID); ok {
				r.ID = id
				delete(attrs, e.PrimaryKey)
			}
			b, err := e.MarshalRecord(r)
			if err != nil {
				t.Fatalf("MarshalRecord of decoded %s: %v", data, err)
			}
			r2, err := e.UnmarshalRecord(b)
			if err != nil {
				t.Fatalf("UnmarshalRecord(%s) of re-encoded %s: %v", b, data, err)
			}
			b2, err := e.MarshalRecord(r2)
			if err != nil || string(b2) != string(b) {
				t.Fatalf("round trip not stable:\n%s\n%s", b, b2)
			}
		}
	})
}

func FuzzDecodeBatchPayload(f *testing.F) {
	m := Builtin()
	e, _ := m.Entity(EntityAppointment)
	var cols []Attribute
	for _, a := range e.Attributes {
		if a.Type != TypeUniqueID {
			cols = append(cols, Attribute{Name: a.Name, Type: a.Type})
		}
	}
	enc, _ := NewBatchEncoder(7, e.Name, cols)
	vals := make([]any, len(cols))
	for i, c := range cols {
		switch c.Type {
		case TypeString, TypeMemo:
			vals[i] = "s"
		case TypeDateTime:
			vals[i] = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
		case TypePartyList:
			vals[i] = []Party{{Address: "a@b"}}
		case TypeOwner:
			vals[i] = Ref{Entity: EntitySystemUser, ID: NewID()}
		case TypeBoolean:
			vals[i] = true
		case TypeInteger, TypeBigInt, TypePicklist, TypeState, TypeStatus:
			vals[i] = int64(-3)
		}
	}
	enc.Upsert(NewID(), 5, vals)
	enc.Delete(NewID())
	f.Add(enc.Payload())
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, p []byte) {
		b, err := DecodeBatchPayload(p)
		// Streamed a byte at a time, the same payload decodes the same.
		sb, serr := collect(func(fn func(*Batch) error) error {
			return DecodeBatchStream(iotest.OneByteReader(bytes.NewReader(p)), int64(len(p)), 0, fn)
		})
		if (err == nil) != (serr == nil) || err == nil && !reflect.DeepEqual(b, sb) {
			t.Fatalf("whole decode (%v) and streamed decode (%v) differ", err, serr)
		}
		if err != nil {
			if !errors.Is(err, ErrBadBatch) {
				t.Fatalf("error %v does not wrap ErrBadBatch", err)
			}
			return
		}
		enc, err := NewBatchEncoder(b.ID, b.Entity, b.Columns)
		if err != nil {
			return
		}
		for _, r := range b.Upserts {
			vals := make([]any, len(b.Columns))
			for i, c := range b.Columns {
				vals[i] = r.Attrs[c.Name]
			}
			if err := enc.Upsert(r.ID, r.Version, vals); err != nil {
				t.Fatalf("re-encode: %v", err)
			}
		}
		for _, id := range b.Deletes {
			enc.Delete(id)
		}
		b2, err := DecodeBatchPayload(enc.Payload())
		if err != nil || len(b2.Upserts) != len(b.Upserts) || len(b2.Deletes) != len(b.Deletes) {
			t.Fatalf("re-decode: %v", err)
		}
	})
}
