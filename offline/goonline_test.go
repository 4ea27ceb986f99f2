package offline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmclient"
	"github.com/pimbridge/pimbridge/crm/crmserver"
	"github.com/pimbridge/pimbridge/crm/crmtest"
)

func mustCreate(t *testing.T, c *crmclient.Client, attrs map[string]any) crm.ID {
	t.Helper()
	r, err := c.Create(context.Background(), crm.Record{Entity: crm.EntityContact, Attrs: attrs}, nil)
	if err != nil {
		t.Fatalf("Create %v: %v", attrs, err)
	}
	return r.ID
}

func mustUpdate(t *testing.T, c *crmclient.Client, id crm.ID, attrs map[string]any) {
	t.Helper()
	if _, err := c.Update(context.Background(), crm.Record{Entity: crm.EntityContact, ID: id, Attrs: attrs}, nil); err != nil {
		t.Fatalf("Update %s %v: %v", id, attrs, err)
	}
}

func serverGet(t *testing.T, srv *crmtest.Server, id crm.ID) (crm.Record, bool) {
	t.Helper()
	r, err := srv.Admin.Client.Get(context.Background(), crm.EntityContact, id)
	if errors.Is(err, crm.ErrNotFound) {
		return r, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return r, true
}

func TestGoOnline_OrderMergeWorkflow(t *testing.T) {
	ctx := context.Background()
	srv, e, lc := offlineAlice(t, &crmtest.Options{Server: crmserver.Options{Workflows: []crmserver.Workflow{crmserver.FollowUpTaskWorkflow{}}}}, 0)
	shared := mustCreate(t, srv.Alice.Client, map[string]any{"lastname": "Shared"})
	if _, err := e.GoOffline(ctx, srv.Alice.Client, aliceCred()); err != nil {
		t.Fatal(err)
	}
	// Offline: create then update (order matters), and edits of a shared
	// record: jobtitle offline, telephone1 online (merge); department both,
	// online first then offline (the last replay wins).
	id := mustCreate(t, lc, map[string]any{"lastname": "Made offline"})
	mustUpdate(t, lc, id, map[string]any{"jobtitle": "Offline title"})
	mustUpdate(t, srv.Alice.Client, shared, map[string]any{"department": "online"})
	mustUpdate(t, lc, shared, map[string]any{"jobtitle": "offline", "department": "offline"})
	mustUpdate(t, srv.Alice.Client, shared, map[string]any{"telephone1": "555"})
	if tasks, _ := lc.QueryAll(ctx, crm.EntityTask, crmclient.Query{}); len(tasks) != 1 { // the one for "Shared", made online
		t.Fatalf("a workflow ran offline: %d tasks", len(tasks))
	}
	rep, err := e.GoOnline(ctx, srv.Alice.Client, ReplayOptions{Cred: aliceCred()})
	if err != nil {
		t.Fatalf("GoOnline: %v", err)
	}
	if rep.Replayed != 3 || rep.Rejected != 0 {
		t.Errorf("report %+v", rep)
	}
	got, ok := serverGet(t, srv, id)
	if !ok || got.Attrs["jobtitle"] != "Offline title" {
		t.Fatalf("offline create+update on the server: %v %v", ok, got.Attrs)
	}
	sh, _ := serverGet(t, srv, shared)
	if sh.Attrs["jobtitle"] != "offline" || sh.Attrs["telephone1"] != "555" || sh.Attrs["department"] != "offline" {
		t.Errorf("shared record = jobtitle %v telephone1 %v department %v; want offline, 555 (merged), offline (last replay wins)",
			sh.Attrs["jobtitle"], sh.Attrs["telephone1"], sh.Attrs["department"])
	}
	tasks, err := srv.Alice.Client.QueryAll(ctx, crm.EntityTask, crmclient.Query{Filter: "_regardingobjectid_value eq " + id.String()})
	if err != nil {
		tasks, err = srv.Alice.Client.QueryAll(ctx, crm.EntityTask, crmclient.Query{})
	}
	found := false
	for _, tk := range tasks {
		if ref, ok := tk.Attrs["regardingobjectid"].(crm.Ref); ok && ref.ID == id {
			found = true
		}
	}
	if err != nil || !found {
		t.Errorf("the server workflow did not fire for the replayed create (%d tasks, %v)", len(tasks), err)
	}
	if st, _ := e.State(ctx); st != Online {
		t.Errorf("state = %v, want Online", st)
	}
	if n, _ := e.QueueLength(ctx); n != 0 {
		t.Errorf("queue length %d after GoOnline", n)
	}
	// The refresh brought the server's view (with the follow-up task).
	sameRecords(t, "contacts", serverRecords(t, srv, crm.EntityContact, srv.Alice.ID), storeRecords(t, e.Replica(), crm.EntityContact, crm.ID{}))
}

func TestGoOnline_GroupFailsWholeAndReplayGoesOn(t *testing.T) {
	ctx := context.Background()
	srv, e, lc := offlineAlice(t, nil, 0)
	doomed := mustCreate(t, srv.Alice.Client, map[string]any{"lastname": "Doomed"})
	if _, err := e.GoOffline(ctx, srv.Alice.Client, aliceCred()); err != nil {
		t.Fatal(err)
	}
	before := mustCreate(t, lc, map[string]any{"lastname": "Before"})
	groupNew := crm.NewID()
	resps, err := lc.Batch(ctx, []crm.BatchRequest{
		{ID: "a", Method: "POST", URL: "/api/data/contacts", Body: []byte(`{"contactid":"` + groupNew.String() + `","lastname":"In group"}`), AtomicityGroup: "g"},
		{ID: "b", Method: "PATCH", URL: "/api/data/contacts(" + doomed.String() + ")", Body: []byte(`{"jobtitle":"x"}`), AtomicityGroup: "g"},
	})
	if err != nil || resps[0].Status >= 300 || resps[1].Status >= 300 {
		t.Fatalf("offline group: %v %+v", err, resps)
	}
	after := mustCreate(t, lc, map[string]any{"lastname": "After"})
	if err := srv.Alice.Client.Delete(ctx, crm.EntityContact, doomed, nil); err != nil {
		t.Fatal(err)
	}
	rep, err := e.GoOnline(ctx, srv.Alice.Client, ReplayOptions{Cred: aliceCred(), OnError: StayOffline})
	if !errors.Is(err, ErrSyncErrors) {
		t.Fatalf("GoOnline: %v, want ErrSyncErrors", err)
	}
	if _, ok := serverGet(t, srv, groupNew); ok {
		t.Error("the failed group's create was applied")
	}
	for _, id := range []crm.ID{before, after} {
		if _, ok := serverGet(t, srv, id); !ok {
			t.Errorf("%s (outside the group) was not replayed", id)
		}
	}
	if rep.Rejected != 2 || len(rep.Errors) != 2 || rep.Errors[1].Code != "not_found" {
		t.Fatalf("report %+v", rep)
	}
	if st, _ := e.State(ctx); st != SyncError {
		t.Errorf("state = %v, want SyncError", st)
	}
	// Discard finishes going online.
	if _, err := e.GoOnline(ctx, srv.Alice.Client, ReplayOptions{Cred: aliceCred(), OnError: Discard}); err != nil {
		t.Fatalf("GoOnline with discard: %v", err)
	}
	if errs, _ := e.Errors(ctx); len(errs) != 0 {
		t.Errorf("%d sync errors after discard", len(errs))
	}
}

func TestGoOnline_PrivilegeRevoked(t *testing.T) {
	ctx := context.Background()
	srv, e, lc := offlineAlice(t, nil, 3)
	recs := serverRecords(t, srv, crm.EntityContact, srv.Alice.ID)
	var id crm.ID
	for id = range recs {
		break
	}
	mustUpdate(t, lc, id, map[string]any{"jobtitle": "not allowed any more"})
	role := crm.Role{Name: "viewer", Privileges: []string{crmserver.PrivGoOffline}}
	for _, a := range []crm.Access{crmserver.Read} {
		role.SetRight("*", a, crm.ScopeAll)
	}
	if err := srv.Store.SaveRole(ctx, role); err != nil {
		t.Fatal(err)
	}
	if err := srv.Store.AssignRole(ctx, "alice", "viewer"); err != nil {
		t.Fatal(err)
	}
	if err := srv.Store.RemoveRole(ctx, "alice", crmserver.RoleSalesperson); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond)
	rep, err := e.GoOnline(ctx, srv.Alice.Client, ReplayOptions{Cred: aliceCred()})
	if !errors.Is(err, ErrSyncErrors) || len(rep.Errors) != 1 || rep.Errors[0].Status != http.StatusForbidden {
		t.Fatalf("GoOnline = %+v, %v; want one 403 sync error", rep, err)
	}
	if got, _ := serverGet(t, srv, id); got.Attrs["jobtitle"] == "not allowed any more" {
		t.Error("the request was applied despite the revoked privilege")
	}
	// Granted back: retry applies it.
	if err := srv.Store.AssignRole(ctx, "alice", crmserver.RoleSalesperson); err != nil {
		t.Fatal(err)
	}
	if n, err := e.RetryErrors(ctx, srv.Alice.Client, false); err != nil || n != 1 {
		t.Fatalf("RetryErrors = %d, %v", n, err)
	}
	if got, _ := serverGet(t, srv, id); got.Attrs["jobtitle"] != "not allowed any more" {
		t.Error("the retried request was not applied")
	}
}

