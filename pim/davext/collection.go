package davext

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/pimbridge/pimbridge/pim"
)

// Kind says what a collection holds.
type Kind int

const (
	AddressBook Kind = iota // vCards, text/vcard
	Calendar                // iCalendar objects (VEVENT or VTODO), text/calendar
)

// ContentType is the media type objects of this kind are PUT with.
func (k Kind) ContentType() string {
	if k == Calendar {
		return "text/calendar; charset=utf-8"
	}
	return "text/vcard; charset=utf-8"
}

// Collection is the connector for one address book or calendar: the small
// surface the bridge drives. It keeps no state between calls (the cursor
// carries it), never decodes object data, and returns errors that wrap the
// pim sentinels. Safe for concurrent use.
type Collection struct {
	c     *Client
	href  string
	kind  Kind
	batch int
}

// NewCollection returns the connector for the collection at href (an
// escaped path or URL; a trailing slash is added).
func NewCollection(c *Client, href string, kind Kind) *Collection {
	h := NormalizeHref(href)
	if !strings.HasSuffix(h, "/") {
		h += "/"
	}
	return &Collection{c: c, href: h, kind: kind, batch: 100}
}

// Href is the collection's escaped path, with a trailing slash.
func (col *Collection) Href() string { return col.href }

// Kind reports what the collection holds.
func (col *Collection) Kind() Kind { return col.kind }

// Client is the underlying DAV client.
func (col *Collection) Client() *Client { return col.c }

// cursor is the decoded form of the opaque cursor string:
//
//	""          no cursor: list everything
//	"s:<token>" RFC 6578 sync-token
//	"e:<b64>"   base64url(gzip(JSON etagCursor)): servers without sync-token
type etagCursor struct {
	CTag  string            `json:"c,omitempty"`
	ETags map[string]string `json:"e"`
}

func encodeETagCursor(ec etagCursor) (string, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if err := json.NewEncoder(zw).Encode(ec); err != nil {
		return "", err
	}
	if err := zw.Close(); err != nil {
		return "", err
	}
	return "e:" + base64.RawURLEncoding.EncodeToString(buf.Bytes()), nil
}

func decodeETagCursor(s string) (etagCursor, error) {
	var ec etagCursor
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return ec, err
	}
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return ec, err
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		return ec, err
	}
	err = json.Unmarshal(raw, &ec)
	return ec, err
}

// Changes returns what changed in the collection since cursor, and the
// cursor to pass next time.
//
// An empty cursor lists every object (changed holds them all, deleted is
// empty): the caller treats any object it knows that is not listed as
// deleted. With a sync-token cursor only the delta is asked for (one
// sync-collection REPORT when nothing changed). Servers without
// sync-token get an ETag-map cursor: an unchanged getctag costs one
// PROPFIND Depth 0 and nothing else; otherwise a Depth 1 ETag listing is
// diffed against the map. Changed objects are fetched with multiget;
// objects deleted in between are reported as deleted.
//
// A cursor the server no longer accepts gives an error wrapping
// pim.ErrTokenExpired: start again from "". A malformed cursor does too.
//
// When the server fails the whole multiget of a full listing or a
// sync-token delta with a 5xx (Xandikos does on an object it cannot
// parse), the changes are read one object at a time instead; an object the
// server cannot serve comes back with no Data, so that the caller can
// report it by name while the rest of the collection syncs.
func (col *Collection) Changes(ctx context.Context, cursor string) (changed []pim.Object, deleted []string, newCursor string, err error) {
	changed, deleted, newCursor, err = col.changes(ctx, cursor)
	var se *pim.StatusError
	if err == nil || !errors.As(err, &se) || se.Code < 500 || (cursor != "" && !strings.HasPrefix(cursor, "s:")) {
		return changed, deleted, newCursor, err
	}
	return col.changesOneByOne(ctx, cursor, err)
}

