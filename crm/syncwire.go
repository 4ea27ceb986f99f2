package crm

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"time"
)

// Sync batch wire format (GET /api/sync/subscriptions/{id}/batches).
//
// A batch is a 16-byte header followed by a payload, all integers
// big-endian:
//
//	header:  u32 result code | u64 payload size | u32 metadata version
//	payload: u64 batch id
//	         u16 n + n bytes entity logical name
//	         u16 column count, each column: u8 type code, u16 n + n bytes name
//	         u32 row count, then the rows
//	row:     u8 row code (1 upsert, 2 delete, 3 left the filter) | 16 bytes record id
//	         state 1 only: i64 versionnumber, then per column u8 present (0 null,
//	         1 set) and, when set, the value:
//	           string, memo           uvarint n + n bytes UTF-8
//	           integer types          zig-zag varint
//	           decimal, money         u64 IEEE 754 bits
//	           boolean                u8 0/1
//	           datetime, dateonly     zig-zag varint Unix seconds (UTC)
//	           uniqueidentifier       16 bytes
//	           lookup, owner          uvarint n + entity name, 16 bytes id
//	           partylist              uvarint n + JSON array of Party
//	           binary                 uvarint n + bytes
//
// Row code 2 is a deletion: the record is gone (a tombstone). Row code 3
// (RowLeftFilter) says the record still exists but left the caller's view:
// it no longer matches the subscription's filter or the caller may no longer
// read it (reassigned). It carries the id only, never content. A server
// sends code 3 only to a client that asks for it (leftfilter=1 on the
// batches request); to others it sends such rows as code 2, as before.
//
// Result code BatchOK carries rows; BatchEmpty means nothing is pending for
// the entity and the payload is empty. The client compares the metadata
// version with its own before inserting rows; a mismatch means it must
// propagate the schema first.

// Batch result codes.
const (
	BatchOK    uint32 = 0
	BatchEmpty uint32 = 1
)

// BatchHeaderSize is the size of the fixed batch header.
const BatchHeaderSize = 16

// SyncState values of a SyncEntry row (docs/sync-protocol.md).
const (
	SyncStateSynced   = 0
	SyncStateToSend   = 1
	SyncStateToDelete = 2
)

// RowLeftFilter is the row code of a record that left the caller's view
// (see the wire format above). It is a wire code only: the SyncEntry row
// behind it has SyncState 2.
const RowLeftFilter = 3

// BatchHeader is the fixed header of a batch.
type BatchHeader struct {
	Result          uint32
	PayloadSize     uint64
	MetadataVersion uint32
}

// Append appends the 16-byte encoding of h to b.
func (h BatchHeader) Append(b []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, h.Result)
	b = binary.BigEndian.AppendUint64(b, h.PayloadSize)
	return binary.BigEndian.AppendUint32(b, h.MetadataVersion)
}

// Batch is a decoded batch.
type Batch struct {
	Header  BatchHeader
	ID      uint64
	Entity  string
	Columns []Attribute // Name and Type only
	Upserts []Record    // SyncState 1: full records
	Deletes []ID        // SyncState 2: ids to delete
	Left    []ID        // RowLeftFilter: ids that left the caller's view
}

var typeCodes = []AttrType{TypeUniqueID, TypeString, TypeMemo, TypeInteger, TypeBigInt, TypeDecimal, TypeMoney,
	TypeBoolean, TypeDateTime, TypeDateOnly, TypePicklist, TypeState, TypeStatus, TypeLookup, TypeOwner,
	TypePartyList, TypeBinary}

func typeCode(t AttrType) (byte, error) {
	for i, x := range typeCodes {
		if x == t {
			return byte(i), nil
		}
	}
	return 0, fmt.Errorf("%w: attribute type %q", ErrInvalidArgument, t)
}

// BatchEncoder builds a batch payload. Use NewBatchEncoder, Upsert and
// Delete per row, then WriteTo.
type BatchEncoder struct {
	cols  []Attribute
	buf   bytes.Buffer
	rows  uint32
	scr   []byte
	start int
}

// NewBatchEncoder starts the payload of batch id for entity with cols.
func NewBatchEncoder(id uint64, entity string, cols []Attribute) (*BatchEncoder, error) {
	e := &BatchEncoder{cols: cols}
	b := binary.BigEndian.AppendUint64(nil, id)
	b = appendStr16(b, entity)
	b = binary.BigEndian.AppendUint16(b, uint16(len(cols)))
	for _, c := range cols {
		code, err := typeCode(c.Type)
		if err != nil {
			return nil, err
		}
		b = append(b, code)
		b = appendStr16(b, c.Name)
	}
	b = append(b, 0, 0, 0, 0) // row count, patched in WriteTo
	e.start = len(b) - 4
	e.buf.Write(b)
	return e, nil
}