func TestGoOnline_DuplicateDetectionChoice(t *testing.T) {
	ctx := context.Background()
	srv, e, lc := offlineAlice(t, nil, 0)
	mustCreate(t, srv.Bob.Client, map[string]any{"lastname": "Existing", "emailaddress1": "dup@example.com"})
	// Offline there is no duplicate detection; it runs at replay.
	dup := mustCreate(t, lc, map[string]any{"lastname": "Copy", "emailaddress1": "dup@example.com"})
	rep, err := e.GoOnline(ctx, srv.Alice.Client, ReplayOptions{Cred: aliceCred(), OnError: StayOffline})
	if !errors.Is(err, ErrSyncErrors) || len(rep.Errors) != 1 || rep.Errors[0].Code != "duplicate_record" {
		t.Fatalf("detect: %+v, %v; want a duplicate_record sync error", rep, err)
	}
	if _, ok := serverGet(t, srv, dup); ok {
		t.Fatal("the duplicate was created although duplicate detection was chosen")
	}
	if _, err := e.GoOnline(ctx, srv.Alice.Client, ReplayOptions{Cred: aliceCred(), AllowDuplicates: true, OnError: Retry}); err != nil {
		t.Fatalf("retry allowing duplicates: %v", err)
	}
	if _, ok := serverGet(t, srv, dup); !ok {
		t.Fatal("allowing duplicates did not create it")
	}
}

