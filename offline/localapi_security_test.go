package offline

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/pimbridge/pimbridge/crm/crmtest"
)

// TestLocalAPI_NoCrossSite: the local API on 127.0.0.1 refuses bodies that
// are not application/json (415) and browser origins (403), queues
// nothing for them, and answers 401 without a Basic challenge, on the data
// and the sync half.
func TestLocalAPI_NoCrossSite(t *testing.T) {
	ctx := context.Background()
	_, e, lc := offlineAlice(t, nil, 0)
	base := lc.BaseURL()
	do := func(method, path, body string, h map[string]string, auth bool) (int, http.Header) {
		req, err := http.NewRequest(method, base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if auth {
			req.SetBasicAuth("alice", crmtest.AlicePassword)
		}
		for k, v := range h {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header
	}
	if st, _ := do("POST", "/api/data/contacts", `{"lastname":"Form"}`, map[string]string{"Content-Type": "text/plain"}, true); st != 415 {
		t.Errorf("text/plain create = %d, want 415", st)
	}
	if st, _ := do("POST", "/api/data/$batch", `{"requests":[{"id":"1","method":"POST","url":"contacts","body":{"lastname":"Form"}}]}`,
		map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, true); st != 415 {
		t.Errorf("form $batch = %d, want 415", st)
	}
	if st, _ := do("POST", "/api/data/contacts", `{"lastname":"Form"}`, map[string]string{"Content-Type": "application/json", "Origin": "https://evil.example"}, true); st != 403 {
		t.Errorf("foreign origin = %d, want 403", st)
	}
	if n, _ := e.QueueLength(ctx); n != 0 {
		t.Errorf("queue length %d after refused requests", n)
	}
	for _, p := range []string{"/api/data/contacts", "/api/sync/subscriptions"} {
		st, h := do("GET", p, "", nil, false)
		if st != 401 || strings.Contains(h.Get("WWW-Authenticate"), "Basic") {
			t.Errorf("GET %s without credentials = %d WWW-Authenticate %q, want 401 without a Basic challenge", p, st, h.Get("WWW-Authenticate"))
		}
	}
}
