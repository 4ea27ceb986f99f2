package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmtest"
	"github.com/pimbridge/pimbridge/internal/realserver"
)

// TestDaemon_metrics scrapes /metrics after a cycle and finds the counters
// moved, then stops the DAV server and finds /healthz reporting the failed
// cycle.
func TestDaemon_metrics(t *testing.T) {
	ctx := context.Background()
	crmSrv := crmtest.Start(t, nil)
	if _, err := crmSrv.Alice.Client.Create(ctx, crm.Record{Entity: crm.EntityContact, Attrs: map[string]any{
		"firstname": "Ada", "lastname": "Lovelace", "ownerid": crm.Ref{Entity: crm.EntitySystemUser, ID: crmSrv.Alice.ID},
	}}, nil); err != nil {
		t.Fatal(err)
	}
	_, book, davHTTP := startAddressBook(t)

	dir := t.TempDir()
	secret := func(name, v string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", realserver.FreePort(t))
	cfg := fmt.Sprintf(`[crm]
url = %q
user = "alice"
password_file = %q
[client]
id = "metrics-test"
state_dir = %q
interval = "1h"
poll = "200ms"
[carddav]
url = %q
user = "alice"
password_file = %q
addressbook = %q
[metrics]
listen = %q
`, crmSrv.URL, secret("crm", crmtest.AlicePassword), filepath.Join(dir, "state"), davHTTP.URL+"/", secret("dav", "davpw"), book, metricsAddr)
	cfgPath := secret("config.toml", cfg)

	dctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- run(dctx, []string{"--config", cfgPath, "daemon"}, nil, io.Discard, io.Discard) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("daemon: %v", err)
		}
	}()

	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + metricsAddr + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	waitUntil := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitUntil("a full cycle that pushed the contact", func() bool {
		_, body := get("/metrics")
		return strings.Contains(body, `pimbridge_cycles_total{kind="pim",result="ok"} 1`) &&
			strings.Contains(body, `pimbridge_items_total{action="create",entity="contact",side="pim"} 1`)
	})
	if code, body := get("/healthz"); code != 200 {
		t.Fatalf("/healthz after a good cycle = %d %s", code, body)
	}

	davHTTP.CloseClientConnections()
	davHTTP.Close()
	waitUntil("/healthz to report the failed cycle", func() bool {
		code, body := get("/healthz")
		return code == http.StatusServiceUnavailable && strings.Contains(body, `"ok":false`)
	})
	if _, body := get("/metrics"); !strings.Contains(body, `result="error"`) {
		t.Errorf("/metrics counts no failed cycle")
	}
}