func (col *Collection) changes(ctx context.Context, cursor string) ([]pim.Object, []string, string, error) {
	switch {
	case cursor == "":
		return col.full(ctx)
	case strings.HasPrefix(cursor, "s:"):
		return col.syncDelta(ctx, strings.TrimPrefix(cursor, "s:"))
	case strings.HasPrefix(cursor, "e:"):
		ec, err := decodeETagCursor(strings.TrimPrefix(cursor, "e:"))
		if err != nil {
			return nil, nil, "", fmt.Errorf("davext: changes: bad cursor: %v: %w", err, pim.ErrTokenExpired)
		}
		return col.etagDelta(ctx, ec)
	}
	return nil, nil, "", fmt.Errorf("davext: changes: unknown cursor form: %w", pim.ErrTokenExpired)
}

// changesOneByOne is Changes through sync-collection with each changed
// object read by its own GET; cause is the error of the multiget.
func (col *Collection) changesOneByOne(ctx context.Context, cursor string, cause error) (changed []pim.Object, deleted []string, newCursor string, err error) {
	token := strings.TrimPrefix(cursor, "s:")
	for {
		chs, next, more, serr := col.c.SyncCollection(ctx, col.href, token, 0)
		if serr != nil {
			return nil, nil, "", fmt.Errorf("davext: changes of %s: %w (after %v)", col.href, serr, cause)
		}
		token = next
		for _, ch := range chs {
			if ch.Deleted {
				if cursor != "" {
					deleted = append(deleted, ch.Href)
				}
				continue
			}
			obj, gerr := col.Get(ctx, ch.Href)
			var ge *pim.StatusError
			switch {
			case gerr == nil:
				changed = append(changed, obj)
			case errors.Is(gerr, pim.ErrNotFound):
				if cursor != "" {
					deleted = append(deleted, ch.Href)
				}
			case errors.As(gerr, &ge) && ge.Code >= 500:
				changed = append(changed, pim.Object{Href: ch.Href, ETag: ch.ETag})
			default:
				return nil, nil, "", gerr
			}
		}
		if !more {
			break
		}
	}
	return changed, deleted, "s:" + token, nil
}

// Fetch returns the objects at hrefs that exist, with one
// addressbook-multiget or calendar-multiget REPORT; a missing one is left
// out.
func (col *Collection) Fetch(ctx context.Context, hrefs []string) ([]pim.Object, error) {
	objs, _, err := col.c.MultiGet(ctx, col.href, col.kind == Calendar, hrefs)
	return objs, err
}

// Missing returns which of hrefs are gone from the server, with one
// addressbook-multiget or calendar-multiget REPORT (the verification job).
func (col *Collection) Missing(ctx context.Context, hrefs []string) ([]string, error) {
	_, missing, err := col.c.MultiGet(ctx, col.href, col.kind == Calendar, hrefs)
	return missing, err
}

func (col *Collection) full(ctx context.Context) ([]pim.Object, []string, string, error) {
	st, err := col.c.CollectionState(ctx, col.href)
	if err != nil {
		return nil, nil, "", fmt.Errorf("davext: changes: %w", err)
	}
	refs, token, err := col.listAll(ctx, st)
	if err != nil {
		return nil, nil, "", err
	}
	// One query fetches the data; what it leaves out (go-webdav's server
	// matches nothing with an empty filter) is multigot.
	queried, err := col.c.QueryAll(ctx, col.href, col.kind == Calendar)
	if err != nil {
		var se *pim.StatusError
		if !errors.As(err, &se) || se.Retryable() || se.Code == http.StatusUnauthorized {
			return nil, nil, "", fmt.Errorf("davext: changes: %w", err)
		}
		col.c.log.Debug("davext: query refused, using multiget", "collection", col.href, "err", err)
		queried = nil
	}
	have := make(map[string]bool, len(queried))
	for _, o := range queried {
		have[o.Href] = true
	}
	var rest []string
	for _, r := range refs {
		if !have[r.Href] {
			rest = append(rest, r.Href)
			have[r.Href] = true
		}
	}
	fetched, _, err := col.fetch(ctx, rest)
	if err != nil {
		return nil, nil, "", err
	}
	objs := append(queried, fetched...)
	if token != "" {
		return objs, nil, "s:" + token, nil
	}
	next := etagCursor{CTag: st.CTag, ETags: make(map[string]string, len(objs))}
	for _, o := range objs {
		next.ETags[o.Href] = o.ETag
	}
	cur, err := encodeETagCursor(next)
	if err != nil {
		return nil, nil, "", fmt.Errorf("davext: changes: %w", err)
	}
	return objs, nil, cur, nil
}

