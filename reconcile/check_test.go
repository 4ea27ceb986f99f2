package reconcile

import (
	"bufio"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Planner check knobs (environment, tests only):
//
//	PIMBRIDGE_SEED=N              replay case N alone (verbose: its trace)
//	PIMBRIDGE_PLANNER_CASES=N     cases per run (default 2000), seeds 1..N
//	PIMBRIDGE_SOAK=10m            run cases from a time-chosen seed for that long
const defaultPlannerCases = 2000

// knownBroken lists invariants that fail on this branch because of a bug
// another branch fixes; a failure of one of them is logged, not failed.
// Empty: Reconcile itself passes every invariant (reassignment is classified
// in bridge; see bridge/sim_test.go).
var knownBroken = map[string]string{}

// assertCase runs one case and fails t with the shrunk case as a test.
func assertCase(t *testing.T, c simCase, p planner) {
	t.Helper()
	vs := runCase(c, p)
	for _, v := range vs {
		if why, ok := knownBroken[v.Inv]; ok {
			t.Logf("seed %d: known broken (%s): %s", c.Seed, why, v)
			continue
		}
		small := shrink(c, p, v.Inv)
		t.Errorf("seed %d: %s\nreplay: PIMBRIDGE_SEED=%d go test -run TestRandomizedPlanner ./reconcile/\nminimal case:\n%s",
			c.Seed, v, c.Seed, small.goTest(fmt.Sprintf("Seed%d", c.Seed)))
		return
	}
}

func envInt(t *testing.T, name string, def uint64) uint64 {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		t.Fatalf("%s=%q: %v", name, s, err)
	}
	return n
}

// TestRandomizedPlanner is the planner check: 2,000 generated cases, each
// driven through Reconcile to quiescence and checked.
func TestRandomizedPlanner(t *testing.T) {
	if s := os.Getenv("PIMBRIDGE_SEED"); s != "" {
		seed := envInt(t, "PIMBRIDGE_SEED", 0)
		c := genCase(seed)
		res := drive(c, Reconcile)
		t.Logf("case:\n%s\ntrace:\n%s", c.goTest(fmt.Sprintf("Seed%d", seed)), strings.Join(res.Trace, "\n"))
		assertCase(t, c, Reconcile)
		return
	}
	if d := os.Getenv("PIMBRIDGE_SOAK"); d != "" {
		soakPlanner(t, d)
		return
	}
	n := envInt(t, "PIMBRIDGE_PLANNER_CASES", defaultPlannerCases)
	start := time.Now()
	for seed := uint64(1); seed <= n && !t.Failed(); seed++ {
		assertCase(t, genCase(seed), Reconcile)
	}
	t.Logf("%d planner cases in %v (%.0f cases/s)", n, time.Since(start), float64(n)/time.Since(start).Seconds())
}

func soakPlanner(t *testing.T, d string) {
	dur, err := time.ParseDuration(d)
	if err != nil {
		t.Fatalf("PIMBRIDGE_SOAK=%q: %v", d, err)
	}
	start := time.Now()
	seed := uint64(start.UnixNano())
	var n int
	var failed []uint64
	for ; time.Since(start) < dur; seed++ {
		n++
		vs := runCase(genCase(seed), Reconcile)
		if slices.ContainsFunc(vs, func(v violation) bool { _, known := knownBroken[v.Inv]; return !known }) {
			failed = append(failed, seed)
			assertCase(t, genCase(seed), Reconcile)
		}
	}
	el := time.Since(start)
	fmt.Printf("soak planner: %d cases in %v, %.0f cases/s, failing seeds: %v\n", n, el.Round(time.Second), float64(n)/el.Seconds(), failed)
}

// TestRandomizedPlanner_Regressions replays the seeds kept in
// testdata/randomized/planner-seeds.txt (one per line, # comments).
func TestRandomizedPlanner_Regressions(t *testing.T) {
	f, err := os.Open("testdata/randomized/planner-seeds.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		line := strings.TrimSpace(strings.SplitN(sc.Text(), "#", 2)[0])
		if line == "" {
			continue
		}
		seed, err := strconv.ParseUint(line, 10, 64)
		if err != nil {
			t.Fatalf("planner-seeds.txt: %q: %v", line, err)
		}
		n++
		assertCase(t, genCase(seed), Reconcile)
	}
	if n == 0 {
		t.Fatal("planner-seeds.txt lists no seed")
	}
}

// TestRandomizedPlanner_Deterministic: the same seed gives the same case,
// the same order of work and the same end state.
func TestRandomizedPlanner_Deterministic(t *testing.T) {
	for seed := uint64(1); seed <= 50; seed++ {
		a, b := genCase(seed), genCase(seed)
		ra, rb := drive(a, Reconcile), drive(b, Reconcile)
		if a.goTest("x") != b.goTest("x") || !slices.Equal(ra.Trace, rb.Trace) {
			t.Fatalf("seed %d: two runs differ:\n%v\n%v", seed, ra.Trace, rb.Trace)
		}
		for i := range ra.World {
			if fmt.Sprint(*ra.World[i]) != fmt.Sprint(*rb.World[i]) {
				t.Fatalf("seed %d item %d: end states differ", seed, i)
			}
		}
	}
}

// TestRandomizedPlanner_Generator: the generator reaches every entity,
// origin, operation on each side and option.
func TestRandomizedPlanner_Generator(t *testing.T) {
	seen := map[string]bool{}
	for seed := uint64(1); seed <= defaultPlannerCases; seed++ {
		c := genCase(seed)
		seen[fmt.Sprint("untrack=", c.UntrackDeletesInCRM)] = true
		for _, it := range c.Items {
			for _, s := range []string{it.Entity, it.Origin.String(), it.CRM.String(), it.PIM.String(),
				fmt.Sprint("owner=", it.Owner), fmt.Sprint("tracked=", it.TrackedFromPIM),
				fmt.Sprint("completed=", completed(it.Base)), fmt.Sprint("future=", future(it.Base)),
				fmt.Sprint(it.Entity, "/", it.CRM, "/", it.PIM)} {
				seen[s] = true
			}
		}
	}
	want := slices.Clone(simEntities)
	want = append(want, "untrack=true", "untrack=false", "owner=true", "owner=false", "tracked=true", "tracked=false",
		"completed=true", "completed=false", "future=true", "future=false")
	for _, o := range originNames {
		want = append(want, o)
	}
	for _, e := range simEntities {
		for _, c := range crmOpNames {
			for _, p := range pimOpNames {
				if c == "crmNone" && p == "pimNone" {
					continue
				}
				want = append(want, e+"/"+c+"/"+p)
			}
		}
	}
	for _, w := range want {
		if !seen[w] {
			t.Errorf("the generator never produced %s", w)
		}
	}
}
