package mailtrack

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmclient"
	"github.com/pimbridge/pimbridge/crm/crmserver"
	"github.com/pimbridge/pimbridge/crm/crmtest"
	"github.com/pimbridge/pimbridge/idmap"
	"github.com/pimbridge/pimbridge/internal/realserver"
	"github.com/pimbridge/pimbridge/pim/imapmail"
)

// childEnv, when set, makes the test binary a tracker process (for the
// kill -9 test): it holds the JSON childConfig.
const childEnv = "MAILTRACK_TEST_CHILD"

type childConfig struct {
	IMAPAddr, IMAPUser, IMAPPass string
	CRMURL, CRMUser, CRMPass     string
	Cache                        string
}

// childMain runs cycles until killed or until a cycle finds nothing to do.
func childMain() int {
	var cfg childConfig
	if err := json.Unmarshal([]byte(os.Getenv(childEnv)), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx := context.Background()
	crmc, err := crmclient.New(cfg.CRMURL, &crmclient.Options{User: cfg.CRMUser, Password: cfg.CRMPass})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	mb, err := imapmail.Dial(ctx, imapmail.Options{Addr: cfg.IMAPAddr, Security: imapmail.SecurityNone,
		User: cfg.IMAPUser, Password: cfg.IMAPPass, Logger: quietLogger()})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	cache, err := idmap.Open(ctx, cfg.Cache)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	tr, err := New(Options{CRM: crmc, Mailbox: mb, Cache: cache, Logger: quietLogger()})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	for {
		st, err := tr.Cycle(ctx)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
		} else if st.Changed == 0 && st.Tracked == 0 && st.Keywords == 0 {
			return 0
		}
	}
}

// TestTracker_Kill9: the tracker runs in a subprocess that is killed with
// SIGKILL at random points while messages are being tracked; after a last
// run there is exactly one CRM email per tracked message.
func TestTracker_Kill9(t *testing.T) {
	forEachServer(t, func(t *testing.T, e *env) {
		ctx := testCtx(t)
		c := e.dial(t)
		acct := e.account(t, "Acme")
		cachePath := filepath.Join(e.dir, "kill.db")
		// One in-process cycle creates the Regarding folders.
		setup := e.tracker(t, "setup.db", nil)
		cycle(t, setup)
		reg := setup.RegardingFolder(crm.Ref{Entity: crm.EntityAccount, ID: acct.ID})
		want := map[string]bool{}
		var uids []uint32
		var later []string
		for i := range 60 {
			id := fmt.Sprintf("k%d@x", i)
			switch {
			case i%6 == 0:
				appendMail(t, c, reg, testMail(id, "Ann <ann@example.com>", "filed"))
				want[id] = true
			case i%2 == 0:
				appendMail(t, c, "INBOX", testMail(id, "Ann <ann@example.com>", "kw"), DefaultKeyword)
				want[id] = true
			default:
				uids = append(uids, appendMail(t, c, "INBOX", testMail(id, "Ann <ann@example.com>", "later")))
				later = append(later, id)
			}
		}
		cfg, _ := json.Marshal(childConfig{IMAPAddr: e.addr, IMAPUser: e.user, IMAPPass: e.pass,
			CRMURL: e.crm.URL, CRMUser: "alice", CRMPass: crmtest.AlicePassword, Cache: cachePath})
		rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 5))
		kills := 0
		for round := range 8 {
			if round < len(uids)/4 {
				// More keywords arrive between the crashes.
				batch := uids[round*4 : round*4+4]
				if err := c.SetKeyword(ctx, "INBOX", 0, batch, DefaultKeyword); err != nil {
					t.Fatal(err)
				}
				for _, id := range later[round*4 : round*4+4] {
					want[id] = true
				}
			}
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), childEnv+"="+string(cfg))
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			select {
			case <-time.After(time.Duration(rng.IntN(250)+10) * time.Millisecond):
				_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				<-exited
				kills++
			case err := <-exited:
				if err != nil {
					t.Fatalf("child: %v", err)
				}
			}
		}
		final := e.tracker(t, "kill.db", nil)
		cycle(t, final)
		cycle(t, final)
		got := map[string]int{}
		for _, r := range e.allEmails(t) {
			id, _ := r.Attrs["messageid"].(string)
			got[id]++
		}
		for id := range want {
			if got["<"+id+">"] != 1 {
				t.Errorf("%s: %d CRM emails, want 1", id, got["<"+id+">"])
			}
		}
		if len(got) != len(want) {
			t.Errorf("CRM has %d distinct emails, want %d", len(got), len(want))
		}
		t.Logf("%s: %d kills, %d emails", e.name, kills, len(got))
	})
}

// TestTracker_DovecotRestart: Dovecot restarts in the middle of a cycle;
// the next cycles track every message exactly once. A CRM plug-in holds the
// tenth e-mail create while the test restarts Dovecot, so the restart
// always lands after the cycle read the folder and before it set the
// keywords.
func TestTracker_DovecotRestart(t *testing.T) {
	d := realserver.Dovecot(t)
	hit, resume := make(chan struct{}), make(chan struct{})
	creates := 0
	hold := crmserver.PluginFunc(func(ctx context.Context, pc *crmserver.PluginContext) error {
		if pc.Stage != crmserver.PreOperation || pc.Message != "Create" || pc.Entity.Name != crm.EntityEmail {
			return nil
		}
		if creates++; creates == 10 {
			close(hit)
			<-resume
		}
		return nil
	})
	e := &env{name: "dovecot", addr: d.Addr, user: d.User, pass: d.Password, dovecot: d,
		crm: crmtest.Start(t, &crmtest.Options{Server: crmserver.Options{Plugins: []crmserver.Plugin{hold}}}), dir: t.TempDir()}
	c := e.dial(t)
	tr := e.tracker(t, "a.db", nil)
	const n = 60
	for i := range n {
		appendMail(t, c, "INBOX", testMail(fmt.Sprintf("r%d@x", i), "Ann <ann@example.com>", "restart"), DefaultKeyword)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := tr.Cycle(context.Background())
		errc <- err
	}()
	select {
	case <-hit:
	case err := <-errc:
		t.Fatalf("the cycle ended (%v) before its tenth CRM create", err)
	case <-time.After(2 * time.Minute):
		t.Fatal("the cycle never reached its tenth CRM create")
	}
	e.dovecot.Restart(t)
	close(resume)
	err := <-errc
	t.Logf("cycle during the restart: %v", err)
	for range 3 {
		if _, err := tr.Cycle(testCtx(t)); err != nil {
			t.Logf("cycle after the restart: %v", err)
		}
	}
	cycle(t, tr)
	got := map[string]int{}
	for _, r := range e.allEmails(t) {
		id, _ := r.Attrs["messageid"].(string)
		got[id]++
	}
	if len(got) != n {
		t.Errorf("distinct emails = %d, want %d", len(got), n)
	}
	for id, k := range got {
		if k != 1 {
			t.Errorf("%s: %d emails", id, k)
		}
	}
}