// staleOfflinePlugin is a conflict rule a customer could write: a replayed
// update queued before the record's last server change does not overwrite
// the fields that change touched... here simply: it is ignored.
type staleOfflinePlugin struct{ seen atomic.Int32 }

func (p *staleOfflinePlugin) Execute(ctx context.Context, pc *crmserver.PluginContext) error {
	if pc.Stage != crmserver.PreOperation || pc.Message != crmserver.MsgUpdate || pc.CallerOrigin.Kind != "Offline" || pc.PreImage == nil {
		return nil
	}
	p.seen.Add(1)
	mod, _ := pc.PreImage.Attrs["modifiedon"].(time.Time)
	if !pc.CallerOrigin.QueuedAt.IsZero() && mod.After(pc.CallerOrigin.QueuedAt) {
		clear(pc.Target) // the server's newer change wins
	}
	return nil
}

func TestGoOnline_PluginUsesQueuedTime(t *testing.T) {
	ctx := context.Background()
	plug := &staleOfflinePlugin{}
	srv, e, lc := offlineAlice(t, &crmtest.Options{Server: crmserver.Options{Plugins: []crmserver.Plugin{plug}}}, 2)
	recs := serverRecords(t, srv, crm.EntityContact, srv.Alice.ID)
	var ids []crm.ID
	for id := range recs {
		ids = append(ids, id)
	}
	mustUpdate(t, lc, ids[0], map[string]any{"jobtitle": "offline, stale"})
	mustUpdate(t, lc, ids[1], map[string]any{"jobtitle": "offline, fresh"})
	time.Sleep(1100 * time.Millisecond) // modifiedon has second precision
	mustUpdate(t, srv.Alice.Client, ids[0], map[string]any{"jobtitle": "online, newer"})
	if _, err := e.GoOnline(ctx, srv.Alice.Client, ReplayOptions{Cred: aliceCred()}); err != nil {
		t.Fatal(err)
	}
	a, _ := serverGet(t, srv, ids[0])
	b, _ := serverGet(t, srv, ids[1])
	if a.Attrs["jobtitle"] != "online, newer" || b.Attrs["jobtitle"] != "offline, fresh" || plug.seen.Load() != 2 {
		t.Errorf("jobtitles %q, %q (plug-in saw %d offline updates); want the newer online value kept and the fresh offline one applied",
			a.Attrs["jobtitle"], b.Attrs["jobtitle"], plug.seen.Load())
	}
}

