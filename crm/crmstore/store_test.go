package crmstore_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmserver"
	"github.com/pimbridge/pimbridge/crm/crmstore"
	"github.com/pimbridge/pimbridge/crm/crmtest"
)

// dsnFor returns the store DSN of a test folder: a SQLite file in it, or
// (PIMBRIDGE_TEST_CRM_DB=postgres) a PostgreSQL database made for it, the
// same one each time, so that reopening sees the same data.
func dsnFor(tb testing.TB, dir string) string {
	tb.Helper()
	if !crmtest.Postgres() {
		return dir + "/crm.db"
	}
	pgDSNs.mu.Lock()
	defer pgDSNs.mu.Unlock()
	if pgDSNs.m == nil {
		pgDSNs.m = map[string]string{}
	}
	if d, ok := pgDSNs.m[dir]; ok {
		return d
	}
	d := crmtest.PostgresServer(tb).NewDatabase(tb)
	pgDSNs.m[dir] = d
	return d
}

var pgDSNs struct {
	mu sync.Mutex
	m  map[string]string
}

func openTest(tb testing.TB, dir string) *crmstore.Store {
	tb.Helper()
	st, err := crmstore.Open(context.Background(), dsnFor(tb, dir), &crmstore.Options{BcryptCost: bcrypt.MinCost})
	if err != nil {
		tb.Fatal(err)
	}
	return st
}

func contacts(owner crm.ID, n, from int) []crm.Record {
	recs := make([]crm.Record, n)
	for i := range recs {
		k := from + i
		recs[i] = crm.Record{Entity: crm.EntityContact, Attrs: map[string]any{
			"firstname":           fmt.Sprintf("First%d", k),
			"lastname":            fmt.Sprintf("Last%d", k),
			"fullname":            fmt.Sprintf("First%d Last%d", k, k),
			"emailaddress1":       fmt.Sprintf("person%d@example.com", k),
			"telephone1":          fmt.Sprintf("+1 555 %07d", k),
			"jobtitle":            "Engineer",
			"address1_line1":      fmt.Sprintf("%d Main Street", k%1000),
			"address1_city":       "Springfield",
			"address1_postalcode": fmt.Sprintf("%05d", k%100000),
			"birthdate":           time.Date(1950+k%50, time.Month(1+k%12), 1+k%28, 0, 0, 0, 0, time.UTC),
			"description":         "Imported contact for the sync benchmark.",
			"ownerid":             crm.Ref{Entity: crm.EntitySystemUser, ID: owner},
			"statecode":           int64(0),
			"statuscode":          int64(1),
		}}
	}
	return recs
}

func TestStore_ReopenKeepsDataAndCustomAttributes(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	st := openTest(t, dir)
	u, err := st.CreateUser(ctx, "alice", "alice-password")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateUser(ctx, "ALICE", "alice-password"); !errors.Is(err, crm.ErrConflict) {
		t.Errorf("duplicate user name = %v", err)
	}
	m, err := st.AddAttribute(ctx, "contact", crm.Attribute{Name: "new_tier", Type: crm.TypeString, MaxLength: 10})
	if err != nil || m.Version != 2 {
		t.Fatalf("AddAttribute = %v, %v", m, err)
	}
	if err := st.BulkInsert(ctx, "contact", contacts(u.ID, 3, 0)); err != nil {
		t.Fatal(err)
	}
	v1, _ := st.CurrentVersion(ctx)
	st.Close()
	st = openTest(t, dir)
	defer st.Close()
	m, _ = st.Metadata(ctx)
	e, _ := m.Entity("contact")
	if m.Version != 2 || e.Attr("new_tier") == nil || !e.Attr("new_tier").Custom {
		t.Errorf("custom attribute lost on reopen: version %d", m.Version)
	}
	var n int
	err = st.View(ctx, func(tx crmserver.Tx) error {
		recs, err := tx.Query(ctx, e, crm.Query{}, crmserver.QueryOptions{})
		n = len(recs)
		return err
	})
	if err != nil || n != 3 {
		t.Errorf("records after reopen = %d, %v", n, err)
	}
	if _, err := st.Authenticate(ctx, "alice", "alice-password"); err != nil {
		t.Errorf("login after reopen: %v", err)
	}
	if _, err := st.Authenticate(ctx, "alice", "nope-nope"); !errors.Is(err, crm.ErrUnauthenticated) {
		t.Errorf("bad password = %v", err)
	}
	// Versions are strictly increasing across writes and deletes.
	var ids []crm.ID
	st.View(ctx, func(tx crmserver.Tx) error {
		recs, _ := tx.Query(ctx, e, crm.Query{}, crmserver.QueryOptions{})
		for _, r := range recs {
			ids = append(ids, r.ID)
		}
		return nil
	})
	var vs []int64
	for _, id := range ids {
		st.Update(ctx, func(tx crmserver.Tx) error {
			r, err := tx.Patch(ctx, e, id, map[string]any{"jobtitle": "x"})
			vs = append(vs, r.Version)
			return err
		})
	}
	st.Update(ctx, func(tx crmserver.Tx) error { return tx.Delete(ctx, e, ids[0]) })
	v2, _ := st.CurrentVersion(ctx)
	if !sort.SliceIsSorted(vs, func(i, j int) bool { return vs[i] < vs[j] }) || vs[0] <= v1 || v2 <= vs[len(vs)-1] {
		t.Errorf("versions %v (before %d, after %d) not strictly increasing", vs, v1, v2)
	}
}

