package idmap

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/pimbridge/pimbridge/crm"
)

func openTest(t *testing.T) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "cache.db")
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func contactMapping(href string) Mapping {
	return Mapping{
		CRMEntity:  crm.EntityContact,
		CRMID:      crm.NewID(),
		Entry:      EntryID{Collection: "/alice/crm-contacts/", Href: "/alice/crm-contacts/" + href},
		ETag:       `"e1"`,
		ObjectType: ObjectContact,
		Linked:     true,
	}
}

func insert(t *testing.T, s *Store, m Mapping) Mapping {
	t.Helper()
	ctx := context.Background()
	err := s.Tx(ctx, func(tx *Tx) error {
		var err error
		m, err = tx.Insert(ctx, m)
		return err
	})
	if err != nil {
		t.Fatalf("Insert: %v", err)
	}
	return m
}

func TestOpen_MigrationsIdempotent(t *testing.T) {
	ctx := context.Background()
	s, path := openTest(t)
	m := insert(t, s, contactMapping("a.vcf"))
	want, err := s.SchemaVersion(ctx)
	if err != nil || want != 1 {
		t.Fatalf("SchemaVersion = %d, %v, want 1", want, err)
	}
	s.Close()
	for i := 0; i < 3; i++ {
		s2, err := Open(ctx, path)
		if err != nil {
			t.Fatalf("reopen %d: %v", i, err)
		}
		v, err := s2.SchemaVersion(ctx)
		if err != nil || v != want {
			t.Fatalf("reopen %d: SchemaVersion = %d, %v, want %d", i, v, err, want)
		}
		got, err := s2.ByCRM(ctx, crm.EntityContact, m.CRMID)
		if err != nil || got != m {
			t.Fatalf("reopen %d: ByCRM = %+v, %v, want %+v", i, got, err, m)
		}
		s2.Close()
	}
}

func TestOpen_ConcurrentFirstOpen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "cache.db")
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := Open(ctx, path)
			if err == nil {
				err = s.Close()
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Open #%d: %v", i, err)
		}
	}
}

func TestOpen_SchemaTooNew(t *testing.T) {
	ctx := context.Background()
	s, path := openTest(t)
	if _, err := s.db.ExecContext(ctx, "PRAGMA user_version = 99"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := Open(ctx, path); !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("Open = %v, want ErrSchemaTooNew", err)
	}
}

func TestDSN(t *testing.T) {
	for _, tc := range []struct{ path, want string }{
		{"/tmp/a.db", "file:/tmp/a.db?"},
		{"/tmp/we?ird#%.db", "file:/tmp/we%3fird%23%25.db?"},
	} {
		if got := DSN(tc.path); got[:len(tc.want)] != tc.want {
			t.Errorf("DSN(%q) = %q, want prefix %q", tc.path, got, tc.want)
		}
	}
	// A path with URI metacharacters really opens.
	dir := t.TempDir()
	s, err := Open(context.Background(), filepath.Join(dir, "we?ird#%.db"))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	s.Close()
	if _, err := os.Stat(filepath.Join(dir, "we?ird#%.db")); err != nil {
		t.Fatalf("file not created under its own name: %v", err)
	}
}

func TestStore_Tx_ErrorLeavesNothing(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	boom := errors.New("boom")
	m := contactMapping("a.vcf")
	err := s.Tx(ctx, func(tx *Tx) error {
		got, err := tx.Insert(ctx, m)
		if err != nil {
			return err
		}
		if err := tx.PutSnapshot(ctx, got.MapID, Snapshot{Fields: []byte("f"), Raw: []byte("r")}); err != nil {
			return err
		}
		if err := tx.SetCursor(ctx, "alice", "/alice/crm-contacts/", "token-2"); err != nil {
			return err
		}
		if _, err := tx.ByCRM(ctx, m.CRMEntity, m.CRMID); err != nil {
			return fmt.Errorf("tx does not see its own write: %w", err)
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Tx = %v, want boom", err)
	}
	assertEmpty(t, s, m)
}

func TestStore_Tx_PanicLeavesNothing(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	m := contactMapping("a.vcf")
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("no panic")
			}
		}()
		_ = s.Tx(ctx, func(tx *Tx) error {
			if _, err := tx.Insert(ctx, m); err != nil {
				return err
			}
			panic("crash in fn")
		})
	}()
	assertEmpty(t, s, m)
	// The store is still usable: the connection was released.
	insert(t, s, contactMapping("b.vcf"))
}

