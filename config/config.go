// Package config is pimbridge's configuration: the TOML tree README's
// Settings table lists, its defaults, loading and validation.
//
// It owns the key names (an interface scripts rely on) and nothing else: it
// never reads environment variables or secret files itself. Secrets are given
// by reference (SecretRef); cmd resolves them. It imports no other pimbridge
// package.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Config is the whole configuration file.
type Config struct {
	CRM     CRM     `toml:"crm"`
	Client  Client  `toml:"client"`
	CardDAV DAV     `toml:"carddav"`
	CalDAV  CalDAV  `toml:"caldav"`
	IMAP    IMAP    `toml:"imap"`
	Sync    Sync    `toml:"sync"`
	Offline Offline `toml:"offline"`
	Metrics Metrics `toml:"metrics"`
	UI      UI      `toml:"ui"`
	Log     Log     `toml:"log"`
}

// Log is the [log] table.
type Log struct {
	// Level is error, warn, info, debug or trace (one line per protocol
	// exchange); each -v on the command line goes one step further.
	Level string `toml:"level"`
}

// SecretRef names where a secret comes from: a file (first line, trailing
// newline trimmed) or an environment variable. Exactly one may be set.
type SecretRef struct {
	File string `toml:"password_file"`
	Env  string `toml:"password_env"`
}

// IsSet reports whether the reference names a source.
func (s SecretRef) IsSet() bool { return s.File != "" || s.Env != "" }

// CRM is the [crm] table: the CRM server this bridge talks to.
type CRM struct {
	URL  string `toml:"url"`
	User string `toml:"user"`
	SecretRef
}

// Client is the [client] table: this bridge instance.
type Client struct {
	ID       string   `toml:"id"`        // stable id of this bridge
	StateDir string   `toml:"state_dir"` // "" means $XDG_STATE_HOME/pimbridge
	Interval Duration `toml:"interval"`  // full cycle
	Poll     Duration `toml:"poll"`      // change watch between cycles
	Live     bool     `toml:"live"`      // hold the CRM change feed open (live sync)
	// FastPoll is the light-pass period of a collection for FastFor after a
	// PIM-side change was seen in it (at most Poll), then back to Poll.
	FastPoll Duration `toml:"fast_poll"`
	FastFor  Duration `toml:"fast_for"`
}

// DAV is the [carddav] table.
type DAV struct {
	URL         string `toml:"url"`
	User        string `toml:"user"`
	AddressBook string `toml:"addressbook"`
	// Directory is an address book of its own that receives, one way, the
	// CRM accounts and users the user can read ("" = none).
	Directory string `toml:"directory"`
	SecretRef
}

// CalDAV is the [caldav] table.
type CalDAV struct {
	URL      string `toml:"url"`
	User     string `toml:"user"`
	Calendar string `toml:"calendar"` // appointments (VEVENT)
	// Tasks holds tasks, phone calls, letters, faxes (VTODO); it may be
	// the calendar itself. "" means the calendar when it takes VTODO.
	Tasks string `toml:"tasks"`
	SecretRef
}

// IMAP is the [imap] table.
type IMAP struct {
	Addr            string   `toml:"addr"`
	Security        string   `toml:"security"` // none | starttls | tls
	User            string   `toml:"user"`
	Folders         []string `toml:"folders"` // paths with "/", in the server's namespace; "Sent" = \Sent
	TrackKeyword    string   `toml:"track_keyword"`
	RegardingFolder string   `toml:"regarding_folder"`
	TrackReplies    bool     `toml:"track_replies"`
	SecretRef
}

