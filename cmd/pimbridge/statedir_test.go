package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestLoadConfig_RelativeStateDir: a relative client.state_dir is made
// absolute against the working directory when the config is loaded, so
// every part (cache, replica, control socket) agrees on one directory even
// if the working directory changes later.
func TestLoadConfig_RelativeStateDir(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	cfg := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfg, []byte("[client]\nstate_dir = \"state\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	g := &globals{configPath: cfg, log: &logState{}}
	c, err := g.loadConfig()
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "state"); c.Client.StateDir != want {
		t.Errorf("state_dir = %q, want %q", c.Client.StateDir, want)
	}
}