// cutProxy forwards TCP to target and, once more than budget bytes came
// back from the server, cuts every connection and refuses new ones until
// heal is called.
type cutProxy struct {
	ln     net.Listener
	target string
	budget atomic.Int64
	cut    atomic.Bool
	mu     sync.Mutex
	conns  []net.Conn
}

func startCutProxy(t *testing.T, target string, budget int64) *cutProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target}
	p.budget.Store(budget)
	t.Cleanup(func() { ln.Close(); p.cutAll() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if p.cut.Load() {
				c.Close()
				continue
			}
			go p.pipe(c)
		}
	}()
	return p
}

func (p *cutProxy) cutAll() {
	p.cut.Store(true)
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
}

func (p *cutProxy) pipe(c net.Conn) {
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	p.conns = append(p.conns, c, up)
	p.mu.Unlock()
	go func() { io.Copy(up, c); up.Close() }()
	buf := make([]byte, 512)
	for {
		n, err := up.Read(buf)
		if n > 0 {
			if p.budget.Add(-int64(n)) < 0 {
				p.cutAll()
				return
			}
			c.Write(buf[:n])
		}
		if err != nil {
			c.Close()
			return
		}
	}
}

func TestGoOnline_CutConnectionResumes(t *testing.T) {
	ctx := context.Background()
	srv := crmtest.Start(t, nil)
	e := openEngine(t, "", &Options{ReplayChunk: 7})
	if _, err := e.GoOffline(ctx, srv.Alice.Client, aliceCred()); err != nil {
		t.Fatal(err)
	}
	lc := localClient(t, e)
	var ids []crm.ID
	for i := range 60 {
		id := mustCreate(t, lc, map[string]any{"lastname": fmt.Sprintf("cut%02d", i)})
		ids = append(ids, id)
		if i%3 == 0 {
			mustUpdate(t, lc, id, map[string]any{"jobtitle": fmt.Sprintf("t%d", i)})
		}
	}
	proxy := startCutProxy(t, srv.URL[len("http://"):], 20000)
	pc, _ := crmclient.New("http://"+proxy.ln.Addr().String(), &crmclient.Options{User: "alice", Password: crmtest.AlicePassword})
	_, err := e.GoOnline(ctx, pc, ReplayOptions{Cred: aliceCred()})
	if !errors.Is(err, ErrServerUnavailable) {
		t.Fatalf("GoOnline through the cut proxy: %v, want ErrServerUnavailable", err)
	}
	left, _ := e.QueueLength(ctx)
	if left == 0 || left == 80 {
		t.Fatalf("queue length %d after the cut (%v); want a partial replay", left, err)
	}
	if st, _ := e.State(ctx); st != ServerUnavailable {
		t.Errorf("state = %v, want ServerUnavailable", st)
	}
	if _, err := e.GoOnline(ctx, srv.Alice.Client, ReplayOptions{Cred: aliceCred()}); err != nil {
		t.Fatalf("second GoOnline: %v", err)
	}
	all, err := srv.Admin.Client.QueryAll(ctx, crm.EntityContact, crmclient.Query{Filter: "startswith(lastname,'cut')"})
	if err != nil {
		all, err = srv.Admin.Client.QueryAll(ctx, crm.EntityContact, crmclient.Query{})
	}
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	byID := map[crm.ID]crm.Record{}
	for _, r := range all {
		count[fmt.Sprint(r.Attrs["lastname"])]++
		byID[r.ID] = r
	}
	for i, id := range ids {
		name := fmt.Sprintf("cut%02d", i)
		if count[name] != 1 {
			t.Errorf("%s on the server %d times, want once", name, count[name])
		}
		if i%3 == 0 && byID[id].Attrs["jobtitle"] != fmt.Sprintf("t%d", i) {
			t.Errorf("%s lost its update: %v", name, byID[id].Attrs["jobtitle"])
		}
	}
}

