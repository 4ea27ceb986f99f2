package config

import (
	"errors"
	"testing"
)

// TestValidate_ListenNonLoopbackNeedsOptIn: offline.listen,
// metrics.listen and ui.listen on an address other than loopback need allow_remote =
// true; loopback addresses need nothing.
func TestValidate_ListenNonLoopbackNeedsOptIn(t *testing.T) {
	tests := []struct {
		name, in, field string
		ok              bool
	}{
		{"offline any", "[offline]\nlisten = \"0.0.0.0:2525\"\n", "offline.listen", false},
		{"offline empty host", "[offline]\nlisten = \":2525\"\n", "offline.listen", false},
		{"offline lan", "[offline]\nlisten = \"192.168.1.5:2525\"\n", "offline.listen", false},
		{"metrics any", "[metrics]\nlisten = \"[::]:9090\"\n", "metrics.listen", false},
		{"metrics host name", "[metrics]\nlisten = \"example.org:9090\"\n", "metrics.listen", false},
		{"offline opt-in", "[offline]\nlisten = \"0.0.0.0:2525\"\nallow_remote = true\n", "", true},
		{"metrics opt-in", "[metrics]\nlisten = \":9090\"\nallow_remote = true\n", "", true},
		{"loopback v4", "[offline]\nlisten = \"127.0.0.1:2525\"\n[metrics]\nlisten = \"127.0.0.2:9090\"\n", "", true},
		{"loopback v6", "[metrics]\nlisten = \"[::1]:9090\"\n", "", true},
		{"localhost", "[metrics]\nlisten = \"localhost:9090\"\n", "", true},
		{"ui any", "[ui]\nlisten = \"0.0.0.0:8484\"\n", "ui.listen", false},
		{"ui opt-in", "[ui]\nlisten = \"0.0.0.0:8484\"\nallow_remote = true\n", "", true},
		{"ui off", "[ui]\nlisten = \"\"\n", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.in))
			if tt.ok {
				if err != nil {
					t.Errorf("Parse(%q) = %v, want ok", tt.in, err)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) || !errors.Is(err, ErrInvalid) || fe.Field != tt.field {
				t.Errorf("Parse(%q) = %v, want a FieldError on %s", tt.in, err, tt.field)
			}
		})
	}
}

// TestDefault_UIListenLoopback: the web page is on by default, on
// 127.0.0.1:8484.
func TestDefault_UIListenLoopback(t *testing.T) {
	if got := Default().UI.Listen; got != "127.0.0.1:8484" {
		t.Errorf("Default().UI.Listen = %q, want 127.0.0.1:8484", got)
	}
}
