package realserver

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// CyrusIMAPD is where scripts/install-test-deps.sh unpacks Debian's
// cyrus-imapd package: it conflicts with dovecot-imapd, so it is unpacked
// with dpkg -x instead of installed. The rest of Cyrus (master, httpd,
// ctl_cyrusdb; cyrus-common and cyrus-caldav) and saslpasswd2 (sasl2-bin)
// are installed as usual.
const CyrusIMAPD = "/opt/pimbridge-cyrus/usr/lib/cyrus/bin/imapd"

// CyrusServer is a Cyrus IMAP 3.6 server on 127.0.0.1 started by Cyrus for
// one test: imapd with Debian's stock namespace (hierarchy separator ".",
// personal namespace "INBOX.", altnamespace and unixhierarchysep off, INBOX
// and INBOX.Sent (\Sent) and INBOX.Drafts (\Drafts) created at the first
// login) and httpd serving CalDAV and CardDAV, whose default calendar takes
// both VEVENT and VTODO.
type CyrusServer struct {
	IMAPAddr string // "127.0.0.1:port"
	IMAPPort int
	URL      string // http://127.0.0.1:PORT, CalDAV and CardDAV under /dav/
	User     string // "alice"
	Password string
	Dir      string // imapd.conf, cyrus.conf, sasldb2, the mail and DAV data

	cmd    *exec.Cmd
	exited chan struct{}
}

// Principal is the user's DAV principal ("/dav/principals/user/alice/").
func (s *CyrusServer) Principal() string { return "/dav/principals/user/" + s.User + "/" }

// CalendarPath is the user's default calendar, which takes events and
// tasks.
func (s *CyrusServer) CalendarPath() string { return "/dav/calendars/user/" + s.User + "/Default/" }

// AddressBookPath is the user's default address book.
func (s *CyrusServer) AddressBookPath() string {
	return "/dav/addressbooks/user/" + s.User + "/Default/"
}

// Log returns Cyrus's own output so far (it logs to syslog otherwise).
func (s *CyrusServer) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "master.log"))
	return string(b)
}

// Cyrus starts Cyrus's master with imapd and httpd on free 127.0.0.1 ports
// (Require'd: skipped by hand, failing when CI=true if missing), with one
// user "alice" (password "cyruspw") in its own sasldb, and stops it in
// t.Cleanup. The master drops to the cyrus user; its files live in a
// t.TempDir owned by that user.
func Cyrus(t testing.TB) *CyrusServer {
	t.Helper()
	master := Require(t, "/usr/lib/cyrus/bin/master")
	httpd := Require(t, "/usr/lib/cyrus/bin/httpd")
	recoverBin := Require(t, "/usr/lib/cyrus/bin/ctl_cyrusdb")
	imapd := Require(t, CyrusIMAPD)
	saslpasswd := Require(t, "/usr/sbin/saslpasswd2")
	uid, gid := cyrusUser(t)

	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatalf("realserver: cyrus: %v", err)
		}
	}
	imapPort, httpPort := FreePort(t), FreePort(t)
	for imapPort == httpPort {
		httpPort = FreePort(t)
	}
	s := &CyrusServer{
		IMAPAddr: fmt.Sprintf("127.0.0.1:%d", imapPort),
		IMAPPort: imapPort,
		URL:      fmt.Sprintf("http://127.0.0.1:%d", httpPort),
		User:     "alice",
		Password: "cyruspw",
		Dir:      dir,
	}
	for _, sub := range []string{"conf", "part", "run/proc", "run/lock", "run/socket"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			t.Fatalf("realserver: cyrus: %v", err)
		}
	}
	conf := filepath.Join(dir, "imapd.conf")
	files := map[string]string{
		"imapd.conf": cyrusIMAPDConf(dir),
		"cyrus.conf": fmt.Sprintf(`START {
  recover cmd="%s -C %s -r"
}
SERVICES {
  imap cmd="%s -C %s" listen="127.0.0.1:%d" prefork=1
  http cmd="%s -C %s" listen="127.0.0.1:%d" prefork=1
}
EVENTS {
}
`, recoverBin, conf, imapd, conf, imapPort, httpd, conf, httpPort),
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatalf("realserver: cyrus: %v", err)
		}
	}
	pw := exec.Command(saslpasswd, "-p", "-c", "-f", filepath.Join(dir, "sasldb2"), s.User)
	pw.Stdin = strings.NewReader(s.Password)
	if out, err := pw.CombinedOutput(); err != nil {
		t.Fatalf("realserver: cyrus: saslpasswd2: %v: %s", err, out)
	}
	err := filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
	if err != nil {
		t.Fatalf("realserver: cyrus: chown: %v", err)
	}

	logf, err := os.Create(filepath.Join(dir, "master.log"))
	if err != nil {
		t.Fatalf("realserver: cyrus: %v", err)
	}
	// -D keeps the master in the foreground, our child; it drops to the
	// cyrus user by itself. Its own process group, so that the cleanup
	// reaches the services it forks.
	cmd := exec.Command(master, "-C", conf, "-M", filepath.Join(dir, "cyrus.conf"),
		"-p", filepath.Join(dir, "run", "master.pid"), "-D")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("realserver: cyrus: start: %v", err)
	}
	s.cmd, s.exited = cmd, make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(s.exited)
	}()
	t.Cleanup(func() {
		if err := s.kill(); err != nil {
			t.Errorf("realserver: cyrus: kill: %v", err)
		}
	})
	for _, p := range []int{imapPort, httpPort} {
		if err := WaitPort(p, 30*time.Second); err != nil {
			t.Fatalf("%v\ncyrus log:\n%s", err, s.Log())
		}
	}
	s.provision(t)
	return s
}

