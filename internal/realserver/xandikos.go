package realserver

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Xandikos is a running Xandikos (git-backed CalDAV + CardDAV, sync-token
// and getctag), started by StartXandikos(t). It has no authentication: any
// user and password are accepted.
type Xandikos struct {
	URL      string // http://127.0.0.1:PORT
	User     string
	Password string
	Dir      string // the data folder (-d)
}

// StartXandikos starts /usr/bin/xandikos with --defaults on a free
// 127.0.0.1 port in t.TempDir(), with the principal /alice/ (which holds
// calendars/calendar and contacts/addressbook), and stops it in t.Cleanup.
func StartXandikos(t testing.TB) *Xandikos {
	t.Helper()
	bin := Require(t, "/usr/bin/xandikos")
	dir := t.TempDir()
	port := FreePort(t)
	x := &Xandikos{URL: fmt.Sprintf("http://127.0.0.1:%d", port), User: "alice", Password: "unused", Dir: dir}
	data := filepath.Join(dir, "data")
	cmd := exec.Command(bin, "-d", data, "--defaults", "--current-user-principal", x.Principal(),
		"-l", "127.0.0.1", "-p", fmt.Sprint(port))
	cmd.Env = append(os.Environ(), "HOME="+dir, "GIT_AUTHOR_NAME=test", "GIT_AUTHOR_EMAIL=test@example.invalid",
		"GIT_COMMITTER_NAME=test", "GIT_COMMITTER_EMAIL=test@example.invalid")
	startProcess(t, cmd, port, filepath.Join(dir, "xandikos.log"))
	return x
}

// Principal is the principal path ("/alice/").
func (x *Xandikos) Principal() string { return "/" + x.User + "/" }

// ContactsHome is the address-book home set ("/alice/contacts/").
func (x *Xandikos) ContactsHome() string { return x.Principal() + "contacts/" }

// CalendarsHome is the calendar home set ("/alice/calendars/").
func (x *Xandikos) CalendarsHome() string { return x.Principal() + "calendars/" }

// FSPath maps a collection href (e.g. "/alice/contacts/book/") to its
// folder on disk, for bulk loading.
func (x *Xandikos) FSPath(href string) string {
	return filepath.Join(x.Dir, "data", filepath.FromSlash(strings.Trim(href, "/")))
}

// BulkLoad writes files (name -> content) into the existing collection at
// href and commits them to its git repository in one commit, which is how
// Xandikos sees them: 10k objects take seconds instead of 10k PUTs.
func (x *Xandikos) BulkLoad(t testing.TB, href string, files map[string][]byte) {
	t.Helper()
	dir := x.FSPath(href)
	if _, err := os.Stat(filepath.Join(dir, ".git")); err != nil {
		t.Fatalf("realserver: xandikos bulk load: %s is not a collection repository: %v", dir, err)
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, args := range [][]string{{"add", "-A"}, {"commit", "-q", "-m", "bulk load"}} {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=test", "GIT_AUTHOR_EMAIL=test@example.invalid",
			"GIT_COMMITTER_NAME=test", "GIT_COMMITTER_EMAIL=test@example.invalid")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("realserver: xandikos bulk load: git %v: %v\n%s", args, err, out)
		}
	}
}
