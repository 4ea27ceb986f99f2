package crm

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"testing"
	"testing/iotest"
)

func TestDecodeBatchPayloadChunks(t *testing.T) {
	cols := []Attribute{{Name: "lastname", Type: TypeString}, {Name: "n", Type: TypeInteger}}
	enc, err := NewBatchEncoder(42, EntityContact, cols)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		enc.Delete(NewID())
	}
	for i := range 7 {
		if err := enc.Upsert(NewID(), int64(i+1), []any{fmt.Sprintf("r%d", i), int64(i)}); err != nil {
			t.Fatal(err)
		}
	}
	p := enc.Payload()
	whole, err := DecodeBatchPayload(p)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		chunk int
		parts []int // rows per part
	}{
		{1, []int{1, 1, 1, 1, 1, 1, 1, 1, 1, 1}},
		{3, []int{3, 3, 3, 1}},
		{5, []int{5, 5}},
		{10, []int{10}},
		{100, []int{10}},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.chunk), func(t *testing.T) {
			var ups []Record
			var dels []ID
			var parts []int
			err := DecodeBatchPayloadChunks(p, tc.chunk, func(b *Batch) error {
				if b.ID != 42 || b.Entity != EntityContact || !reflect.DeepEqual(b.Columns, whole.Columns) {
					t.Errorf("part header %d %s %v", b.ID, b.Entity, b.Columns)
				}
				parts = append(parts, len(b.Upserts)+len(b.Deletes))
				ups = append(ups, b.Upserts...)
				dels = append(dels, b.Deletes...)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(parts, tc.parts) {
				t.Errorf("parts %v, want %v", parts, tc.parts)
			}
			if !reflect.DeepEqual(ups, whole.Upserts) || !reflect.DeepEqual(dels, whole.Deletes) {
				t.Errorf("chunked rows differ from the whole decode")
			}
		})
	}
	t.Run("fn error stops", func(t *testing.T) {
		stop := errors.New("stop")
		calls := 0
		err := DecodeBatchPayloadChunks(p, 2, func(*Batch) error { calls++; return stop })
		if !errors.Is(err, stop) || calls != 1 {
			t.Errorf("err %v after %d calls", err, calls)
		}
	})
	t.Run("truncated", func(t *testing.T) {
		err := DecodeBatchPayloadChunks(p[:len(p)-3], 4, func(*Batch) error { return nil })
		if !errors.Is(err, ErrBadBatch) {
			t.Errorf("err %v, want ErrBadBatch", err)
		}
	})
	t.Run("stream read a byte at a time", func(t *testing.T) {
		var got []Record
		err := DecodeBatchStream(iotest.OneByteReader(bytes.NewReader(p)), int64(len(p)), 3, func(b *Batch) error {
			got = append(got, b.Upserts...)
			return nil
		})
		if err != nil || !reflect.DeepEqual(got, whole.Upserts) {
			t.Errorf("streamed upserts differ (err %v)", err)
		}
	})
	t.Run("stream cut keeps the reader's error", func(t *testing.T) {
		cut := errors.New("connection reset")
		r := io.MultiReader(bytes.NewReader(p[:len(p)/2]), iotest.ErrReader(cut))
		err := DecodeBatchStream(r, int64(len(p)), 2, func(*Batch) error { return nil })
		if !errors.Is(err, cut) || errors.Is(err, ErrBadBatch) {
			t.Errorf("err %v, want the reader's error, not a malformed batch", err)
		}
	})
	t.Run("stream shorter than its size", func(t *testing.T) {
		err := DecodeBatchStream(bytes.NewReader(p), int64(len(p))+5, 2, func(*Batch) error { return nil })
		if !errors.Is(err, ErrBadBatch) {
			t.Errorf("err %v, want ErrBadBatch", err)
		}
	})
	t.Run("empty payload", func(t *testing.T) {
		calls := 0
		if err := DecodeBatchPayloadChunks(nil, 4, func(b *Batch) error { calls++; return nil }); err != nil || calls != 1 {
			t.Errorf("err %v, %d calls", err, calls)
		}
	})
}

// TestBatch_LeftFilterRows: a left-filter row (code 3) round-trips apart
// from delete rows, whole and in chunks.
func TestBatch_LeftFilterRows(t *testing.T) {
	enc, err := NewBatchEncoder(7, EntityTask, []Attribute{{Name: "subject", Type: TypeString}})
	if err != nil {
		t.Fatal(err)
	}
	del, left, up := NewID(), NewID(), NewID()
	enc.Delete(del)
	enc.LeftFilter(left)
	if err := enc.Upsert(up, 3, []any{"s"}); err != nil {
		t.Fatal(err)
	}
	b, err := DecodeBatchPayload(enc.Payload())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(b.Deletes, []ID{del}) || !reflect.DeepEqual(b.Left, []ID{left}) || len(b.Upserts) != 1 || b.Upserts[0].ID != up {
		t.Errorf("decoded deletes %v, left %v, upserts %v; want [%s], [%s], [%s]", b.Deletes, b.Left, b.Upserts, del, left, up)
	}
	var lefts []ID
	if err := DecodeBatchPayloadChunks(enc.Payload(), 1, func(p *Batch) error { lefts = append(lefts, p.Left...); return nil }); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(lefts, []ID{left}) {
		t.Errorf("chunked left = %v, want [%s]", lefts, left)
	}
}