// TestGoOnline_LookupToRecordDeletedMeanwhile: a contact created offline
// under an account that the server deleted meanwhile is rejected at replay
// into a sync error naming the lookup, instead of pointing nowhere; the
// other queued writes apply.
func TestGoOnline_LookupToRecordDeletedMeanwhile(t *testing.T) {
	ctx := context.Background()
	srv, e, lc := offlineAlice(t, nil, 0)
	acct, err := srv.Alice.Client.Create(ctx, crm.Record{Entity: crm.EntityAccount, Attrs: map[string]any{"name": "Gone Soon"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.GoOffline(ctx, srv.Alice.Client, aliceCred()); err != nil {
		t.Fatal(err)
	}
	under := mustCreate(t, lc, map[string]any{"lastname": "Under", "parentcustomerid": crm.Ref{Entity: crm.EntityAccount, ID: acct.ID}})
	alone := mustCreate(t, lc, map[string]any{"lastname": "Alone"})
	if err := srv.Alice.Client.Delete(ctx, crm.EntityAccount, acct.ID, nil); err != nil {
		t.Fatal(err)
	}
	rep, err := e.GoOnline(ctx, srv.Alice.Client, ReplayOptions{Cred: aliceCred(), OnError: StayOffline})
	if !errors.Is(err, ErrSyncErrors) || len(rep.Errors) != 1 {
		t.Fatalf("GoOnline = %+v, %v; want one sync error", rep, err)
	}
	if se := rep.Errors[0]; se.Status != http.StatusBadRequest || !strings.Contains(se.Message, "parentcustomerid") {
		t.Errorf("sync error %+v, want 400 naming parentcustomerid", se)
	}
	if _, ok := serverGet(t, srv, under); ok {
		t.Error("the contact under the deleted account was created")
	}
	if _, ok := serverGet(t, srv, alone); !ok {
		t.Error("the other queued create was not replayed")
	}
}

// TestGoOnline_ChunksStayUnderTheServerBodyLimit: queued writes whose
// bodies add up to more than the server accepts in one request go in
// several $batch requests and all apply: cut by ReplayChunkBytes, or, when
// the server's limit is lower still, by halving a refused chunk.
func TestGoOnline_ChunksStayUnderTheServerBodyLimit(t *testing.T) {
	for _, tc := range []struct {
		name       string
		chunkBytes int
		minBatches int
	}{
		{"budget under the limit", 32 << 10, 7},
		{"budget over the limit", 32 << 20, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			srv := crmtest.Start(t, &crmtest.Options{Server: crmserver.Options{MaxBodyBytes: 64 << 10}})
			e := openEngine(t, "", &Options{ReplayChunk: 100, ReplayChunkBytes: tc.chunkBytes})
			if _, err := e.GoOffline(ctx, srv.Alice.Client, aliceCred()); err != nil {
				t.Fatal(err)
			}
			lc := localClient(t, e)
			var ids []crm.ID
			for i := range 100 {
				ids = append(ids, mustCreate(t, lc, map[string]any{"lastname": fmt.Sprintf("big%d", i), "description": strings.Repeat("x", 2000)}))
			}
			counted := &countingRemote{Remote: srv.Alice.Client}
			if _, err := e.GoOnline(ctx, counted, ReplayOptions{Cred: aliceCred()}); err != nil {
				t.Fatalf("GoOnline: %v", err)
			}
			for _, id := range ids {
				if _, ok := serverGet(t, srv, id); !ok {
					t.Fatalf("%s was not replayed", id)
				}
			}
			if counted.batches < tc.minBatches {
				t.Errorf("%d $batch requests for ~210 KB of bodies, want at least %d", counted.batches, tc.minBatches)
			}
		})
	}
}

// countingRemote counts the $batch requests sent through it.
type countingRemote struct {
	Remote
	batches int
}

func (c *countingRemote) Batch(ctx context.Context, reqs []crm.BatchRequest) ([]crm.BatchResponse, error) {
	c.batches++
	return c.Remote.Batch(ctx, reqs)
}
