package mapping

import (
	"strings"
	"testing"

	"github.com/pimbridge/pimbridge/crm"
)

// TestPatchVCard_structuredValues: N has exactly five components, ADR
// seven (RFC 6350 6.2.2, 6.3.1; street lines joined by a newline), ORG the
// company then the department with empty trailing units dropped; FN follows
// N only while it was the name composed from N (a custom FN stays); a
// structured value that becomes empty removes its line.
func TestPatchVCard_structuredValues(t *testing.T) {
	const short = "BEGIN:VCARD\r\nVERSION:3.0\r\nN:B;A\r\nFN:A B\r\nORG:Acme;Sales\r\nEND:VCARD\r\n"
	const custom = "BEGIN:VCARD\r\nVERSION:3.0\r\nN:B;A;;;\r\nFN:Dr. Custom\r\nORG:;Sales\r\nADR;TYPE=WORK:;;Street 1;Berlin;;;\r\nEND:VCARD\r\n"
	tests := []struct {
		name, raw string
		attrs     map[string]any
		want      string
	}{
		{"N padded to five, FN recomposed", short, map[string]any{"middlename": "M"},
			"BEGIN:VCARD\r\nVERSION:3.0\r\nN:B;A;M;;\r\nFN:A M B\r\nORG:Acme;Sales\r\nEND:VCARD\r\n"},
		{"department cleared", short, map[string]any{"department": nil},
			"BEGIN:VCARD\r\nVERSION:3.0\r\nN:B;A\r\nFN:A B\r\nORG:Acme\r\nEND:VCARD\r\n"},
		{"department changed", short, map[string]any{"department": "Ops"},
			"BEGIN:VCARD\r\nVERSION:3.0\r\nN:B;A\r\nFN:A B\r\nORG:Acme;Ops\r\nEND:VCARD\r\n"},
		{"ADR added with seven components", short, map[string]any{"address1_line1": "Street 1", "address1_line2": "Floor 2", "address1_city": "Berlin"},
			"BEGIN:VCARD\r\nVERSION:3.0\r\nN:B;A\r\nFN:A B\r\nORG:Acme;Sales\r\nADR;TYPE=WORK:;;Street 1\\nFloor 2;Berlin;;;\r\nEND:VCARD\r\n"},
		{"custom FN kept", custom, map[string]any{"lastname": "C"},
			"BEGIN:VCARD\r\nVERSION:3.0\r\nN:C;A;;;\r\nFN:Dr. Custom\r\nORG:;Sales\r\nADR;TYPE=WORK:;;Street 1;Berlin;;;\r\nEND:VCARD\r\n"},
		{"ORG emptied is removed", custom, map[string]any{"department": nil},
			"BEGIN:VCARD\r\nVERSION:3.0\r\nN:B;A;;;\r\nFN:Dr. Custom\r\nADR;TYPE=WORK:;;Street 1;Berlin;;;\r\nEND:VCARD\r\n"},
		{"ADR emptied is removed", custom, map[string]any{"address1_line1": nil, "address1_city": nil},
			"BEGIN:VCARD\r\nVERSION:3.0\r\nN:B;A;;;\r\nFN:Dr. Custom\r\nORG:;Sales\r\nEND:VCARD\r\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := PatchVCard([]byte(tc.raw), crm.Record{Entity: crm.EntityContact, Attrs: tc.attrs}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if string(out) != tc.want {
				t.Errorf("got\n%s\nwant\n%s", out, tc.want)
			}
		})
	}
}

