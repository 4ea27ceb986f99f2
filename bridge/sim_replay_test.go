//go:build !race

// The replays of the end-to-end check run without -race only (make
// randomized, part of make check): the race build's SQLite servers are
// several times slower, and these add nothing the race detector sees that
// TestRandomizedBridge's race-build seeds do not.

package bridge_test

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestRandomizedBridge_Regressions replays the seeds kept in
// testdata/randomized/bridge-seeds.txt (one per line, # comments; a seed
// followed by "clean" must also leave no sync error).
func TestRandomizedBridge_Regressions(t *testing.T) {
	data, err := os.ReadFile("testdata/randomized/bridge-seeds.txt")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(strings.SplitN(line, "#", 2)[0])
		if len(f) == 0 {
			continue
		}
		seed, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil || len(f) > 2 || len(f) == 2 && f[1] != "clean" {
			t.Fatalf("bridge-seeds.txt: %q: want a seed and an optional \"clean\" (%v)", line, err)
		}
		clean := len(f) == 2
		n++
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			vs, r := e2eRun(t, seed)
			e2eReport(t, seed, vs, r, false)
			if clean {
				// "clean": the run must also end with no sync error.
				errs, err := r.cache.SyncErrors(r.ctx)
				if err != nil {
					t.Fatal(err)
				}
				for _, e := range errs {
					t.Errorf("seed %d: sync error left: %s: %s", seed, e.Item, e.Message)
				}
			}
		})
	}
	if n == 0 {
		t.Fatal("bridge-seeds.txt lists no seed")
	}
}

// TestRandomizedBridge_Deterministic: one seed twice gives the same user
// actions, faults, kills and end state.
func TestRandomizedBridge_Deterministic(t *testing.T) {
	for _, seed := range []uint64{17, 97} {
		var runs [2]string
		for i := range runs {
			t.Run(fmt.Sprintf("seed=%d/run=%d", seed, i), func(t *testing.T) {
				vs, r := e2eRun(t, seed)
				var vl []string
				for _, v := range vs {
					vl = append(vl, v.inv+": "+v.msg)
				}
				out := fmt.Sprintf("%s\nfaults %v kills %d cycles %d\nviolations %v\nend %s",
					strings.Join(r.log, "\n"), r.faults, r.kills, r.cycles, vl, r.fingerprint())
				runs[i] = portRE.ReplaceAllString(out, "127.0.0.1:PORT")
			})
		}
		if runs[0] != runs[1] {
			t.Errorf("seed %d: two runs differ:\n--- first\n%s\n--- second\n%s", seed, runs[0], runs[1])
		}
	}
}
