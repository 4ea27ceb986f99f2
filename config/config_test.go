package config

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// designExample is the documented example configuration: every table,
// with the defaults spelled out.
const designExample = `
[crm]
url = "http://127.0.0.1:5555"
user = "alice"
password_file = "/run/secrets/crm"   # or password_env = "PIMBRIDGE_CRM_PASSWORD"

[client]
id = "desktop"        # stable id of this bridge (primary/secondary, subscriptions)
state_dir = ""        # default: $XDG_STATE_HOME/pimbridge
interval = "15m"      # full cycle
poll = "30s"          # change watch between cycles

[carddav]
url = "http://127.0.0.1:5232/"
user = "alice"
password_file = "/run/secrets/dav"
addressbook = "/alice/crm-contacts/"

[caldav]
url = "http://127.0.0.1:5232/"
user = "alice"
password_file = "/run/secrets/dav"
calendar = "/alice/crm-calendar/"    # appointments (VEVENT)
tasks = "/alice/crm-tasks/"          # tasks, phone calls, letters, faxes (VTODO)

[imap]
addr = "127.0.0.1:1143"
security = "none"     # none | starttls | tls
user = "alice"
password_file = "/run/secrets/imap"
folders = ["INBOX", "Sent"]
track_keyword = "$CRMTracked"
regarding_folder = "CRM/Regarding"

[sync]
contacts = true
tasks = true
phonecalls = true
letters = true
faxes = true
appointments = true
email = true
update_company_field = true
untrack_deletes_in_crm = false
track_by = "collection"     # or "category"
category = "CRM"
mass_delete_threshold = 0.5

[offline]
listen = "127.0.0.1:2525"
rows_batch_size = 100000
min_batch_time = "10s"
max_batch_time = "60s"
increase_rate = 2
decrease_rate = 2
max_retry_count = 3
refresh = "15m"
`

func TestParse_designExample(t *testing.T) {
	c, err := Parse([]byte(designExample))
	if err != nil {
		t.Fatalf("Parse(designExample): %v", err)
	}
	if c.CRM.File != "/run/secrets/crm" || c.CalDAV.Tasks != "/alice/crm-tasks/" || c.Offline.MaxBatchTime.Duration != time.Minute {
		t.Errorf("Parse(designExample) = %+v", c)
	}
	// The example spells out the defaults: the sections that are not
	// connection details must equal Default().
	d := Default()
	if c.Sync != d.Sync || c.Offline != d.Offline || c.Client != d.Client {
		t.Errorf("designExample differs from Default():\n got %+v %+v %+v\nwant %+v %+v %+v", c.Sync, c.Offline, c.Client, d.Sync, d.Offline, d.Client)
	}
}

func TestParse_errors(t *testing.T) {
	tests := []struct {
		name, in, field string
		want            error
	}{
		{"unknown key", "[sync]\ncontact = true\n", "sync.contact", ErrUnknownKey},
		{"bad url", "[crm]\nurl = \"ftp://x\"\n", "crm.url", ErrInvalid},
		{"both secrets", "[crm]\npassword_file = \"/a\"\npassword_env = \"B\"\n", "crm", ErrInvalid},
		{"bad security", "[imap]\nsecurity = \"ssl\"\n", "imap.security", ErrInvalid},
		{"bad keyword", "[imap]\ntrack_keyword = \"a b\"\n", "imap.track_keyword", ErrInvalid},
		{"bad track_by", "[sync]\ntrack_by = \"tag\"\n", "sync.track_by", ErrInvalid},
		{"bad duplicates", "[sync]\nduplicates = \"maybe\"\n", "sync.duplicates", ErrInvalid},
		{"directory is the contacts book", "[carddav]\naddressbook = \"/a/b/\"\ndirectory = \"/a/b/\"\n", "carddav.directory", ErrInvalid},
		{"threshold", "[sync]\nmass_delete_threshold = 0\n", "sync.mass_delete_threshold", ErrInvalid},
		{"batch times", "[offline]\nmin_batch_time = \"2m\"\n", "offline.min_batch_time", ErrInvalid},
		{"zero interval", "[client]\ninterval = \"0s\"\n", "client.interval", ErrInvalid},
		{"empty id", "[client]\nid = \"\"\n", "client.id", ErrMissing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.in))
			var fe *FieldError
			if !errors.As(err, &fe) || !errors.Is(err, tt.want) || fe.Field != tt.field {
				t.Errorf("Parse(%q) = %v, want a FieldError on %s wrapping %v", tt.in, err, tt.field, tt.want)
			}
		})
	}
	if _, err := Parse([]byte("[crm\n")); err == nil {
		t.Error("Parse of broken TOML succeeded")
	}
}

func TestLoad(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.toml")
	if err := os.WriteFile(p, []byte("[client]\nid = \"laptop\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(p)
	if err != nil || c.Client.ID != "laptop" || c.Client.Interval.Duration != 15*time.Minute {
		t.Fatalf("Load = %+v, %v", c, err)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.toml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want ErrNotExist", err)
	}
}

func TestDefaultPath(t *testing.T) {
	env := map[string]string{"HOME": "/home/a"}
	get := func(k string) string { return env[k] }
	if got := DefaultPath(get); got != "/home/a/.config/pimbridge/config.toml" {
		t.Errorf("DefaultPath = %q", got)
	}
	env["XDG_STATE_HOME"] = "/s"
	if got := DefaultStateDir(get); got != "/s/pimbridge" {
		t.Errorf("DefaultStateDir = %q", got)
	}
	env["XDG_DATA_HOME"] = "relative" // not absolute: ignored per the XDG spec
	if got := DefaultDataDir(get); got != "/home/a/.local/share/pimbridge" {
		t.Errorf("DefaultDataDir = %q", got)
	}
}

// TestParse_logLevel: log.level defaults to info, takes the five names and
// refuses another, naming the key.
func TestParse_logLevel(t *testing.T) {
	c, err := Parse([]byte("[log]\nlevel = \"trace\"\n"))
	if err != nil || c.Log.Level != "trace" {
		t.Fatalf("Parse(trace) = %+v, %v", c, err)
	}
	if Default().Log.Level != "info" {
		t.Errorf("default log.level = %q", Default().Log.Level)
	}
	_, err = Parse([]byte("[log]\nlevel = \"loud\"\n"))
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "log.level" || !errors.Is(err, ErrInvalid) {
		t.Errorf("Parse(loud) = %v", err)
	}
}