// FuzzQueryFilter runs fuzzed $filter strings end to end: parse, check,
// compile to SQL and execute. A filter that passes the checks must never
// make SQLite fail (which would be an injection or a compiler bug).
func FuzzQueryFilter(f *testing.F) {
	for _, s := range []string{
		"lastname eq 'x'", "not (lastname eq 'a' or firstname ne null)", "contains(lastname,'%_\\')",
		"createdon ge 2024-01-01T00:00:00Z", "_ownerid_value eq 6f1c2c3e-8d2a-4c44-9a59-0b1a2b3c4d5e",
		"lastname eq 'x'' or 1=1 --'", "birthdate lt 2000-01-01", "versionnumber gt -5 and statecode eq 0",
		"modifiedon ge @now-30d or ownerid eq @me",
	} {
		f.Add(s)
	}
	st := openTest(f, f.TempDir())
	defer st.Close()
	ctx := context.Background()
	u, err := st.CreateUser(ctx, "alice", "alice-password")
	if err != nil {
		f.Fatal(err)
	}
	st.BulkInsert(ctx, "contact", contacts(u.ID, 20, 0))
	m, _ := st.Metadata(ctx)
	e, _ := m.Entity("contact")
	f.Fuzz(func(t *testing.T, s string) {
		x, err := crm.ParseFilter(s)
		if err != nil {
			return
		}
		q := crm.Query{Filter: x}
		if e.CheckQuery(q) != nil {
			return
		}
		err = st.View(ctx, func(tx crmserver.Tx) error {
			_, err := tx.Query(ctx, e, q, crmserver.QueryOptions{Me: u.ID, Now: time.Now(), Limit: 5})
			return err
		})
		if err != nil {
			t.Fatalf("checked filter %q failed in SQL: %v", s, err)
		}
	})
}

// fixture is a store with n contacts of one user, a subscription that has
// synced all of them, kept across benchmark runs of one process.
type fixture struct {
	st    *crmstore.Store
	user  crm.ID
	sub   crm.Subscription
	e     *crm.Entity
	specs []crmserver.SyncSpec
	ids   []crm.ID
	dir   string

	batchRowsPerSec, selectRowsPerSec float64
}

var fixtures = map[int]*fixture{}

// bigRows is the size of the large data set (1M by default; smaller for a
// quick look: go test -bench . -crmstore.bigrows=100000).
var bigRows = flag.Int("crmstore.bigrows", 1_000_000, "contacts in the large benchmark data set")

func TestMain(m *testing.M) {
	code := crmtest.Main(m)
	for _, fx := range fixtures {
		fx.st.Close()
		os.RemoveAll(fx.dir)
	}
	os.Exit(code)
}

