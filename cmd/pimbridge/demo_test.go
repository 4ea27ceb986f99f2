package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmclient"
	"github.com/pimbridge/pimbridge/internal/realserver"
)

// readmeCommands returns the two commands README.md gives a newcomer: the
// first indented line that runs the demo and the first that runs the tests.
func readmeCommands(t *testing.T) (runCmd, testCmd string) {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(l, "    ") {
			continue
		}
		l = strings.TrimSpace(l)
		switch {
		case runCmd == "" && strings.Contains(l, "pimbridge demo"):
			runCmd = l
		case testCmd == "" && (strings.HasPrefix(l, "make ") || strings.HasPrefix(l, "go test")):
			testCmd = l
		}
	}
	if runCmd == "" || testCmd == "" {
		t.Fatalf("README.md lacks the run command (%q) or the test command (%q)", runCmd, testCmd)
	}
	return runCmd, testCmd
}

// TestREADME_commandsAreWhatCIRuns: .ci/run calls README's test command.
func TestREADME_commandsAreWhatCIRuns(t *testing.T) {
	_, testCmd := readmeCommands(t)
	ci, err := os.ReadFile("../../.ci/run")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(testCmd) + `\s*$`).Match(ci) {
		t.Errorf(".ci/run does not run README's test command %q:\n%s", testCmd, ci)
	}
}

