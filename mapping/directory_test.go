package mapping

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-vcard"

	"github.com/pimbridge/pimbridge/crm"
)

// TestDirectoryVCard: accounts and users become cards that a vCard parser
// reads back with their name, e-mail and phone; long values are folded at
// 75 octets; inactive accounts and disabled users are not listed.
func TestDirectoryVCard(t *testing.T) {
	id := crm.NewID()
	long := strings.TrimSpace(strings.Repeat("Ünïcode Company ", 10))
	tests := []struct {
		name       string
		rec        crm.Record
		listed     bool
		fn, email  string
		tel, org   string
		wantErrSub string
	}{
		{"account", crm.Record{Entity: crm.EntityAccount, ID: id, Attrs: map[string]any{"name": "Contoso; Ltd", "emailaddress1": "info@contoso.example", "telephone1": "+1 555 0199", "statecode": int64(0), "address1_city": "Berlin"}},
			true, "Contoso; Ltd", "info@contoso.example", "+1 555 0199", "Contoso; Ltd", ""},
		{"long account name", crm.Record{Entity: crm.EntityAccount, ID: id, Attrs: map[string]any{"name": long}}, true, long, "", "", long, ""},
		{"inactive account", crm.Record{Entity: crm.EntityAccount, ID: id, Attrs: map[string]any{"name": "Old", "statecode": int64(1)}}, false, "", "", "", "", ""},
		{"user", crm.Record{Entity: crm.EntitySystemUser, ID: id, Attrs: map[string]any{"fullname": "Bob Builder", "firstname": "Bob", "lastname": "Builder", "internalemailaddress": "bob@corp.example", "modifiedon": time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}},
			true, "Bob Builder", "bob@corp.example", "", "", ""},
		{"user without names", crm.Record{Entity: crm.EntitySystemUser, ID: id, Attrs: map[string]any{"domainname": "carol"}}, true, "carol", "", "", "", ""},
		{"disabled user", crm.Record{Entity: crm.EntitySystemUser, ID: id, Attrs: map[string]any{"fullname": "Gone", "isdisabled": true}}, false, "", "", "", "", ""},
		{"account without name", crm.Record{Entity: crm.EntityAccount, ID: id, Attrs: map[string]any{}}, false, "", "", "", "", "name"},
		{"contact", crm.Record{Entity: crm.EntityContact, ID: id, Attrs: map[string]any{"lastname": "X"}}, false, "", "", "", "", "not an account"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, listed, err := DirectoryVCard(tt.rec)
			if tt.wantErrSub != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErrSub) {
					t.Fatalf("DirectoryVCard = %v, want an error naming %q", err, tt.wantErrSub)
				}
				return
			}
			if err != nil || listed != tt.listed {
				t.Fatalf("DirectoryVCard = listed %v, %v; want listed %v", listed, err, tt.listed)
			}
			if !listed {
				return
			}
			for _, l := range strings.Split(string(data), "\r\n") {
				if len(l) > 75 {
					t.Errorf("line of %d octets: %q", len(l), l)
				}
			}
			card, err := vcard.NewDecoder(bytes.NewReader(data)).Decode()
			if err != nil {
				t.Fatalf("decode %q: %v", data, err)
			}
			get := func(k string) string {
				if f := card.Get(k); f != nil {
					return f.Value
				}
				return ""
			}
			if dirUnescape(get(vcard.FieldFormattedName)) != tt.fn || get(vcard.FieldEmail) != tt.email || get(vcard.FieldTelephone) != tt.tel ||
				get("X-CRM-ID") != id.String() || get("X-CRM-ENTITY") != tt.rec.Entity {
				t.Errorf("card %q: FN %q EMAIL %q TEL %q", data, get(vcard.FieldFormattedName), get(vcard.FieldEmail), get(vcard.FieldTelephone))
			}
			if tt.org != "" && dirUnescape(get(vcard.FieldOrganization)) != tt.org {
				t.Errorf("ORG = %q, want %q", get(vcard.FieldOrganization), tt.org)
			}
		})
	}
}

func TestDirectoryCardName_roundTrip(t *testing.T) {
	id := crm.NewID()
	for _, e := range DirectoryEntities {
		href := "/alice/directory/" + DirectoryCardName(e, id)
		if ge, gid, ok := ParseDirectoryCardName(href); !ok || ge != e || gid != id {
			t.Errorf("ParseDirectoryCardName(%q) = %q, %s, %v", href, ge, gid, ok)
		}
	}
	for _, h := range []string{"/a/mine.vcf", "/a/contact-" + id.String() + ".vcf", "/a/account-x.vcf", "/a/account-" + id.String() + ".ics"} {
		if _, _, ok := ParseDirectoryCardName(h); ok {
			t.Errorf("ParseDirectoryCardName(%q) = ok, want not a directory card", h)
		}
	}
}

// dirUnescape undoes dirEscape (kept here so the test does not lean on the
// other mapping files).
func dirUnescape(v string) string {
	return strings.NewReplacer(`\\`, `\`, `\;`, ";", `\,`, ",", `\n`, "\n").Replace(v)
}
