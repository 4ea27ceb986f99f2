package realserver_test

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pimbridge/pimbridge/internal/realserver"
)

// TestStartPostgres_TakesLogins starts a server, makes a database and runs
// a table in it through psql, in the database's own schema.
func TestStartPostgres_TakesLogins(t *testing.T) {
	pg := realserver.StartPostgres(t)
	url := pg.NewDatabase(t)
	out, err := exec.Command(filepath.Join(realserver.PostgresBin(), "psql"), url, "-Atc", "CREATE TABLE x (a int); INSERT INTO x VALUES (42); SELECT current_schema() || ':' || a FROM x").CombinedOutput()
	got := strings.TrimSpace(string(out))
	if err != nil || !strings.HasPrefix(got[strings.LastIndex(got, "\n")+1:], "t") || !strings.HasSuffix(got, ":42") {
		t.Fatalf("psql %s = %q, %v; want <schema>:42", url, out, err)
	}
}
