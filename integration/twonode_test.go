package integration

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmclient"
	"github.com/pimbridge/pimbridge/crm/crmserver"
	"github.com/pimbridge/pimbridge/crm/crmstore"
	"github.com/pimbridge/pimbridge/internal/realserver"
	"golang.org/x/crypto/bcrypt"
)

// crmNode is one `pimbridge crm serve` process on a shared database.
type crmNode struct {
	t    *testing.T
	dsn  string
	port int
	pw   string // admin password file
	logf string
	mu   sync.Mutex
	cmd  *exec.Cmd
}

func startCRMNode(t *testing.T, dsn, adminPW string) *crmNode {
	t.Helper()
	n := &crmNode{t: t, dsn: dsn, port: realserver.FreePort(t), pw: adminPW, logf: filepath.Join(t.TempDir(), "node.log")}
	n.start()
	t.Cleanup(n.kill)
	return n
}

func (n *crmNode) url() string { return "http://127.0.0.1:" + strconv.Itoa(n.port) }

func (n *crmNode) start() {
	n.t.Helper()
	logf, err := os.OpenFile(n.logf, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		n.t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(pimbridgeBin, "crm", "serve", "--db", n.dsn, "--listen", "127.0.0.1:"+strconv.Itoa(n.port), "--admin-password-file", n.pw)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		n.t.Fatal(err)
	}
	n.mu.Lock()
	n.cmd = cmd
	n.mu.Unlock()
	if err := realserver.WaitPort(n.port, 60*time.Second); err != nil {
		b, _ := os.ReadFile(n.logf)
		n.t.Fatalf("%v\n%s", err, b)
	}
}

// kill ends the process with SIGKILL (kill -9) and waits for it.
func (n *crmNode) kill() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil {
		_ = n.cmd.Process.Kill()
		_ = n.cmd.Wait()
		n.cmd = nil
	}
}

