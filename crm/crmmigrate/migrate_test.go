package crmmigrate_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmmigrate"
	"github.com/pimbridge/pimbridge/crm/crmserver"
	"github.com/pimbridge/pimbridge/crm/crmstore"
	"github.com/pimbridge/pimbridge/crm/crmtest"
	"golang.org/x/crypto/bcrypt"
)

// TestMain shares one PostgreSQL server among the tests.
func TestMain(m *testing.M) { os.Exit(crmtest.Main(m)) }

// dsn is a fresh, empty database of a backend.
func dsn(t *testing.T, backend string) string {
	if backend == "postgres" {
		return crmtest.PostgresServer(t).NewDatabase(t)
	}
	return filepath.Join(t.TempDir(), "target.db")
}

func openStore(t *testing.T) *crmstore.Store { return openBackend(t, "sqlite") }

func openBackend(t *testing.T, backend string) *crmstore.Store {
	t.Helper()
	st, err := crmstore.Open(context.Background(), dsn(t, backend),
		&crmstore.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), BcryptCost: bcrypt.MinCost})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// source starts a server, fills it with every kind of state and leaves
// alice's outlook subscription mid-sync: one contact batch sent and not
// acknowledged, the task batch acknowledged.
func source(t *testing.T) (*crmtest.Server, crmtest.Population) {
	return sourceOn(t, "sqlite")
}

