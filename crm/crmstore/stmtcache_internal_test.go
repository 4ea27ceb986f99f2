package crmstore

import (
	"context"
	"testing"
	"time"

	"github.com/pimbridge/pimbridge/crm/crmserver"
)

func TestStmtCache(t *testing.T) {
	ctx := context.Background()
	st, err := Open(ctx, t.TempDir()+"/c.db", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.db.ExecContext(ctx, "CREATE TABLE kv (k INTEGER PRIMARY KEY, v TEXT)"); err != nil {
		t.Fatal(err)
	}
	const ins = "INSERT INTO kv (k, v) VALUES (?, ?)"
	put := func(k int, v string) error {
		return st.Update(ctx, func(tx crmserver.Tx) error {
			_, err := tx.(*txn).q.ExecContext(ctx, ins, k, v)
			return err
		})
	}
	tests := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"first use runs unprepared, then cached", func(t *testing.T) {
			if err := put(1, "a"); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(5 * time.Second)
			for st.stmts.get(ins) == nil {
				if time.Now().After(deadline) {
					t.Fatal("statement never cached")
				}
				time.Sleep(5 * time.Millisecond)
			}
			for k := 2; k < 10; k++ {
				if err := put(k, "b"); err != nil {
					t.Fatal(err)
				}
			}
			var n int
			st.db.QueryRowContext(ctx, "SELECT count(*) FROM kv").Scan(&n)
			if n != 9 {
				t.Errorf("%d rows, want 9", n)
			}
		}},
		{"cached statement keeps errors and rollback", func(t *testing.T) {
			if err := put(1, "dup"); err == nil {
				t.Fatal("duplicate key accepted")
			}
			var v string
			st.db.QueryRowContext(ctx, "SELECT v FROM kv WHERE k = 1").Scan(&v)
			if v != "a" {
				t.Errorf("v = %q after a failed insert", v)
			}
		}},
		{"bad SQL is not cached and fails each time", func(t *testing.T) {
			for range 3 {
				err := st.Update(ctx, func(tx crmserver.Tx) error {
					_, err := tx.(*txn).q.ExecContext(ctx, "INSERT INTO nosuchtable VALUES (1)")
					return err
				})
				if err == nil {
					t.Fatal("insert into a missing table succeeded")
				}
				time.Sleep(10 * time.Millisecond)
			}
			st.stmts.mu.Lock()
			_, cached := st.stmts.m["INSERT INTO nosuchtable VALUES (1)"]
			st.stmts.mu.Unlock()
			if cached {
				t.Error("a statement SQLite refuses was cached")
			}
		}},
		{"SQLTx sees the transaction", func(t *testing.T) {
			err := st.Update(ctx, func(tx crmserver.Tx) error {
				if x, ok := SQLTx(tx); !ok || x == nil {
					t.Error("SQLTx: no *sql.Tx in Update")
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			st.View(ctx, func(tx crmserver.Tx) error {
				if _, ok := SQLTx(tx); ok {
					t.Error("SQLTx: a View has a write transaction")
				}
				return nil
			})
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, tc.run)
	}
}