func nodeClient(t *testing.T, base, user, pw string) *crmclient.Client {
	t.Helper()
	c, err := crmclient.New(base, &crmclient.Options{User: user, Password: pw, HTTPClient: &http.Client{Timeout: 30 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// replicaClient is a sync client (the offline engine's view of the
// protocol) whose requests go to the nodes in turn: prepare on one, each
// batch and postsync on the next.
type replicaClient struct {
	name    string
	nodes   []*crmclient.Client
	sub     string
	turn    int
	replica map[crm.ID]int64 // id -> version
	reread  int              // (id, version) received again after its batch was acknowledged
	acked   map[crm.ID]int64
}

func newReplicaClient(t *testing.T, name string, nodes []*crmclient.Client) *replicaClient {
	t.Helper()
	sub, err := nodes[0].Subscribe(context.Background(), name, crm.KindOffline)
	if err != nil {
		t.Fatal(err)
	}
	return &replicaClient{name: name, nodes: nodes, sub: sub.ID, replica: map[crm.ID]int64{}, acked: map[crm.ID]int64{}}
}

func (rc *replicaClient) next() *crmclient.Client {
	rc.turn++
	return rc.nodes[rc.turn%len(rc.nodes)]
}

// pass runs one prepare and every batch; it returns the first error (a
// killed node), after which the next pass starts over.
func (rc *replicaClient) pass(ctx context.Context) (changes int, err error) {
	if _, err := rc.next().Prepare(ctx, rc.sub); err != nil {
		return 0, err
	}
	for i := 0; ; i++ {
		if i == 1000 {
			return changes, fmt.Errorf("%s: no end of batches after %d", rc.name, i)
		}
		b, err := rc.next().NextBatch(ctx, rc.sub, "contact", 25)
		if err != nil {
			return changes, err
		}
		if b.Header.Result == crm.BatchEmpty {
			return changes, nil
		}
		for _, r := range b.Upserts {
			if v, ok := rc.acked[r.ID]; ok && v == r.Version {
				rc.reread++
			}
			if old, ok := rc.replica[r.ID]; ok && old > r.Version {
				return changes, fmt.Errorf("%s: %s went back from version %d to %d", rc.name, r.ID, old, r.Version)
			}
			rc.replica[r.ID] = r.Version
			changes++
		}
		for _, id := range append(b.Deletes, b.Left...) {
			delete(rc.replica, id)
			changes++
		}
		if _, err := rc.next().PostSync(ctx, rc.sub, b.ID); err != nil {
			return changes, err
		}
		for _, r := range b.Upserts {
			rc.acked[r.ID] = r.Version
		}
	}
}

// TestTwoNodes_PostgresConvergence: two `crm serve` processes on one
// PostgreSQL database. Writers spread over both nodes create, update and
// delete contacts; another writes through long transactions that commit
// versions late (the late-commit case); $batch atomicity groups go to node
// B, which is killed with SIGKILL in the middle of one and started again.
// Sync clients that ask the nodes in turn, and a CardDAV bridge per user
// on either node, run all along. Afterwards every
// sync client holds exactly what a fresh full sync holds (nothing lost, no
// change skipped), no record was created twice, every group applied whole
// or not at all, and no acknowledged change was sent again.
func TestTwoNodes_PostgresConvergence(t *testing.T) {
	pg := realserver.StartPostgres(t)
	dsn := pg.NewDatabase(t)
	// A deadline well inside go test's: a hang fails the test, and the
	// cleanups still stop the nodes and PostgreSQL.
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "admin-pw")
	if err := os.WriteFile(pwFile, []byte("admin-secret-pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Node 0: an in-process store on the same database, for the users and
	// the long-transaction writer.
	st, err := crmstore.Open(ctx, dsn, &crmstore.Options{BcryptCost: bcrypt.MinCost, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	alice, err := st.CreateUser(ctx, "alice", "alice-secret-pw", crmserver.RoleSalesperson)
	if err != nil {
		t.Fatal(err)
	}
	bob, err := st.CreateUser(ctx, "bob", "bob-secret-pw", crmserver.RoleSalesperson)
	if err != nil {
		t.Fatal(err)
	}
	bobID := bob.ID
	a := startCRMNode(t, dsn, pwFile)
	b := startCRMNode(t, dsn, pwFile)
	aliceA, aliceB := nodeClient(t, a.url(), "alice", "alice-secret-pw"), nodeClient(t, b.url(), "alice", "alice-secret-pw")
	bobA, bobB := nodeClient(t, a.url(), "bob", "bob-secret-pw"), nodeClient(t, b.url(), "bob", "bob-secret-pw")

	// CardDAV bridges: alice's on node A, bob's on node B (killed below),
	// each with its own address book, syncing all along while the user
	// adds cards on the phone.
	dav := fastDAV(t)
	bridges := []*nodeBridge{
		newNodeBridge(t, dav, "alice-desktop", alice.ID, nodeClient(t, a.url(), "alice", "alice-secret-pw")),
		newNodeBridge(t, dav, "bob-desktop", bobID, nodeClient(t, b.url(), "bob", "bob-secret-pw")),
	}

	// Sync clients, started before the writes.
	clients := []*replicaClient{
		newReplicaClient(t, "alice-laptop", []*crmclient.Client{aliceA, aliceB}),
		newReplicaClient(t, "alice-phone", []*crmclient.Client{aliceB, aliceA}),
		newReplicaClient(t, "bob-laptop", []*crmclient.Client{bobA, bobB}),
	}

	var (
		mu      sync.Mutex
		created = map[string]bool{} // tag -> acknowledged (true) or unknown (false)
		groups  = map[string]int{}  // group -> size
		errs    []error
	)
	note := func(tag string, ok bool) {
		mu.Lock()
		defer mu.Unlock()
		if ok || !created[tag] {
			created[tag] = ok
		}
	}
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		errs = append(errs, err)
	}
	stop := make(chan struct{})
	var writers sync.WaitGroup
	// Writers over both nodes: creates, updates and deletes of their own
	// contacts; errors from node B while it is down are expected.
	for w, cs := range [][]*crmclient.Client{{aliceA, aliceB}, {bobB, bobA}, {aliceB, aliceA}} {
		writers.Add(1)
		go func() {
			defer writers.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			var mine []crm.ID
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				c := cs[i%2]
				switch {
				case len(mine) < 5 || rng.IntN(3) == 0:
					tag := fmt.Sprintf("w%d-%d", w, i)
					note(tag, false)
					r, err := c.Create(ctx, crm.Record{Entity: "contact", Attrs: map[string]any{"lastname": tag}}, &crmclient.WriteOptions{SuppressDuplicateDetection: true})
					if err == nil {
						note(tag, true)
						mine = append(mine, r.ID)
					}
				case rng.IntN(4) == 0:
					k := rng.IntN(len(mine))
					if err := c.Delete(ctx, "contact", mine[k], nil); err == nil || errors.Is(err, crm.ErrNotFound) {
						mine = append(mine[:k], mine[k+1:]...)
					}
				default:
					id := mine[rng.IntN(len(mine))]
					_, _ = c.Update(ctx, crm.Record{Entity: "contact", ID: id, Attrs: map[string]any{"jobtitle": fmt.Sprintf("edit %d", i)}}, nil)
				}
			}
		}()
	}
	// The late-commit writer: transactions that take a version and commit
	// 100-500 ms later, while the nodes commit higher versions.
	writers.Add(1)
	go func() {
		defer writers.Done()
		m, _ := st.Metadata(ctx)
		e, _ := m.Entity(crm.EntityContact)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			tag := fmt.Sprintf("late-%d", i)
			note(tag, false)
			err := st.Update(ctx, func(tx crmserver.Tx) error {
				if _, err := tx.Insert(ctx, e, crm.Record{Entity: e.Name, ID: crm.NewID(), Attrs: map[string]any{
					"lastname": tag, "ownerid": crm.Ref{Entity: crm.EntitySystemUser, ID: alice.ID}}}); err != nil {
					return err
				}
				time.Sleep(time.Duration(100+i%5*100) * time.Millisecond)
				return nil
			})
			if err != nil {
				fail(fmt.Errorf("late writer: %w", err))
				return
			}
			note(tag, true)
		}
	}()
	// Sync clients run all along.
	var syncers sync.WaitGroup
	syncStop := make(chan struct{})
	for _, rc := range clients {
		syncers.Add(1)
		go func() {
			defer syncers.Done()
			for {
				select {
				case <-syncStop:
					return
				default:
				}
				if _, err := rc.pass(ctx); err != nil && (strings.Contains(err.Error(), "went back") || strings.Contains(err.Error(), "no end")) {
					fail(err)
					return
				}
				time.Sleep(50 * time.Millisecond)
			}
		}()
	}
	var bridgesRun sync.WaitGroup
	for _, nb := range bridges {
		nb.run(ctx, syncStop, &bridgesRun)
	}
	// $batch groups to node B; B is killed in the middle of the third.
	for g := range 5 {
		size := 40
		if g == 2 {
			size = 400
		}
		name := fmt.Sprintf("g%d", g)
		var reqs []crm.BatchRequest
		for i := range size {
			reqs = append(reqs, crm.BatchRequest{ID: fmt.Sprintf("%s-%d", name, i), Method: "POST", URL: "contacts",
				Body: []byte(fmt.Sprintf(`{"lastname":"%s-%d"}`, name, i)), AtomicityGroup: name,
				Headers: map[string]string{"MSCRM.SuppressDuplicateDetection": "true"}})
		}
		mu.Lock()
		groups[name] = size
		mu.Unlock()
		done := make(chan error, 1)
		go func() {
			_, err := aliceB.Batch(ctx, reqs)
			done <- err
		}()
		if g == 2 {
			time.Sleep(time.Duration(30+rand.IntN(120)) * time.Millisecond)
			b.kill()
			<-done
			time.Sleep(500 * time.Millisecond) // writers and clients meet a dead node
			b.start()
			continue
		}
		if err := <-done; err != nil {
			t.Errorf("batch %s: %v", name, err)
		}
		time.Sleep(300 * time.Millisecond)
	}
	time.Sleep(time.Second)
	close(stop)
	writers.Wait()
	close(syncStop)
	syncers.Wait()
	bridgesRun.Wait()
	for _, err := range errs {
		t.Error(err)
	}

	// Every client converges on what a fresh full sync of its user holds.
	for _, rc := range clients {
		for i := 0; ; i++ {
			n, err := rc.pass(ctx)
			if err == nil && n == 0 {
				break
			}
			if i > 20 {
				t.Fatalf("%s: no quiet pass after 20 (%v)", rc.name, err)
			}
		}
		fresh := newReplicaClient(t, rc.name+"-fresh", rc.nodes)
		if _, err := fresh.pass(ctx); err != nil {
			t.Fatal(err)
		}
		lost, stale, extra := 0, 0, 0
		for id, v := range fresh.replica {
			switch got, ok := rc.replica[id]; {
			case !ok:
				lost++
				t.Errorf("%s never got %s (version %d)", rc.name, id, v)
			case got != v:
				stale++
				t.Errorf("%s holds %s at version %d, the server at %d", rc.name, id, got, v)
			}
		}
		for id := range rc.replica {
			if _, ok := fresh.replica[id]; !ok {
				extra++
				t.Errorf("%s still holds %s, gone from the server", rc.name, id)
			}
		}
		if rc.reread > 0 {
			t.Errorf("%s got %d acknowledged changes again", rc.name, rc.reread)
		}
		t.Logf("%s: %d records, %d lost, %d stale, %d extra, %d re-read", rc.name, len(rc.replica), lost, stale, extra, rc.reread)
	}

	// Every bridge converges: the phone holds each contact its user owns
	// once, as CRM has it, and each card made on the phone is in CRM once.
	for _, nb := range bridges {
		nb.converge(t, ctx, st)
	}

	// Nothing created twice; acknowledged creates all there; groups whole.
	m, _ := st.Metadata(ctx)
	e, _ := m.Entity(crm.EntityContact)
	count := map[string]int{}
	err = st.View(ctx, func(tx crmserver.Tx) error {
		recs, err := tx.Query(ctx, e, crm.Query{Select: []string{"lastname"}}, crmserver.QueryOptions{})
		for _, r := range recs {
			s, _ := r.Attrs["lastname"].(string)
			count[s]++
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for tag, n := range count {
		if n > 1 {
			t.Errorf("%q created %d times", tag, n)
		}
	}
	deleted := 0
	for tag, ok := range created {
		if ok && count[tag] == 0 && strings.HasPrefix(tag, "late-") {
			t.Errorf("acknowledged create %q is missing", tag)
		}
		if ok && count[tag] == 0 {
			deleted++ // the writers delete some of their own
		}
	}
	for g, size := range groups {
		n := 0
		for i := range size {
			n += count[fmt.Sprintf("%s-%d", g, i)]
		}
		if n != 0 && n != size {
			t.Errorf("atomicity group %s applied %d of %d requests", g, n, size)
		}
		t.Logf("group %s: %d of %d applied", g, n, size)
	}
	t.Logf("%d contacts, %d creates acknowledged (%d deleted since)", len(count), len(created), deleted)
}
