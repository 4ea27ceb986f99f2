package mapping

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pimbridge/pimbridge/crm"
)

// diffLines returns the lines only in a and only in b (as multisets).
func diffLines(a, b []byte) (onlyA, onlyB []string) {
	la := strings.Split(string(a), "\n")
	lb := strings.Split(string(b), "\n")
	count := map[string]int{}
	for _, l := range la {
		count[l]++
	}
	for _, l := range lb {
		if count[l] > 0 {
			count[l]--
		} else {
			onlyB = append(onlyB, l)
		}
	}
	for l, n := range count {
		for ; n > 0; n-- {
			onlyA = append(onlyA, l)
		}
	}
	slices.Sort(onlyA)
	return onlyA, onlyB
}

// TestPatch_preservation: for every fixture a no-change patch gives the
// same bytes, and a one-field patch changes only that property's lines.
func TestPatch_preservation(t *testing.T) {
	for file := range fixtures(t) {
		if filepath.Ext(file) == ".eml" {
			continue
		}
		t.Run(file, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("testdata/fixtures", file))
			if err != nil {
				t.Fatal(err)
			}
			recs, defects, err := mapDefects(file, raw)
			if err != nil && strings.HasPrefix(filepath.Base(file), "malformed-") {
				return // nothing usable: TestGolden checks the error
			}
			truncated := hasDefect(defects, DefectMissingEnd)
			if err == nil && len(recs) == 0 {
				return // an empty calendar: nothing to patch
			}
			if err != nil || len(recs) == 0 {
				t.Fatalf("map: %v", err)
			}
			r := recs[0]
			patch := PatchICal
			field, prop, value := "subject", "SUMMARY", "Neuer Betreff; mit, Sonderzeichen \\ und\nZeile"
			if r.Entity == crm.EntityContact {
				patch = PatchVCard
				field, prop, value = "jobtitle", "TITLE", "Leiterin; Vertrieb, Nord \\ Süd"
			}
			opts := &Options{Now: fixedNow}
			out, err := patch(raw, r, opts)
			if err != nil {
				t.Fatalf("no-change patch: %v", err)
			}
			if string(out) != string(raw) {
				a, b := diffLines(raw, out)
				t.Fatalf("no-change patch changed bytes: removed %q added %q", a, b)
			}
			out, err = patch(raw, crm.Record{Entity: r.Entity, Attrs: map[string]any{field: value}}, opts)
			if truncated {
				// The write completes the object: the missing END is added.
				if err != nil || !bytes.Contains(out, []byte("END:VC")) {
					t.Errorf("patch of a truncated object: err %v\n%s", err, out)
				}
				if _, ds, err := mapDefects(file, out); err != nil || hasDefect(ds, DefectMissingEnd) {
					t.Errorf("patched truncated object: err %v, defects %v", err, ds)
				}
				return
			}
			if err != nil {
				t.Fatalf("patch %s: %v", field, err)
			}
			_, added := diffLines(raw, out)
			for _, l := range added {
				name := strings.ToUpper(strings.SplitN(strings.SplitN(l, ":", 2)[0], ";", 2)[0])
				if strings.HasPrefix(l, " ") || l == "" || name == prop || name == "DTSTAMP" || name == "LAST-MODIFIED" || name == "REV" {
					continue
				}
				t.Errorf("patching %s added line %q", field, l)
			}
			var back []Result
			if r.Entity == crm.EntityContact {
				back, err = VCardToCRM(out, nil)
			} else {
				back, err = ICalToCRM(out, nil)
			}
			if err != nil {
				t.Fatalf("re-read: %v", err)
			}
			if got := back[0].Record.Attrs[field]; got != strings.TrimSpace(value) {
				t.Errorf("after patch %s = %q, want %q", field, got, value)
			}
			if d := Diff(NewSnapshot(r), NewSnapshot(back[0].Record)); !slices.Equal(d, []string{field}) {
				t.Errorf("patch of %s changed %v", field, d)
			}
		})
	}
}

