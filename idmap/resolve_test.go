package idmap

import (
	"context"
	"errors"
	"testing"

	"github.com/pimbridge/pimbridge/crm"
)

// failDup records a duplicate sync error for m, as the bridge does.
func failDup(t *testing.T, s *Store, m Mapping) SyncError {
	t.Helper()
	ctx := context.Background()
	var e SyncError
	err := s.Tx(ctx, func(tx *Tx) error {
		if _, err := tx.RecordChange(ctx, m.MapID, SidePIM, ChangeCreated, s.now()); err != nil {
			return err
		}
		var err error
		e, err = tx.PutSyncError(ctx, SyncError{MapID: m.MapID, Item: m.Entry.Href, Message: "duplicate contact"})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestAllowDuplicate_persistsUntilCleared: the choice survives until the
// record is created, and the error's change is due again.
func TestAllowDuplicate_persistsUntilCleared(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	m := insert(t, s, contactMapping("dup.vcf"))
	e := failDup(t, s, m)
	if ok, err := s.DuplicateAllowed(ctx, m.MapID); ok || err != nil {
		t.Fatalf("DuplicateAllowed before = %v, %v", ok, err)
	}
	if err := s.Tx(ctx, func(tx *Tx) error { return tx.AllowDuplicate(ctx, e.ID) }); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.DuplicateAllowed(ctx, m.MapID); !ok || err != nil {
		t.Fatalf("DuplicateAllowed after = %v, %v, want true", ok, err)
	}
	if err := s.Tx(ctx, func(tx *Tx) error { return tx.AllowDuplicate(ctx, e.ID+100) }); !errors.Is(err, ErrNoSyncError) {
		t.Errorf("AllowDuplicate(unknown) = %v, want ErrNoSyncError", err)
	}
	if err := s.Tx(ctx, func(tx *Tx) error { return tx.ClearDuplicateAllowed(ctx, m.MapID) }); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.DuplicateAllowed(ctx, m.MapID); ok {
		t.Error("DuplicateAllowed after ClearDuplicateAllowed = true")
	}
}

// TestLinkSyncError_rules: link moves the item to the existing record
// unless the item was synced before or the record is synced with another
// item that is not being retired.
func TestLinkSyncError_rules(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	m := insert(t, s, contactMapping("new.vcf"))
	other := insert(t, s, contactMapping("old.vcf"))
	e := failDup(t, s, m)
	link := func(id crm.ID, retire int64) error {
		return s.Tx(ctx, func(tx *Tx) error { _, err := tx.LinkSyncError(ctx, e.ID, id, retire); return err })
	}
	if err := link(other.CRMID, 0); !errors.Is(err, ErrDuplicate) {
		t.Errorf("link to a record synced with another item = %v, want ErrDuplicate", err)
	}
	if err := link(other.CRMID, other.MapID); err != nil {
		t.Fatalf("link retiring the other item: %v", err)
	}
	got, err := s.Get(ctx, m.MapID)
	if err != nil || got.CRMID != other.CRMID {
		t.Fatalf("mapping after link = %+v, %v; want CRM id %s", got, err, other.CRMID)
	}
	if _, err := s.Get(ctx, other.MapID); !errors.Is(err, ErrUnmapped) {
		t.Errorf("retired mapping = %v, want ErrUnmapped", err)
	}
	if p, err := s.PendingFor(ctx, m.MapID); err != nil || p.NextAttempt.IsZero() {
		t.Errorf("pending after link = %+v, %v; want it due", p, err)
	}
	// Synced before: no link.
	e = failDup(t, s, m)
	if err := s.Tx(ctx, func(tx *Tx) error {
		return tx.PutSnapshot(ctx, m.MapID, Snapshot{Fields: []byte("{}"), Raw: []byte("x")})
	}); err != nil {
		t.Fatal(err)
	}
	if err := link(crm.NewID(), 0); !errors.Is(err, ErrAlreadySynced) {
		t.Errorf("link of a synced item = %v, want ErrAlreadySynced", err)
	}
}
