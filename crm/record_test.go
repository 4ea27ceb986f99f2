package crm

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestEntity_DecodeAttrs(t *testing.T) {
	m := Builtin()
	contact, _ := m.Entity("contacts")
	acct := NewID()
	tests := []struct {
		name    string
		body    string
		wantErr error
		check   func(t *testing.T, got map[string]any)
	}{
		{name: "strings and dates", body: `{"firstname":"Zoë","birthdate":"1980-02-29","anniversary":null}`, check: func(t *testing.T, got map[string]any) {
			if got["firstname"] != "Zoë" || got["birthdate"] != time.Date(1980, 2, 29, 0, 0, 0, 0, time.UTC) || got["anniversary"] != nil {
				t.Errorf("got %#v", got)
			}
		}},
		{name: "lookup object", body: `{"parentcustomerid":{"logicalname":"account","id":"` + acct.String() + `"}}`, check: func(t *testing.T, got map[string]any) {
			if got["parentcustomerid"] != (Ref{Entity: "account", ID: acct}) {
				t.Errorf("got %#v", got)
			}
		}},
		{name: "lookup bind", body: `{"parentcustomerid@odata.bind":"/accounts(` + acct.String() + `)"}`, check: func(t *testing.T, got map[string]any) {
			if got["parentcustomerid"] != (Ref{Entity: "account", ID: acct}) {
				t.Errorf("got %#v", got)
			}
		}},
		{name: "annotation ignored", body: `{"@odata.etag":"W/\"3\"","lastname":"x"}`},
		{name: "unknown attribute", body: `{"nosuch":1}`, wantErr: ErrUnknownAttribute},
		{name: "wrong type", body: `{"firstname":12}`, wantErr: ErrInvalidArgument},
		{name: "too long", body: `{"firstname":"` + strings.Repeat("a", 51) + `"}`, wantErr: ErrInvalidArgument},
		{name: "system attribute", body: `{"versionnumber":5}`, wantErr: ErrInvalidArgument},
		{name: "bad date", body: `{"birthdate":"yesterday"}`, wantErr: ErrInvalidArgument},
		{name: "not an object", body: `[1,2]`, wantErr: ErrInvalidArgument},
		{name: "trailing data", body: `{} {}`, wantErr: ErrInvalidArgument},
		{name: "lookup to wrong entity", body: `{"parentcustomerid":{"logicalname":"task","id":"` + acct.String() + `"}}`, wantErr: ErrInvalidArgument},
		{name: "bad guid", body: `{"parentcustomerid@odata.bind":"/accounts(1234)"}`, wantErr: ErrInvalidID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := contact.DecodeAttrs([]byte(tt.body), DecodeOptions{})
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("DecodeAttrs(%s) error = %v, want %v", tt.body, err, tt.wantErr)
			}
			if tt.wantErr != nil {
				var ae *AttributeError
				if !errors.As(err, &ae) && tt.name != "not an object" && tt.name != "trailing data" {
					t.Errorf("error %v does not name the attribute", err)
				}
				return
			}
			if tt.check != nil {
				tt.check(t, got)
			}
		})
	}
}

func TestEntity_MarshalRecord_roundTrip(t *testing.T) {
	m := Builtin()
	appt, _ := m.Entity(EntityAppointment)
	r := Record{Entity: EntityAppointment, ID: NewID(), Version: 42, Attrs: map[string]any{
		"subject":        "Review; \"Q3\"",
		"scheduledstart": time.Date(2024, 3, 31, 1, 30, 0, 0, time.UTC),
		"isalldayevent":  false,
		"prioritycode":   PriorityHigh,
		"requiredattendees": []Party{
			{Party: &Ref{Entity: EntityContact, ID: NewID()}, Address: "a@example.com"},
			{Address: "b@example.com"},
		},
		"location": nil,
	}}
	b, err := appt.MarshalRecord(r)
	if err != nil {
		t.Fatal(err)
	}
	got, err := appt.UnmarshalRecord(b)
	if err != nil {
		t.Fatalf("UnmarshalRecord(%s): %v", b, err)
	}
	b2, err := appt.MarshalRecord(got)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != string(b2) {
		t.Errorf("round trip changed the record:\n%s\n%s", b, b2)
	}
	if got.ID != r.ID || got.Version != 42 {
		t.Errorf("id/version = %v/%d, want %v/42", got.ID, got.Version, r.ID)
	}
}

func FuzzDecodeAttrs(f *testing.F) {
	f.Add([]byte(`{"firstname":"a","birthdate":"2000-01-01","parentcustomerid@odata.bind":"/accounts(00000000-0000-0000-0000-000000000001)"}`))
	f.Add([]byte(`{"description":null,"address1_line1":"x\ny"}`))
	contact, _ := Builtin().Entity(EntityContact)
	f.Fuzz(func(t *testing.T, data []byte) {
		attrs, err := contact.DecodeAttrs(data, DecodeOptions{})
		if err != nil {
			return
		}
		b, err := contact.MarshalRecord(Record{Entity: EntityContact, Attrs: attrs})
		if err != nil {
			t.Fatalf("decoded attrs do not encode: %v", err)
		}
		if _, err := contact.DecodeAttrs(b, DecodeOptions{}); err != nil {
			t.Fatalf("re-decode of %s: %v", b, err)
		}
	})
}
