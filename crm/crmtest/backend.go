package crmtest

import (
	"os"
	"sync"
	"testing"

	"github.com/pimbridge/pimbridge/internal/realserver"
)

// EnvBackend selects the store backend of every test that opens its CRM
// store through DSN or Start: "postgres" runs them on PostgreSQL (one
// server per test binary when its TestMain calls Main, a fresh database
// per store), anything else on SQLite. `make check` runs the crmstore and
// crmserver suites, and a few offline and integration tests, once per
// backend.
const EnvBackend = "PIMBRIDGE_TEST_CRM_DB"

// Postgres reports whether the tests run on PostgreSQL.
func Postgres() bool { return os.Getenv(EnvBackend) == "postgres" }

// Backend names the backend the tests run on.
func Backend() string {
	if Postgres() {
		return "postgres"
	}
	return "sqlite"
}

var shared struct {
	mu   sync.Mutex
	main bool // Main is running the tests
	pg   *realserver.PostgreSQL
	err  error
}

// Main runs a package's tests (call it from TestMain) and stops the
// PostgreSQL server that DSN started for them. Without it, each test that
// needs PostgreSQL starts and stops a server of its own.
func Main(m *testing.M) int {
	shared.mu.Lock()
	shared.main = true
	shared.mu.Unlock()
	code := m.Run()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.pg != nil {
		shared.pg.Stop()
		shared.pg = nil
	}
	return code
}

// PostgresServer returns the PostgreSQL server of the test binary (see
// Main), starting it when needed. A missing server skips the test, or
// fails it under CI=true.
func PostgresServer(t testing.TB) *realserver.PostgreSQL {
	t.Helper()
	if realserver.PostgresBin() == "" {
		realserver.Require(t, "/usr/lib/postgresql/15/bin/postgres")
	}
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if !shared.main {
		return realserver.StartPostgres(t)
	}
	if shared.pg == nil && shared.err == nil {
		shared.pg, shared.err = realserver.NewPostgres()
	}
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.pg
}

// DSN returns the --db value of a fresh, empty store for the test: a
// SQLite file in t.TempDir(), or a new database on PostgreSQL when the
// tests run there.
func DSN(t testing.TB) string {
	t.Helper()
	if !Postgres() {
		return t.TempDir() + "/crm.db"
	}
	return PostgresServer(t).NewDatabase(t)
}
