package crmserver_test

import (
	"os"
	"testing"

	"github.com/pimbridge/pimbridge/crm/crmtest"
)

// TestMain shares one PostgreSQL server among the tests when they run on
// it (crmtest.EnvBackend).
func TestMain(m *testing.M) { os.Exit(crmtest.Main(m)) }
