package offline

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmclient"
	"github.com/pimbridge/pimbridge/crm/crmtest"
)

// TestRuns_UseBearerToken: GoOffline and the replay authenticate their
// many requests with one bearer token, not the password each time.
func TestRuns_UseBearerToken(t *testing.T) {
	ctx := context.Background()
	srv := crmtest.Start(t, nil)
	seedContacts(t, srv, srv.Alice.ID, 300, "t")
	target, _ := url.Parse(srv.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	var mu sync.Mutex
	counts := map[string]int{}
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		kind, _, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		mu.Lock()
		counts[kind]++
		mu.Unlock()
		proxy.ServeHTTP(w, r)
	}))
	defer front.Close()
	c, err := crmclient.New(front.URL, &crmclient.Options{User: "alice", Password: crmtest.AlicePassword})
	if err != nil {
		t.Fatal(err)
	}
	e := openEngine(t, "", &Options{Batch: BatchSettings{RowsBatchSize: 20, MinBatchTime: 1}})
	if _, err := e.GoOffline(ctx, c, aliceCred()); err != nil {
		t.Fatal(err)
	}
	lc := localClient(t, e)
	for i := range 30 {
		if _, err := lc.Create(ctx, crm.Record{Entity: crm.EntityContact, Attrs: map[string]any{"lastname": "q" + string(rune('a'+i%26))}}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.GoOnline(ctx, c, ReplayOptions{Cred: aliceCred()}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	// One Basic request per run start (the token request) at most.
	if counts["Basic"] > 3 || counts["Bearer"] < 30 {
		t.Errorf("requests by authentication: %v; want the runs on a bearer token", counts)
	}
	t.Logf("requests by authentication: %v", counts)
}