// sourceOn is source on a given backend.
func sourceOn(t *testing.T, backend string) (*crmtest.Server, crmtest.Population) {
	t.Helper()
	ctx := context.Background()
	t.Setenv(crmtest.EnvBackend, backend)
	srv := crmtest.Start(t, nil)
	pop := crmtest.Populate(t, srv.Admin.Client, srv.Alice.Client, 3)
	c := srv.Alice.Client
	sub, err := c.Subscribe(ctx, "laptop", crm.KindOutlook)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Prepare(ctx, sub.ID); err != nil {
		t.Fatal(err)
	}
	b, err := c.NextBatch(ctx, sub.ID, "task", 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.PostSync(ctx, sub.ID, b.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.NextBatch(ctx, sub.ID, "contact", 1); err != nil {
		t.Fatal(err)
	}
	if err := c.RecordSyncInfo(ctx, sub.ID, crm.SyncInfo{}); err != nil {
		t.Fatal(err)
	}
	return srv, pop
}

// counts returns the row count of every table of a store.
func counts(t *testing.T, s crmmigrate.Source) map[string]int64 {
	t.Helper()
	ctx := context.Background()
	out := map[string]int64{}
	err := s.Export(ctx, func(r crmserver.DumpReader) error {
		ts, err := r.Tables(ctx)
		if err != nil {
			return err
		}
		for _, tb := range ts {
			if out[tb.Name], err = r.Count(ctx, tb); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestMigrate_CopiesEveryKindOfState: after a migration the target holds
// as many rows as the source in every table, and every kind of state is
// there: custom metadata, records of each entity, tombstones, users with
// working passwords and tokens, sync state, filters, primaries, replay
// keys, the version counter.
func TestMigrate_CopiesEveryKindOfState(t *testing.T) {
	for _, dir := range [][2]string{{"sqlite", "sqlite"}, {"sqlite", "postgres"}, {"postgres", "sqlite"}, {"postgres", "postgres"}} {
		t.Run(dir[0]+"-to-"+dir[1], func(t *testing.T) { testCopiesEveryKindOfState(t, dir[0], dir[1]) })
	}
}

func testCopiesEveryKindOfState(t *testing.T, from, to string) {
	ctx := context.Background()
	srv, pop := sourceOn(t, from)
	dst := openBackend(t, to)
	var phases []string
	rep, err := crmmigrate.Migrate(ctx, srv.Store, dst, &crmmigrate.Options{ChunkRows: 7, Progress: func(p crmmigrate.Progress) {
		phases = append(phases, p.Phase+" "+p.Table.Name)
	}})
	if err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	if rep.Rows == 0 || rep.Verified != rep.Rows {
		t.Errorf("report: %d rows copied, %d verified; want the same, non-zero", rep.Rows, rep.Verified)
	}
	want, got := counts(t, srv.Store), counts(t, dst)
	for name, n := range want {
		if got[name] != n {
			t.Errorf("table %s: %d rows in target, %d in source", name, got[name], n)
		}
	}
	for _, name := range []string{"custom_entities", "custom_attributes", "tombstones", "users", "user_roles", "tokens",
		"subscriptions", "subscription_specs", "syncentry", "batches", "syncinfo", "localfilters", "primaries",
		"create_hash", "replay_keys", "activityparty", "e_new_project", "e_systemuser"} {
		if got[name] == 0 {
			t.Errorf("table %s is empty in the target; the test data should fill it", name)
		}
	}
	for _, e := range append(crmtest.PopulateEntities, "new_project") {
		if got["e_"+e] != int64(len(pop.IDs[e])) {
			t.Errorf("%s: %d records in target, want %d", e, got["e_"+e], len(pop.IDs[e]))
		}
	}
	sv, _ := srv.Store.CurrentVersion(ctx)
	dv, _ := dst.CurrentVersion(ctx)
	if sv == 0 || dv != sv {
		t.Errorf("version counter: target %d, source %d", dv, sv)
	}
	sm, _ := srv.Store.Metadata(ctx)
	dm, _ := dst.Metadata(ctx)
	if dm.Version != sm.Version {
		t.Errorf("metadata version: target %d, source %d", dm.Version, sm.Version)
	}
	if _, err := dm.Entity("new_project"); err != nil {
		t.Errorf("target metadata lacks the custom entity: %v", err)
	}
	if p, err := dst.Authenticate(ctx, "alice", crmtest.AlicePassword); err != nil || p.UserID != srv.Alice.ID {
		t.Errorf("alice's password on the target: %v, %v", p, err)
	}
	if _, err := dst.AuthenticateToken(ctx, pop.Token); err != nil {
		t.Errorf("alice's token on the target: %v", err)
	}
	if pr, err := dst.Primary(ctx, srv.Alice.ID); err != nil || pr.Generation != pop.Primary.Generation || pr.ClientID != pop.Primary.ClientID {
		t.Errorf("primary on the target = %+v, %v; want %+v", pr, err, pop.Primary)
	}
	if !strings.Contains(strings.Join(phases, ","), "verify e_contact") {
		t.Errorf("progress never reported the verify pass: %v", phases)
	}
}

// TestVerify_MismatchNamesEntityIDAndField: a copy that differs in one
// field, lacks a row or has an extra one fails the check, naming the
// entity, the id and the field.
func TestVerify_MismatchNamesEntityIDAndField(t *testing.T) {
	ctx := context.Background()
	srv, pop := source(t)
	dst := openStore(t)
	if _, err := crmmigrate.Migrate(ctx, srv.Store, dst, nil); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	id := pop.IDs["contact"][1].String()
	var me *crmmigrate.MismatchError

	if _, err := dst.DB().ExecContext(ctx, `UPDATE e_contact SET new_nickname = 'changed' WHERE id = ?`, id); err != nil {
		t.Fatal(err)
	}
	_, err := crmmigrate.Verify(ctx, srv.Store, dst, nil)
	if !errors.As(err, &me) || me.Entity != "contact" || me.Key != id || me.Field != "new_nickname" {
		t.Fatalf("Verify after a changed field = %v; want contact %s field new_nickname", err, id)
	}
	for _, s := range []string{"contact", id, "new_nickname", `"nick 1"`, `"changed"`} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not name %s", err, s)
		}
	}
	if _, err := dst.DB().ExecContext(ctx, `UPDATE e_contact SET new_nickname = 'nick 1' WHERE id = ?`, id); err != nil {
		t.Fatal(err)
	}
	if _, err := crmmigrate.Verify(ctx, srv.Store, dst, nil); err != nil {
		t.Fatalf("Verify after restoring the field: %v", err)
	}

	if _, err := dst.DB().ExecContext(ctx, `DELETE FROM syncentry WHERE objectid = ?`, id); err != nil {
		t.Fatal(err)
	}
	if _, err := dst.DB().ExecContext(ctx, `DELETE FROM e_contact WHERE id = ?`, id); err != nil {
		t.Fatal(err)
	}
	_, err = crmmigrate.Verify(ctx, srv.Store, dst, nil)
	if !errors.As(err, &me) || me.Key == "" || me.Reason != "missing in target" || !errors.Is(err, crmmigrate.ErrMismatch) {
		t.Fatalf("Verify after a lost row = %v; want missing in target", err)
	}
	if _, err := srv.Store.DB().ExecContext(ctx, `DELETE FROM syncentry WHERE objectid = ?`, id); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Store.DB().ExecContext(ctx, `DELETE FROM e_contact WHERE id = ?`, id); err != nil {
		t.Fatal(err)
	}
	if _, err := dst.DB().ExecContext(ctx, `INSERT INTO tombstones (entity, id, version) VALUES ('contact', 'extra', 1)`); err != nil {
		t.Fatal(err)
	}
	_, err = crmmigrate.Verify(ctx, srv.Store, dst, nil)
	if !errors.As(err, &me) || me.Table != "tombstones" || me.Reason != "only in target" {
		t.Fatalf("Verify with an extra row = %v; want only in target", err)
	}
}

// TestMigrate_TargetMustBeEmpty: a target that holds a user is refused and
// left as it was.
func TestMigrate_TargetMustBeEmpty(t *testing.T) {
	ctx := context.Background()
	srv, _ := source(t)
	dst := openStore(t)
	if _, err := dst.CreateUser(ctx, "zed", "zed-password-1"); err != nil {
		t.Fatal(err)
	}
	before := counts(t, dst)
	if _, err := crmmigrate.Migrate(ctx, srv.Store, dst, nil); !errors.Is(err, crmstore.ErrNotEmpty) {
		t.Fatalf("Migrate into a used store = %v, want ErrNotEmpty", err)
	}
	if after := counts(t, dst); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("target changed: %v -> %v", before, after)
	}
}

// failingTarget fails its writes into one table.
type failingTarget struct {
	*crmstore.Store
	table string
}

func (f failingTarget) Import(ctx context.Context, fn func(crmserver.DumpWriter) error) error {
	return f.Store.Import(ctx, func(w crmserver.DumpWriter) error { return fn(failingWriter{w, f.table}) })
}

type failingWriter struct {
	crmserver.DumpWriter
	table string
}

var errInjected = errors.New("injected failure")

func (f failingWriter) Write(ctx context.Context, t crmserver.DumpTable, rows [][]any) error {
	if t.Name == f.table {
		return errInjected
	}
	return f.DumpWriter.Write(ctx, t, rows)
}

// TestMigrate_AtomicOnFailure: a copy that fails half-way leaves the
// target as empty as before, and running it again succeeds.
func TestMigrate_AtomicOnFailure(t *testing.T) {
	ctx := context.Background()
	srv, _ := source(t)
	dst := openStore(t)
	before := counts(t, dst)
	if _, err := crmmigrate.Migrate(ctx, srv.Store, failingTarget{dst, "e_contact"}, nil); !errors.Is(err, errInjected) {
		t.Fatalf("Migrate = %v, want the injected failure", err)
	}
	after := counts(t, dst)
	for name, n := range after {
		if n != before[name] {
			t.Errorf("table %s: %d rows after a failed copy, %d before", name, n, before[name])
		}
	}
	if _, err := crmmigrate.Migrate(ctx, srv.Store, dst, nil); err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
}
