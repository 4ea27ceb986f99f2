package main

import (
	"os"
	"testing"
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
