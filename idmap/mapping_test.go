package idmap

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/pimbridge/pimbridge/crm"
)

func TestMapping_Lookups(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	owner := crm.NewID()
	c := contactMapping("a.vcf")
	c.OwnerID, c.TrackedFromPIM = owner, true
	c = insert(t, s, c)
	mail := insert(t, s, Mapping{CRMEntity: crm.EntityEmail, CRMID: crm.NewID(), ObjectType: ObjectEmail, Linked: true,
		Entry: EntryID{Collection: "INBOX", UIDValidity: 7, UID: 42}})

	tests := []struct {
		name string
		get  func() (Mapping, error)
		want Mapping
		err  error
	}{
		{"ByCRM", func() (Mapping, error) { return s.ByCRM(ctx, crm.EntityContact, c.CRMID) }, c, nil},
		{"ByPIM href", func() (Mapping, error) { return s.ByPIM(ctx, c.Entry) }, c, nil},
		{"ByPIM mail", func() (Mapping, error) {
			return s.ByPIM(ctx, EntryID{Collection: "INBOX", UIDValidity: 7, UID: 42})
		}, mail, nil},
		{"ByPIM other UIDVALIDITY", func() (Mapping, error) {
			return s.ByPIM(ctx, EntryID{Collection: "INBOX", UIDValidity: 8, UID: 42})
		}, Mapping{}, ErrUnmapped},
		{"ByCRM other entity", func() (Mapping, error) { return s.ByCRM(ctx, crm.EntityTask, c.CRMID) }, Mapping{}, ErrUnmapped},
		{"Get", func() (Mapping, error) { return s.Get(ctx, mail.MapID) }, mail, nil},
		{"Get missing", func() (Mapping, error) { return s.Get(ctx, 999) }, Mapping{}, ErrUnmapped},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.get()
			if !errors.Is(err, tc.err) || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v, %v", got, err, tc.want, tc.err)
			}
		})
	}
	if !mail.Entry.IsMail() || c.Entry.IsMail() {
		t.Errorf("IsMail wrong: mail %v, contact %v", mail.Entry.IsMail(), c.Entry.IsMail())
	}
	if got, want := mail.Entry.String(), "INBOX;UIDVALIDITY=7/;UID=42"; got != want {
		t.Errorf("EntryID.String() = %q, want %q", got, want)
	}
}