// TestContactFields: every mapped contact field written and read back, in
// vCard 3.0, 4.0 and 2.1, with plain, empty, cleared, non-ASCII and
// special-character values.
func TestContactFields(t *testing.T) {
	bases := map[string]string{
		"3.0": "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:A B\r\nN:B;A;;;\r\nEND:VCARD\r\n",
		"4.0": "BEGIN:VCARD\nVERSION:4.0\nFN:A B\nN:B;A;;;\nEND:VCARD\n",
		"2.1": "BEGIN:VCARD\r\nVERSION:2.1\r\nN:B;A\r\nEND:VCARD\r\n",
	}
	values := map[string]string{
		"plain":     "Plain value",
		"non-ascii": "Jürgen Größe 東京",
		"special":   `a;b,c\d`,
	}
	for _, f := range contactFields {
		t.Run(f, func(t *testing.T) {
			for ver, base := range bases {
				isDate := f == "birthdate" || f == "anniversary"
				cases := map[string]any{}
				if isDate {
					cases["date"] = time.Date(1984, 2, 29, 0, 0, 0, 0, time.UTC)
				} else {
					for k, v := range values {
						if f == "description" || f == "address1_line3" {
							v += "\nsecond line"
						}
						cases[k] = v
					}
				}
				for name, v := range cases {
					attrs := map[string]any{f: v}
					// E-mail addresses are positional: 2 and 3 need the ones before.
					switch f {
					case "emailaddress3":
						attrs["emailaddress2"] = "two@example.com"
						fallthrough
					case "emailaddress2":
						attrs["emailaddress1"] = "one@example.com"
					}
					out, err := PatchVCard([]byte(base), crm.Record{Entity: crm.EntityContact, Attrs: attrs}, nil)
					if err != nil {
						t.Fatalf("%s/%s: PatchVCard: %v", ver, name, err)
					}
					rs, err := VCardToCRM(out, nil)
					if err != nil {
						t.Fatalf("%s/%s: VCardToCRM(%q): %v", ver, name, out, err)
					}
					if got := rs[0].Record.Attrs[f]; !sameValue(got, v) {
						t.Errorf("%s/%s: %s = %q, want %q\n%s", ver, name, f, got, v, out)
					}
					if !strings.HasPrefix(string(out), "BEGIN:VCARD") || !strings.Contains(string(out), "VERSION:"+ver) {
						t.Errorf("%s: version not kept:\n%s", ver, out)
					}
					// Clearing removes the value again.
					cleared, err := PatchVCard(out, crm.Record{Entity: crm.EntityContact, Attrs: map[string]any{f: nil}}, nil)
					if err != nil {
						t.Fatal(err)
					}
					rs, _ = VCardToCRM(cleared, nil)
					if got := rs[0].Record.Attrs[f]; got != nil {
						t.Errorf("%s/%s: after clearing %s = %q\n%s", ver, name, f, got, cleared)
					}
					empty, _ := PatchVCard(out, crm.Record{Entity: crm.EntityContact, Attrs: map[string]any{f: ""}}, nil)
					if string(empty) != string(cleared) && !isDate {
						t.Errorf("%s: empty string and nil differ:\n%s\n%s", ver, empty, cleared)
					}
				}
			}
		})
	}
}

