package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmclient"
	"github.com/pimbridge/pimbridge/crm/crmtest"
	"github.com/pimbridge/pimbridge/internal/realserver"
	"github.com/pimbridge/pimbridge/pim/imapmail"
)

// imapEnv is one real IMAP server for the e-mail tracking tests.
type imapEnv struct {
	Addr, User, Password string
	Sent                 string // the server's \Sent folder
}

var imapServers = []struct {
	name  string
	start func(t testing.TB) imapEnv
}{
	{"dovecot", func(t testing.TB) imapEnv {
		d := realserver.Dovecot(t)
		return imapEnv{Addr: d.Addr, User: d.User, Password: d.Password, Sent: "Sent"}
	}},
	// Cyrus as Debian ships it: "." separator, INBOX. personal namespace.
	{"cyrus", func(t testing.TB) imapEnv {
		c := realserver.Cyrus(t)
		return imapEnv{Addr: c.IMAPAddr, User: c.User, Password: c.Password, Sent: "INBOX.Sent"}
	}},
}

func (e imapEnv) dial(t testing.TB) *imapmail.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := imapmail.Dial(ctx, imapmail.Options{Addr: e.Addr, Security: imapmail.SecurityNone, User: e.User, Password: e.Password, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// mailCLI writes a config for alice with CRM and IMAP only, every [imap]
// setting at its default, and runs the binary with it.
func mailCLI(t *testing.T, cs *crmtest.Server, e imapEnv) func(args ...string) (string, string, int) {
	dir := t.TempDir()
	cfg := fmt.Sprintf(`[crm]
url = %q
user = %q
password_env = "PIMBRIDGE_TEST_CRM_PW"

[client]
id = "desktop"
state_dir = %q

[imap]
addr = %q
user = %q
password_env = "PIMBRIDGE_TEST_IMAP_PW"
`, cs.URL, cs.Alice.Name, filepath.Join(dir, "state"), e.Addr, e.User)
	path := filepath.Join(dir, "config.toml")
	mustWrite(t, path, cfg)
	return func(args ...string) (string, string, int) {
		t.Helper()
		cmd := exec.Command(pimbridgeBin, append([]string{"--config", path}, args...)...)
		cmd.Env = append(os.Environ(), "PIMBRIDGE_TEST_CRM_PW="+cs.Alice.Password, "PIMBRIDGE_TEST_IMAP_PW="+e.Password)
		var out, errb strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return out.String(), errb.String(), code
	}
}

func imapMail(id, subject string) []byte {
	return fmt.Appendf(nil, "From: Ann <ann@example.com>\r\nTo: Alice <alice@example.org>\r\nSubject: %s\r\n"+
		"Date: Mon, 02 Jan 2006 15:04:05 +0000\r\nMessage-ID: <%s>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello\r\n", subject, id)
}

// TestCLI_SyncSummaryCountsTrackedEmail: `pimbridge sync` and `sync
// --json` say how many e-mails the cycle tracked, on Dovecot and on Cyrus
// with the default [imap] settings (INBOX and Sent, CRM/Regarding).
func TestCLI_SyncSummaryCountsTrackedEmail(t *testing.T) {
	for _, s := range imapServers {
		t.Run(s.name, func(t *testing.T) {
			e := s.start(t)
			cs := crmtest.Start(t, nil)
			run := mailCLI(t, cs, e)
			c := e.dial(t)
			ctx := context.Background()
			// A record of alice's: the first sync creates its Regarding
			// folder (CRM/Regarding/Acme in the server's namespace).
			if _, err := cs.Alice.Client.Create(ctx, crm.Record{Entity: crm.EntityAccount, Attrs: map[string]any{"name": "Acme"}}, nil); err != nil {
				t.Fatal(err)
			}
			if _, _, err := c.Append(ctx, "INBOX", []string{"$CRMTracked"}, time.Time{}, imapMail("in1@x", "in")); err != nil {
				t.Fatal(err)
			}
			if _, _, err := c.Append(ctx, e.Sent, []string{"$CRMTracked"}, time.Time{}, imapMail("out1@x", "out")); err != nil {
				t.Fatal(err)
			}
			out, errOut, code := run("sync")
			if code != 0 || !strings.Contains(out, "e-mail: 2 tracked") {
				t.Fatalf("sync: exit %d, want 0 and \"e-mail: 2 tracked\"\n%s\n%s", code, out, errOut)
			}
			if _, _, err := c.Append(ctx, "INBOX", []string{"$CRMTracked"}, time.Time{}, imapMail("in2@x", "in again")); err != nil {
				t.Fatal(err)
			}
			out, errOut, code = run("sync", "--json")
			var js struct {
				Email *struct{ Tracked, Failed int } `json:"email"`
			}
			if err := json.Unmarshal([]byte(out), &js); err != nil || code != 0 || js.Email == nil || js.Email.Tracked != 1 {
				t.Fatalf("sync --json: exit %d, %v, want email.Tracked 1\n%s\n%s", code, err, out, errOut)
			}
			rs, err := cs.Alice.Client.QueryAll(ctx, crm.EntityEmail, crmclient.Query{Select: []string{"messageid", "directioncode"}})
			if err != nil {
				t.Fatal(err)
			}
			dir := map[string]any{}
			for _, r := range rs {
				m, _ := r.Attrs["messageid"].(string)
				dir[m] = r.Attrs["directioncode"]
			}
			if len(rs) != 3 || dir["<out1@x>"] != true || dir["<in1@x>"] != false {
				t.Fatalf("CRM emails = %v, want in1, in2 incoming and out1 outgoing", dir)
			}
		})
	}
}
