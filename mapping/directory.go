package mapping

import (
	"fmt"
	"strings"
	"time"

	"github.com/pimbridge/pimbridge/crm"
)

// The directory address book (config carddav.directory): CRM accounts and
// users (systemuser), one way, as vCard 3.0 cards that any mail client
// autocompletes. A card is written whole from the record each time; the
// book is read-only from CRM's point of view (PIM-side edits are
// overwritten, never mapped back), so there is no reverse mapping.

// DirectoryEntities are the entities the directory book holds.
var DirectoryEntities = []string{crm.EntityAccount, crm.EntitySystemUser}

// DirectoryCardName is the object name of rec's card: the entity and the
// id, so that a card deleted on the PIM side names its record.
func DirectoryCardName(entity string, id crm.ID) string { return entity + "-" + id.String() + ".vcf" }

// ParseDirectoryCardName is the inverse of DirectoryCardName on the last
// path segment of an href; ok is false for any other name (a card the user
// added themselves).
func ParseDirectoryCardName(href string) (entity string, id crm.ID, ok bool) {
	name := href[strings.LastIndex(href, "/")+1:]
	base, found := strings.CutSuffix(name, ".vcf")
	if !found {
		return "", crm.ID{}, false
	}
	for _, e := range DirectoryEntities {
		if rest, found := strings.CutPrefix(base, e+"-"); found {
			id, err := crm.ParseID(rest)
			if err != nil {
				return "", crm.ID{}, false
			}
			return e, id, true
		}
	}
	return "", crm.ID{}, false
}

// DirectoryVCard writes an account or a systemuser as a directory card.
// listed is false for a record that does not belong in the directory (an
// inactive account, a disabled user): its card is removed.
func DirectoryVCard(rec crm.Record) (data []byte, listed bool, err error) {
	a := rec.Attrs
	s := func(k string) string { v, _ := a[k].(string); return strings.TrimSpace(v) }
	var b dirCard
	b.add("BEGIN", "VCARD", false)
	b.add("VERSION", "3.0", false)
	b.add("PRODID", "-//pimbridge//directory//EN", false)
	b.add("UID", rec.ID.String(), false)
	switch rec.Entity {
	case crm.EntityAccount:
		if sc, ok := a["statecode"].(int64); ok && sc != 0 {
			return nil, false, nil
		}
		name := s("name")
		if name == "" {
			return nil, false, fmt.Errorf("mapping: directory card of account(%s): name: %w", rec.ID, crm.ErrRequired)
		}
		b.add("FN", name, true)
		b.add("N", ";;;;", false)
		b.add("ORG", dirEscape(name), false)
		b.add("X-ABShowAs", "COMPANY", false)
		b.addIf("EMAIL;TYPE=INTERNET,WORK", s("emailaddress1"))
		b.addIf("TEL;TYPE=WORK,VOICE", s("telephone1"))
		b.addIf("TEL;TYPE=WORK,FAX", s("fax"))
		b.addIf("URL", s("websiteurl"))
		adr := []string{s("address1_postofficebox"), "", strings.Join(nonEmpty(s("address1_line1"), s("address1_line2"), s("address1_line3")), "\n"),
			s("address1_city"), s("address1_stateorprovince"), s("address1_postalcode"), s("address1_country")}
		if strings.Join(adr, "") != "" {
			for i := range adr {
				adr[i] = dirEscape(adr[i])
			}
			b.add("ADR;TYPE=WORK", strings.Join(adr, ";"), false)
		}
	case crm.EntitySystemUser:
		if d, ok := a["isdisabled"].(bool); ok && d {
			return nil, false, nil
		}
		first, last := s("firstname"), s("lastname")
		fn := s("fullname")
		if fn == "" {
			fn = strings.Join(nonEmpty(first, last), " ")
		}
		if fn == "" {
			fn = s("domainname")
		}
		if fn == "" {
			return nil, false, fmt.Errorf("mapping: directory card of systemuser(%s): fullname: %w", rec.ID, crm.ErrRequired)
		}
		b.add("FN", fn, true)
		b.add("N", dirEscape(last)+";"+dirEscape(first)+";;;", false)
		b.addIf("EMAIL;TYPE=INTERNET,WORK", s("internalemailaddress"))
	default:
		return nil, false, fmt.Errorf("mapping: directory card: %w: entity %q is not an account or a user", crm.ErrInvalidArgument, rec.Entity)
	}
	if t, ok := a["modifiedon"].(time.Time); ok {
		b.add("REV", t.UTC().Format("20060102T150405Z"), false)
	}
	b.add("X-CRM-ENTITY", rec.Entity, false)
	b.add("X-CRM-ID", rec.ID.String(), false)
	b.add("END", "VCARD", false)
	return []byte(b.String()), true, nil
}

func nonEmpty(vs ...string) []string {
	var out []string
	for _, v := range vs {
		if v != "" {
			out = append(out, v)
		}
	}
	return out
}

// dirEscape escapes a TEXT value (RFC 6350 3.4).
func dirEscape(v string) string {
	return strings.NewReplacer(`\`, `\\`, ";", `\;`, ",", `\,`, "\r\n", `\n`, "\n", `\n`, "\r", `\n`).Replace(v)
}

// dirCard builds a card's content lines, folded at 75 octets.
type dirCard struct{ strings.Builder }

func (c *dirCard) add(name, value string, escape bool) {
	if escape {
		value = dirEscape(value)
	}
	line, limit := name+":"+value, 75
	for len(line) > limit {
		cut := limit
		for cut > 1 && !isRuneStart(line[cut]) {
			cut--
		}
		c.WriteString(line[:cut] + "\r\n ")
		line, limit = line[cut:], 74 // the continuation's space counts
	}
	c.WriteString(line + "\r\n")
}

func (c *dirCard) addIf(name, value string) {
	if value != "" {
		c.add(name, value, true)
	}
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }
