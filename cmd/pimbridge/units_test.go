package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pimbridge/pimbridge/internal/realserver"
)

// TestSystemdUnits_verify runs `systemd-analyze verify --user` on the unit
// files in dist/systemd. verify needs ExecStart to name an executable, so the
// copies point it at this test binary; nothing else in the units changes.
// Any output (systemd prints warnings but exits 0 for e.g. a bad boolean) is
// a failure.
func TestSystemdUnits_verify(t *testing.T) {
	analyze := realserver.Require(t, "systemd-analyze")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	units, _ := filepath.Glob("../../dist/systemd/*.service")
	if len(units) < 2 {
		t.Fatalf("found %d unit files in dist/systemd, want the daemon and the CRM server units", len(units))
	}
	dir := t.TempDir()
	var args []string
	for _, u := range units {
		b, err := os.ReadFile(u)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), "ExecStart=/usr/local/bin/pimbridge ") {
			t.Fatalf("%s: ExecStart does not run /usr/local/bin/pimbridge", u)
		}
		b = []byte(strings.ReplaceAll(string(b), "/usr/local/bin/pimbridge", self))
		p := filepath.Join(dir, filepath.Base(u))
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, p)
	}
	cmd := exec.Command(analyze, append([]string{"verify", "--user"}, args...)...)
	cmd.Env = append(os.Environ(), "XDG_RUNTIME_DIR="+t.TempDir(), "SYSTEMD_LOG_COLOR=0")
	out, err := cmd.CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify --user: %v\n%s", err, out)
	}
}
