package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pimbridge/pimbridge/config"
)

func TestReadSecret(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	os.WriteFile(good, []byte("s3cret\nignored\n"), 0o600)
	open := filepath.Join(dir, "open")
	os.WriteFile(open, []byte("s3cret\n"), 0o644)
	t.Setenv("PB_TEST_SECRET", "from-env")

	tests := []struct {
		name    string
		ref     config.SecretRef
		want    string
		wantErr string
	}{
		{"file first line", config.SecretRef{File: good}, "s3cret", ""},
		{"world-readable file refused", config.SecretRef{File: open}, "", "world-readable"},
		{"missing file", config.SecretRef{File: filepath.Join(dir, "nope")}, "", "no such file"},
		{"env", config.SecretRef{Env: "PB_TEST_SECRET"}, "from-env", ""},
		{"unset env", config.SecretRef{Env: "PB_TEST_UNSET_VAR"}, "", "not set"},
		{"nothing configured", config.SecretRef{}, "", "no password_file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readSecret("crm", tt.ref)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("readSecret = %q, %v; want error containing %q", got, err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "s3cret") {
					t.Errorf("error leaks the secret: %v", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("readSecret = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}
