package idmap

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pimbridge/pimbridge/crm"
)

// ObjectType is the kind of a mapped pair, numbered like Dynamics'
// objecttypecode (IDMappingTable.ObjectType).
type ObjectType int

// Object types.
const (
	ObjectContact     ObjectType = 2
	ObjectFax         ObjectType = 4204
	ObjectLetter      ObjectType = 4207
	ObjectPhoneCall   ObjectType = 4210
	ObjectTask        ObjectType = 4212
	ObjectAppointment ObjectType = 4201
	ObjectEmail       ObjectType = 4202
)

var objectEntities = map[ObjectType]string{
	ObjectContact:     crm.EntityContact,
	ObjectFax:         crm.EntityFax,
	ObjectLetter:      crm.EntityLetter,
	ObjectPhoneCall:   crm.EntityPhoneCall,
	ObjectTask:        crm.EntityTask,
	ObjectAppointment: crm.EntityAppointment,
	ObjectEmail:       crm.EntityEmail,
}

// Entity returns the CRM logical name of t, or "" if t is unknown.
func (t ObjectType) Entity() string { return objectEntities[t] }

func (t ObjectType) String() string {
	if e := t.Entity(); e != "" {
		return e
	}
	return fmt.Sprintf("ObjectType(%d)", int(t))
}

// ObjectTypeOf returns the object type of a CRM entity logical name.
func ObjectTypeOf(entity string) (ObjectType, bool) {
	for t, e := range objectEntities {
		if e == entity {
			return t, true
		}
	}
	return 0, false
}

// EntryID identifies the PIM side of a pair (EntryId). For DAV it
// is Collection + Href; for IMAP it is Collection (the mailbox) +
// UIDValidity + UID, with Href empty.
type EntryID struct {
	Collection  string
	Href        string
	UIDValidity uint32
	UID         uint32
}

// IsMail reports whether e names an IMAP message.
func (e EntryID) IsMail() bool { return e.Href == "" && e.UID != 0 }

func (e EntryID) valid() bool {
	if e.Collection == "" {
		return false
	}
	if e.Href != "" {
		return e.UIDValidity == 0 && e.UID == 0
	}
	return e.UIDValidity != 0 && e.UID != 0
}

// String is the form shown to users: the href, or mailbox;UIDVALIDITY=v/;UID=u
// (the RFC 5092 IMAP URL path).
func (e EntryID) String() string {
	if e.Href != "" {
		return e.Href
	}
	return fmt.Sprintf("%s;UIDVALIDITY=%d/;UID=%d", e.Collection, e.UIDValidity, e.UID)
}

// Mapping is one row of the IDMappingTable.
type Mapping struct {
	MapID      int64 // assigned by Insert
	CRMEntity  string
	CRMID      crm.ID
	Entry      EntryID
	ETag       string // PIM ETag, verbatim
	ObjectType ObjectType

	DeletedLocally bool // deleted on the PIM side, kept in CRM, never pushed again
	Linked         bool // false: unlinked, both sides left alone
	Visited        bool // seen in the current cycle's listing
	VerifiedTime   time.Time
	TrackedFromPIM bool   // promoted from the PIM side (kept when it leaves the CRM filter)
	OwnerID        crm.ID // CRM owner at the last sync; zero if unknown
}

const mappingCols = `map_id, crm_entity, crm_id, pim_collection, pim_href, pim_uidvalidity, pim_uid,
	pim_etag, object_type, deleted_locally, linked, visited, verified_time, tracked_from_pim, owner_id`