// TestDemo_realClients: README's run
// command (go run ./cmd/pimbridge demo, run as written from the repo root)
// serves; Debian's vdirsyncer lists the demo's CRM contacts and events and
// pushes an edit that reaches the CRM server through the bridge; Python's
// imaplib sets $CRMTracked on a message, which becomes a CRM email.
func TestDemo_realClients(t *testing.T) {
	vdirsyncer := realserver.Require(t, "/usr/bin/vdirsyncer")
	py := realserver.Require(t, "/usr/bin/python3")
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()

	runCmd, _ := readmeCommands(t)
	args := append(strings.Fields(runCmd), "--print-json", "--data", t.TempDir())
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = "../.."
	// go run starts the program as its child: signal the whole group.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stderr = &tailWriter{t: t}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		// SIGINT to the demo itself (go run's child), as Ctrl-C would
		// reach it; go run then exits with the demo's status.
		kids := childPIDs(cmd.Process.Pid)
		if len(kids) == 0 {
			t.Error("go run has no child process to stop")
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
		for _, pid := range kids {
			_ = syscall.Kill(pid, syscall.SIGINT)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("demo did not stop cleanly on SIGINT: %v", err)
			}
		case <-time.After(30 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			t.Error("demo did not stop within 30 s of SIGINT")
		}
	}
	t.Cleanup(stop)

	var info demoInfo
	sc := bufio.NewScanner(stdout)
	if !sc.Scan() {
		t.Fatalf("demo printed no JSON line: %v", sc.Err())
	}
	if err := json.Unmarshal(sc.Bytes(), &info); err != nil {
		t.Fatalf("demo --print-json line %q: %v", sc.Text(), err)
	}
	if info.CRM.URL == "" || info.DAV.URL == "" || info.IMAP.Addr == "" || info.User == "" || info.Password == "" {
		t.Fatalf("demo info incomplete: %+v", info)
	}
	crmc, err := crmclient.New(info.CRM.URL, &crmclient.Options{User: info.User, Password: info.Password})
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := crmc.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	crmc = crmc.WithToken(tok)

	// vdirsyncer: first sync of the address book and the calendar.
	dir := t.TempDir()
	cfg := fmt.Sprintf(`[general]
status_path = "%[1]s/status/"

[pair contacts]
a = "contacts_local"
b = "contacts_remote"
collections = ["from b"]

[storage contacts_local]
type = "filesystem"
path = "%[1]s/contacts/"
fileext = ".vcf"

[storage contacts_remote]
type = "carddav"
url = "%[2]s"
username = "%[3]s"
password = "%[4]s"

[pair calendars]
a = "calendars_local"
b = "calendars_remote"
collections = ["from b"]

[storage calendars_local]
type = "filesystem"
path = "%[1]s/calendars/"
fileext = ".ics"

[storage calendars_remote]
type = "caldav"
url = "%[2]s"
username = "%[3]s"
password = "%[4]s"
`, dir, info.DAV.URL, info.User, info.Password)
	cfgPath := filepath.Join(dir, "config")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	vdir := func(args ...string) {
		t.Helper()
		c := exec.CommandContext(ctx, vdirsyncer, append([]string{"-c", cfgPath}, args...)...)
		c.Env = append(os.Environ(), "HOME="+dir, "LC_ALL=C.UTF-8", "LANG=C.UTF-8")
		c.Stdin = strings.NewReader(strings.Repeat("y\n", 20))
		if out, err := c.CombinedOutput(); err != nil {
			t.Fatalf("vdirsyncer %v: %v\n%s", args, err, out)
		}
	}
	vdir("discover")
	vdir("sync")

	contacts, err := crmc.QueryAll(ctx, crm.EntityContact, crmclient.Query{Select: []string{"fullname"}})
	if err != nil {
		t.Fatal(err)
	}
	appts, err := crmc.QueryAll(ctx, crm.EntityAppointment, crmclient.Query{Select: []string{"subject"}})
	if err != nil {
		t.Fatal(err)
	}
	cards := readDir(t, filepath.Join(dir, "contacts", filepath.Base(strings.TrimSuffix(info.DAV.AddressBook, "/"))))
	events := readDir(t, filepath.Join(dir, "calendars", filepath.Base(strings.TrimSuffix(info.DAV.Calendar, "/"))))
	if len(cards) != len(contacts) || len(contacts) < 200 {
		t.Fatalf("vdirsyncer listed %d contacts, the CRM holds %d", len(cards), len(contacts))
	}
	if len(events) == 0 || len(events) > len(appts) {
		t.Fatalf("vdirsyncer listed %d events, the CRM holds %d appointments", len(events), len(appts))
	}

	// Edit one contact's job title in vdirsyncer's folder and push it.
	var name, card string
	for n, c := range cards {
		if strings.Contains(c, "\nTITLE:") && strings.Contains(c, "X-CRM-ID:") {
			name, card = n, c
			break
		}
	}
	if name == "" {
		t.Fatal("no synced card carries TITLE and X-CRM-ID")
	}
	id, err := crm.ParseID(strings.TrimSpace(regexp.MustCompile(`X-CRM-ID:([^\r\n]+)`).FindStringSubmatch(card)[1]))
	if err != nil {
		t.Fatal(err)
	}
	edited := regexp.MustCompile(`\nTITLE:[^\r\n]*`).ReplaceAllString(card, "\nTITLE:Chief Demo Officer")
	if err := os.WriteFile(filepath.Join(dir, "contacts", filepath.Base(strings.TrimSuffix(info.DAV.AddressBook, "/")), name), []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
	vdir("sync")
	waitFor(t, ctx, "the contact edit made in vdirsyncer to reach the CRM", func() (bool, error) {
		r, err := crmc.Get(ctx, crm.EntityContact, id, "jobtitle")
		return err == nil && r.Attrs["jobtitle"] == "Chief Demo Officer", err
	})

	// imaplib: track a message by setting $CRMTracked from another client.
	script := `
import imaplib, sys
host, port = sys.argv[1].rsplit(":", 1)
m = imaplib.IMAP4(host, int(port))
m.login(sys.argv[2], sys.argv[3])
m.select("INBOX")
typ, data = m.uid("SEARCH", None, "UNKEYWORD", "$CRMTracked")
uid = data[0].split()[0]
typ, data = m.uid("FETCH", uid, "(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
print(data[0][1].decode().split(":", 1)[1].strip())
m.uid("STORE", uid, "+FLAGS", "($CRMTracked)")
m.logout()
`
	out, err := exec.CommandContext(ctx, py, "-c", script, info.IMAP.Addr, info.User, info.Password).Output()
	if err != nil {
		t.Fatalf("imaplib: %v", err)
	}
	msgID := strings.Trim(strings.TrimSpace(string(out)), "<>")
	if msgID == "" {
		t.Fatal("imaplib found no untracked message")
	}
	waitFor(t, ctx, "the message tagged $CRMTracked to become a CRM email", func() (bool, error) {
		recs, err := crmc.QueryAll(ctx, crm.EntityEmail, crmclient.Query{Select: []string{"messageid"}, Filter: fmt.Sprintf("contains(messageid,'%s')", msgID)})
		return err == nil && len(recs) == 1, err
	})
	stop()
}

// childPIDs lists the child processes of pid (Linux /proc).
func childPIDs(pid int) []int {
	var out []int
	files, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, f := range files {
		b, _ := os.ReadFile(f)
		for _, s := range strings.Fields(string(b)) {
			var p int
			if _, err := fmt.Sscan(s, &p); err == nil {
				out = append(out, p)
			}
		}
	}
	return out
}

// waitFor polls cond until it holds or ctx ends.
func waitFor(t *testing.T, ctx context.Context, what string, cond func() (bool, error)) {
	t.Helper()
	var lastErr error
	for {
		ok, err := cond()
		if ok {
			return
		}
		lastErr = err
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s (last error: %v)", what, lastErr)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func readDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("read %s: %v", dir, err)
	}
	out := map[string]string{}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = string(b)
	}
	return out
}

// tailWriter logs the demo's stderr through the test, line by line.
type tailWriter struct{ t *testing.T }

func (w *tailWriter) Write(p []byte) (int, error) {
	for _, l := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		w.t.Log("demo: " + l)
	}
	return len(p), nil
}
