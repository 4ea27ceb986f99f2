package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmclient"
	"github.com/pimbridge/pimbridge/crm/crmtest"
	"github.com/pimbridge/pimbridge/offline"
)

// TestOfflineCommands drives go-offline, status, set-offline and go-online
// through run() against an in-process CRM server.
func TestOfflineCommands(t *testing.T) {
	ctx := context.Background()
	srv := crmtest.Start(t, nil)
	if _, err := srv.Alice.Client.Create(ctx, crm.Record{Entity: crm.EntityContact, Attrs: map[string]any{"lastname": "One"}}, nil); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.toml")
	os.WriteFile(cfg, []byte(`[crm]
url = "`+srv.URL+`"
user = "alice"
password_env = "PIMBRIDGE_TEST_CRM_PW"
[client]
state_dir = "`+dir+`/state"
`), 0o600)
	t.Setenv("PIMBRIDGE_TEST_CRM_PW", crmtest.AlicePassword)
	runCmd := func(args ...string) (string, error) {
		var out, errb bytes.Buffer
		err := run(ctx, append([]string{"--config", cfg}, args...), strings.NewReader(""), &out, &errb)
		return out.String() + errb.String(), err
	}
	status := func() offline.Status {
		out, err := runCmd("status", "--json")
		if err != nil {
			t.Fatalf("status: %v\n%s", err, out)
		}
		var st offline.Status
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			t.Fatalf("status JSON: %v\n%s", err, out)
		}
		return st
	}
	if out, err := runCmd("set-offline"); !errors.Is(err, offline.ErrNotReady) {
		t.Fatalf("set-offline before go-offline: %v\n%s", err, out)
	}
	if out, err := runCmd("go-offline"); err != nil {
		t.Fatalf("go-offline: %v\n%s", err, out)
	}
	st := status()
	if st.State != offline.Offline || st.ServerURI != "http://127.0.0.1:2525" || len(st.Runs) != 1 || st.Version != "ok" {
		t.Fatalf("status after go-offline: %+v", st)
	}
	// An offline write through the local API, as the daemon would serve it.
	e, err := offline.Open(ctx, &offline.Options{Path: filepath.Join(dir, "state", "offline-alice.db")})
	if err != nil {
		t.Fatal(err)
	}
	h := e.Handler()
	local := httptestServer(t, h)
	lc, _ := crmclient.New(local, &crmclient.Options{User: "alice", Password: crmtest.AlicePassword})
	if _, err := lc.Create(ctx, crm.Record{Entity: crm.EntityContact, Attrs: map[string]any{"lastname": "Two"}}, nil); err != nil {
		t.Fatal(err)
	}
	e.Close()
	if st := status(); st.QueueLength != 1 {
		t.Fatalf("queue length %d, want 1", st.QueueLength)
	}
	if out, err := runCmd("go-online", "--on-error=bogus"); err == nil || !strings.Contains(out+err.Error(), "on-error") {
		t.Fatalf("bad --on-error accepted: %v", err)
	}
	if out, err := runCmd("go-online", "--on-error=stay-offline"); err != nil {
		t.Fatalf("go-online: %v\n%s", err, out)
	}
	st = status()
	if st.State != offline.Online || st.QueueLength != 0 || st.ServerURI != srv.URL {
		t.Fatalf("status after go-online: %+v", st)
	}
	all, err := srv.Alice.Client.QueryAll(ctx, crm.EntityContact, crmclient.Query{})
	if err != nil || len(all) != 2 {
		t.Fatalf("server has %d contacts, %v; want 2", len(all), err)
	}

	// sync --target offline: an incremental refresh that stays online.
	if _, err := srv.Alice.Client.Create(ctx, crm.Record{Entity: crm.EntityContact, Attrs: map[string]any{"lastname": "Three"}}, nil); err != nil {
		t.Fatal(err)
	}
	if out, err := runCmd("sync", "--target", "bogus"); exitCode(io.Discard, err) != exitUsage {
		t.Fatalf("sync --target bogus: %v (want a usage error)\n%s", err, out)
	}
	out, err := runCmd("sync", "--target", "offline")
	if err != nil || !strings.Contains(out, "offline replica: 1 rows") {
		t.Fatalf("sync --target offline = %v\n%s; want one row refreshed", err, out)
	}
	if st := status(); st.State != offline.Online {
		t.Fatalf("state after sync --target offline = %s, want Online", st.State)
	}
}

func httptestServer(t *testing.T, h http.Handler) string {
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s.URL
}
