package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmtest"
)

// TestGoOffline_maxRetryCountZeroMeansNoRetry: with [offline]
// max_retry_count = 0 a failing batch fails go-offline at the first
// attempt (it used to become the default, 3 retries).
func TestGoOffline_maxRetryCountZeroMeansNoRetry(t *testing.T) {
	ctx := context.Background()
	cs := crmtest.Start(t, nil)
	if _, err := cs.Alice.Client.Create(ctx, crm.Record{Entity: crm.EntityContact, Attrs: map[string]any{"lastname": "One"}}, nil); err != nil {
		t.Fatal(err)
	}
	var asks atomic.Int64
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/batches") {
			asks.Add(1)
			http.Error(w, `{"error":{"code":"unavailable","message":"down for the test"}}`, http.StatusServiceUnavailable)
			return
		}
		cs.API.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	dir := t.TempDir()
	cfg := writeAliceConfig(t, dir, front.URL, "http://127.0.0.1:1/", "/alice/crm/", "retry", "")
	f, err := os.OpenFile(cfg, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("[offline]\nmax_retry_count = 0\n")
	f.Close()
	var out bytes.Buffer
	if err := run(ctx, []string{"--config", cfg, "go-offline"}, strings.NewReader(""), &out, &out); err == nil {
		t.Fatalf("go-offline succeeded against failing batches:\n%s", out.String())
	}
	if n := asks.Load(); n != 1 {
		t.Errorf("max_retry_count = 0: %d batch requests, want 1 (no retry)", n)
	}
}