// listAll lists every member with its ETag: sync-collection from an empty
// token when the server has sync-tokens (the token returned covers the
// listing), else a PROPFIND Depth 1 (token "").
func (col *Collection) listAll(ctx context.Context, st State) ([]pim.Ref, string, error) {
	if st.SyncToken != "" {
		var refs []pim.Ref
		token := ""
		for {
			changes, next, more, err := col.c.SyncCollection(ctx, col.href, token, 0)
			if err != nil {
				var se *pim.StatusError
				if token == "" && errors.As(err, &se) && !se.Retryable() && se.Code != http.StatusUnauthorized {
					col.c.log.Info("davext: sync-collection refused, falling back to an ETag listing", "collection", col.href, "err", err)
					break
				}
				return nil, "", fmt.Errorf("davext: changes: %w", err)
			}
			for _, ch := range changes {
				if !ch.Deleted {
					refs = append(refs, pim.Ref{Href: ch.Href, ETag: ch.ETag})
				}
			}
			if next == "" {
				return nil, "", fmt.Errorf("davext: changes: server sent no sync-token")
			}
			token = next
			if !more {
				return refs, token, nil
			}
		}
	}
	refs, err := col.c.ListETags(ctx, col.href)
	if err != nil {
		return nil, "", fmt.Errorf("davext: changes: %w", err)
	}
	return refs, "", nil
}

func (col *Collection) syncDelta(ctx context.Context, token string) ([]pim.Object, []string, string, error) {
	var hrefs []string
	var deleted []string
	seen := map[string]int{} // href -> index+1 in hrefs, or -(index+1) in deleted
	for {
		changes, next, more, err := col.c.SyncCollection(ctx, col.href, token, 0)
		if err != nil {
			return nil, nil, "", col.syncError(ctx, token, err)
		}
		for _, ch := range changes {
			if i := seen[ch.Href]; i > 0 {
				hrefs[i-1] = ""
			} else if i < 0 {
				deleted[-i-1] = ""
			}
			if ch.Deleted {
				if token == "" {
					continue // a full listing has no deletions
				}
				deleted = append(deleted, ch.Href)
				seen[ch.Href] = -len(deleted)
			} else {
				hrefs = append(hrefs, ch.Href)
				seen[ch.Href] = len(hrefs)
			}
		}
		if next == "" {
			return nil, nil, "", fmt.Errorf("davext: changes: server sent no sync-token")
		}
		token = next
		if !more {
			break
		}
	}
	objs, missing, err := col.fetch(ctx, compact(hrefs))
	if err != nil {
		return nil, nil, "", err
	}
	return objs, append(compact(deleted), missing...), "s:" + token, nil
}

// syncError classifies a failed sync-collection. Some servers (Xandikos
// 0.2.8) answer an unknown token with 500 instead of valid-sync-token: a
// 500 for a token request while the collection itself answers PROPFIND is
// taken as an expired token, so the caller falls back to a full listing
// (always correct, only slower).
func (col *Collection) syncError(ctx context.Context, token string, err error) error {
	var se *pim.StatusError
	if token != "" && errors.As(err, &se) && se.Code == http.StatusInternalServerError && !errors.Is(err, pim.ErrTokenExpired) {
		if _, serr := col.c.CollectionState(ctx, col.href); serr == nil {
			return fmt.Errorf("davext: changes: server failed on the sync token, taking it as expired: %v: %w", err, pim.ErrTokenExpired)
		}
	}
	return fmt.Errorf("davext: changes: %w", err)
}

func compact(s []string) []string {
	out := s[:0]
	for _, v := range s {
		if v != "" {
			out = append(out, v)
		}
	}
	return out
}

