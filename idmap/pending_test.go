package idmap

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func openClock(t *testing.T) (*Store, *fakeClock) {
	t.Helper()
	clk := &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	s, err := OpenOptions(context.Background(), filepath.Join(t.TempDir(), "c.db"), &Options{Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, clk
}

func TestCoalesce(t *testing.T) {
	for _, tc := range []struct{ old, new, want ChangeKind }{
		{ChangeNone, ChangeModified, ChangeModified},
		{ChangeCreated, ChangeModified, ChangeCreated},
		{ChangeModified, ChangeDeleted, ChangeDeleted},
		{ChangeDeleted, ChangeModified, ChangeDeleted},
		{ChangeUntracked, ChangeCreated, ChangeModified},
		{ChangeLeftFilter, ChangeModified, ChangeModified},
		{ChangeModified, ChangeModified, ChangeModified},
		// no new change keeps the pending one
		{ChangeModified, ChangeNone, ChangeModified},
		{ChangeDeleted, ChangeNone, ChangeDeleted},
	} {
		if got := coalesce(tc.old, tc.new); got != tc.want {
			t.Errorf("coalesce(%v, %v) = %v, want %v", tc.old, tc.new, got, tc.want)
		}
	}
}

func TestTx_RecordChange_MergesSides(t *testing.T) {
	ctx := context.Background()
	s, clk := openClock(t)
	m := insert(t, s, contactMapping("a.vcf"))
	t1, t2 := clk.t.Add(-time.Hour), clk.t.Add(-time.Minute)
	var p Pending
	err := s.Tx(ctx, func(tx *Tx) error {
		var err error
		if _, err = tx.RecordChange(ctx, m.MapID, SidePIM, ChangeModified, t2); err != nil {
			return err
		}
		if _, err = tx.RecordChange(ctx, m.MapID, SidePIM, ChangeModified, t1); err != nil { // older: time kept
			return err
		}
		p, err = tx.RecordChange(ctx, m.MapID, SideCRM, ChangeModified, t1)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	want := Pending{ChangeID: p.ChangeID, MapID: m.MapID, Seq: 3, PIMTime: t2, PIMChange: ChangeModified,
		CRMTime: t1, CRMChange: ChangeModified, NextAttempt: clk.t}
	if p != want {
		t.Fatalf("RecordChange = %+v, want %+v", p, want)
	}
	if got, _ := s.PendingFor(ctx, m.MapID); got != want {
		t.Fatalf("PendingFor = %+v, want %+v", got, want)
	}
	err = s.Tx(ctx, func(tx *Tx) error {
		_, err := tx.RecordChange(ctx, 999, SidePIM, ChangeModified, t1)
		return err
	})
	if !errors.Is(err, ErrUnmapped) {
		t.Fatalf("RecordChange(unmapped) = %v, want ErrUnmapped", err)
	}
}

func TestTx_Complete_StaleKeepsNewerChange(t *testing.T) {
	ctx := context.Background()
	s, clk := openClock(t)
	m := insert(t, s, contactMapping("a.vcf"))
	var first Pending
	_ = s.Tx(ctx, func(tx *Tx) (err error) {
		first, err = tx.RecordChange(ctx, m.MapID, SideCRM, ChangeModified, clk.t)
		return err
	})
	// While the bridge applies `first`, a PIM edit arrives.
	_ = s.Tx(ctx, func(tx *Tx) error {
		_, err := tx.RecordChange(ctx, m.MapID, SidePIM, ChangeModified, clk.t)
		return err
	})
	err := s.Tx(ctx, func(tx *Tx) error { return tx.Complete(ctx, m.MapID, first.Seq) })
	if !errors.Is(err, ErrStale) {
		t.Fatalf("Complete(old seq) = %v, want ErrStale", err)
	}
	p, err := s.PendingFor(ctx, m.MapID)
	if err != nil || p.PIMChange != ChangeModified {
		t.Fatalf("pending after stale complete = %+v, %v", p, err)
	}
	if err := s.Tx(ctx, func(tx *Tx) error { return tx.Complete(ctx, m.MapID, p.Seq) }); err != nil {
		t.Fatalf("Complete(current seq) = %v", err)
	}
	if _, err := s.PendingFor(ctx, m.MapID); !errors.Is(err, ErrNoPending) {
		t.Fatalf("after Complete = %v, want ErrNoPending", err)
	}
	err = s.Tx(ctx, func(tx *Tx) error { return tx.Complete(ctx, m.MapID, p.Seq) })
	if !errors.Is(err, ErrNoPending) {
		t.Fatalf("second Complete = %v, want ErrNoPending", err)
	}
}

func TestTx_Fail_BackoffThenSyncError(t *testing.T) {
	ctx := context.Background()
	s, clk := openClock(t)
	m := insert(t, s, contactMapping("a.vcf"))
	policy := RetryPolicy{MaxAttempts: 3, Base: time.Minute, Max: time.Hour}
	var p Pending
	_ = s.Tx(ctx, func(tx *Tx) (err error) {
		p, err = tx.RecordChange(ctx, m.MapID, SidePIM, ChangeModified, clk.t)
		return err
	})
	fail := Failure{Item: m.Entry.Href, Field: "emailaddress1", Message: "duplicate e-mail address"}
	for i, wantDelay := range []time.Duration{time.Minute, 2 * time.Minute} {
		due, _ := s.Due(ctx, clk.t, 0)
		if len(due) != 1 {
			t.Fatalf("attempt %d: Due = %d rows, want 1", i+1, len(due))
		}
		err := s.Tx(ctx, func(tx *Tx) (err error) { p, err = tx.Fail(ctx, m.MapID, p.Seq, fail, policy); return err })
		if err != nil {
			t.Fatal(err)
		}
		if got := p.NextAttempt.Sub(clk.t); got != wantDelay || p.Attempts != i+1 || p.LastError != fail.Message {
			t.Fatalf("attempt %d: %+v, delay %v, want %v", i+1, p, got, wantDelay)
		}
		if due, _ := s.Due(ctx, clk.t, 0); len(due) != 0 {
			t.Fatalf("attempt %d: due before its backoff", i+1)
		}
		clk.t = p.NextAttempt
	}
	if err := s.Tx(ctx, func(tx *Tx) (err error) { p, err = tx.Fail(ctx, m.MapID, p.Seq, fail, policy); return err }); err != nil {
		t.Fatal(err)
	}
	if !p.NextAttempt.IsZero() {
		t.Fatalf("after %d failures NextAttempt = %v, want parked", policy.MaxAttempts, p.NextAttempt)
	}
	if due, _ := s.Due(ctx, clk.t.Add(24*time.Hour), 0); len(due) != 0 {
		t.Fatalf("parked change is due: %+v", due)
	}
	errs, err := s.SyncErrors(ctx)
	if err != nil || len(errs) != 1 {
		t.Fatalf("SyncErrors = %+v, %v, want 1", errs, err)
	}
	e := errs[0]
	if e.MapID != m.MapID || e.Item != fail.Item || e.Field != fail.Field || e.Message != fail.Message || e.Attempts != 3 {
		t.Fatalf("sync error = %+v", e)
	}
	// Retry re-arms the parked change and clears the error.
	if err := s.Tx(ctx, func(tx *Tx) error { return tx.RetrySyncError(ctx, e.ID) }); err != nil {
		t.Fatal(err)
	}
	due, _ := s.Due(ctx, clk.t, 0)
	if len(due) != 1 || due[0].Attempts != 0 {
		t.Fatalf("after retry Due = %+v, want the change with 0 attempts", due)
	}
	if errs, _ := s.SyncErrors(ctx); len(errs) != 0 {
		t.Fatalf("after retry SyncErrors = %+v, want none", errs)
	}
}

func TestTx_SyncErrors_DiscardAndRetryWithoutPending(t *testing.T) {
	ctx := context.Background()
	s, clk := openClock(t)
	m := insert(t, s, contactMapping("a.vcf"))
	var parked, malformed SyncError
	err := s.Tx(ctx, func(tx *Tx) error {
		p, err := tx.RecordChange(ctx, m.MapID, SideCRM, ChangeModified, clk.t)
		if err != nil {
			return err
		}
		if _, err = tx.Fail(ctx, m.MapID, p.Seq, Failure{Message: "412 twice"}, RetryPolicy{MaxAttempts: 1}); err != nil {
			return err
		}
		malformed, err = tx.PutSyncError(ctx, SyncError{Item: "/c/broken.vcf", Message: "vcard: no END"})
		if err != nil {
			return err
		}
		malformed, err = tx.PutSyncError(ctx, SyncError{Item: "/c/broken.vcf", Message: "vcard: no END again"})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	errs, _ := s.SyncErrors(ctx)
	if len(errs) != 2 {
		t.Fatalf("SyncErrors = %+v, want 2", errs)
	}
	parked = errs[0]
	if parked.Item != "contact("+m.CRMID.String()+")" {
		t.Errorf("derived item = %q", parked.Item)
	}
	if malformed.Attempts != 2 || malformed.Message != "vcard: no END again" || malformed.ID != errs[1].ID {
		t.Errorf("re-put sync error = %+v, want attempts 2, same id", malformed)
	}
	// Retry of an item without a pending change flags it for the bridge.
	if err := s.Tx(ctx, func(tx *Tx) error { return tx.RetrySyncError(ctx, malformed.ID) }); err != nil {
		t.Fatal(err)
	}
	rr, _ := s.RetryRequested(ctx)
	if len(rr) != 1 || rr[0].Item != "/c/broken.vcf" {
		t.Fatalf("RetryRequested = %+v", rr)
	}
	// Discard drops the error and the parked change.
	if err := s.Tx(ctx, func(tx *Tx) error { return tx.DiscardSyncError(ctx, parked.ID) }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PendingFor(ctx, m.MapID); !errors.Is(err, ErrNoPending) {
		t.Fatalf("after discard PendingFor = %v, want ErrNoPending", err)
	}
	if err := s.Tx(ctx, func(tx *Tx) error { return tx.DiscardSyncError(ctx, parked.ID) }); !errors.Is(err, ErrNoSyncError) {
		t.Fatalf("second discard = %v, want ErrNoSyncError", err)
	}
	if err := s.Tx(ctx, func(tx *Tx) error { return tx.ClearSyncError(ctx, "/c/broken.vcf") }); err != nil {
		t.Fatal(err)
	}
	if errs, _ := s.SyncErrors(ctx); len(errs) != 0 {
		t.Fatalf("SyncErrors at end = %+v", errs)
	}
}

func TestRetryPolicy_Delay(t *testing.T) {
	p := RetryPolicy{Base: time.Second, Max: 10 * time.Second}
	for attempts, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 4: 8 * time.Second, 5: 10 * time.Second, 60: 10 * time.Second} {
		if got := p.Delay(attempts); got != want {
			t.Errorf("Delay(%d) = %v, want %v", attempts, got, want)
		}
	}
}