func appendStr16(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

// Rows returns the number of rows added so far.
func (e *BatchEncoder) Rows() int { return int(e.rows) }

// Delete adds an id to delete.
func (e *BatchEncoder) Delete(id ID) {
	e.buf.WriteByte(SyncStateToDelete)
	e.buf.Write(id[:])
	e.rows++
}

// LeftFilter adds the id of a record that left the caller's view.
func (e *BatchEncoder) LeftFilter(id ID) {
	e.buf.WriteByte(RowLeftFilter)
	e.buf.Write(id[:])
	e.rows++
}

// Upsert adds a full record; vals holds one Go value (see AttrType) or nil
// per column.
func (e *BatchEncoder) Upsert(id ID, version int64, vals []any) error {
	b := e.scr[:0]
	b = append(b, SyncStateToSend)
	b = append(b, id[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(version))
	for i, c := range e.cols {
		v := vals[i]
		if v == nil {
			b = append(b, 0)
			continue
		}
		b = append(b, 1)
		var err error
		if b, err = appendValue(b, c.Type, v); err != nil {
			return fmt.Errorf("crm: encode %s: %w", c.Name, err)
		}
	}
	e.scr = b
	e.buf.Write(b)
	e.rows++
	return nil
}

func appendValue(b []byte, t AttrType, v any) ([]byte, error) {
	switch t {
	case TypeString, TypeMemo:
		s, ok := v.(string)
		if !ok {
			return b, badValue(t, v)
		}
		b = binary.AppendUvarint(b, uint64(len(s)))
		return append(b, s...), nil
	case TypeInteger, TypeBigInt, TypePicklist, TypeState, TypeStatus:
		n, ok := v.(int64)
		if !ok {
			return b, badValue(t, v)
		}
		return binary.AppendVarint(b, n), nil
	case TypeDecimal, TypeMoney:
		f, ok := v.(float64)
		if !ok {
			return b, badValue(t, v)
		}
		return binary.BigEndian.AppendUint64(b, math.Float64bits(f)), nil
	case TypeBoolean:
		x, ok := v.(bool)
		if !ok {
			return b, badValue(t, v)
		}
		if x {
			return append(b, 1), nil
		}
		return append(b, 0), nil
	case TypeDateTime, TypeDateOnly:
		tm, ok := v.(time.Time)
		if !ok {
			return b, badValue(t, v)
		}
		return binary.AppendVarint(b, tm.Unix()), nil
	case TypeUniqueID:
		id, ok := v.(ID)
		if !ok {
			return b, badValue(t, v)
		}
		return append(b, id[:]...), nil
	case TypeLookup, TypeOwner:
		r, ok := v.(Ref)
		if !ok {
			return b, badValue(t, v)
		}
		b = binary.AppendUvarint(b, uint64(len(r.Entity)))
		b = append(b, r.Entity...)
		return append(b, r.ID[:]...), nil
	case TypePartyList:
		ps, ok := v.([]Party)
		if !ok {
			return b, badValue(t, v)
		}
		j, err := json.Marshal(ps)
		if err != nil {
			return b, err
		}
		b = binary.AppendUvarint(b, uint64(len(j)))
		return append(b, j...), nil
	case TypeBinary:
		x, ok := v.([]byte)
		if !ok {
			return b, badValue(t, v)
		}
		b = binary.AppendUvarint(b, uint64(len(x)))
		return append(b, x...), nil
	}
	return b, badValue(t, v)
}

func badValue(t AttrType, v any) error {
	return fmt.Errorf("%w: %T for %s", ErrInvalidArgument, v, t)
}

// BatchCheckpoint marks a point of an encoder to roll back to.
type BatchCheckpoint struct {
	n    int
	rows uint32
}

// Checkpoint returns the current point.
func (e *BatchEncoder) Checkpoint() BatchCheckpoint { return BatchCheckpoint{e.buf.Len(), e.rows} }

// Rollback drops the rows added after cp.
func (e *BatchEncoder) Rollback(cp BatchCheckpoint) {
	e.buf.Truncate(cp.n)
	e.rows = cp.rows
}

// Payload returns the encoded payload (the encoder must not be used after).
func (e *BatchEncoder) Payload() []byte {
	p := e.buf.Bytes()
	binary.BigEndian.PutUint32(p[e.start:], e.rows)
	return p
}

// ErrBadBatch is returned for a malformed batch stream.
var ErrBadBatch = errors.New("malformed sync batch")

// maxBatchPayload bounds what ReadBatch accepts (1 GiB).
const maxBatchPayload = 1 << 30

// ReadBatch reads one batch (header and payload) from r. A BatchEmpty batch
// has no rows. Errors wrap ErrBadBatch or come from r.
func ReadBatch(r io.Reader) (*Batch, error) {
	var hb [BatchHeaderSize]byte
	if _, err := io.ReadFull(r, hb[:]); err != nil {
		return nil, fmt.Errorf("crm: read batch header: %w", err)
	}
	h := BatchHeader{
		Result:          binary.BigEndian.Uint32(hb[0:]),
		PayloadSize:     binary.BigEndian.Uint64(hb[4:]),
		MetadataVersion: binary.BigEndian.Uint32(hb[12:]),
	}
	if h.PayloadSize > maxBatchPayload {
		return nil, fmt.Errorf("%w: payload of %d bytes", ErrBadBatch, h.PayloadSize)
	}
	b, err := collect(func(fn func(*Batch) error) error {
		return DecodeBatchStream(r, int64(h.PayloadSize), 0, fn)
	})
	if err != nil {
		return nil, err
	}
	b.Header = h
	return b, nil
}

// DecodeBatchPayload decodes a payload as described above. An empty payload
// gives an empty batch.
func DecodeBatchPayload(p []byte) (*Batch, error) {
	return collect(func(fn func(*Batch) error) error {
		return DecodeBatchStream(bytes.NewReader(p), int64(len(p)), 0, fn)
	})
}

// collect gathers the parts a decoder hands over into one batch.
func collect(decode func(fn func(*Batch) error) error) (*Batch, error) {
	var out *Batch
	err := decode(func(b *Batch) error {
		if out == nil {
			out = &Batch{ID: b.ID, Entity: b.Entity, Columns: b.Columns}
		}
		out.Upserts = append(out.Upserts, b.Upserts...)
		out.Deletes = append(out.Deletes, b.Deletes...)
		out.Left = append(out.Left, b.Left...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DecodeBatchPayloadChunks decodes a payload like DecodeBatchPayload but
// hands its rows to fn in order, in parts of at most chunk rows, so that a
// large batch is never held decoded whole. Each part is a *Batch with the
// payload's ID, Entity and Columns; fn must not keep it or its slices after
// returning. An empty payload calls fn once with an empty batch. A
// malformed payload can fail after parts were handed over (apply them in a
// transaction); errors wrap ErrBadBatch or come from fn.
func DecodeBatchPayloadChunks(p []byte, chunk int, fn func(*Batch) error) error {
	return DecodeBatchStream(bytes.NewReader(p), int64(len(p)), max(chunk, 1), fn)
}

// DecodeBatchStream decodes a payload of size bytes read from r, handing
// its rows to fn in parts of at most chunk rows (0: once, with all), like
// DecodeBatchPayloadChunks, without holding the payload in memory. It
// reads exactly size bytes of r; fewer is a truncated batch.
func DecodeBatchStream(r io.Reader, size int64, chunk int, fn func(*Batch) error) error {
	out := &Batch{}
	if size == 0 {
		return fn(out)
	}
	d := &wireReader{r: bufio.NewReaderSize(io.LimitReader(r, size), 64<<10), size: size}
	out.ID = d.u64()
	out.Entity = d.str16()
	ncols := int(d.u16())
	names := make(map[string]bool, ncols)
	for i := 0; i < ncols && d.err == nil; i++ {
		code := d.byte()
		name := d.str16()
		if int(code) >= len(typeCodes) {
			d.fail("unknown type code %d", code)
			break
		}
		if names[name] {
			d.fail("column %q twice", name)
			break
		}
		names[name] = true
		out.Columns = append(out.Columns, Attribute{Name: name, Type: typeCodes[code]})
	}
	nrows := d.u32()
	if d.err != nil {
		return d.err
	}
	flush := func() error {
		if err := fn(out); err != nil {
			return err
		}
		clear(out.Upserts) // drop the records for the collector
		out.Upserts, out.Deletes, out.Left = out.Upserts[:0], out.Deletes[:0], out.Left[:0]
		return nil
	}
	held, sent := 0, false
	for i := uint32(0); i < nrows && d.err == nil; i++ {
		state := d.byte()
		var id ID
		copy(id[:], d.bytes(16))
		switch state {
		case SyncStateToDelete:
			out.Deletes = append(out.Deletes, id)
		case RowLeftFilter:
			out.Left = append(out.Left, id)
		case SyncStateToSend:
			rec := Record{Entity: out.Entity, ID: id, Version: int64(d.u64()), Attrs: make(map[string]any, len(out.Columns))}
			for _, c := range out.Columns {
				switch d.byte() {
				case 0:
					rec.Attrs[c.Name] = nil
				case 1:
					rec.Attrs[c.Name] = d.value(c.Type)
				default:
					d.fail("bad presence byte")
				}
			}
			out.Upserts = append(out.Upserts, rec)
		default:
			d.fail("bad row state %d", state)
		}
		if held++; chunk > 0 && held == chunk && d.err == nil {
			if err := flush(); err != nil {
				return err
			}
			held, sent = 0, true
		}
	}
	if d.err == nil && d.off != d.size {
		d.fail("%d trailing bytes", d.size-d.off)
	}
	if d.err != nil {
		return d.err
	}
	if held > 0 || !sent {
		return fn(out)
	}
	return nil
}

// wireReader reads the fields of a payload of size bytes from r. Once it
// failed it returns zero values; the first error is kept.
type wireReader struct {
	r    *bufio.Reader
	size int64 // payload bytes
	off  int64 // bytes consumed
	err  error
}

func (d *wireReader) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: at byte %d: %s", ErrBadBatch, d.off, fmt.Sprintf(format, args...))
	}
}

// readErr records a failure of the underlying reader: running out of
// payload is a truncated batch, anything else (a cut connection) is kept
// as it is.
func (d *wireReader) readErr(err error) {
	if d.err != nil {
		return
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		d.fail("truncated")
		return
	}
	d.err = fmt.Errorf("crm: read batch at byte %d: %w", d.off, err)
}

// bytes returns the next n bytes. The slice is only valid until the next
// read: callers copy what they keep.
func (d *wireReader) bytes(n int) []byte {
	if d.err != nil {
		return make([]byte, max(n, 0))
	}
	if n < 0 || int64(n) > d.size-d.off {
		d.fail("truncated")
		return make([]byte, max(n, 0))
	}
	var b []byte
	if n <= d.r.Size() {
		var err error
		if b, err = d.r.Peek(n); err != nil {
			d.readErr(err)
			return make([]byte, n)
		}
		d.r.Discard(n)
	} else {
		b = make([]byte, n)
		if _, err := io.ReadFull(d.r, b); err != nil {
			d.readErr(err)
			return b
		}
	}
	d.off += int64(n)
	return b
}

func (d *wireReader) byte() byte    { return d.bytes(1)[0] }
func (d *wireReader) u16() uint16   { return binary.BigEndian.Uint16(d.bytes(2)) }
func (d *wireReader) u32() uint32   { return binary.BigEndian.Uint32(d.bytes(4)) }
func (d *wireReader) u64() uint64   { return binary.BigEndian.Uint64(d.bytes(8)) }
func (d *wireReader) str16() string { return string(d.bytes(int(d.u16()))) }

func (d *wireReader) uvarint() uint64 {
	v, n := binary.Uvarint(d.varintBytes())
	return d.takeVarint(v, n)
}

func (d *wireReader) varint() int64 {
	v, n := binary.Varint(d.varintBytes())
	return int64(d.takeVarint(uint64(v), n))
}

// varintBytes peeks at the bytes a varint can span.
func (d *wireReader) varintBytes() []byte {
	if d.err != nil {
		return nil
	}
	b, err := d.r.Peek(int(min(binary.MaxVarintLen64, d.size-d.off)))
	if err != nil && len(b) == 0 {
		d.readErr(err)
	}
	return b
}

// takeVarint consumes a varint of n bytes (binary.Uvarint's n) and
// returns v.
func (d *wireReader) takeVarint(v uint64, n int) uint64 {
	if d.err != nil {
		return 0
	}
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.r.Discard(n)
	d.off += int64(n)
	return v
}

func (d *wireReader) lenBytes() []byte {
	n := d.uvarint()
	if n > uint64(d.size-d.off) {
		d.fail("length %d past the end", n)
		return nil
	}
	return d.bytes(int(n))
}

func (d *wireReader) value(t AttrType) any {
	switch t {
	case TypeString, TypeMemo:
		return string(d.lenBytes())
	case TypeInteger, TypeBigInt, TypePicklist, TypeState, TypeStatus:
		return d.varint()
	case TypeDecimal, TypeMoney:
		return math.Float64frombits(d.u64())
	case TypeBoolean:
		return d.byte() != 0
	case TypeDateTime, TypeDateOnly:
		return time.Unix(d.varint(), 0).UTC()
	case TypeUniqueID:
		var id ID
		copy(id[:], d.bytes(16))
		return id
	case TypeLookup, TypeOwner:
		ent := string(d.lenBytes())
		var id ID
		copy(id[:], d.bytes(16))
		return Ref{Entity: ent, ID: id}
	case TypePartyList:
		var ps []Party
		if err := json.Unmarshal(d.lenBytes(), &ps); err != nil {
			d.fail("party list: %v", err)
		}
		if ps == nil {
			ps = []Party{}
		}
		return ps
	case TypeBinary:
		return bytes.Clone(d.lenBytes())
	}
	d.fail("type %q", t)
	return nil
}
