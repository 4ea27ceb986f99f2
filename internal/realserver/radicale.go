package realserver

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// Radicale is a running Radicale (CalDAV + CardDAV, sync-token and getctag)
// with htpasswd auth for one user, started by Radicale(t).
type Radicale struct {
	URL      string // http://127.0.0.1:PORT
	User     string
	Password string
	Dir      string // config, users file and collections/ live here
}

// StartRadicale starts /usr/bin/radicale on a free 127.0.0.1 port in
// t.TempDir() with plain htpasswd auth (user "alice", password "davpw"),
// owner_only rights and delay = 0, and stops it in t.Cleanup.
func StartRadicale(t testing.TB) *Radicale {
	t.Helper()
	bin := Require(t, "/usr/bin/radicale")
	dir := t.TempDir()
	port := FreePort(t)
	r := &Radicale{URL: fmt.Sprintf("http://127.0.0.1:%d", port), User: "alice", Password: "davpw", Dir: dir}
	users := filepath.Join(dir, "users")
	if err := os.WriteFile(users, []byte(r.User+":"+r.Password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf(`[server]
hosts = 127.0.0.1:%d
max_connections = 20
[auth]
type = htpasswd
htpasswd_filename = %s
htpasswd_encryption = plain
delay = 0
[rights]
type = owner_only
[storage]
type = multifilesystem
filesystem_folder = %s
[web]
type = none
[logging]
level = warning
`, port, users, filepath.Join(dir, "collections"))
	confPath := filepath.Join(dir, "config")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config", confPath)
	cmd.Env = append(os.Environ(), "HOME="+dir)
	startProcess(t, cmd, port, filepath.Join(dir, "radicale.log"))
	return r
}

// Principal is the user's principal path ("/alice/").
func (r *Radicale) Principal() string { return "/" + r.User + "/" }

// CollectionPath is the href of a collection named name under the
// principal ("/alice/name/"); create it with MKCOL/MKCALENDAR or a bulk PUT.
func (r *Radicale) CollectionPath(name string) string { return r.Principal() + name + "/" }

// BulkLoad creates the collection at href holding every object in data (a
// multi-object .vcf or .ics file) with one PUT of the whole file, which
// Radicale turns into a new address book or calendar: 10k vCards take
// about 30 s instead of hours of single PUTs.
func (r *Radicale) BulkLoad(t testing.TB, href, contentType string, data []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, r.URL+href, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	req.SetBasicAuth(r.User, r.Password)
	resp, err := (&http.Client{Timeout: 10 * time.Minute}).Do(req)
	if err != nil {
		t.Fatalf("realserver: radicale bulk load: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		t.Fatalf("realserver: radicale bulk load %s: %s: %s", href, resp.Status, b)
	}
}