// TestActivityFields: every mapped field of tasks (VTODO) and appointments
// (VEVENT) both ways.
func TestActivityFields(t *testing.T) {
	start := time.Date(2026, 3, 10, 9, 30, 0, 0, time.UTC)
	tests := []struct {
		entity, field string
		value         any
	}{
		{"task", "subject", `Anruf; Müller, Süd \ Nord`},
		{"task", "description", "Zeile 1\nZeile 2; mit, Zeichen"},
		{"task", "scheduledstart", start},
		{"task", "scheduledend", start.Add(48 * time.Hour)},
		{"task", "prioritycode", crm.PriorityHigh},
		{"task", "prioritycode", crm.PriorityLow},
		{"task", "statuscode", int64(5)},
		{"task", "statuscode", int64(3)},
		{"task", "statuscode", int64(7)},
		{"phonecall", "statuscode", int64(4)},
		{"fax", "subject", "Fax an 東京"},
		{"letter", "statuscode", int64(5)},
		{"appointment", "subject", "Termin; a,b"},
		{"appointment", "location", "Raum 1; Haus, Nord"},
		{"appointment", "description", "Agenda\n- a\n- b"},
		{"appointment", "scheduledstart", start.Add(time.Hour)},
		{"appointment", "scheduledend", start.Add(3 * time.Hour)},
		{"appointment", "scheduleddurationminutes", int64(45)},
		{"appointment", "isalldayevent", true},
		{"appointment", "prioritycode", crm.PriorityHigh},
		{"appointment", "organizer", []crm.Party{{Address: "boss@example.com", Name: "Boss, The"}}},
		{"appointment", "requiredattendees", []crm.Party{{Address: "a@example.com", Name: "Ä"}, {Address: "b@example.com"}}},
		{"appointment", "optionalattendees", []crm.Party{{Address: "c@example.com"}}},
		{"appointment", "statuscode", int64(1)},
		{"appointment", "statuscode", int64(2)},
		{"appointment", "statuscode", int64(3)},
		{"appointment", "statuscode", int64(4)},
		{"appointment", "statuscode", int64(6)},
		{"appointment", "recurrencepattern", "RRULE:FREQ=WEEKLY;BYDAY=MO,WE\nEXDATE:20260316T093000Z"},
	}
	for _, tc := range tests {
		t.Run(tc.entity+"/"+tc.field, func(t *testing.T) {
			base := crm.Record{Entity: tc.entity, Attrs: map[string]any{"subject": "x", "scheduledstart": start, "scheduledend": start.Add(time.Hour)}}
			raw, err := NewICal(base, &Options{Now: fixedNow, NewUID: func() string { return "u1" }})
			if err != nil {
				t.Fatal(err)
			}
			out, err := PatchICal(raw, crm.Record{Entity: tc.entity, Attrs: map[string]any{tc.field: tc.value}}, nil)
			if err != nil {
				t.Fatalf("PatchICal: %v", err)
			}
			rs, err := ICalToCRM(out, nil)
			if err != nil {
				t.Fatalf("ICalToCRM: %v\n%s", err, out)
			}
			r := rs[0].Record
			if r.Entity != tc.entity {
				t.Errorf("entity = %q, want %q", r.Entity, tc.entity)
			}
			if got := r.Attrs[tc.field]; !sameValue(got, tc.value) {
				t.Errorf("%s = %v, want %v\n%s", tc.field, got, tc.value, out)
			}
			if tc.field == "statuscode" {
				if st := entityMeta(tc.entity).StateOfStatus(tc.value.(int64)); r.Attrs["statecode"] != st.Value {
					t.Errorf("statecode = %v, want %v", r.Attrs["statecode"], st.Value)
				}
			}
			if tc.field == "scheduledend" && tc.entity != "appointment" && !strings.Contains(string(out), "X-CRM-REMINDER") {
				t.Errorf("due time without reminder:\n%s", out)
			}
			if tc.field == "isalldayevent" && !strings.Contains(string(out), "DTSTART;VALUE=DATE:") {
				t.Errorf("all-day not written as DATE:\n%s", out)
			}
			// Clearing (where allowed).
			if tc.field == "subject" || tc.field == "description" || tc.field == "location" {
				c, _ := PatchICal(out, crm.Record{Entity: tc.entity, Attrs: map[string]any{tc.field: nil}}, nil)
				rs, _ = ICalToCRM(c, nil)
				if got := rs[0].Record.Attrs[tc.field]; got != nil {
					t.Errorf("after clearing %s = %q", tc.field, got)
				}
			}
		})
	}
}