func assertEmpty(t *testing.T, s *Store, m Mapping) {
	t.Helper()
	ctx := context.Background()
	if _, err := s.ByCRM(ctx, m.CRMEntity, m.CRMID); !errors.Is(err, ErrUnmapped) {
		t.Errorf("ByCRM after rollback = %v, want ErrUnmapped", err)
	}
	if _, err := s.Cursor(ctx, "alice", "/alice/crm-contacts/"); !errors.Is(err, ErrNoCursor) {
		t.Errorf("Cursor after rollback = %v, want ErrNoCursor", err)
	}
	var n int
	if err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM snapshot").Scan(&n); err != nil || n != 0 {
		t.Errorf("snapshots after rollback = %d, %v, want 0", n, err)
	}
}

// TestStore_Tx_KilledProcessLeavesNothing kills a process in the middle of
// a transaction (after its writes, before commit) and checks that the
// cache holds none of them, and all of an earlier committed one.
func TestStore_Tx_KilledProcessLeavesNothing(t *testing.T) {
	if os.Getenv("IDMAP_CRASH_CHILD") != "" {
		crashChild()
		return
	}
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "cache.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestStore_Tx_KilledProcessLeavesNothing$")
	cmd.Env = append(os.Environ(), "IDMAP_CRASH_CHILD="+path)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Fatalf("child: %v, want exit 3\n%s", err, out)
	}
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatalf("Open after crash: %v", err)
	}
	defer s.Close()
	ms, err := s.List(ctx, ListFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 1 || ms[0].Entry.Href != "/c/committed.vcf" {
		t.Fatalf("mappings after crash = %+v, want only the committed one", ms)
	}
	if c, err := s.Cursor(ctx, "a", "/c/"); err != nil || c != "committed" {
		t.Fatalf("Cursor after crash = %q, %v, want committed", c, err)
	}
	if _, err := s.PendingFor(ctx, ms[0].MapID); !errors.Is(err, ErrNoPending) {
		t.Fatalf("PendingFor after crash = %v, want ErrNoPending", err)
	}
}

func crashChild() {
	ctx := context.Background()
	path := os.Getenv("IDMAP_CRASH_CHILD")
	s, err := Open(ctx, path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	mk := func(href string) Mapping {
		return Mapping{CRMEntity: crm.EntityContact, CRMID: crm.NewID(), ObjectType: ObjectContact, Linked: true,
			Entry: EntryID{Collection: "/c/", Href: "/c/" + href}}
	}
	err = s.Tx(ctx, func(tx *Tx) error {
		if _, err := tx.Insert(ctx, mk("committed.vcf")); err != nil {
			return err
		}
		return tx.SetCursor(ctx, "a", "/c/", "committed")
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	_ = s.Tx(ctx, func(tx *Tx) error {
		m, err := tx.Insert(ctx, mk("lost.vcf"))
		if err != nil {
			return err
		}
		first, _ := tx.ByPIM(ctx, EntryID{Collection: "/c/", Href: "/c/committed.vcf"})
		for _, id := range []int64{m.MapID, first.MapID} {
			if _, err := tx.RecordChange(ctx, id, SideCRM, ChangeModified, time.Now()); err != nil {
				return err
			}
			if err := tx.PutSnapshot(ctx, id, Snapshot{Fields: []byte("x")}); err != nil {
				return err
			}
		}
		if err := tx.SetCursor(ctx, "a", "/c/", "lost"); err != nil {
			return err
		}
		os.Exit(3) // dies holding the write transaction: no commit, no rollback
		return nil
	})
	os.Exit(1)
}

func TestStore_ConcurrentWriters(t *testing.T) {
	ctx := context.Background()
	s, path := openTest(t)
	s2, err := Open(ctx, path) // a second pool on the same file, like a second process
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	shared := insert(t, s, contactMapping("shared.vcf"))
	const per = 40
	var wg sync.WaitGroup
	errs := make(chan error, 2*per)
	for w, st := range []*Store{s, s2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < per; i++ {
				// read-then-write in one tx: fails at once under deferred
				// locking, must not fail under BEGIN IMMEDIATE.
				err := st.Tx(ctx, func(tx *Tx) error {
					if _, err := tx.Insert(ctx, contactMapping(fmt.Sprintf("w%d-%d.vcf", w, i))); err != nil {
						return err
					}
					side := SideCRM
					if w == 1 {
						side = SidePIM
					}
					_, err := tx.RecordChange(ctx, shared.MapID, side, ChangeModified, time.Now())
					return err
				})
				if err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent Tx: %v", err)
	}
	ms, err := s.List(ctx, ListFilter{})
	if err != nil || len(ms) != 2*per+1 {
		t.Fatalf("List = %d mappings, %v, want %d", len(ms), err, 2*per+1)
	}
	p, err := s.PendingFor(ctx, shared.MapID)
	if err != nil {
		t.Fatal(err)
	}
	if p.Seq != 2*per || p.PIMChange != ChangeModified || p.CRMChange != ChangeModified {
		t.Fatalf("pending = %+v, want seq %d and both sides modified", p, 2*per)
	}
}
