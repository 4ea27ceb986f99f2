// Package pimtest is the conformance suite every PIM collection connector
// must pass (Run), plus the in-process servers the suite and other tests
// run against: DAVServer (the project's own server, internal/davserver, in
// memory) and FaultServer (a raw DAV server with the quirks of other
// servers: ETag forms, no sync-token or getctag, paging, and fault
// injection). Test-only: never imported by production code.
package pimtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pimbridge/pimbridge/pim"
)

// Collection is the connector surface the bridge drives and the suite
// checks (implemented by davcontacts.AddressBook and davcalendar.Calendar).
type Collection interface {
	Changes(ctx context.Context, cursor string) (changed []pim.Object, deleted []string, newCursor string, err error)
	Get(ctx context.Context, href string) (pim.Object, error)
	Create(ctx context.Context, name string, data []byte) (pim.Ref, error)
	Update(ctx context.Context, href, etag string, data []byte) (string, error)
	Delete(ctx context.Context, href, etag string) error
}

// Kind selects the sample objects the suite writes.
type Kind int

const (
	Contacts Kind = iota
	Events
	Tasks
)

// Options describes the server under test.
type Options struct {
	Kind Kind
	// UIDConflict: the server refuses a second object with the same UID
	// (no-uid-conflict), so Create must return pim.ErrUIDConflict.
	UIDConflict bool
	// SyncToken: the server has RFC 6578 sync-tokens, so a forged
	// sync-token cursor must give pim.ErrTokenExpired.
	SyncToken bool
}

// Sample returns a small valid object of kind with the given UID and
// title (FN or SUMMARY) and one unmapped X- line that must survive.
func Sample(kind Kind, uid, title string) []byte {
	var lines []string
	switch kind {
	case Contacts:
		lines = []string{"BEGIN:VCARD", "VERSION:3.0", "UID:" + uid, "FN:" + title, "N:" + title + ";;;;",
			"EMAIL;TYPE=INTERNET:" + uid + "@example.com", "X-PIMTEST:keep-" + uid, "END:VCARD"}
	case Events:
		lines = []string{"BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//pimbridge//pimtest//EN", "BEGIN:VEVENT",
			"UID:" + uid, "DTSTAMP:20260101T000000Z", "DTSTART:20260301T100000Z", "DTEND:20260301T110000Z",
			"SUMMARY:" + title, "X-PIMTEST:keep-" + uid, "END:VEVENT", "END:VCALENDAR"}
	case Tasks:
		lines = []string{"BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//pimbridge//pimtest//EN", "BEGIN:VTODO",
			"UID:" + uid, "DTSTAMP:20260101T000000Z", "DUE:20260301T100000Z", "SUMMARY:" + title,
			"X-PIMTEST:keep-" + uid, "END:VTODO", "END:VCALENDAR"}
	}
	return []byte(strings.Join(lines, "\r\n") + "\r\n")
}

// Ext is the file extension objects of kind are named with.
func Ext(kind Kind) string {
	if kind == Contacts {
		return ".vcf"
	}
	return ".ics"
}

// Title reads FN or SUMMARY out of raw data (unfolded lines only; enough
// for the samples).
func Title(data []byte) string {
	for _, l := range strings.Split(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n") {
		for _, p := range []string{"FN:", "SUMMARY:"} {
			if strings.HasPrefix(l, p) {
				return strings.TrimPrefix(l, p)
			}
		}
	}
	return ""
}

