package offline

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"testing"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmclient"
	"github.com/pimbridge/pimbridge/crm/crmserver"
	"github.com/pimbridge/pimbridge/crm/crmtest"
)

// offlineWrites is a server plug-in that counts the writes the replay
// applied, per record (post stage, Offline caller origin), as the
// randomized check's replayCounter does.
type offlineWrites struct {
	mu sync.Mutex
	n  map[crm.ID]int
}

func (c *offlineWrites) Execute(_ context.Context, pc *crmserver.PluginContext) error {
	if pc.Stage == crmserver.PostOperation && pc.CallerOrigin.Kind == "Offline" {
		c.mu.Lock()
		c.n[pc.ID]++
		c.mu.Unlock()
	}
	return nil
}

// lossyRemote sends requests to the server and loses the reply of the
// first loseBatches $batch requests and loseDos single writes: the
// server has applied them, the client sees a broken connection.
type lossyRemote struct {
	Remote
	mu                   sync.Mutex
	loseBatches, loseDos int
}

func (l *lossyRemote) lose(n *int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if *n > 0 {
		*n--
		return true
	}
	return false
}

func (l *lossyRemote) Batch(ctx context.Context, reqs []crm.BatchRequest) ([]crm.BatchResponse, error) {
	resps, err := l.Remote.Batch(ctx, reqs)
	if err == nil && l.lose(&l.loseBatches) {
		return nil, io.ErrUnexpectedEOF
	}
	return resps, err
}

func (l *lossyRemote) Do(ctx context.Context, method, path string, header http.Header, body []byte) (*crmclient.Response, error) {
	resp, err := l.Remote.Do(ctx, method, path, header, body)
	if err == nil && method != http.MethodGet && l.lose(&l.loseDos) {
		return nil, io.ErrUnexpectedEOF
	}
	return resp, err
}

// TestGoOnline_LostReplyAppliedOnce: when the reply to a replay is lost
// after the server applied it, the rows stay queued and the next GoOnline
// sends them again; the server applies none of them a second time (no
// plug-in runs twice, a change another user made in between stays), for
// a $batch of lone rows, an atomicity group and a single request.
func TestGoOnline_LostReplyAppliedOnce(t *testing.T) {
	ctx := context.Background()
	plug := &offlineWrites{n: map[crm.ID]int{}}
	srv, e, lc := offlineAlice(t, &crmtest.Options{Server: crmserver.Options{Plugins: []crmserver.Plugin{plug}}}, 2)
	var ids []crm.ID
	for id := range serverRecords(t, srv, crm.EntityContact, srv.Alice.ID) {
		ids = append(ids, id)
	}
	// Offline: lone rows (one $batch), a group (one atomicity group), a
	// last lone row (a single request).
	mustUpdate(t, lc, ids[0], map[string]any{"jobtitle": "offline 0"})
	mustUpdate(t, lc, ids[1], map[string]any{"jobtitle": "offline 1"})
	made := mustCreate(t, lc, map[string]any{"lastname": "Made offline"})
	resps, err := lc.Batch(ctx, []crm.BatchRequest{
		{ID: "a", Method: "PATCH", URL: "/api/data/contacts(" + ids[0].String() + ")", Body: []byte(`{"department":"group 0"}`), AtomicityGroup: "g"},
		{ID: "b", Method: "PATCH", URL: "/api/data/contacts(" + ids[1].String() + ")", Body: []byte(`{"department":"group 1"}`), AtomicityGroup: "g"},
	})
	if err != nil || resps[0].Status >= 300 || resps[1].Status >= 300 {
		t.Fatalf("offline group: %v %+v", err, resps)
	}
	mustUpdate(t, lc, made, map[string]any{"jobtitle": "offline made"})
	queued, err := e.Queue(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	rows := map[crm.ID]int{}
	for _, q := range queued {
		rows[q.ObjectID]++
	}

	remote := &lossyRemote{Remote: srv.Alice.Client, loseBatches: 2, loseDos: 1}
	attempts := 0
	for ; attempts < 6; attempts++ {
		_, err := e.GoOnline(ctx, remote, ReplayOptions{Cred: aliceCred(), OnError: StayOffline})
		if err == nil {
			break
		}
		if !errors.Is(err, ErrServerUnavailable) {
			t.Fatalf("GoOnline %d: %v, want ErrServerUnavailable or success", attempts+1, err)
		}
		if attempts == 0 {
			// Another user changes a field the replay already set.
			mustUpdate(t, srv.Admin.Client, ids[0], map[string]any{"jobtitle": "admin's"})
		}
	}
	if attempts != 3 {
		t.Errorf("GoOnline succeeded at attempt %d, want 4 (three lost replies)", attempts+1)
	}
	if n, _ := e.QueueLength(ctx); n != 0 {
		t.Errorf("%d rows left in the queue", n)
	}
	plug.mu.Lock()
	defer plug.mu.Unlock()
	for id, want := range rows {
		if got := plug.n[id]; got != want {
			t.Errorf("record %s: the server applied %d offline writes, the queue held %d", id, got, want)
		}
	}
	if r, _ := serverGet(t, srv, ids[0]); r.Attrs["jobtitle"] != "admin's" || r.Attrs["department"] != "group 0" {
		t.Errorf("record 0: jobtitle %q department %q, want the admin's change kept and the group's applied", r.Attrs["jobtitle"], r.Attrs["department"])
	}
	if r, _ := serverGet(t, srv, made); r.Attrs["jobtitle"] != "offline made" {
		t.Errorf("made offline: jobtitle %q", r.Attrs["jobtitle"])
	}
}