// Sync is the [sync] table: which item types sync and the settings that
// shape the sync (docs/sync-rules.md).
type Sync struct {
	Contacts             bool    `toml:"contacts"`
	Tasks                bool    `toml:"tasks"`
	PhoneCalls           bool    `toml:"phonecalls"`
	Letters              bool    `toml:"letters"`
	Faxes                bool    `toml:"faxes"`
	Appointments         bool    `toml:"appointments"`
	Email                bool    `toml:"email"`
	UpdateCompanyField   bool    `toml:"update_company_field"`
	UntrackDeletesInCRM  bool    `toml:"untrack_deletes_in_crm"`
	TrackBy              string  `toml:"track_by"` // collection | category
	Category             string  `toml:"category"`
	MassDeleteThreshold  float64 `toml:"mass_delete_threshold"`
	AttachmentSizeLimit  int64   `toml:"attachment_size_limit"` // bytes; 0 = no attachments
	VerificationPerCycle int     `toml:"verification_per_cycle"`
	// Duplicates is the user's personal option: what happens when
	// duplicate detection finds matches for an item created on the PIM
	// side or replayed by go-online: ask (a sync error the user resolves)
	// or allow (create it anyway).
	Duplicates string `toml:"duplicates"`
}

// Offline is the [offline] table: the offline engine and GoOffline batching
// (defaults in docs/offline.md).
type Offline struct {
	Listen string `toml:"listen"`
	// AllowRemote must be true for a Listen address other than loopback:
	// the local API then answers anyone who can reach the machine.
	AllowRemote   bool     `toml:"allow_remote"`
	RowsBatchSize int      `toml:"rows_batch_size"`
	MinBatchTime  Duration `toml:"min_batch_time"`
	MaxBatchTime  Duration `toml:"max_batch_time"`
	IncreaseRate  float64  `toml:"increase_rate"`
	DecreaseRate  float64  `toml:"decrease_rate"`
	MaxRetryCount int      `toml:"max_retry_count"`
	Refresh       Duration `toml:"refresh"`
}

// Metrics is the [metrics] table: the local observability endpoint.
type Metrics struct {
	Listen      string `toml:"listen"`       // "" disables it
	AllowRemote bool   `toml:"allow_remote"` // needed for a non-loopback Listen
}

// UI is the [ui] table: the daemon's local web page.
type UI struct {
	Listen      string `toml:"listen"`       // "" disables it; default 127.0.0.1:8484
	AllowRemote bool   `toml:"allow_remote"` // needed for a non-loopback Listen
}

// loopback reports whether a listen address (host:port) binds only to the
// loopback interface: 127.0.0.0/8, ::1 or localhost. An empty host binds
// every interface.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// Duration is a time.Duration written as a Go duration string ("15m").
type Duration struct{ time.Duration }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.Duration.String()), nil }

// Default returns the configuration with every default of README's Settings table.
func Default() *Config {
	return &Config{
		CRM:    CRM{URL: "http://127.0.0.1:5555"},
		Client: Client{ID: "desktop", Interval: Duration{15 * time.Minute}, Poll: Duration{30 * time.Second}, Live: true, FastPoll: Duration{5 * time.Second}, FastFor: Duration{2 * time.Minute}},
		IMAP: IMAP{
			Security: "none", Folders: []string{"INBOX", "Sent"},
			TrackKeyword: "$CRMTracked", RegardingFolder: "CRM/Regarding",
		},
		Sync: Sync{
			Contacts: true, Tasks: true, PhoneCalls: true, Letters: true, Faxes: true,
			Appointments: true, Email: true, UpdateCompanyField: true,
			TrackBy: "collection", Category: "CRM", MassDeleteThreshold: 0.5,
			AttachmentSizeLimit: 10 << 20, VerificationPerCycle: 20,
			Duplicates: "ask",
		},
		Log: Log{Level: "info"},
		UI:  UI{Listen: "127.0.0.1:8484"},
		Offline: Offline{
			Listen: "127.0.0.1:2525", RowsBatchSize: 100000,
			MinBatchTime: Duration{10 * time.Second}, MaxBatchTime: Duration{60 * time.Second},
			IncreaseRate: 2, DecreaseRate: 2, MaxRetryCount: 3, Refresh: Duration{15 * time.Minute},
		},
	}
}

// DefaultPath returns $XDG_CONFIG_HOME/pimbridge/config.toml (with the XDG
// fallback to ~/.config), given the environment lookup.
func DefaultPath(getenv func(string) string) string {
	return filepath.Join(xdgDir(getenv, "XDG_CONFIG_HOME", ".config"), "pimbridge", "config.toml")
}