func TestTx_Insert_Rejects(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	c := insert(t, s, contactMapping("a.vcf"))
	sameCRM := contactMapping("b.vcf")
	sameCRM.CRMID = c.CRMID
	samePIM := contactMapping("a.vcf")
	mixed := contactMapping("x.vcf")
	mixed.Entry.UID = 3
	noType := contactMapping("y.vcf")
	noType.ObjectType = 99
	for _, tc := range []struct {
		name string
		m    Mapping
		want error
	}{
		{"same CRM record", sameCRM, ErrDuplicate},
		{"same PIM object", samePIM, ErrDuplicate},
		{"href and UID", mixed, ErrInvalid},
		{"unknown object type", noType, ErrInvalid},
		{"no collection", Mapping{CRMEntity: "contact", CRMID: crm.NewID(), ObjectType: ObjectContact}, ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := s.Tx(ctx, func(tx *Tx) error { _, err := tx.Insert(ctx, tc.m); return err })
			if !errors.Is(err, tc.want) {
				t.Fatalf("Insert = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestTx_UnlinkAndDeletedLocally(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	a := insert(t, s, contactMapping("a.vcf"))
	b := insert(t, s, contactMapping("b.vcf"))
	err := s.Tx(ctx, func(tx *Tx) error {
		for _, id := range []int64{a.MapID, b.MapID} {
			if _, err := tx.RecordChange(ctx, id, SidePIM, ChangeDeleted, time.Now()); err != nil {
				return err
			}
		}
		if err := tx.Unlink(ctx, a.MapID); err != nil {
			return err
		}
		return tx.MarkDeletedLocally(ctx, b.MapID)
	})
	if err != nil {
		t.Fatal(err)
	}
	ga, _ := s.Get(ctx, a.MapID)
	gb, _ := s.Get(ctx, b.MapID)
	if ga.Linked || !gb.DeletedLocally || !gb.Linked {
		t.Fatalf("after Unlink/MarkDeletedLocally: a=%+v b=%+v", ga, gb)
	}
	if n, _ := s.CountPending(ctx); n != 0 {
		t.Fatalf("pending after unlink = %d, want 0", n)
	}
	linked, _ := s.List(ctx, ListFilter{LinkedOnly: true})
	if len(linked) != 0 {
		t.Fatalf("LinkedOnly list = %+v, want none", linked)
	}
	// The rows stay: the PIM object cannot be mapped again by accident.
	err = s.Tx(ctx, func(tx *Tx) error { _, err := tx.Insert(ctx, contactMapping("a.vcf")); return err })
	if !errors.Is(err, ErrDuplicate) {
		t.Fatalf("re-insert of unlinked href = %v, want ErrDuplicate", err)
	}
}

func TestStore_OldestVerified(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var ids []int64
	for i, href := range []string{"a", "b", "c", "d", "e"} {
		m := contactMapping(href + ".vcf")
		if i > 0 { // a stays never verified
			m.VerifiedTime = base.Add(time.Duration(10-i) * time.Hour) // e oldest ... b newest
		}
		ids = append(ids, insert(t, s, m).MapID)
	}
	if err := s.Tx(ctx, func(tx *Tx) error { return tx.Unlink(ctx, ids[4]) }); err != nil {
		t.Fatal(err)
	}
	got, err := s.OldestVerified(ctx, "", 3)
	if err != nil {
		t.Fatal(err)
	}
	want := []int64{ids[0], ids[3], ids[2]} // never, then d, c (e is unlinked)
	if len(got) != len(want) {
		t.Fatalf("OldestVerified = %d rows, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].MapID != want[i] {
			t.Errorf("OldestVerified[%d] = %d, want %d", i, got[i].MapID, want[i])
		}
	}
	now := base.Add(100 * time.Hour)
	if err := s.Tx(ctx, func(tx *Tx) error { return tx.SetVerified(ctx, now, want...) }); err != nil {
		t.Fatal(err)
	}
	got, _ = s.OldestVerified(ctx, "", 1)
	if len(got) != 1 || got[0].MapID != ids[1] {
		t.Fatalf("after SetVerified, oldest = %+v, want b (%d)", got, ids[1])
	}
}

func TestTx_Snapshot(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	m := insert(t, s, contactMapping("a.vcf"))
	if _, err := s.Snapshot(ctx, m.MapID); !errors.Is(err, ErrNoSnapshot) {
		t.Fatalf("Snapshot before put = %v, want ErrNoSnapshot", err)
	}
	want := Snapshot{Fields: []byte("firstname=John\n"), Raw: []byte("BEGIN:VCARD\r\nEND:VCARD\r\n"), ETag: `W/"7"`}
	for i := 0; i < 2; i++ { // second put replaces
		if err := s.Tx(ctx, func(tx *Tx) error { return tx.PutSnapshot(ctx, m.MapID, want) }); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Snapshot(ctx, m.MapID)
	if err != nil || !bytes.Equal(got.Fields, want.Fields) || !bytes.Equal(got.Raw, want.Raw) || got.ETag != want.ETag {
		t.Fatalf("Snapshot = %+v, %v, want %+v", got, err, want)
	}
	err = s.Tx(ctx, func(tx *Tx) error { return tx.PutSnapshot(ctx, 999, want) })
	if !errors.Is(err, ErrUnmapped) {
		t.Fatalf("PutSnapshot(unmapped) = %v, want ErrUnmapped", err)
	}
	if err := s.Tx(ctx, func(tx *Tx) error { return tx.Delete(ctx, m.MapID) }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Snapshot(ctx, m.MapID); !errors.Is(err, ErrNoSnapshot) {
		t.Fatalf("Snapshot after Delete = %v, want ErrNoSnapshot (cascade)", err)
	}
}

func TestTx_CursorAndSetting(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	err := s.Tx(ctx, func(tx *Tx) error {
		if err := tx.SetCursor(ctx, "alice", "/c/", "t1"); err != nil {
			return err
		}
		if err := tx.SetCursor(ctx, "alice", "/c/", "t2"); err != nil {
			return err
		}
		return tx.SetSetting(ctx, "primary_generation", "4")
	})
	if err != nil {
		t.Fatal(err)
	}
	if c, err := s.Cursor(ctx, "alice", "/c/"); c != "t2" || err != nil {
		t.Fatalf("Cursor = %q, %v, want t2", c, err)
	}
	if _, err := s.Cursor(ctx, "bob", "/c/"); !errors.Is(err, ErrNoCursor) {
		t.Fatalf("Cursor(bob) = %v, want ErrNoCursor", err)
	}
	if v, err := s.Setting(ctx, "primary_generation"); v != "4" || err != nil {
		t.Fatalf("Setting = %q, %v, want 4", v, err)
	}
	if _, err := s.Setting(ctx, "nope"); !errors.Is(err, ErrNoSetting) {
		t.Fatalf("Setting(nope) = %v, want ErrNoSetting", err)
	}
	if err := s.Tx(ctx, func(tx *Tx) error { return tx.DeleteCursor(ctx, "alice", "/c/") }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Cursor(ctx, "alice", "/c/"); !errors.Is(err, ErrNoCursor) {
		t.Fatalf("Cursor after delete = %v, want ErrNoCursor", err)
	}
}

func TestStore_VisitedAndCount(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	a := insert(t, s, contactMapping("a.vcf"))
	b := insert(t, s, contactMapping("b.vcf"))
	c := insert(t, s, contactMapping("c.vcf"))
	other := contactMapping("x.vcf")
	other.Entry.Collection = "/other/"
	insert(t, s, other)
	err := s.Tx(ctx, func(tx *Tx) error {
		if err := tx.ResetVisited(ctx, "/alice/crm-contacts/"); err != nil {
			return err
		}
		if err := tx.SetVisited(ctx, a.MapID); err != nil {
			return err
		}
		return tx.Unlink(ctx, c.MapID)
	})
	if err != nil {
		t.Fatal(err)
	}
	un, err := s.Unvisited(ctx, "/alice/crm-contacts/")
	if err != nil || len(un) != 1 || un[0].MapID != b.MapID {
		t.Fatalf("Unvisited = %+v, %v, want only b", un, err)
	}
	for _, tc := range []struct {
		f    ListFilter
		want int
	}{
		{ListFilter{}, 4},
		{ListFilter{Collection: "/alice/crm-contacts/"}, 3},
		{ListFilter{Collection: "/alice/crm-contacts/", LinkedOnly: true}, 2},
		{ListFilter{ObjectType: ObjectTask}, 0},
	} {
		if n, err := s.Count(ctx, tc.f); n != tc.want || err != nil {
			t.Errorf("Count(%+v) = %d, %v, want %d", tc.f, n, err, tc.want)
		}
	}
}

// Every CRM entity the bridge maps has an object type (Dynamics'
// objecttypecode) that names it back; an unknown entity has none.
func TestObjectType_EntityRoundTrip(t *testing.T) {
	for ot, ent := range objectEntities {
		got, ok := ObjectTypeOf(ent)
		if !ok || got != ot {
			t.Errorf("ObjectTypeOf(%q) = %v, %v; want %v", ent, got, ok, ot)
		}
		if ot.String() != ent {
			t.Errorf("%d.String() = %q, want %q", int(ot), ot.String(), ent)
		}
	}
	if got, ok := ObjectTypeOf("account"); ok {
		t.Errorf("ObjectTypeOf(account) = %v, want none", got)
	}
	if s := ObjectType(1).String(); s != "ObjectType(1)" {
		t.Errorf("ObjectType(1).String() = %q", s)
	}
}