// Run checks a connector against the contract. newCollection must return a
// connector on a new, empty collection each time it is called.
func Run(t *testing.T, opts Options, newCollection func(t *testing.T) Collection) {
	ctx := func(t *testing.T) context.Context {
		c, cancel := context.WithTimeout(t.Context(), 60*time.Second)
		t.Cleanup(cancel)
		return c
	}
	ext := Ext(opts.Kind)
	create := func(t *testing.T, c Collection, uid, title string) pim.Ref {
		t.Helper()
		ref, err := c.Create(ctx(t), uid+ext, Sample(opts.Kind, uid, title))
		if err != nil {
			t.Fatalf("Create(%s) = %v", uid, err)
		}
		if ref.Href == "" || ref.ETag == "" {
			t.Fatalf("Create(%s) = %+v, want href and etag", uid, ref)
		}
		return ref
	}

	t.Run("CreateGet", func(t *testing.T) {
		c := newCollection(t)
		ref := create(t, c, "cg-1", "Ann Smith")
		o, err := c.Get(ctx(t), ref.Href)
		if err != nil {
			t.Fatalf("Get = %v", err)
		}
		if o.Href != ref.Href || o.ETag != ref.ETag {
			t.Errorf("Get ref = %q %q, want %q %q", o.Href, o.ETag, ref.Href, ref.ETag)
		}
		if Title(o.Data) != "Ann Smith" || !bytes.Contains(o.Data, []byte("UID:cg-1")) {
			t.Errorf("Get data = %q", o.Data)
		}
	})

	t.Run("ChangesFullThenDelta", func(t *testing.T) {
		c := newCollection(t)
		refs := map[string]pim.Ref{}
		for i := range 3 {
			uid := fmt.Sprintf("fd-%d", i)
			r := create(t, c, uid, "Person "+uid)
			refs[r.Href] = r
		}
		changed, deleted, cur, err := c.Changes(ctx(t), "")
		if err != nil {
			t.Fatalf("Changes(\"\") = %v", err)
		}
		if len(changed) != 3 || len(deleted) != 0 || cur == "" {
			t.Fatalf("Changes(\"\") = %d changed, %d deleted, cursor %q; want 3, 0, non-empty", len(changed), len(deleted), cur)
		}
		for _, o := range changed {
			r, ok := refs[o.Href]
			if !ok || r.ETag != o.ETag {
				t.Errorf("Changes object %q etag %q, want one of the created refs %v", o.Href, o.ETag, refs)
			}
			if !bytes.Contains(o.Data, []byte("X-PIMTEST:keep-")) || !bytes.Contains(o.Data, []byte("\r\n")) {
				t.Errorf("Changes data of %s = %q, want raw CRLF text with the X- line", o.Href, o.Data)
			}
		}
		changed, deleted, cur2, err := c.Changes(ctx(t), cur)
		if err != nil || len(changed) != 0 || len(deleted) != 0 || cur2 == "" {
			t.Fatalf("Changes(no change) = %d, %d, %q, %v; want 0, 0, cursor, nil", len(changed), len(deleted), cur2, err)
		}

		// update one, delete one, create one
		var hrefs []string
		for h := range refs {
			hrefs = append(hrefs, h)
		}
		slices.Sort(hrefs)
		upd, del := refs[hrefs[0]], refs[hrefs[1]]
		newETag, err := c.Update(ctx(t), upd.Href, upd.ETag, Sample(opts.Kind, "fd-0", "Renamed"))
		if err != nil || newETag == "" || newETag == upd.ETag {
			t.Fatalf("Update = %q, %v; want a new etag", newETag, err)
		}
		if err := c.Delete(ctx(t), del.Href, del.ETag); err != nil {
			t.Fatalf("Delete = %v", err)
		}
		added := create(t, c, "fd-new", "Newcomer")
		changed, deleted, cur3, err := c.Changes(ctx(t), cur2)
		if err != nil {
			t.Fatalf("Changes(delta) = %v", err)
		}
		got := map[string]pim.Object{}
		for _, o := range changed {
			got[o.Href] = o
		}
		if len(changed) != 2 || got[upd.Href].ETag != newETag || got[added.Href].ETag != added.ETag || Title(got[upd.Href].Data) != "Renamed" {
			t.Errorf("Changes(delta) changed = %v, want %s@%s (Renamed) and %s@%s", changed, upd.Href, newETag, added.Href, added.ETag)
		}
		if !slices.Equal(deleted, []string{del.Href}) {
			t.Errorf("Changes(delta) deleted = %q, want [%q]", deleted, del.Href)
		}
		changed, deleted, _, err = c.Changes(ctx(t), cur3)
		if err != nil || len(changed)+len(deleted) != 0 {
			t.Errorf("Changes(after delta) = %d, %d, %v; want nothing", len(changed), len(deleted), err)
		}
	})

	t.Run("StaleIfMatch", func(t *testing.T) {
		c := newCollection(t)
		ref := create(t, c, "st-1", "Before")
		etag2, err := c.Update(ctx(t), ref.Href, ref.ETag, Sample(opts.Kind, "st-1", "Other client"))
		if err != nil {
			t.Fatalf("Update = %v", err)
		}
		if _, err := c.Update(ctx(t), ref.Href, ref.ETag, Sample(opts.Kind, "st-1", "Lost")); !errors.Is(err, pim.ErrPreconditionFailed) {
			t.Errorf("Update(stale etag) = %v, want ErrPreconditionFailed", err)
		}
		if err := c.Delete(ctx(t), ref.Href, ref.ETag); !errors.Is(err, pim.ErrPreconditionFailed) {
			t.Errorf("Delete(stale etag) = %v, want ErrPreconditionFailed", err)
		}
		o, err := c.Get(ctx(t), ref.Href)
		if err != nil || o.ETag != etag2 || Title(o.Data) != "Other client" {
			t.Errorf("Get after refused writes = %q %q, %v; want %q Other client", o.ETag, Title(o.Data), err, etag2)
		}
	})

	t.Run("CreateExisting", func(t *testing.T) {
		c := newCollection(t)
		ref := create(t, c, "ce-1", "First")
		if _, err := c.Create(ctx(t), "ce-1"+ext, Sample(opts.Kind, "ce-1", "Second")); !errors.Is(err, pim.ErrPreconditionFailed) {
			t.Errorf("Create(existing) = %v, want ErrPreconditionFailed", err)
		}
		if o, err := c.Get(ctx(t), ref.Href); err != nil || Title(o.Data) != "First" {
			t.Errorf("Get = %q, %v; want First", Title(o.Data), err)
		}
	})

	if opts.UIDConflict {
		t.Run("UIDConflict", func(t *testing.T) {
			c := newCollection(t)
			create(t, c, "uc-1", "First")
			if _, err := c.Create(ctx(t), "other"+ext, Sample(opts.Kind, "uc-1", "Same UID")); !errors.Is(err, pim.ErrUIDConflict) {
				t.Errorf("Create(same UID, other name) = %v, want ErrUIDConflict", err)
			}
		})
	}

	t.Run("Missing", func(t *testing.T) {
		c := newCollection(t)
		ref := create(t, c, "mi-1", "Gone soon")
		if err := c.Delete(ctx(t), ref.Href, ref.ETag); err != nil {
			t.Fatalf("Delete = %v", err)
		}
		if _, err := c.Get(ctx(t), ref.Href); !errors.Is(err, pim.ErrNotFound) {
			t.Errorf("Get(deleted) = %v, want ErrNotFound", err)
		}
		if err := c.Delete(ctx(t), ref.Href, ""); !errors.Is(err, pim.ErrNotFound) {
			t.Errorf("Delete(deleted) = %v, want ErrNotFound", err)
		}
		if _, err := c.Update(ctx(t), ref.Href, ref.ETag, Sample(opts.Kind, "mi-1", "x")); !errors.Is(err, pim.ErrPreconditionFailed) && !errors.Is(err, pim.ErrNotFound) {
			t.Errorf("Update(deleted) = %v, want ErrPreconditionFailed or ErrNotFound", err)
		}
	})

	t.Run("BadCursor", func(t *testing.T) {
		c := newCollection(t)
		create(t, c, "bc-1", "x")
		bad := []string{"garbage", "e:not-base64!"}
		if opts.SyncToken {
			bad = append(bad, "s:http://example.invalid/ns/sync/42")
		}
		for _, cur := range bad {
			if _, _, _, err := c.Changes(ctx(t), cur); !errors.Is(err, pim.ErrTokenExpired) {
				t.Errorf("Changes(%q) = %v, want ErrTokenExpired", cur, err)
			}
		}
		changed, _, _, err := c.Changes(ctx(t), "")
		if err != nil || len(changed) != 1 {
			t.Errorf("Changes(\"\") after expiry = %d, %v; want the full listing of 1", len(changed), err)
		}
	})
}
