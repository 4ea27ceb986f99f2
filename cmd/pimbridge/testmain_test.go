package main

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/pimbridge/pimbridge/crm/crmtest"
	"github.com/pimbridge/pimbridge/internal/davserver"
)

// reexecEnv makes the test binary behave as pimbridge itself, so tests can
// run the real command as a subprocess (and kill or signal it) without a
// separate `go build`.
const reexecEnv = "PIMBRIDGE_TEST_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(reexecEnv) == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// startAddressBook starts an in-process CardDAV server with user alice
// (password davpw) and her address book "crm"; all of it stops with the
// test.
func startAddressBook(t *testing.T) (dav *davserver.Server, book string, srv *httptest.Server) {
	t.Helper()
	ctx := context.Background()
	dav, err := davserver.New(ctx, davserver.Options{BcryptCost: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dav.Close() })
	if err := dav.AddUser(ctx, "alice", "davpw"); err != nil {
		t.Fatal(err)
	}
	if book, err = dav.CreateAddressBook(ctx, "alice", "crm", "CRM"); err != nil {
		t.Fatal(err)
	}
	srv = httptest.NewServer(dav)
	t.Cleanup(srv.Close)
	return dav, book, srv
}

// writeAliceConfig writes dir/config.toml for alice on the CRM at crmURL
// and the address book book of the CardDAV server at davURL (passwords in
// the environment: the CRM's, davpw), client id, state in dir/state, and
// clientExtra as more [client] lines. It returns the config's path.
func writeAliceConfig(t *testing.T, dir, crmURL, davURL, book, id, clientExtra string) string {
	t.Helper()
	t.Setenv("PIMBRIDGE_TEST_CRM_PW", crmtest.AlicePassword)
	t.Setenv("PIMBRIDGE_TEST_DAV_PW", "davpw")
	cfg := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`[crm]
url = %q
user = "alice"
password_env = "PIMBRIDGE_TEST_CRM_PW"
[client]
id = %q
state_dir = %q
%s
[carddav]
url = %q
user = "alice"
password_env = "PIMBRIDGE_TEST_DAV_PW"
addressbook = %q
`, crmURL, id, filepath.Join(dir, "state"), clientExtra, davURL, book)), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg
}