// TestPatchVCard_v21Encoding: a vCard 2.1 value with non-ASCII text or a
// line break is written quoted-printable with CHARSET=UTF-8 (vCard 2.1
// 2.1.3, as Outlook and Android read it), on one unfolded line; an ASCII
// value drops the old line's CHARSET and QUOTED-PRINTABLE parameters.
func TestPatchVCard_v21Encoding(t *testing.T) {
	const raw = "BEGIN:VCARD\r\nVERSION:2.1\r\nN:B;A\r\nTITLE;CHARSET=ISO-8859-1;QUOTED-PRINTABLE:Chef=FC\r\nNOTE;ENCODING=QUOTED-PRINTABLE;CHARSET=ISO-8859-1:x\r\nEND:VCARD\r\n"
	long := strings.Repeat("ü", 60)
	tests := []struct {
		attrs map[string]any
		want  string
	}{
		{map[string]any{"jobtitle": "Boss"}, "TITLE:Boss\r\n"},
		{map[string]any{"jobtitle": "Müller"}, "TITLE;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:M=C3=BCller\r\n"},
		{map[string]any{"description": "a\nb"}, "NOTE;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:a=0D=0Ab\r\n"},
		{map[string]any{"description": "plain"}, "NOTE:plain\r\n"},
		{map[string]any{"jobtitle": long}, "TITLE;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:" + strings.Repeat("=C3=BC", 60) + "\r\n"},
	}
	for _, tc := range tests {
		out, err := PatchVCard([]byte(raw), crm.Record{Entity: crm.EntityContact, Attrs: tc.attrs}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(out), "\r\n"+tc.want) {
			t.Errorf("%v: no line %q in\n%s", tc.attrs, tc.want, out)
		}
		rs, err := VCardToCRM(out, nil)
		if err != nil {
			t.Fatal(err)
		}
		for f, v := range tc.attrs {
			if got := rs[0].Record.Attrs[f]; got != v {
				t.Errorf("%s read back as %q, want %q", f, got, v)
			}
		}
	}
	// A bare ENCODING parameter (no value) is not a transfer encoding and stays.
	out, err := PatchVCard([]byte("BEGIN:VCARD\r\nVERSION:2.1\r\nN:B;A\r\nTITLE;ENCODING:Chef\r\nEND:VCARD\r\n"), crm.Record{Entity: crm.EntityContact, Attrs: map[string]any{"jobtitle": "Boss"}}, nil)
	if err != nil || !strings.Contains(string(out), "\r\nTITLE;ENCODING:Boss\r\n") {
		t.Errorf("bare ENCODING: %v\n%s", err, out)
	}
	// vCard 3.0 writes UTF-8 as it is, folded at 75 octets.
	out, err = PatchVCard([]byte("BEGIN:VCARD\r\nVERSION:3.0\r\nN:B;A;;;\r\nEND:VCARD\r\n"), crm.Record{Entity: crm.EntityContact, Attrs: map[string]any{"jobtitle": long}}, nil)
	if err != nil || !strings.Contains(string(out), "TITLE:ü") || strings.Contains(string(out), "QUOTED-PRINTABLE") || !strings.Contains(string(out), "\r\n ü") {
		t.Errorf("3.0: %v\n%s", err, out)
	}
}

// TestPatchVCard_groupLabelRemoved: Apple and Google write a custom label
// as X-ABLabel in the property's group (item1.ADR + item1.X-ABLabel); when
// the property goes, a label left alone in its group goes too, while a
// group that still holds other lines keeps it.
func TestPatchVCard_groupLabelRemoved(t *testing.T) {
	const raw = "BEGIN:VCARD\r\nVERSION:3.0\r\nN:B;A;;;\r\nFN:A B\r\n" +
		"item1.ADR;type=WORK:;;1 Main St;Town;;;\r\nitem1.X-ABLabel:Office\r\n" +
		"item2.TEL;type=CELL:+1 555\r\nitem2.X-ABLabel:_$!<Mobile>!$_\r\nitem2.X-ABADR:us\r\nEND:VCARD\r\n"
	out, err := PatchVCard([]byte(raw), crm.Record{Entity: crm.EntityContact, Attrs: map[string]any{"address1_line1": nil, "address1_city": nil}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.Replace(raw, "item1.ADR;type=WORK:;;1 Main St;Town;;;\r\nitem1.X-ABLabel:Office\r\n", "", 1); string(out) != want {
		t.Errorf("ADR removal:\n%s\nwant\n%s", out, want)
	}
	out, err = PatchVCard([]byte(raw), crm.Record{Entity: crm.EntityContact, Attrs: map[string]any{"mobilephone": nil}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.Replace(raw, "item2.TEL;type=CELL:+1 555\r\n", "", 1); string(out) != want {
		t.Errorf("TEL removal:\n%s\nwant\n%s", out, want)
	}
}