func getFixture(b *testing.B, n int) *fixture {
	if fx := fixtures[n]; fx != nil {
		return fx
	}
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "crmstore-bench-")
	if err != nil {
		b.Fatal(err)
	}
	st := openTest(b, dir)
	u, err := st.CreateUser(ctx, "alice", "alice-password")
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	const chunk = 50000
	for i := 0; i < n; i += chunk {
		if err := st.BulkInsert(ctx, "contact", contacts(u.ID, min(chunk, n-i), i)); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("%d contacts inserted in %v", n, time.Since(start).Round(time.Millisecond))
	m, _ := st.Metadata(ctx)
	e, _ := m.Entity("contact")
	fx := &fixture{st: st, user: u.ID, e: e, dir: dir}
	x, _ := crm.ParseFilter("ownerid eq @me")
	fx.specs = []crmserver.SyncSpec{{Entity: e, Filter: x, Hash: "bench"}}
	fx.sub, err = st.Subscribe(ctx, u.ID, "bench", crm.KindOffline)
	if err != nil {
		b.Fatal(err)
	}
	start = time.Now()
	counts, err := st.Prepare(ctx, fx.sub, fx.specs, u.ID, time.Now())
	if err != nil || counts[0].InsertCount != int64(n) {
		b.Fatalf("full prepare = %v, %v", counts, err)
	}
	b.Logf("full prepare of %d in %v", n, time.Since(start).Round(time.Millisecond))
	// Batches, timed without the acknowledgements, each followed by a plain
	// SELECT of the same rows and columns scanned the same way, so that
	// both see the same machine load.
	cols := []string{"id", "versionnumber"}
	for _, a := range e.Attributes {
		if a.Type == crm.TypeUniqueID {
			continue
		}
		cols = append(cols, `"`+a.Name+`"`)
		if a.Type == crm.TypeLookup {
			cols = append(cols, `"`+a.Name+`__type"`)
		}
	}
	plain := "SELECT " + strings.Join(cols, ", ") + " FROM e_contact WHERE id >= ? AND id <= ? ORDER BY id"
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	var batchTime, selectTime time.Duration
	rows, sel := 0, 0
	for {
		t0 := time.Now()
		p, ok, err := st.NextBatch(ctx, fx.sub, crmserver.SyncBatchRequest{Spec: fx.specs[0], Me: fx.user, Now: time.Now(), Max: 100000})
		batchTime += time.Since(t0)
		if err != nil {
			b.Fatal(err)
		}
		if !ok {
			break
		}
		bt, err := crm.DecodeBatchPayload(p)
		if err != nil {
			b.Fatal(err)
		}
		rows += len(bt.Upserts)
		lo, hi := bt.Upserts[0].ID.String(), bt.Upserts[0].ID.String()
		for _, u := range bt.Upserts {
			lo, hi = min(lo, u.ID.String()), max(hi, u.ID.String())
		}
		t0 = time.Now()
		r, err := st.DB().QueryContext(ctx, plain, lo, hi)
		if err != nil {
			b.Fatal(err)
		}
		for r.Next() {
			if err := r.Scan(ptrs...); err != nil {
				b.Fatal(err)
			}
			sel++
		}
		r.Close()
		selectTime += time.Since(t0)
		if _, err := st.PostSync(ctx, fx.sub, bt.ID); err != nil {
			b.Fatal(err)
		}
	}
	if rows != n || sel != n {
		b.Fatalf("batches carried %d rows, the selects %d, want %d", rows, sel, n)
	}
	fx.batchRowsPerSec = float64(rows) / batchTime.Seconds()
	fx.selectRowsPerSec = float64(sel) / selectTime.Seconds()
	rs, err := st.DB().QueryContext(ctx, "SELECT id FROM e_contact")
	if err != nil {
		b.Fatal(err)
	}
	for rs.Next() {
		var s string
		rs.Scan(&s)
		id, _ := crm.ParseID(s)
		fx.ids = append(fx.ids, id)
	}
	rs.Close()
	fixtures[n] = fx
	return fx
}