func scanMapping(sc interface{ Scan(...any) error }) (Mapping, error) {
	var (
		m                     Mapping
		crmID, owner          string
		del, linked, vis, tfp int
		vt                    sql.NullInt64
	)
	err := sc.Scan(&m.MapID, &m.CRMEntity, &crmID, &m.Entry.Collection, &m.Entry.Href,
		&m.Entry.UIDValidity, &m.Entry.UID, &m.ETag, &m.ObjectType, &del, &linked, &vis, &vt, &tfp, &owner)
	if err != nil {
		return Mapping{}, err
	}
	if m.CRMID, err = crm.ParseID(crmID); err != nil {
		return Mapping{}, fmt.Errorf("map %d: crm id: %w", m.MapID, err)
	}
	if owner != "" {
		if m.OwnerID, err = crm.ParseID(owner); err != nil {
			return Mapping{}, fmt.Errorf("map %d: owner id: %w", m.MapID, err)
		}
	}
	m.DeletedLocally, m.Linked, m.Visited, m.TrackedFromPIM = del != 0, linked != 0, vis != 0, tfp != 0
	m.VerifiedTime = decTime(vt)
	return m, nil
}

func ownerText(id crm.ID) string {
	if id == (crm.ID{}) {
		return ""
	}
	return id.String()
}

func (o ops) one(ctx context.Context, op, where string, args ...any) (Mapping, error) {
	row := o.q.QueryRowContext(ctx, "SELECT "+mappingCols+" FROM idmapping WHERE "+where, args...)
	m, err := scanMapping(row)
	if errors.Is(err, sql.ErrNoRows) {
		return Mapping{}, fmt.Errorf("idmap: %s: %w", op, ErrUnmapped)
	}
	if err != nil {
		return Mapping{}, fmt.Errorf("idmap: %s: %w", op, err)
	}
	return m, nil
}

// Get returns the mapping with id mapID, or ErrUnmapped.
func (o ops) Get(ctx context.Context, mapID int64) (Mapping, error) {
	return o.one(ctx, "get", "map_id = ?", mapID)
}

// ByCRM returns the mapping of a CRM record, or ErrUnmapped.
func (o ops) ByCRM(ctx context.Context, entity string, id crm.ID) (Mapping, error) {
	return o.one(ctx, "by crm", "crm_entity = ? AND crm_id = ?", entity, id.String())
}

// ByPIM returns the mapping of a PIM object, or ErrUnmapped.
func (o ops) ByPIM(ctx context.Context, e EntryID) (Mapping, error) {
	return o.one(ctx, "by pim", "pim_collection = ? AND pim_href = ? AND pim_uidvalidity = ? AND pim_uid = ?",
		e.Collection, e.Href, e.UIDValidity, e.UID)
}

// ListFilter selects mappings for List. Zero fields match everything.
type ListFilter struct {
	Collection string     // PIM collection or mailbox
	ObjectType ObjectType // 0: any
	LinkedOnly bool       // only Linked and not DeletedLocally
}

// List returns the mappings matching f in map id order.
func (o ops) List(ctx context.Context, f ListFilter) ([]Mapping, error) {
	where, args := f.where()
	return o.query(ctx, "list", "SELECT "+mappingCols+" FROM idmapping"+where+" ORDER BY map_id", args...)
}

