package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmclient"
	"github.com/pimbridge/pimbridge/crm/crmtest"
	"github.com/pimbridge/pimbridge/internal/realserver"
	"github.com/pimbridge/pimbridge/offline"
)

// switchableCRM serves a crmtest server's API on a fixed loopback address
// that the test can stop and start again ("the CRM server is stopped").
type switchableCRM struct {
	t    *testing.T
	addr string
	h    http.Handler
	srv  *http.Server
}

func (s *switchableCRM) start() {
	s.t.Helper()
	var ln net.Listener
	var err error
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if ln, err = net.Listen("tcp", s.addr); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		s.t.Fatal(err)
	}
	s.srv = &http.Server{Handler: s.h, ReadHeaderTimeout: 10 * time.Second}
	go s.srv.Serve(ln) // ends at stop
}

func (s *switchableCRM) stop() {
	if s.srv != nil {
		s.srv.Close()
		s.srv = nil
	}
}

// pimbridgeCmd is the real pimbridge binary (this test binary re-executed
// as main) with the test's config.
func pimbridgeCmd(cfg string, args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], append([]string{"--config", cfg}, args...)...)
	cmd.Env = append(os.Environ(), reexecEnv+"=1")
	return cmd
}

// TestOffline_EndToEndBinary is the end-to-end offline flow through
// the real binary: go-offline (killed with SIGKILL once mid-run, then run
// again), the CRM server stopped, the daemon up and serving the local API at
// offline.listen (the address status names), a tool writing through it
// while the daemon is killed with SIGKILL and started again, the server
// back, go-online killed mid-replay and run again: every acknowledged
// offline write is on the server exactly once, and a second go-online
// replays nothing.
func TestOffline_EndToEndBinary(t *testing.T) {
	ctx := context.Background()
	cs := crmtest.Start(t, nil)
	crmSrv := &switchableCRM{t: t, addr: fmt.Sprintf("127.0.0.1:%d", realserver.FreePort(t)), h: cs.API}
	crmSrv.start()
	t.Cleanup(crmSrv.stop)
	me := crm.Ref{Entity: crm.EntitySystemUser, ID: cs.Alice.ID}
	ada, err := cs.Alice.Client.Create(ctx, crm.Record{Entity: crm.EntityContact, Attrs: map[string]any{
		"firstname": "Ada", "lastname": "Lovelace", "jobtitle": "Engineer", "ownerid": me}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 300 { // enough rows for a kill to land inside go-offline
		if _, err := cs.Alice.Client.Create(ctx, crm.Record{Entity: crm.EntityContact, Attrs: map[string]any{
			"lastname": fmt.Sprintf("seed%d", i), "ownerid": me}}, nil); err != nil {
			t.Fatal(err)
		}
	}
	_, book, davHTTP := startAddressBook(t)
	dir := t.TempDir()
	listen := fmt.Sprintf("127.0.0.1:%d", realserver.FreePort(t))
	cfg := writeAliceConfig(t, dir, "http://"+crmSrv.addr, davHTTP.URL+"/", book, "e2e", "interval = \"1h\"\npoll = \"300ms\"")
	f, err := os.OpenFile(cfg, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "[offline]\nlisten = %q\nrows_batch_size = 20\nmin_batch_time = \"1ns\"\nmax_batch_time = \"1m\"\n", listen)
	f.Close()

	runBin := func(args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		cmd := pimbridgeCmd(cfg, args...)
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			t.Fatalf("pimbridge %v: %v\n%s%s", args, err, out.String(), errb.String())
		}
		return out.String()
	}
	killMidway := func(maxDelay time.Duration, args ...string) {
		t.Helper()
		cmd := pimbridgeCmd(cfg, args...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(rand.Int64N(int64(maxDelay))))
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
	}
	status := func() offline.Status {
		t.Helper()
		var st offline.Status
		if out := runBin("status", "--json"); json.Unmarshal([]byte(out), &st) != nil {
			t.Fatalf("status --json: %s", out)
		}
		return st
	}

	// go-offline, killed once in the middle, then to the end.
	killMidway(400*time.Millisecond, "go-offline")
	runBin("go-offline")
	crmSrv.stop()

	local, err := crmclient.New("http://"+listen, &crmclient.Options{User: "alice", Password: crmtest.AlicePassword})
	if err != nil {
		t.Fatal(err)
	}
	var daemonLog bytes.Buffer
	var logMu sync.Mutex
	startDaemon := func() *exec.Cmd {
		t.Helper()
		cmd := pimbridgeCmd(cfg, "daemon")
		cmd.Stderr = writerFunc(func(p []byte) (int, error) {
			logMu.Lock()
			defer logMu.Unlock()
			return daemonLog.Write(p)
		})
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		deadline := time.Now().Add(60 * time.Second)
		for {
			if _, err := local.WhoAmI(ctx); err == nil {
				return cmd
			}
			if time.Now().After(deadline) {
				logMu.Lock()
				defer logMu.Unlock()
				t.Fatalf("the daemon serves no local API at offline.listen %s\n%s", listen, daemonLog.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	daemon := startDaemon()
	if st := status(); !st.Offline || st.ServerURI != "http://"+listen || !st.LocalServing {
		t.Fatalf("status while the daemon serves offline = %+v; want offline, server uri http://%s, serving", st, listen)
	}
	if _, err := local.Update(ctx, crm.Record{Entity: crm.EntityContact, ID: ada.ID, Attrs: map[string]any{"jobtitle": "Countess"}}, nil); err != nil {
		t.Fatal(err)
	}

	// A tool writes through offline.listen while the daemon is killed.
	acked := map[string]bool{}
	var nacked atomic.Int64 // read while the writer runs
	write := func(i int) error {
		name := fmt.Sprintf("w%d", i)
		_, err := local.Create(ctx, crm.Record{Entity: crm.EntityContact, Attrs: map[string]any{"lastname": name}}, nil)
		if err == nil {
			acked[name] = true
			nacked.Add(1)
		}
		return err
	}
	next := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ; ; next++ {
			if write(next) != nil {
				return
			}
		}
	}()
	// Kill once a write went through (a loaded machine may take seconds
	// for the first), at a random point after it.
	for deadline := time.Now().Add(60 * time.Second); nacked.Load() == 0 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(time.Duration(rand.IntN(500)) * time.Millisecond)
	daemon.Process.Signal(syscall.SIGKILL)
	daemon.Wait()
	<-done
	if len(acked) == 0 {
		t.Fatal("no write through the local API before the kill")
	}
	daemon = startDaemon()
	for range 5 {
		next++
		if err := write(next); err != nil {
			t.Fatal(err)
		}
	}
	daemon.Process.Signal(syscall.SIGTERM)
	daemon.Wait()
	logMu.Lock()
	logs := daemonLog.String()
	logMu.Unlock()
	if !strings.Contains(logs, `"local":"http://`+listen+`"`) || strings.Contains(logs, "private port") {
		t.Errorf("the daemon's bridge did not use the local API at offline.listen:\n%s", logs)
	}
	queued := status().QueueLength
	if queued < int64(len(acked))+1 {
		t.Fatalf("queue holds %d rows, want at least %d", queued, len(acked)+1)
	}

	// The server is back: go-online, killed once mid-replay, then again.
	crmSrv.start()
	killMidway(300*time.Millisecond, "go-online", "--on-error=stay-offline")
	runBin("go-online", "--on-error=stay-offline")
	if st := status(); st.State != offline.Online || st.QueueLength != 0 || st.SyncErrors != 0 {
		t.Fatalf("status after go-online = %+v", st)
	}
	count := func() map[string]int {
		recs, err := cs.Alice.Client.QueryAll(ctx, crm.EntityContact, crmclient.Query{})
		if err != nil {
			t.Fatal(err)
		}
		n := map[string]int{}
		for _, r := range recs {
			n[fmt.Sprint(r.Attrs["lastname"])]++
		}
		return n
	}
	n := count()
	for name := range acked {
		if n[name] != 1 {
			t.Errorf("acknowledged offline write %s is on the server %d times, want 1", name, n[name])
		}
	}
	for name, k := range n {
		if k != 1 {
			t.Errorf("%s is on the server %d times", name, k)
		}
	}
	if r, err := cs.Alice.Client.Get(ctx, crm.EntityContact, ada.ID, "jobtitle"); err != nil || r.Attrs["jobtitle"] != "Countess" {
		t.Errorf("Ada on the server = %v, %v; want the offline edit Countess", r.Attrs, err)
	}
	if out := runBin("go-online", "--on-error=stay-offline"); !strings.Contains(out, "replayed 0, rejected 0") {
		t.Errorf("second go-online: %q, want nothing replayed", out)
	}
	if n2 := count(); len(n2) != len(n) {
		t.Errorf("the second go-online changed the server: %d names, was %d", len(n2), len(n))
	}
	t.Logf("%d queued offline writes (%d acknowledged creates before the daemon's kill) replayed", queued, len(acked))
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
