package main

import (
	"context"
	"net/http/httptest"
	"os"
	"testing"

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
