package mapping

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pimbridge/pimbridge/crm"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

var fixedNow = func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }

// fixtures returns the fixture files with their MANIFEST rows.
func fixtures(t testing.TB) map[string][]string {
	t.Helper()
	data, err := os.ReadFile("testdata/fixtures/MANIFEST.tsv")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string][]string{}
	for i, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if i == 0 {
			continue
		}
		cols := strings.Split(l, "\t")
		if len(cols) != 8 {
			t.Fatalf("MANIFEST line %d: %d columns", i+1, len(cols))
		}
		rows[cols[0]] = cols
	}
	return rows
}

// mapAny maps one fixture file to records.
func mapAny(file string, raw []byte) ([]crm.Record, error) {
	recs, _, err := mapDefects(file, raw)
	return recs, err
}

// mapDefects maps one fixture file to records and the defects found.
func mapDefects(file string, raw []byte) ([]crm.Record, []Defect, error) {
	var out []crm.Record
	var ds []Defect
	switch filepath.Ext(file) {
	case ".vcf", ".ics":
		read := VCardToCRM
		if filepath.Ext(file) == ".ics" {
			read = ICalToCRM
		}
		rs, err := read(raw, nil)
		for _, r := range rs {
			out = append(out, r.Record)
			ds = append(ds, r.Defects...)
		}
		return out, ds, err
	}
	em, err := MessageToCRM(raw, false, nil)
	if err != nil {
		return nil, nil, err
	}
	return append([]crm.Record{em.Record}, em.Attachments...), em.Defects, nil
}

func marshalAll(t *testing.T, recs []crm.Record) []byte {
	var b bytes.Buffer
	b.WriteString("[\n")
	for i, r := range recs {
		e, err := builtin.Entity(r.Entity)
		if err != nil {
			t.Fatal(err)
		}
		j, err := e.MarshalRecord(r)
		if err != nil {
			t.Fatalf("MarshalRecord: %v", err)
		}
		if i > 0 {
			b.WriteString(",\n")
		}
		b.Write(j)
	}
	b.WriteString("\n]\n")
	return b.Bytes()
}

// TestGolden maps every fixture to CRM JSON and compares it with
// testdata/golden/<file>.json, and its defects with <file>.defects.
// malformed-* files map best effort with their defects listed, or fail with
// a *ParseError naming the property or line when nothing usable remains.
// Each mapped record is then written back (new object) and read again, and
// must give the same mapped values.
func TestGolden(t *testing.T) {
	rows := fixtures(t)
	clients := map[string]bool{}
	cases := 0
	for file, row := range rows {
		t.Run(file, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("testdata/fixtures", file))
			if err != nil {
				t.Fatal(err)
			}
			recs, defects, err := mapDefects(file, raw)
			malformed := strings.HasPrefix(filepath.Base(file), "malformed-")
			if malformed && err == nil && len(defects) == 0 {
				t.Errorf("map(%s) lists no defects", file)
			}
			if malformed && err != nil {
				var pe *ParseError
				if !errors.As(err, &pe) || !errors.Is(err, ErrMalformed) {
					t.Fatalf("map(%s) error = %v, want a *ParseError wrapping ErrMalformed", file, err)
				}
				if pe.Property == "" && pe.Line == 0 {
					t.Errorf("error %v names neither property nor line", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("map(%s) (malformed=%s): %v", file, row[7], err)
			}
			got := marshalAll(t, recs)
			golden := filepath.Join("testdata/golden", file+".json")
			if *update {
				os.MkdirAll(filepath.Dir(golden), 0o755)
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("map(%s) =\n%s\nwant\n%s", file, got, want)
			}
			checkDefects(t, filepath.Join("testdata/golden", file+".defects"), defects)
			cases++
			clients[row[5]] = true
			for _, r := range recs {
				roundTrip(t, r, DefectFields(defects)...)
			}
		})
	}
	if cases < 60 {
		t.Errorf("%d golden cases, want at least 60", cases)
	}
	if len(clients) < 6 {
		t.Errorf("%d producing clients, want at least 6", len(clients))
	}
}

// roundTrip writes r as a new object, reads it back and compares the
// mapped fields, except those a defect left as they were.
func roundTrip(t *testing.T, r crm.Record, skip ...string) {
	t.Helper()
	opts := &Options{Now: fixedNow, NewUID: func() string { return "uid-1" }}
	var back []Result
	var err error
	var out []byte
	switch r.Entity {
	case crm.EntityContact:
		out, err = NewVCard(r, opts)
		if err == nil {
			back, err = VCardToCRM(out, opts)
		}
	case crm.EntityAppointment, crm.EntityTask, crm.EntityPhoneCall, crm.EntityLetter, crm.EntityFax:
		if r.Attrs["scheduledstart"] == nil && r.Entity == crm.EntityAppointment {
			return
		}
		out, err = NewICal(r, opts)
		if err == nil {
			back, err = ICalToCRM(out, opts)
		}
	default:
		return
	}
	if err != nil {
		t.Fatalf("write back %s: %v\n%s", r.Entity, err, out)
	}
	if len(back) != 1 {
		t.Fatalf("write back: %d records", len(back))
	}
	d := slices.DeleteFunc(Diff(NewSnapshot(r), NewSnapshot(back[0].Record)), func(f string) bool { return slices.Contains(skip, f) })
	if len(d) > 0 {
		t.Errorf("round trip changed %v:\n%s", d, out)
	}
	// Idempotence: writing the read-back record again gives the same bytes.
	var again []byte
	if r.Entity == crm.EntityContact {
		again, _ = NewVCard(back[0].Record, opts)
	} else {
		again, _ = NewICal(back[0].Record, opts)
	}
	if !bytes.Equal(again, out) {
		t.Errorf("second write differs:\n%s\nfirst:\n%s", again, out)
	}
}

// checkDefects compares the defects of a fixture with its golden list (one
// String per line); no defects, no file.
func checkDefects(t *testing.T, golden string, ds []Defect) {
	t.Helper()
	var b strings.Builder
	for _, d := range ds {
		b.WriteString(d.String() + "\n")
	}
	got := b.String()
	if *update {
		if got == "" {
			os.Remove(golden)
		} else if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("defects =\n%s\nwant\n%s", got, want)
	}
}