// incrementalPrepare changes 100 contacts and times one prepare.
func (fx *fixture) incrementalPrepare(b *testing.B, rng *rand.Rand) time.Duration {
	ctx := context.Background()
	err := fx.st.Update(ctx, func(tx crmserver.Tx) error {
		for range 100 {
			id := fx.ids[rng.IntN(len(fx.ids))]
			if _, err := tx.Patch(ctx, fx.e, id, map[string]any{"jobtitle": fmt.Sprintf("t%d", rng.IntN(1e9))}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	t0 := time.Now()
	counts, err := fx.st.Prepare(ctx, fx.sub, fx.specs, fx.user, time.Now())
	d := time.Since(t0)
	if err != nil || counts[0].InsertCount == 0 {
		b.Fatalf("prepare = %v, %v", counts, err)
	}
	// Acknowledge, so that every round starts from a synced subscription.
	for {
		p, ok, err := fx.st.NextBatch(ctx, fx.sub, crmserver.SyncBatchRequest{Spec: crmserver.SyncSpec{Entity: fx.e}, Max: 1000})
		if err != nil {
			b.Fatal(err)
		}
		if !ok {
			break
		}
		bt, _ := crm.DecodeBatchPayload(p)
		fx.st.PostSync(ctx, fx.sub, bt.ID)
	}
	return d
}

func median(ds []time.Duration) time.Duration {
	slices.Sort(ds)
	return ds[len(ds)/2]
}

func verdict(ok bool) string {
	if ok {
		return "ok"
	}
	return "MISSED"
}

// BenchmarkIncrementalPrepare: prepare after 100 changes at 10k and at 1M
// records; the cost must follow the changes (ratio <= 3).
func BenchmarkIncrementalPrepare(b *testing.B) {
	small, big := getFixture(b, 10_000), getFixture(b, *bigRows)
	rng := rand.New(rand.NewPCG(1, 2))
	var ds, db []time.Duration
	b.ResetTimer()
	for range b.N {
		for range 5 {
			ds = append(ds, small.incrementalPrepare(b, rng))
			db = append(db, big.incrementalPrepare(b, rng))
		}
	}
	ms, mb := median(ds), median(db)
	ratio := float64(mb) / float64(ms)
	b.ReportMetric(float64(ms.Microseconds()), "us/prepare-10k")
	b.ReportMetric(float64(mb.Microseconds()), "us/prepare-1M")
	b.ReportMetric(ratio, "ratio")
	b.Logf("LIMIT incremental-prepare-1M-vs-10k: %.2f (%v vs %v) vs 3.00 -> %s", ratio, mb, ms, verdict(ratio <= 3))
}

// BenchmarkBatchGeneration: rows/s of sync batches for 1M contacts against
// a plain SELECT of the same rows (target >= 50%).
func BenchmarkBatchGeneration(b *testing.B) {
	fx := getFixture(b, *bigRows)
	b.ResetTimer()
	for range b.N {
	}
	ratio := fx.batchRowsPerSec / fx.selectRowsPerSec
	b.ReportMetric(fx.batchRowsPerSec, "batch-rows/s")
	b.ReportMetric(fx.selectRowsPerSec, "select-rows/s")
	b.ReportMetric(ratio, "ratio")
	b.Logf("LIMIT batch-rows-per-sec-vs-select: %.0f%% (%.0f vs %.0f rows/s) vs 50%% -> %s", ratio*100, fx.batchRowsPerSec, fx.selectRowsPerSec, verdict(ratio >= 0.5))
}

// TestStore_BatchesDenseAndSparse covers both ways a batch reads records:
// one range scan merged with the batch (dense) and one lookup per row
// (sparse), with a change after the cut and a deletion.
func TestStore_BatchesDenseAndSparse(t *testing.T) {
	defer crmstore.SetMergeMinRows(100)()
	st := openTest(t, t.TempDir())
	defer st.Close()
	ctx := context.Background()
	u, _ := st.CreateUser(ctx, "alice", "alice-password")
	if err := st.BulkInsert(ctx, "contact", contacts(u.ID, 1200, 0)); err != nil {
		t.Fatal(err)
	}
	m, _ := st.Metadata(ctx)
	e, _ := m.Entity("contact")
	x, _ := crm.ParseFilter("ownerid eq @me")
	specs := []crmserver.SyncSpec{{Entity: e, Filter: x, Hash: "h"}}
	sub, _ := st.Subscribe(ctx, u.ID, "c", crm.KindOffline)
	run := func(size int, edit func(first *crm.Batch)) (map[crm.ID]int, map[crm.ID]crm.Record, int) {
		seen, last, dels := map[crm.ID]int{}, map[crm.ID]crm.Record{}, 0
		for i := 0; ; i++ {
			p, ok, err := st.NextBatch(ctx, sub, crmserver.SyncBatchRequest{Spec: crmserver.SyncSpec{Entity: e}, Max: size})
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				return seen, last, dels
			}
			b, err := crm.DecodeBatchPayload(p)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range b.Upserts {
				seen[r.ID]++
				last[r.ID] = r
				if want := r.Attrs["fullname"]; want != fmt.Sprintf("%s %s", r.Attrs["firstname"], r.Attrs["lastname"]) {
					t.Fatalf("row %s has mixed-up columns: %v", r.ID, r.Attrs)
				}
			}
			dels += len(b.Deletes)
			if i == 0 && edit != nil {
				edit(b)
			}
			if _, err := st.PostSync(ctx, sub, b.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := st.Prepare(ctx, sub, specs, u.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	var changed crm.ID
	seen, last, _ := run(500, func(b *crm.Batch) {
		changed = b.Upserts[10].ID
		st.Update(ctx, func(tx crmserver.Tx) error {
			_, err := tx.Patch(ctx, e, changed, map[string]any{"jobtitle": "after cut"})
			return err
		})
	})
	if len(seen) != 1200 {
		t.Fatalf("dense: %d records delivered, want 1200", len(seen))
	}
	for id, n := range seen {
		if n != 1 && id != changed || id == changed && n != 2 {
			t.Fatalf("dense: %s delivered %d times", id, n)
		}
	}
	if last[changed].Attrs["jobtitle"] != "after cut" {
		t.Errorf("changed record not re-sent with the change")
	}
	// Sparse: 200 changes spread over 1200 records, one deletion.
	var ids []crm.ID
	for id := range seen {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b crm.ID) int { return strings.Compare(a.String(), b.String()) })
	st.Update(ctx, func(tx crmserver.Tx) error {
		for i := 0; i < len(ids); i += 6 {
			if _, err := tx.Patch(ctx, e, ids[i], map[string]any{"jobtitle": "sparse"}); err != nil {
				return err
			}
		}
		return tx.Delete(ctx, e, ids[1])
	})
	counts, err := st.Prepare(ctx, sub, specs, u.ID, time.Now())
	if err != nil || counts[0].InsertCount != 200 || counts[0].DeleteCount != 1 {
		t.Fatalf("sparse prepare = %+v, %v", counts, err)
	}
	seen, last, dels := run(150, nil)
	if len(seen) != 200 || dels != 1 {
		t.Errorf("sparse: %d upserts, %d deletes; want 200 and 1", len(seen), dels)
	}
	for id, r := range last {
		if r.Attrs["jobtitle"] != "sparse" || seen[id] != 1 {
			t.Fatalf("sparse: %s = %v (%d times)", id, r.Attrs["jobtitle"], seen[id])
		}
	}
}

// TestStore_Savepoint: a savepoint whose function fails undoes its writes
// (nested ones included) and leaves the transaction's other writes; the
// version sequence lives in the database, so it is undone with them.
func TestStore_Savepoint(t *testing.T) {
	ctx := context.Background()
	st := openTest(t, t.TempDir())
	defer st.Close()
	md, _ := st.Metadata(ctx)
	e, _ := md.Entity(crm.EntityContact)
	owner := crm.NewID()
	recs := contacts(owner, 4, 0)
	for i := range recs {
		recs[i].ID = crm.NewID()
	}
	insert := func(tx crmserver.Tx, r crm.Record) error {
		_, err := tx.Insert(ctx, e, r)
		return err
	}
	refused := errors.New("refused")
	before, _ := st.CurrentVersion(ctx)
	err := st.Update(ctx, func(tx crmserver.Tx) error {
		if err := tx.Savepoint(ctx, func() error { return insert(tx, recs[0]) }); err != nil {
			return err
		}
		err := tx.Savepoint(ctx, func() error {
			if err := insert(tx, recs[1]); err != nil {
				return err
			}
			tx.Savepoint(ctx, func() error { return insert(tx, recs[2]) })
			return refused
		})
		if !errors.Is(err, refused) {
			return fmt.Errorf("savepoint error = %v, want refused", err)
		}
		// The undone insert left no trace: the same id inserts again.
		return tx.Savepoint(ctx, func() error { return insert(tx, recs[1]) })
	})
	if err != nil {
		t.Fatal(err)
	}
	st.View(ctx, func(tx crmserver.Tx) error {
		for i, want := range []bool{true, true, false, false} {
			if got, err := tx.Exists(ctx, e, recs[i].ID); err != nil || got != want {
				t.Errorf("record %d exists = %v, %v; want %v", i, got, err, want)
			}
		}
		return nil
	})
	if after, _ := st.CurrentVersion(ctx); after != before+2 {
		t.Errorf("version went %d -> %d, want +2 (undone inserts take none)", before, after)
	}
}
