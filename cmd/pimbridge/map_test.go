package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMapCmd(t *testing.T) {
	dir := t.TempDir()
	fix := "../../mapping/testdata/fixtures/"
	rec := filepath.Join(dir, "c.json")
	if err := os.WriteFile(rec, []byte(`{"lastname":"Müller","firstname":"Anna","jobtitle":"a;b"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	garbage := filepath.Join(dir, "garbage.vcf")
	if err := os.WriteFile(garbage, []byte("hello\nworld\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		code int
		out  string
	}{
		{"vcard", []string{"map", fix + "vcard/google-gmail-3.0-multiple-contacts.vcf"}, 0, `"lastname":"Smith"`},
		{"ical", []string{"map", fix + "ical/ms-outlook2010-request-windows-tz-attendees-altdesc.ics"}, 0, `"scheduledstart":"2013-06-10T16:00:00Z"`},
		{"eml", []string{"map", fix + "mail/mozilla-thunderbird-1.0-plain-reply-references.eml"}, 0, `"messageid":"\u003c473FFE27.20003@xxx.org\u003e"`},
		{"malformed", []string{"map", fix + "vcard/malformed-evolution-3.0-truncated.vcf"}, 0, `"lastname"`},
		{"malformed-ical", []string{"map", fix + "ical/malformed-latin1-bytes-invalid-datetime.ics"}, 0, `"subject"`},
		{"malformed-mail", []string{"map", fix + "mail/malformed-duplicate-cc-headers.eml"}, 0, `"charles@example.org"`},
		{"nothing-usable", []string{"map", garbage}, 1, ""},
		{"to-vcard", []string{"map", "--to", "vcard", "--entity", "contact", rec}, 0, `TITLE:a\;b`},
		{"patch", []string{"map", "--patch", fix + "vcard/khard-3.0-tel-value-uri-bug195.vcf", rec}, 0, "TEL;TYPE=cell;VALUE=URI:67545678"},
		{"to-without-entity", []string{"map", "--to", "vcard", rec}, 2, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			err := run(context.Background(), tc.args, nil, &out, &errb)
			if code := exitCode(&errb, err); code != tc.code {
				t.Fatalf("exit code %d, want %d (stderr %s)", code, tc.code, errb.String())
			}
			if !strings.Contains(out.String(), tc.out) {
				t.Errorf("output lacks %q:\n%s", tc.out, out.String())
			}
			if tc.code == 1 && !strings.Contains(errb.String(), "line ") {
				t.Errorf("stderr does not name the line: %s", errb.String())
			}
		})
	}
}

// TestMapCmd_malformed: every malformed-* fixture maps best effort (exit 0)
// and lists its defects, by kind name, on stderr, or exits 1 naming the line
// when nothing usable remains.
func TestMapCmd_malformed(t *testing.T) {
	files, _ := filepath.Glob("../../mapping/testdata/fixtures/*/malformed-*")
	if len(files) < 7 {
		t.Fatalf("%d malformed fixtures, want 7", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			var out, errb bytes.Buffer
			err := run(context.Background(), []string{"map", f}, nil, &out, &errb)
			code := exitCode(&errb, err)
			if code == 1 {
				// Nothing usable: a clear error naming the line.
				if !strings.Contains(errb.String(), "malformed input") || !strings.Contains(errb.String(), "line ") {
					t.Errorf("stderr %q does not name the problem and line", errb.String())
				}
				return
			}
			if code != 0 {
				t.Fatalf("exit code %d, want 0 or 1 (stderr %s)", code, errb.String())
			}
			if !strings.Contains(errb.String(), "defect: ") {
				t.Errorf("stderr %q lists no defect", errb.String())
			}
			if !strings.HasPrefix(out.String(), "[") {
				t.Errorf("no JSON on stdout: %s", out.String())
			}
		})
	}
}
