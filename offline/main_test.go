package offline

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmclient"
	"github.com/pimbridge/pimbridge/crm/crmtest"
)

// TestMain doubles as the child process of the crash tests: with
// OFFLINE_CHILD set, the test binary runs that role and exits.
func TestMain(m *testing.M) {
	switch os.Getenv("OFFLINE_CHILD") {
	case "":
		os.Exit(crmtest.Main(m))
	case "gooffline":
		os.Exit(childGoOffline())
	case "writes":
		os.Exit(childWrites())
	case "goonline":
		os.Exit(childGoOnline())
	default:
		fmt.Fprintln(os.Stderr, "unknown OFFLINE_CHILD")
		os.Exit(2)
	}
}

func childEngine() (*Engine, error) {
	size, _ := strconv.Atoi(os.Getenv("OFFLINE_BATCH"))
	set := BatchSettings{RowsBatchSize: size}
	if os.Getenv("OFFLINE_FIXED") != "" {
		set.MinBatchTime = time.Nanosecond // never grow: many batches to kill in
	}
	return Open(context.Background(), &Options{Path: os.Getenv("OFFLINE_DB"), Logger: quietLog(), BcryptCost: 4, Batch: set})
}

// childGoOffline runs one GoOffline as alice and prints its peak RSS.
func childGoOffline() int {
	e, err := childEngine()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer e.Close()
	if path := os.Getenv("OFFLINE_CPUPROFILE"); path != "" {
		// Profiles the client side of BenchmarkGoOffline1M.
		f, err := os.Create(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		pprof.StartCPUProfile(f)
		defer f.Close()
		defer pprof.StopCPUProfile()
	}
	// The peak of live Go heap objects, sampled: with VmHWM it tells the
	// Go share of the peak RSS from SQLite's.
	var peakHeap uint64
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		for {
			metrics.Read(s)
			peakHeap = max(peakHeap, s[0].Value.Uint64())
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	c, _ := crmclient.New(os.Getenv("OFFLINE_URL"), &crmclient.Options{User: "alice", Password: crmtest.AlicePassword})
	rep, err := e.GoOffline(context.Background(), c, aliceCred())
	close(stop)
	<-stopped
	fmt.Printf("HeapObjectsPeak: %d kB\n", peakHeap>>10)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("rows %d batches %d\n", rep.Rows, rep.Batches)
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "VmHWM:") {
				fmt.Println(l)
			}
		}
	}
	return 0
}

// childWrites serves the local API and creates contacts through it until
// killed.
func childWrites() int {
	e, err := childEngine()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	hs := httptest.NewServer(e.Handler())
	c, _ := crmclient.New(hs.URL, &crmclient.Options{User: "alice", Password: crmtest.AlicePassword})
	fmt.Println("ready")
	for i := 0; ; i++ {
		if _, err := c.Create(context.Background(), crm.Record{Entity: crm.EntityContact, Attrs: map[string]any{"lastname": fmt.Sprintf("w%d", i)}}, nil); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
}

// childGoOnline replays the queue as alice, a few rows per $batch.
func childGoOnline() int {
	e, err := Open(context.Background(), &Options{Path: os.Getenv("OFFLINE_DB"), Logger: quietLog(), BcryptCost: 4, ReplayChunk: 3})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer e.Close()
	c, _ := crmclient.New(os.Getenv("OFFLINE_URL"), &crmclient.Options{User: "alice", Password: crmtest.AlicePassword})
	if _, err := e.GoOnline(context.Background(), c, ReplayOptions{Cred: aliceCred()}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func child(tb testing.TB, role string, env ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), append([]string{"OFFLINE_CHILD=" + role}, env...)...)
	return cmd
}

// killResume fills a replica of n contacts while killing the GoOffline
// process with SIGKILL at random points, then finishes with a normal run
// and checks the replica and the batch log.
func killResume(tb testing.TB, n, kills, batch int, maxDelay time.Duration) {
	ctx := context.Background()
	srv := crmtest.Start(tb, nil)
	seedContacts(tb, srv, srv.Alice.ID, n, "k")
	seedContacts(tb, srv, srv.Bob.ID, n/10, "b")
	db := tb.TempDir() + "/replica.db"
	env := []string{"OFFLINE_URL=" + srv.URL, "OFFLINE_DB=" + db, "OFFLINE_BATCH=" + strconv.Itoa(batch), "OFFLINE_FIXED=1"}
	killed := 0
	for i := range kills {
		cmd := child(tb, "gooffline", env...)
		if err := cmd.Start(); err != nil {
			tb.Fatal(err)
		}
		time.Sleep(time.Duration(rand.Int64N(int64(maxDelay))))
		if cmd.Process.Signal(syscall.SIGKILL) == nil {
			killed++
		}
		cmd.Wait()
		if i == kills/2 {
			// Changes between runs: they must arrive too.
			recs := serverRecords(tb, srv, crm.EntityContact, srv.Alice.ID)
			j := 0
			for id := range recs {
				if j++; j > 20 {
					break
				}
				if _, err := srv.Alice.Client.Update(ctx, crm.Record{Entity: crm.EntityContact, ID: id, Attrs: map[string]any{"jobtitle": "changed"}}, nil); err != nil {
					tb.Fatal(err)
				}
			}
		}
	}
	out, err := child(tb, "gooffline", env...).CombinedOutput()
	if err != nil {
		tb.Fatalf("final GoOffline: %v\n%s", err, out)
	}
	e := openEngine(tb, db, nil)
	sameRecords(tb, "contacts", serverRecords(tb, srv, crm.EntityContact, srv.Alice.ID), storeRecords(tb, e.Replica(), crm.EntityContact, crm.ID{}))
	var after, fetches, resent, batches int
	q := e.Replica().DB()
	if err := q.QueryRowContext(ctx, `SELECT count(*) FROM offline_fetches f JOIN offline_batches b ON b.id = f.batch WHERE b.acked_seq IS NOT NULL AND f.seq > b.acked_seq`).Scan(&after); err != nil {
		tb.Fatal(err)
	}
	q.QueryRowContext(ctx, "SELECT count(*), coalesce(sum(resent), 0) FROM offline_fetches").Scan(&fetches, &resent)
	q.QueryRowContext(ctx, "SELECT count(*) FROM offline_batches").Scan(&batches)
	if after != 0 {
		tb.Errorf("%d fetches of batches already acknowledged", after)
	}
	// The server's view: every batch it cut was acknowledged exactly once.
	var unacked int
	srv.Store.DB().QueryRowContext(ctx, "SELECT count(*) FROM batches WHERE acked = 0").Scan(&unacked)
	if unacked != 0 {
		tb.Errorf("%d batches left unacknowledged on the server", unacked)
	}
	// Batch spool files are unlinked as soon as they are created: no kill
	// leaves one behind.
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(db), ".*batch-*")); len(left) > 0 {
		tb.Errorf("batch spool files left beside the replica: %v", left)
	}
	tb.Logf("%d rows, %d kills, %d batches applied, %d fetches (%d re-sent unacknowledged batches)", n, killed, batches, fetches, resent)
}