func (col *Collection) etagDelta(ctx context.Context, old etagCursor) ([]pim.Object, []string, string, error) {
	ctag := old.CTag
	if old.ETags != nil && old.CTag != "" {
		st, err := col.c.CollectionState(ctx, col.href)
		if err != nil {
			return nil, nil, "", fmt.Errorf("davext: changes: %w", err)
		}
		if st.CTag == old.CTag {
			cur, err := encodeETagCursor(old)
			return nil, nil, cur, err
		}
		ctag = st.CTag
	}
	refs, err := col.c.ListETags(ctx, col.href)
	if err != nil {
		return nil, nil, "", fmt.Errorf("davext: changes: %w", err)
	}
	next := etagCursor{CTag: ctag, ETags: make(map[string]string, len(refs))}
	var hrefs []string
	for _, r := range refs {
		next.ETags[r.Href] = r.ETag
		if prev, ok := old.ETags[r.Href]; !ok || prev != r.ETag || r.ETag == "" {
			hrefs = append(hrefs, r.Href)
		}
	}
	var deleted []string
	for h := range old.ETags {
		if _, ok := next.ETags[h]; !ok {
			deleted = append(deleted, h)
		}
	}
	objs, missing, err := col.fetch(ctx, hrefs)
	if err != nil {
		return nil, nil, "", err
	}
	for _, o := range objs {
		if o.ETag != "" {
			next.ETags[o.Href] = o.ETag
		}
	}
	for _, h := range missing {
		delete(next.ETags, h)
		if _, known := old.ETags[h]; known {
			deleted = append(deleted, h)
		}
	}
	cur, err := encodeETagCursor(next)
	if err != nil {
		return nil, nil, "", fmt.Errorf("davext: changes: %w", err)
	}
	return objs, deleted, cur, nil
}

// fetch multigets hrefs in batches.
func (col *Collection) fetch(ctx context.Context, hrefs []string) (objs []pim.Object, missing []string, err error) {
	for i := 0; i < len(hrefs); i += col.batch {
		j := min(i+col.batch, len(hrefs))
		o, m, err := col.c.MultiGet(ctx, col.href, col.kind == Calendar, hrefs[i:j])
		if err != nil {
			return nil, nil, fmt.Errorf("davext: changes: %w", err)
		}
		objs = append(objs, o...)
		missing = append(missing, m...)
	}
	return objs, missing, nil
}

// Get fetches one object by href with its raw bytes and ETag (re-read by
// PROPFIND when the GET carried no ETag header). A missing object gives
// pim.ErrNotFound.
func (col *Collection) Get(ctx context.Context, href string) (pim.Object, error) {
	o, err := col.c.Get(ctx, href)
	if err != nil {
		return pim.Object{}, err
	}
	if o.ETag == "" {
		if o.ETag, err = col.c.ETag(ctx, href); err != nil {
			return pim.Object{}, err
		}
	}
	return o, nil
}

// ObjectHref returns the href a Create with name would use.
func (col *Collection) ObjectHref(name string) string {
	return col.href + url.PathEscape(name)
}

// Create stores data as a new object named name (e.g. "<uid>.vcf") with
// If-None-Match: *, and returns its href and ETag. An existing object at
// that name gives pim.ErrPreconditionFailed; another object with the same
// UID gives pim.ErrUIDConflict (on servers that check it).
func (col *Collection) Create(ctx context.Context, name string, data []byte) (pim.Ref, error) {
	if name == "" || strings.ContainsAny(name, "/") {
		return pim.Ref{}, fmt.Errorf("davext: create: bad object name %q", name)
	}
	href := col.ObjectHref(name)
	etag, err := col.c.Put(ctx, href, col.kind.ContentType(), data, "", true)
	if err != nil {
		return pim.Ref{}, err
	}
	return pim.Ref{Href: href, ETag: etag}, nil
}

// Update replaces the object at href if its ETag is still etag (If-Match,
// sent verbatim) and returns the new ETag. A stale etag gives
// pim.ErrPreconditionFailed: re-fetch, merge, retry.
func (col *Collection) Update(ctx context.Context, href, etag string, data []byte) (string, error) {
	if etag == "" {
		return "", fmt.Errorf("davext: update %s: no etag to match", href)
	}
	return col.c.Put(ctx, href, col.kind.ContentType(), data, etag, false)
}

// Delete removes the object at href if its ETag is still etag (If-Match;
// an empty etag deletes unconditionally). A stale etag gives
// pim.ErrPreconditionFailed, a missing object pim.ErrNotFound.
func (col *Collection) Delete(ctx context.Context, href, etag string) error {
	return col.c.Delete(ctx, href, etag)
}
