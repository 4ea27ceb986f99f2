package realserver_test

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pimbridge/pimbridge/internal/realserver"
)

// TestStartPostgres_TakesLogins starts a server, makes a database and runs
// a query in it through psql.
func TestStartPostgres_TakesLogins(t *testing.T) {
	pg := realserver.StartPostgres(t)
	url := pg.NewDatabase(t)
	out, err := exec.Command(filepath.Join(realserver.PostgresBin(), "psql"), url, "-Atc", "SELECT 40 + 2").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "42" {
		t.Fatalf("psql %s = %q, %v; want 42", url, out, err)
	}
}