func (f ListFilter) where() (string, []any) {
	var (
		conds []string
		args  []any
	)
	if f.Collection != "" {
		conds, args = append(conds, "pim_collection = ?"), append(args, f.Collection)
	}
	if f.ObjectType != 0 {
		conds, args = append(conds, "object_type = ?"), append(args, int(f.ObjectType))
	}
	if f.LinkedOnly {
		conds = append(conds, "linked = 1 AND deleted_locally = 0")
	}
	if len(conds) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

// Count returns how many mappings match f (e.g. the size of a collection
// for the mass-deletion guard).
func (o ops) Count(ctx context.Context, f ListFilter) (int, error) {
	where, args := f.where()
	var n int
	if err := o.q.QueryRowContext(ctx, "SELECT count(*) FROM idmapping"+where, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("idmap: count: %w", err)
	}
	return n, nil
}

// Unvisited returns the linked, not locally deleted mappings of collection
// whose Visited flag is clear: after ResetVisited and a full listing that
// called SetVisited for every object seen, these are the objects gone from
// the PIM server.
func (o ops) Unvisited(ctx context.Context, collection string) ([]Mapping, error) {
	return o.query(ctx, "unvisited", "SELECT "+mappingCols+` FROM idmapping WHERE pim_collection = ?
		AND visited = 0 AND linked = 1 AND deleted_locally = 0 ORDER BY map_id`, collection)
}

// OldestVerified returns up to n linked mappings of collection ("" for any)
// with the oldest VerifiedTime first (never verified first, then map id):
// the verification job's queue (docs/sync-rules.md, A cycle).
func (o ops) OldestVerified(ctx context.Context, collection string, n int) ([]Mapping, error) {
	if n <= 0 {
		return nil, nil
	}
	q := "SELECT " + mappingCols + ` FROM idmapping WHERE linked = 1 AND deleted_locally = 0
		AND (? = '' OR pim_collection = ?) ORDER BY verified_time IS NOT NULL, verified_time, map_id LIMIT ?`
	return o.query(ctx, "oldest verified", q, collection, collection, n)
}

func (o ops) query(ctx context.Context, op, q string, args ...any) ([]Mapping, error) {
	rows, err := o.q.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("idmap: %s: %w", op, err)
	}
	defer rows.Close()
	var ms []Mapping
	for rows.Next() {
		m, err := scanMapping(rows)
		if err != nil {
			return nil, fmt.Errorf("idmap: %s: %w", op, err)
		}
		ms = append(ms, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("idmap: %s: %w", op, err)
	}
	return ms, nil
}

func checkMapping(m *Mapping) error {
	if m.CRMEntity == "" || m.CRMID == (crm.ID{}) {
		return fmt.Errorf("empty crm key: %w", ErrInvalid)
	}
	if !m.Entry.valid() {
		return fmt.Errorf("bad pim entry %+v: %w", m.Entry, ErrInvalid)
	}
	if m.ObjectType.Entity() == "" {
		return fmt.Errorf("unknown object type %d: %w", int(m.ObjectType), ErrInvalid)
	}
	return nil
}

// Insert adds m and returns it with its MapID set. It fails with
// ErrDuplicate if the CRM record or the PIM object is already mapped.
func (t *Tx) Insert(ctx context.Context, m Mapping) (Mapping, error) {
	if err := checkMapping(&m); err != nil {
		return Mapping{}, fmt.Errorf("idmap: insert: %w", err)
	}
	res, err := t.q.ExecContext(ctx, `INSERT INTO idmapping (crm_entity, crm_id, pim_collection, pim_href,
		pim_uidvalidity, pim_uid, pim_etag, object_type, deleted_locally, linked, visited, verified_time,
		tracked_from_pim, owner_id) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		m.CRMEntity, m.CRMID.String(), m.Entry.Collection, m.Entry.Href, m.Entry.UIDValidity, m.Entry.UID,
		m.ETag, int(m.ObjectType), b2i(m.DeletedLocally), b2i(m.Linked), b2i(m.Visited), encTime(m.VerifiedTime),
		b2i(m.TrackedFromPIM), ownerText(m.OwnerID))
	if isUnique(err) {
		return Mapping{}, fmt.Errorf("idmap: insert %s(%s) <-> %s: %w", m.CRMEntity, m.CRMID, m.Entry, ErrDuplicate)
	}
	if err != nil {
		return Mapping{}, fmt.Errorf("idmap: insert: %w", err)
	}
	if m.MapID, err = res.LastInsertId(); err != nil {
		return Mapping{}, fmt.Errorf("idmap: insert: %w", err)
	}
	return m, nil
}

// Update rewrites every column of the mapping m.MapID. It fails with
// ErrUnmapped if there is no such mapping and ErrDuplicate if the new keys
// clash with another mapping.
func (t *Tx) Update(ctx context.Context, m Mapping) error {
	if err := checkMapping(&m); err != nil {
		return fmt.Errorf("idmap: update: %w", err)
	}
	res, err := t.q.ExecContext(ctx, `UPDATE idmapping SET crm_entity=?, crm_id=?, pim_collection=?, pim_href=?,
		pim_uidvalidity=?, pim_uid=?, pim_etag=?, object_type=?, deleted_locally=?, linked=?, visited=?,
		verified_time=?, tracked_from_pim=?, owner_id=? WHERE map_id=?`,
		m.CRMEntity, m.CRMID.String(), m.Entry.Collection, m.Entry.Href, m.Entry.UIDValidity, m.Entry.UID,
		m.ETag, int(m.ObjectType), b2i(m.DeletedLocally), b2i(m.Linked), b2i(m.Visited), encTime(m.VerifiedTime),
		b2i(m.TrackedFromPIM), ownerText(m.OwnerID), m.MapID)
	return affected(res, err, "update", isUnique(err))
}

func affected(res sql.Result, err error, op string, dup bool) error {
	if dup {
		return fmt.Errorf("idmap: %s: %w", op, ErrDuplicate)
	}
	if err != nil {
		return fmt.Errorf("idmap: %s: %w", op, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("idmap: %s: %w", op, err)
	}
	if n == 0 {
		return fmt.Errorf("idmap: %s: %w", op, ErrUnmapped)
	}
	return nil
}

// SetETag records the PIM ETag of a mapping after a read or a write.
func (t *Tx) SetETag(ctx context.Context, mapID int64, etag string) error {
	res, err := t.q.ExecContext(ctx, "UPDATE idmapping SET pim_etag=? WHERE map_id=?", etag, mapID)
	return affected(res, err, "set etag", false)
}

// Unlink marks a pair unlinked: the row stays, so that neither side is
// created again from the other, and its pending change is dropped.
func (t *Tx) Unlink(ctx context.Context, mapID int64) error {
	res, err := t.q.ExecContext(ctx, "UPDATE idmapping SET linked=0 WHERE map_id=?", mapID)
	if err := affected(res, err, "unlink", false); err != nil {
		return err
	}
	return t.dropPending(ctx, mapID)
}

// MarkDeletedLocally records that the PIM object was deleted while the
// CRM record stays (DeletedLocally): the bridge must not push
// the record to the PIM side again. The pending change is dropped.
func (t *Tx) MarkDeletedLocally(ctx context.Context, mapID int64) error {
	res, err := t.q.ExecContext(ctx, "UPDATE idmapping SET deleted_locally=1 WHERE map_id=?", mapID)
	if err := affected(res, err, "mark deleted locally", false); err != nil {
		return err
	}
	return t.dropPending(ctx, mapID)
}

// Delete removes a mapping with its snapshot and pending change; its sync
// errors stay, detached. Used when both sides are gone.
func (t *Tx) Delete(ctx context.Context, mapID int64) error {
	res, err := t.q.ExecContext(ctx, "DELETE FROM idmapping WHERE map_id=?", mapID)
	return affected(res, err, "delete", false)
}

// SetVerified stamps the mappings as verified at time at (the end of the
// verification queue).
func (t *Tx) SetVerified(ctx context.Context, at time.Time, mapIDs ...int64) error {
	for _, id := range mapIDs {
		res, err := t.q.ExecContext(ctx, "UPDATE idmapping SET verified_time=? WHERE map_id=?", encTime(at), id)
		if err := affected(res, err, "set verified", false); err != nil {
			return err
		}
	}
	return nil
}

// ResetVisited clears the Visited flag of every mapping of a collection
// before a full listing.
func (t *Tx) ResetVisited(ctx context.Context, collection string) error {
	if _, err := t.q.ExecContext(ctx, "UPDATE idmapping SET visited=0 WHERE pim_collection=?", collection); err != nil {
		return fmt.Errorf("idmap: reset visited: %w", err)
	}
	return nil
}

// SetVisited sets the Visited flag of a mapping.
func (t *Tx) SetVisited(ctx context.Context, mapID int64) error {
	res, err := t.q.ExecContext(ctx, "UPDATE idmapping SET visited=1 WHERE map_id=?", mapID)
	return affected(res, err, "set visited", false)
}
