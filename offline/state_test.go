package offline

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"sync"
	"testing"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmclient"
)

// stateSpy records the client state at every call the engine makes to the
// server, and may rewrite the server's metadata.
type stateSpy struct {
	Remote
	e        *Engine
	mu       sync.Mutex
	seen     []ClientState
	metadata func(*crm.Metadata)
}

func (s *stateSpy) note(ctx context.Context) {
	st, _ := s.e.State(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.seen) == 0 || s.seen[len(s.seen)-1] != st {
		s.seen = append(s.seen, st)
	}
}

func (s *stateSpy) WhoAmI(ctx context.Context) (crmclient.WhoAmI, error) {
	s.note(ctx)
	return s.Remote.WhoAmI(ctx)
}

func (s *stateSpy) Prepare(ctx context.Context, sub string) (crmclient.PrepareResult, error) {
	s.note(ctx)
	return s.Remote.Prepare(ctx, sub)
}

func (s *stateSpy) Do(ctx context.Context, method, path string, h http.Header, body []byte) (*crmclient.Response, error) {
	s.note(ctx)
	return s.Remote.Do(ctx, method, path, h, body)
}

func (s *stateSpy) Batch(ctx context.Context, reqs []crm.BatchRequest) ([]crm.BatchResponse, error) {
	s.note(ctx)
	return s.Remote.Batch(ctx, reqs)
}

func (s *stateSpy) Metadata(ctx context.Context) (*crm.Metadata, error) {
	md, err := s.Remote.Metadata(ctx)
	if err == nil && s.metadata != nil {
		md = md.Clone()
		s.metadata(md)
	}
	return md, err
}

func (s *stateSpy) states() []ClientState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.seen)
}

// TestClientState_Transitions: every ClientState is set where
// it happens; one case per transition. (SyncError after a rejected replay
// is TestGoOnline_GroupFailsWholeAndReplayGoesOn; GoOfflineCanceled on a
// signal through the binary is TestGoOffline_signalCancels.)
func TestClientState_Transitions(t *testing.T) {
	ctx := context.Background()
	srv, e, lc := offlineAlice(t, nil, 3)
	want := func(t *testing.T, st ClientState) {
		t.Helper()
		if got, err := e.State(ctx); err != nil || got != st {
			t.Fatalf("state = %v, %v; want %v", got, err, st)
		}
	}
	saw := func(t *testing.T, spy *stateSpy, sts ...ClientState) {
		t.Helper()
		for _, st := range sts {
			if !slices.Contains(spy.states(), st) {
				t.Errorf("states seen by the server: %v; want %v among them", spy.states(), st)
			}
		}
	}
	t.Run("GoingOffline-Offline", func(t *testing.T) {
		spy := &stateSpy{Remote: srv.Alice.Client, e: e}
		if _, err := e.GoOffline(ctx, spy, aliceCred()); err != nil {
			t.Fatal(err)
		}
		saw(t, spy, GoingOffline)
		want(t, Offline)
	})
	t.Run("GoingOnline-Syncing-Online", func(t *testing.T) {
		mustCreate(t, lc, map[string]any{"lastname": "queued"})
		spy := &stateSpy{Remote: srv.Alice.Client, e: e}
		if _, err := e.GoOnline(ctx, spy, ReplayOptions{Cred: aliceCred()}); err != nil {
			t.Fatal(err)
		}
		saw(t, spy, GoingOnline, Syncing)
		want(t, Online)
	})
	t.Run("BackgroundSync-Online", func(t *testing.T) {
		spy := &stateSpy{Remote: srv.Alice.Client, e: e}
		if _, err := e.Refresh(ctx, spy, aliceCred()); err != nil {
			t.Fatal(err)
		}
		saw(t, spy, BackgroundSync)
		want(t, Online)
	})
	t.Run("ServerUnavailable", func(t *testing.T) {
		down, _ := crmclient.New("http://127.0.0.1:1", &crmclient.Options{User: "alice", Password: "x"})
		if _, err := e.GoOffline(ctx, down, aliceCred()); !errors.Is(err, ErrServerUnavailable) {
			t.Fatalf("GoOffline against no server: %v", err)
		}
		want(t, ServerUnavailable)
	})
	t.Run("ClientVersionLower", func(t *testing.T) {
		spy := &stateSpy{Remote: srv.Alice.Client, e: e, metadata: func(md *crm.Metadata) {
			md.Entities = append(md.Entities, &crm.Entity{Name: "newthing", SetName: "newthings", PrimaryKey: "newthingid"})
		}}
		if _, err := e.Refresh(ctx, spy, aliceCred()); !errors.Is(err, ErrClientVersion) {
			t.Fatalf("Refresh with a server entity unknown here: %v", err)
		}
		want(t, ClientVersionLower)
	})
	t.Run("ClientVersionHigher", func(t *testing.T) {
		spy := &stateSpy{Remote: srv.Alice.Client, e: e, metadata: func(md *crm.Metadata) {
			c, _ := md.Entity(crm.EntityContact)
			c.Attributes = slices.DeleteFunc(c.Attributes, func(a crm.Attribute) bool { return a.Name == "jobtitle" })
		}}
		if _, err := e.GoOffline(ctx, spy, aliceCred()); !errors.Is(err, ErrServerVersion) {
			t.Fatalf("GoOffline against a server without contact.jobtitle: %v", err)
		}
		want(t, ClientVersionHigher)
	})
	t.Run("GoOfflineCanceled", func(t *testing.T) {
		seedContacts(t, srv, srv.Alice.ID, 20, "c")
		e2 := openEngine(t, "", &Options{ClientID: "canceled", Batch: BatchSettings{RowsBatchSize: 2, MinBatchTime: 1}})
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		e2.opts.Progress = func(Progress) { cancel() }
		if _, err := e2.GoOffline(cctx, srv.Alice.Client, aliceCred()); !errors.Is(err, context.Canceled) {
			t.Fatalf("GoOffline canceled midway: %v", err)
		}
		if st, _ := e2.State(ctx); st != GoOfflineCanceled {
			t.Fatalf("state = %v, want GoOfflineCanceled", st)
		}
	})
	t.Run("PIM-Syncing-SyncError", func(t *testing.T) {
		if _, err := e.GoOffline(ctx, srv.Alice.Client, aliceCred()); err != nil {
			t.Fatal(err)
		}
		status := func() Status {
			t.Helper()
			st, err := e.Status(ctx, nil, "")
			if err != nil {
				t.Fatal(err)
			}
			return st
		}
		if err := e.PIMSyncStarted(ctx); err != nil {
			t.Fatal(err)
		}
		if st := status(); st.State != Syncing || !st.Offline {
			t.Errorf("during a PIM cycle offline: state %v offline %v; want Syncing, still offline", st.State, st.Offline)
		}
		if err := e.PIMSyncDone(ctx, errors.New("2 items failed")); err != nil {
			t.Fatal(err)
		}
		if st := status(); st.State != SyncError || st.PIMSyncError == "" || !st.Offline {
			t.Errorf("after a PIM cycle with errors: %+v; want SyncError with the message, still offline", st)
		}
		if st, _ := e.State(ctx); st != Offline {
			t.Errorf("the PIM sync changed the client's mode to %v", st)
		}
		if err := e.PIMSyncDone(ctx, nil); err != nil {
			t.Fatal(err)
		}
		if st := status(); st.State != Offline {
			t.Errorf("after a clean PIM cycle: %v, want Offline", st.State)
		}
	})
}
