package mapping

import (
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
