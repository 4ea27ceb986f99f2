package offline

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmtest"
)

// TestGoOffline_SchemaPropagation is acceptance item 2: a custom attribute
// added on the server reaches the replica, with its data, at the next
// GoOffline.
func TestGoOffline_SchemaPropagation(t *testing.T) {
	ctx := context.Background()
	srv := crmtest.Start(t, nil)
	ids := seedContacts(t, srv, srv.Alice.ID, 30, "s")
	e := openEngine(t, "", nil)
	if _, err := e.GoOffline(ctx, srv.Alice.Client, aliceCred()); err != nil {
		t.Fatal(err)
	}
	md, _ := e.Replica().Metadata(ctx)
	if ent, _ := md.Entity(crm.EntityContact); ent.Attr("new_tier") != nil {
		t.Fatal("replica has new_tier before the server does")
	}
	if _, err := srv.Store.AddAttribute(ctx, crm.EntityContact, crm.Attribute{Name: "new_tier", Type: crm.TypeString, Custom: true, MaxLength: 50}); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids[:5] {
		if _, err := srv.Alice.Client.Update(ctx, crm.Record{Entity: crm.EntityContact, ID: id, Attrs: map[string]any{"new_tier": "gold"}}, nil); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := e.GoOffline(ctx, srv.Alice.Client, aliceCred())
	if err != nil {
		t.Fatalf("GoOffline after the schema change: %v", err)
	}
	if len(rep.Schema) != 1 || rep.Schema[0] != (SchemaChange{Entity: crm.EntityContact, Attribute: "new_tier"}) {
		t.Errorf("schema changes = %+v, want contact.new_tier", rep.Schema)
	}
	srvMD, _ := srv.Store.Metadata(ctx)
	if v, _ := e.ServerMetadataVersion(ctx); v != srvMD.Version {
		t.Errorf("replica propagated from version %d, server is at %d", v, srvMD.Version)
	}
	local := storeRecords(t, e.Replica(), crm.EntityContact, crm.ID{})
	for _, id := range ids[:5] {
		if got := local[id].Attrs["new_tier"]; got != "gold" {
			t.Errorf("%s: new_tier = %v in the replica, want gold", id, got)
		}
	}
	sameRecords(t, "contacts", serverRecords(t, srv, crm.EntityContact, srv.Alice.ID), local)
	// The attribute is usable offline through the local API.
	lc := localClient(t, e)
	got, err := lc.Get(ctx, crm.EntityContact, ids[0])
	if err != nil || got.Attrs["new_tier"] != "gold" {
		t.Errorf("local API get = %v, %v; want new_tier gold", got.Attrs["new_tier"], err)
	}
}

// staleMeta is a Remote whose batches carry another metadata version than
// its metadata.
type staleMeta struct {
	Remote
	delta uint32
}

func (s staleMeta) Open(ctx context.Context, method, path string, header http.Header, body []byte) (*http.Response, error) {
	resp, err := s.Remote.Open(ctx, method, path, header, body)
	if err != nil || !strings.Contains(path, "/batches?") || resp.StatusCode != http.StatusOK {
		return resp, err
	}
	var hb [crm.BatchHeaderSize]byte
	if _, err := io.ReadFull(resp.Body, hb[:]); err != nil {
		resp.Body.Close()
		return nil, err
	}
	if binary.BigEndian.Uint32(hb[:]) == crm.BatchOK {
		binary.BigEndian.PutUint32(hb[12:], binary.BigEndian.Uint32(hb[12:])+s.delta)
	}
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(hb[:]), resp.Body), resp.Body}
	return resp, nil
}

// TestGoOffline_MetadataVersionMismatchRefused: a batch whose header names
// another metadata version than the one the replica was propagated to is
// refused before any of its rows is inserted.
func TestGoOffline_MetadataVersionMismatchRefused(t *testing.T) {
	ctx := context.Background()
	srv := crmtest.Start(t, nil)
	seedContacts(t, srv, srv.Alice.ID, 20, "m")
	e := openEngine(t, "", &Options{Batch: BatchSettings{MaxRetryCount: 2}})
	_, err := e.GoOffline(ctx, staleMeta{Remote: srv.Alice.Client, delta: 1}, aliceCred())
	if !errors.Is(err, ErrSchemaMismatch) {
		t.Fatalf("GoOffline with a stale batch header: %v, want ErrSchemaMismatch", err)
	}
	if n := len(storeRecords(t, e.Replica(), crm.EntityContact, crm.ID{})); n != 0 {
		t.Errorf("%d contacts inserted from a batch of another metadata version", n)
	}
	var applied int
	e.Replica().DB().QueryRowContext(ctx, "SELECT count(*) FROM offline_batches").Scan(&applied)
	if applied != 0 {
		t.Errorf("%d batches recorded as applied", applied)
	}
	// The next run with matching headers fetches the same (never
	// acknowledged) rows and fills the replica.
	if _, err := e.GoOffline(ctx, srv.Alice.Client, aliceCred()); err != nil {
		t.Fatal(err)
	}
	sameRecords(t, "contacts", serverRecords(t, srv, crm.EntityContact, srv.Alice.ID), storeRecords(t, e.Replica(), crm.EntityContact, crm.ID{}))
}