func TestGoOffline_KillResume(t *testing.T) {
	killResume(t, 2000, 6, 100, 500*time.Millisecond)
}

// TestLocalAPI_WriteAndQueueAtomic kills a process that writes through the
// local API and checks that every local write has its queue row and every
// queue row its write.
func TestLocalAPI_WriteAndQueueAtomic(t *testing.T) {
	ctx := context.Background()
	srv := crmtest.Start(t, nil)
	seedContacts(t, srv, srv.Alice.ID, 10, "s")
	db := t.TempDir() + "/replica.db"
	e := openEngine(t, db, nil)
	if _, err := e.GoOffline(ctx, srv.Alice.Client, aliceCred()); err != nil {
		t.Fatal(err)
	}
	e.Close()
	for round := range 2 {
		cmd := child(t, "writes", "OFFLINE_DB="+db)
		stdout, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 6)
		stdout.Read(buf)
		time.Sleep(time.Duration(200+rand.IntN(400)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		e := openEngine(t, db, nil)
		local := storeRecords(t, e.Replica(), crm.EntityContact, crm.ID{})
		onServer := serverRecords(t, srv, crm.EntityContact, srv.Alice.ID)
		rows, err := e.Queue(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		queued := map[crm.ID]bool{}
		for _, r := range rows {
			queued[r.ObjectID] = true
			if _, ok := local[r.ObjectID]; !ok {
				t.Errorf("round %d: queue row %d for %s, which is not in the replica", round, r.RowNumber, r.ObjectID)
			}
		}
		for id := range local {
			if _, ok := onServer[id]; !ok && !queued[id] {
				t.Errorf("round %d: %s written locally without a queue row", round, id)
			}
		}
		if len(rows) == 0 {
			t.Errorf("round %d: nothing was written before the kill", round)
		}
		t.Logf("round %d: %d queued writes", round, len(rows))
		e.Close()
	}
}

// TestGoOnline_KillResume kills GoOnline with SIGKILL at random points of
// its replay, then runs it to the end: every queued write is on the server
// exactly once, none is lost, the queue is empty and no sync error was made
// up by a replay that had already been applied (creates carry their
// client-made ids, so a row answered but not yet dequeued when the process
// died is accepted again, not duplicated).
func TestGoOnline_KillResume(t *testing.T) {
	ctx := context.Background()
	srv := crmtest.Start(t, nil)
	db := t.TempDir() + "/replica.db"
	e := openEngine(t, db, nil)
	if _, err := e.GoOffline(ctx, srv.Alice.Client, aliceCred()); err != nil {
		t.Fatal(err)
	}
	lc := localClient(t, e)
	const n = 150
	for i := range n {
		mustCreate(t, lc, map[string]any{"lastname": fmt.Sprintf("q%d", i)})
	}
	e.Close()
	env := []string{"OFFLINE_URL=" + srv.URL, "OFFLINE_DB=" + db}
	landed := 0
	var left []int64 // queue length after each kill
	for range 4 {
		cmd := child(t, "goonline", env...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(rand.Int64N(int64(1500 * time.Millisecond))))
		if cmd.Process.Signal(syscall.SIGKILL) == nil {
			landed++
		}
		cmd.Wait()
		x := openEngine(t, db, nil)
		q, _ := x.QueueLength(ctx)
		x.Close()
		left = append(left, q)
	}
	if out, err := child(t, "goonline", env...).CombinedOutput(); err != nil {
		t.Fatalf("final GoOnline: %v\n%s", err, out)
	}
	e = openEngine(t, db, nil)
	if q, _ := e.QueueLength(ctx); q != 0 {
		t.Errorf("%d rows left in the queue", q)
	}
	if errs, _ := e.Errors(ctx); len(errs) != 0 {
		t.Errorf("sync errors after the kills: %+v", errs)
	}
	seen := map[string]int{}
	for _, r := range serverRecords(t, srv, crm.EntityContact, srv.Alice.ID) {
		seen[fmt.Sprint(r.Attrs["lastname"])]++
	}
	for i := range n {
		if k := seen[fmt.Sprintf("q%d", i)]; k != 1 {
			t.Errorf("q%d is on the server %d times, want 1", i, k)
		}
	}
	t.Logf("%d kills of GoOnline; queue length after each: %v (of %d)", landed, left, n)
}
