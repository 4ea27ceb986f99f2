package offline

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmclient"
	"github.com/pimbridge/pimbridge/crm/crmserver"
	"github.com/pimbridge/pimbridge/crm/crmtest"
)

// offlineAlice takes alice offline on a fresh server with n contacts and
// returns the engine and a client of the local API.
func offlineAlice(t *testing.T, opts *crmtest.Options, n int) (*crmtest.Server, *Engine, *crmclient.Client) {
	t.Helper()
	srv := crmtest.Start(t, opts)
	if n > 0 {
		seedContacts(t, srv, srv.Alice.ID, n, "seed")
	}
	e := openEngine(t, "", nil)
	if _, err := e.GoOffline(context.Background(), srv.Alice.Client, aliceCred()); err != nil {
		t.Fatalf("GoOffline: %v", err)
	}
	return srv, e, localClient(t, e)
}

func TestLocalAPI_CRUDAndQueue(t *testing.T) {
	ctx := context.Background()
	_, e, lc := offlineAlice(t, nil, 5)
	created, err := lc.Create(ctx, crm.Record{Entity: crm.EntityContact, Attrs: map[string]any{"lastname": "Offline"}}, nil)
	if err != nil {
		t.Fatalf("Create offline: %v", err)
	}
	if _, err := lc.Update(ctx, crm.Record{Entity: crm.EntityContact, ID: created.ID, Attrs: map[string]any{"jobtitle": "CEO"}}, nil); err != nil {
		t.Fatalf("Update offline: %v", err)
	}
	got, err := lc.Get(ctx, crm.EntityContact, created.ID)
	if err != nil || got.Attrs["jobtitle"] != "CEO" {
		t.Fatalf("Get = %v, %v", got.Attrs, err)
	}
	all, err := lc.QueryAll(ctx, crm.EntityContact, crmclient.Query{})
	if err != nil || len(all) != 6 {
		t.Fatalf("QueryAll: %d records, %v; want 6", len(all), err)
	}
	// Rejected writes are not queued.
	if _, err := lc.Update(ctx, crm.Record{Entity: crm.EntityContact, ID: crm.NewID(), Attrs: map[string]any{"jobtitle": "x"}}, nil); !errors.Is(err, crm.ErrNotFound) {
		t.Fatalf("Update of a missing record: %v, want not found", err)
	}
	if err := lc.Delete(ctx, crm.EntityContact, created.ID, nil); err != nil {
		t.Fatal(err)
	}
	q, err := e.Queue(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	var cmds []string
	for _, r := range q {
		if r.ObjectID != created.ID || r.ObjectType != crm.EntityContact {
			t.Errorf("row %+v: want object %s contact", r, created.ID)
		}
		cmds = append(cmds, r.Command)
	}
	if strings.Join(cmds, ",") != "Create,Update,Delete" {
		t.Errorf("queue commands = %v, want Create,Update,Delete", cmds)
	}
	if !strings.Contains(string(q[0].Body), created.ID.String()) {
		t.Errorf("queued create body %s lacks the client-made id %s", q[0].Body, created.ID)
	}
	if q[1].Header.Get("Authorization") != "" {
		t.Error("the queue keeps the Authorization header")
	}
}

func TestLocalAPI_ServerOnlyAndAuth(t *testing.T) {
	ctx := context.Background()
	_, e, lc := offlineAlice(t, nil, 0)
	tests := []struct {
		name, msg string
		call      func() error
	}{
		{"customization", crmserver.MsgCreateAttribute, func() error {
			_, err := lc.AddAttribute(ctx, crm.EntityContact, crm.Attribute{Name: "new_x", Type: crm.TypeString, MaxLength: 10})
			return err
		}},
		{"token", crmserver.MsgIssueToken, func() error { _, _, err := lc.Token(ctx); return err }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if !errors.Is(err, crm.ErrUnavailable) || !strings.Contains(err.Error(), tc.msg) || !strings.Contains(err.Error(), "offline") {
				t.Fatalf("err = %v, want message_unavailable naming %s", err, tc.msg)
			}
		})
	}
	hs := localClient(t, e)
	bad, _ := crmclient.New(hs.BaseURL(), &crmclient.Options{User: "alice", Password: "wrong"})
	if _, err := bad.WhoAmI(ctx); !errors.Is(err, crm.ErrUnauthenticated) {
		t.Fatalf("wrong password: %v", err)
	}
	w, err := lc.WhoAmI(ctx)
	if err != nil || w.Name != "alice" {
		t.Fatalf("WhoAmI = %+v, %v", w, err)
	}
	if n, _ := e.QueueLength(ctx); n != 0 {
		t.Errorf("queue length %d after refused calls", n)
	}
}

func TestLocalAPI_BatchGroupsQueued(t *testing.T) {
	ctx := context.Background()
	_, e, lc := offlineAlice(t, nil, 0)
	resps, err := lc.Batch(ctx, []crm.BatchRequest{
		{ID: "1", Method: http.MethodPost, URL: "/api/data/contacts", Body: []byte(`{"lastname":"Solo"}`)},
		{ID: "2", Method: http.MethodPost, URL: "/api/data/contacts", Body: []byte(`{"lastname":"G1"}`), AtomicityGroup: "g"},
		{ID: "3", Method: http.MethodPost, URL: "/api/data/contacts", Body: []byte(`{"lastname":"G2"}`), AtomicityGroup: "g"},
		{ID: "4", Method: http.MethodGet, URL: "/api/data/contacts"},
		{ID: "5", Method: http.MethodPost, URL: "/api/data/contacts", Body: []byte(`{"lastname":"F1"}`), AtomicityGroup: "f"},
		{ID: "6", Method: http.MethodPatch, URL: "/api/data/contacts(" + crm.NewID().String() + ")", Body: []byte(`{"lastname":"x"}`), AtomicityGroup: "f"},
		{ID: "7", Method: http.MethodPost, URL: "/api/data/contacts", Body: []byte(`{"lastname":"After f"}`), DependsOn: []string{"f"}},
		{ID: "8", Method: http.MethodPost, URL: "/api/data/contacts", Body: []byte(`{"lastname":"After 1"}`), DependsOn: []string{"1"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []int{204, 204, 204, 200, 424, 404, 424, 204}
	for i, r := range resps {
		if r.Status != want[i] {
			t.Errorf("part %s status %d, want %d", r.ID, r.Status, want[i])
		}
	}
	q, _ := e.Queue(ctx, 0)
	if len(q) != 4 || q[0].GroupID != "" || q[1].GroupID == "" || q[1].GroupID != q[2].GroupID || q[3].GroupID != "" {
		t.Fatalf("queue = %+v; want the lone create, the two of group g (same group id), nothing of the failed group or what depends on it, the create after 1", q)
	}
}