// DefaultStateDir returns $XDG_STATE_HOME/pimbridge (fallback
// ~/.local/state/pimbridge).
func DefaultStateDir(getenv func(string) string) string {
	return filepath.Join(xdgDir(getenv, "XDG_STATE_HOME", filepath.Join(".local", "state")), "pimbridge")
}

// DefaultDataDir returns $XDG_DATA_HOME/pimbridge (fallback
// ~/.local/share/pimbridge).
func DefaultDataDir(getenv func(string) string) string {
	return filepath.Join(xdgDir(getenv, "XDG_DATA_HOME", filepath.Join(".local", "share")), "pimbridge")
}

func xdgDir(getenv func(string) string, env, fallback string) string {
	if d := getenv(env); d != "" && filepath.IsAbs(d) {
		return d
	}
	return filepath.Join(getenv("HOME"), fallback)
}

// Load reads the TOML file at path over the defaults and validates the
// result. Unknown keys are an error (a typo must not silently do nothing).
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(b)
}

// Parse is Load on bytes.
func Parse(b []byte) (*Config, error) {
	c := Default()
	md, err := toml.Decode(string(b), c)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if undec := md.Undecoded(); len(undec) > 0 {
		keys := make([]string, len(undec))
		for i, k := range undec {
			keys[i] = k.String()
		}
		return nil, &FieldError{Field: keys[0], Err: fmt.Errorf("%w (all unknown: %s)", ErrUnknownKey, strings.Join(keys, ", "))}
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// Errors of Validate, wrapped in *FieldError.
var (
	ErrUnknownKey = errors.New("unknown key")
	ErrInvalid    = errors.New("invalid value")
	ErrMissing    = errors.New("missing value")
)

// FieldError names the key a configuration problem belongs to.
type FieldError struct {
	Field string
	Value string
	Err   error
}

func (e *FieldError) Error() string {
	if e.Value != "" {
		return fmt.Sprintf("config: %s = %q: %v", e.Field, e.Value, e.Err)
	}
	return fmt.Sprintf("config: %s: %v", e.Field, e.Err)
}

func (e *FieldError) Unwrap() error { return e.Err }

// Validate checks values and combinations. Sections that are not configured
// (no URL / address) are allowed: their item types simply do not sync.
func (c *Config) Validate() error {
	checkURL := func(field, v string) error {
		if v == "" {
			return nil
		}
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return &FieldError{Field: field, Value: v, Err: fmt.Errorf("%w: want an http(s) URL", ErrInvalid)}
		}
		return nil
	}
	checkSecret := func(field string, s SecretRef) error {
		if s.File != "" && s.Env != "" {
			return &FieldError{Field: field, Err: fmt.Errorf("%w: set password_file or password_env, not both", ErrInvalid)}
		}
		return nil
	}
	for _, f := range []struct{ name, v string }{
		{"crm.url", c.CRM.URL}, {"carddav.url", c.CardDAV.URL}, {"caldav.url", c.CalDAV.URL},
	} {
		if err := checkURL(f.name, f.v); err != nil {
			return err
		}
	}
	for _, s := range []struct {
		name string
		ref  SecretRef
	}{{"crm", c.CRM.SecretRef}, {"carddav", c.CardDAV.SecretRef}, {"caldav", c.CalDAV.SecretRef}, {"imap", c.IMAP.SecretRef}} {
		if err := checkSecret(s.name, s.ref); err != nil {
			return err
		}
	}
	if c.Client.ID == "" {
		return &FieldError{Field: "client.id", Err: ErrMissing}
	}
	for _, d := range []struct {
		name string
		v    Duration
	}{{"client.interval", c.Client.Interval}, {"client.poll", c.Client.Poll}, {"client.fast_poll", c.Client.FastPoll}, {"client.fast_for", c.Client.FastFor}, {"offline.min_batch_time", c.Offline.MinBatchTime}, {"offline.max_batch_time", c.Offline.MaxBatchTime}, {"offline.refresh", c.Offline.Refresh}} {
		if d.v.Duration <= 0 {
			return &FieldError{Field: d.name, Value: d.v.String(), Err: fmt.Errorf("%w: must be positive", ErrInvalid)}
		}
	}
	switch c.IMAP.Security {
	case "none", "starttls", "tls":
	default:
		return &FieldError{Field: "imap.security", Value: c.IMAP.Security, Err: fmt.Errorf("%w: want none, starttls or tls", ErrInvalid)}
	}
	if c.IMAP.TrackKeyword == "" || strings.ContainsAny(c.IMAP.TrackKeyword, " ()\\{%*\"]") {
		return &FieldError{Field: "imap.track_keyword", Value: c.IMAP.TrackKeyword, Err: fmt.Errorf("%w: must be an IMAP atom", ErrInvalid)}
	}
	switch c.Sync.TrackBy {
	case "collection", "category":
	default:
		return &FieldError{Field: "sync.track_by", Value: c.Sync.TrackBy, Err: fmt.Errorf("%w: want collection or category", ErrInvalid)}
	}
	switch c.Log.Level {
	case "error", "warn", "info", "debug", "trace":
	default:
		return &FieldError{Field: "log.level", Value: c.Log.Level, Err: fmt.Errorf("%w: want error, warn, info, debug or trace", ErrInvalid)}
	}
	switch c.Sync.Duplicates {
	case "ask", "allow":
	default:
		return &FieldError{Field: "sync.duplicates", Value: c.Sync.Duplicates, Err: fmt.Errorf("%w: want ask or allow", ErrInvalid)}
	}
	if c.CardDAV.Directory != "" && c.CardDAV.Directory == c.CardDAV.AddressBook {
		return &FieldError{Field: "carddav.directory", Value: c.CardDAV.Directory, Err: fmt.Errorf("%w: must be another address book than carddav.addressbook (the directory is overwritten from CRM)", ErrInvalid)}
	}
	if c.Sync.MassDeleteThreshold <= 0 || c.Sync.MassDeleteThreshold > 1 {
		return &FieldError{Field: "sync.mass_delete_threshold", Value: fmt.Sprint(c.Sync.MassDeleteThreshold), Err: fmt.Errorf("%w: must be in (0, 1]", ErrInvalid)}
	}
	for _, l := range []struct {
		field, addr string
		allow       bool
	}{{"offline.listen", c.Offline.Listen, c.Offline.AllowRemote}, {"metrics.listen", c.Metrics.Listen, c.Metrics.AllowRemote}, {"ui.listen", c.UI.Listen, c.UI.AllowRemote}} {
		if l.addr != "" && !l.allow && !loopback(l.addr) {
			return &FieldError{Field: l.field, Value: l.addr, Err: fmt.Errorf("%w: not a loopback address; set allow_remote = true in the same table to serve other machines", ErrInvalid)}
		}
	}
	o := c.Offline
	switch {
	case o.RowsBatchSize <= 0:
		return &FieldError{Field: "offline.rows_batch_size", Value: fmt.Sprint(o.RowsBatchSize), Err: fmt.Errorf("%w: must be positive", ErrInvalid)}
	case o.MinBatchTime.Duration > o.MaxBatchTime.Duration:
		return &FieldError{Field: "offline.min_batch_time", Value: o.MinBatchTime.String(), Err: fmt.Errorf("%w: larger than max_batch_time", ErrInvalid)}
	case o.IncreaseRate < 1:
		return &FieldError{Field: "offline.increase_rate", Value: fmt.Sprint(o.IncreaseRate), Err: fmt.Errorf("%w: must be >= 1", ErrInvalid)}
	case o.DecreaseRate < 1:
		return &FieldError{Field: "offline.decrease_rate", Value: fmt.Sprint(o.DecreaseRate), Err: fmt.Errorf("%w: must be >= 1", ErrInvalid)}
	case o.MaxRetryCount < 0:
		return &FieldError{Field: "offline.max_retry_count", Value: fmt.Sprint(o.MaxRetryCount), Err: fmt.Errorf("%w: must be >= 0", ErrInvalid)}
	}
	return nil
}