func cyrusIMAPDConf(dir string) string {
	return `configdirectory: ` + dir + `/conf
proc_path: ` + dir + `/run/proc
mboxname_lockpath: ` + dir + `/run/lock
lmtpsocket: ` + dir + `/run/socket/lmtp
idlesocket: ` + dir + `/run/socket/idle
notifysocket: ` + dir + `/run/socket/notify
defaultpartition: default
partition-default: ` + dir + `/part
altnamespace: no
unixhierarchysep: no
autocreate_quota: 0
autocreate_inbox_folders: Sent|Drafts
xlist-sent: Sent
xlist-drafts: Drafts
allowplaintext: yes
sasl_pwcheck_method: auxprop
sasl_auxprop_plugin: sasldb
sasl_sasldb_path: ` + dir + `/sasldb2
sasl_mech_list: PLAIN LOGIN
admins: cyrus
httpmodules: caldav carddav
httpallowcompress: no
umask: 077
syslog_prefix: cyrus-pimbridge-test
`
}

// provision makes Cyrus create the user's INBOX, calendar home and
// address-book home (it does on the first DAV request) before the test
// looks for them.
func (s *CyrusServer) provision(t testing.TB) {
	t.Helper()
	if err := s.imapLogin(); err != nil {
		t.Fatalf("realserver: cyrus: provision INBOX: %v\n%s", err, s.Log())
	}
	for _, href := range []string{s.CalendarPath(), s.AddressBookPath()} {
		req, err := http.NewRequest("PROPFIND", s.URL+href, strings.NewReader(
			`<?xml version="1.0"?><propfind xmlns="DAV:"><prop><resourcetype/></prop></propfind>`))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Depth", "0")
		req.Header.Set("Content-Type", "application/xml")
		req.SetBasicAuth(s.User, s.Password)
		resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
		if err != nil {
			t.Fatalf("realserver: cyrus: provision %s: %v\n%s", href, err, s.Log())
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		if resp.StatusCode != http.StatusMultiStatus {
			t.Fatalf("realserver: cyrus: provision %s: %s: %s", href, resp.Status, b)
		}
	}
}

// imapLogin logs in and out once: Cyrus creates the user's INBOX, Sent
// and Drafts at the first login, and its DAV homes need the INBOX.
func (s *CyrusServer) imapLogin() error {
	c, err := net.DialTimeout("tcp", s.IMAPAddr, 10*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(c)
	if _, err := r.ReadString('\n'); err != nil {
		return err
	}
	fmt.Fprintf(c, "a LOGIN %s %s\r\nb LOGOUT\r\n", s.User, s.Password)
	for {
		l, err := r.ReadString('\n')
		if err != nil {
			return err
		}
		if strings.HasPrefix(l, "a ") && !strings.HasPrefix(l, "a OK") {
			return fmt.Errorf("login: %s", strings.TrimSpace(l))
		}
		if strings.HasPrefix(l, "b ") {
			return nil
		}
	}
}

func (s *CyrusServer) kill() error {
	if s.cmd == nil {
		return nil
	}
	pgid := s.cmd.Process.Pid
	var errs []error
	if err := syscall.Kill(-pgid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		errs = append(errs, err)
	}
	<-s.exited
	deadline := time.Now().Add(10 * time.Second)
	for groupAlive(pgid) {
		if time.Now().After(deadline) {
			errs = append(errs, fmt.Errorf("process group %d still alive 10 s after SIGKILL", pgid))
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.cmd = nil
	return errors.Join(errs...)
}

// cyrusUser returns the uid and gid of the cyrus user that cyrus-common
// creates; the master runs as it.
func cyrusUser(t testing.TB) (int, int) {
	t.Helper()
	u, err := user.Lookup("cyrus")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("realserver: cyrus: no cyrus user (run make testdeps): %v", err)
		}
		t.Skipf("realserver: cyrus: no cyrus user (run make testdeps): %v", err)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err := errors.Join(err1, err2); err != nil {
		t.Fatalf("realserver: cyrus: %v", err)
	}
	return uid, gid
}
