package offline

import (
	"context"
	"fmt"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmstore"
	"github.com/pimbridge/pimbridge/crm/crmtest"
)

// benchRows is OFFLINE_BENCH_ROWS, else def. BenchmarkGoOffline1M runs
// the full 1M contacts (about 4.5 minutes here, seeding included);
// OFFLINE_BENCH_ROWS=200000 is a quicker look.
func benchRows(def int) int {
	if n, err := strconv.Atoi(os.Getenv("OFFLINE_BENCH_ROWS")); err == nil && n > 0 {
		return n
	}
	return def
}

func verdictOK(ok bool) string {
	if ok {
		return "ok"
	}
	return "MISSED"
}

// BenchmarkGoOffline1M: GoOffline of 1M contacts end to end (server
// prepare, batches over HTTP, replica inserts) in a child process, against
// a raw SQLite insert of the same rows (crmstore's prepared bulk insert
// into a fresh database); peak RSS of the child from VmHWM, with the peak
// of its live Go heap beside it.
func BenchmarkGoOffline1M(b *testing.B) {
	for _, backend := range goOfflineBackends {
		b.Run(backend.name, func(b *testing.B) { benchGoOffline(b, backend.name, backend.start) })
	}
}

// goOfflineBackends are the CRM server stores BenchmarkGoOffline1M reads
// from; the replica is SQLite either way.
var goOfflineBackends = []struct {
	name  string
	start func(b *testing.B) *crmtest.Server
}{
	{"sqlite", func(b *testing.B) *crmtest.Server {
		b.Setenv(crmtest.EnvBackend, "sqlite")
		return crmtest.Start(b, nil)
	}},
	{"postgres", func(b *testing.B) *crmtest.Server {
		b.Setenv(crmtest.EnvBackend, "postgres")
		return crmtest.Start(b, nil)
	}},
}

func benchGoOffline(b *testing.B, backend string, start func(b *testing.B) *crmtest.Server) {
	n := benchRows(1_000_000)
	ctx := context.Background()
	for range b.N {
		srv := start(b)
		const chunk = 100_000
		for done := 0; done < n; done += chunk {
			seedContacts(b, srv, srv.Alice.ID, min(chunk, n-done), fmt.Sprintf("c%d_", done))
		}
		dir := b.TempDir()
		start := time.Now()
		out, err := child(b, "gooffline", "OFFLINE_URL="+srv.URL, "OFFLINE_DB="+dir+"/replica.db", "OFFLINE_BATCH=100000").CombinedOutput()
		if err != nil {
			b.Fatalf("GoOffline: %v\n%s", err, out)
		}
		took := time.Since(start)
		var hwmKB, heapKB int64
		for _, l := range strings.Split(string(out), "\n") {
			if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmHWM:" {
				hwmKB, _ = strconv.ParseInt(f[1], 10, 64)
			} else if len(f) >= 2 && f[0] == "HeapObjectsPeak:" {
				heapKB, _ = strconv.ParseInt(f[1], 10, 64)
			}
		}
		// Raw insert of the same rows, read back from the server store.
		raw, err := crmstore.Open(ctx, dir+"/raw.db", &crmstore.Options{Logger: quietLog()})
		if err != nil {
			b.Fatal(err)
		}
		recs := serverRecords(b, srv, crm.EntityContact, srv.Alice.ID)
		byChunk := make([]crm.Record, 0, chunk)
		var rawTook time.Duration
		flush := func() {
			t0 := time.Now()
			if err := raw.BulkInsert(ctx, crm.EntityContact, byChunk); err != nil {
				b.Fatal(err)
			}
			rawTook += time.Since(t0)
			byChunk = byChunk[:0]
		}
		for _, r := range recs {
			attrs := map[string]any{}
			for k, v := range r.Attrs {
				if k != "createdon" && k != "modifiedon" && k != "versionnumber" && v != nil {
					attrs[k] = v
				}
			}
			byChunk = append(byChunk, crm.Record{ID: r.ID, Attrs: attrs})
			if len(byChunk) == chunk {
				flush()
			}
		}
		if len(byChunk) > 0 {
			flush()
		}
		raw.Close()
		rate := float64(n) / took.Seconds()
		rawRate := float64(n) / rawTook.Seconds()
		ratio := rate / rawRate
		mb := float64(hwmKB) / 1024
		b.ReportMetric(rate, "rows/s")
		b.ReportMetric(rawRate, "raw-rows/s")
		b.ReportMetric(mb, "peak-MB")
		b.ReportMetric(float64(heapKB)/1024, "peak-go-heap-MB")
		b.Logf("LIMIT gooffline_vs_raw_insert from %s (%d contacts): %.0f rows/s vs raw %.0f rows/s = %.0f%% vs 50%% -> %s", backend, n, rate, rawRate, ratio*100, verdictOK(ratio >= 0.5))
		b.Logf("LIMIT gooffline_peak_rss from %s (%d contacts): %.0f MB (live Go heap at most %.0f MB) vs 200 MB -> %s", backend, n, mb, float64(heapKB)/1024, verdictOK(mb <= 200 && hwmKB > 0))
	}
}

// BenchmarkReplay10k: replay of 10k queued writes (creates and updates)
// to a server on loopback.
func BenchmarkReplay10k(b *testing.B) {
	n := benchRows(10_000)
	if n > 100_000 {
		n = 10_000
	}
	ctx := context.Background()
	for range b.N {
		srv := crmtest.Start(b, nil)
		e := openEngine(b, "", nil)
		if _, err := e.GoOffline(ctx, srv.Alice.Client, aliceCred()); err != nil {
			b.Fatal(err)
		}
		lc := localClient(b, e)
		for done := 0; done < n; done += 100 {
			var reqs []crm.BatchRequest
			for i := done; i < min(done+100, n); i++ {
				id := crm.NewID()
				reqs = append(reqs, crm.BatchRequest{ID: strconv.Itoa(i), Method: "POST", URL: "/api/data/contacts",
					Body: []byte(fmt.Sprintf(`{"contactid":"%s","lastname":"r%d","emailaddress1":"r%d@example.com"}`, id, i, i))})
			}
			if _, err := lc.Batch(ctx, reqs); err != nil {
				b.Fatal(err)
			}
		}
		if q, _ := e.QueueLength(ctx); q != int64(n) {
			b.Fatalf("queued %d, want %d", q, n)
		}
		var rep ReplayReport
		if path := os.Getenv("OFFLINE_REPLAY_CPUPROFILE"); path != "" {
			// Profiles the replay alone (client and server).
			f, err := os.Create(path)
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			if err := pprof.StartCPUProfile(f); err != nil {
				b.Fatal(err)
			}
		}
		start := time.Now()
		if err := e.replay(ctx, srv.Alice.Client, ReplayOptions{}, &rep); err != nil {
			b.Fatal(err)
		}
		took := time.Since(start)
		pprof.StopCPUProfile()
		if rep.Replayed != n {
			b.Fatalf("replayed %d of %d (%d rejected)", rep.Replayed, n, rep.Rejected)
		}
		ops := float64(n) / took.Seconds()
		b.ReportMetric(ops, "ops/s")
		b.Logf("LIMIT replay_10k_ops: %.0f ops/s vs 2000 ops/s -> %s", ops, verdictOK(ops >= 2000))
	}
}

// BenchmarkGoOfflineKill100k is acceptance 1 at full size: 100k records,
// 20 kill -9 at random points, then a normal run.
func BenchmarkGoOfflineKill100k(b *testing.B) {
	for range b.N {
		killResume(b, 100_000, 20, 5000, 4*time.Second)
	}
}
