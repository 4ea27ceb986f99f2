package crmmigrate

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/pimbridge/pimbridge/crm/crmserver"
)

// Verify reads src and dst again and compares them row by row and column
// by column: every table of src must be in dst with the same rows, every
// record table of dst must hold no row src lacks, and dst's id counters
// must be at least src's. The first difference is returned as a
// *MismatchError. It returns the number of rows compared.
func Verify(ctx context.Context, src, dst Source, opts *Options) (int64, error) {
	if opts == nil {
		opts = &Options{}
	}
	var n int64
	err := src.Export(ctx, func(sr crmserver.DumpReader) error {
		return dst.Export(ctx, func(dr crmserver.DumpReader) error {
			st, err := sr.Tables(ctx)
			if err != nil {
				return err
			}
			dt, err := dr.Tables(ctx)
			if err != nil {
				return err
			}
			for _, t := range st {
				if !slices.ContainsFunc(dt, func(d crmserver.DumpTable) bool { return d.Name == t.Name }) {
					return &MismatchError{Table: t.Name, Entity: t.Entity, Reason: "table missing in target"}
				}
				c, err := compareTable(ctx, sr, dr, t, opts.Progress)
				n += c
				if err != nil {
					return err
				}
			}
			for _, d := range dt {
				if d.Entity == "" || slices.ContainsFunc(st, func(s crmserver.DumpTable) bool { return s.Name == d.Name }) {
					continue
				}
				if c, err := dr.Count(ctx, d); err != nil {
					return err
				} else if c > 0 {
					return &MismatchError{Table: d.Name, Entity: d.Entity, Reason: fmt.Sprintf("%d records only in target", c)}
				}
			}
			sc, err := sr.Counters(ctx)
			if err != nil {
				return err
			}
			dc, err := dr.Counters(ctx)
			if err != nil {
				return err
			}
			for name, v := range sc {
				if dc[name] < v {
					return &MismatchError{Table: name, Field: "id counter", Source: v, Target: dc[name]}
				}
			}
			return nil
		})
	})
	if err != nil && !errors.Is(err, ErrMismatch) {
		err = fmt.Errorf("crmmigrate: verify: %w", err)
	}
	return n, err
}

// compareTable walks the rows of t in both stores in key order, side by
// side.
func compareTable(ctx context.Context, sr, dr crmserver.DumpReader, t crmserver.DumpTable, progress func(Progress)) (int64, error) {
	total, err := sr.Count(ctx, t)
	if err != nil {
		return 0, err
	}
	keyIdx := make([]int, len(t.Key))
	for i, k := range t.Key {
		keyIdx[i] = slices.Index(t.Columns, k)
		if keyIdx[i] < 0 {
			return 0, fmt.Errorf("table %s: key column %s not among its columns", t.Name, k)
		}
	}
	keyOf := func(row []any) string {
		parts := make([]string, len(keyIdx))
		for i, j := range keyIdx {
			parts[i] = fmt.Sprint(textOf(row[j]))
		}
		return strings.Join(parts, "/")
	}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch := make(chan []any, 256)
	errc := make(chan error, 1)
	go func() {
		defer close(ch)
		errc <- sr.Rows(cctx, t, func(vals []any) error {
			select {
			case ch <- cloneRow(vals):
				return nil
			case <-cctx.Done():
				return cctx.Err()
			}
		})
	}()
	var done int64
	mismatch := func(row []any, reason string) error {
		return &MismatchError{Table: t.Name, Entity: t.Entity, Key: keyOf(row), Reason: reason}
	}
	err = dr.Rows(ctx, t, func(got []any) error {
		want, ok := <-ch
		if !ok {
			return mismatch(got, "only in target")
		}
		switch c := compareKeys(want, got, keyIdx); {
		case c < 0:
			return mismatch(want, "missing in target")
		case c > 0:
			return mismatch(got, "only in target")
		}
		for i, col := range t.Columns {
			if !equalValue(want[i], got[i]) {
				return &MismatchError{Table: t.Name, Entity: t.Entity, Key: keyOf(want), Field: col, Source: want[i], Target: got[i], Reason: "differs"}
			}
		}
		done++
		if progress != nil && (done%10000 == 0 || done == total) {
			progress(Progress{Phase: "verify", Table: t, Done: done, Total: total})
		}
		return nil
	})
	if err == nil {
		if want, ok := <-ch; ok {
			err = mismatch(want, "missing in target")
		}
	}
	cancel()
	for range ch {
		// drain, so that the reader goroutine ends
	}
	if srcErr := <-errc; err == nil && srcErr != nil {
		err = srcErr
	}
	if err != nil {
		if !errors.Is(err, ErrMismatch) {
			err = fmt.Errorf("table %s: %w", t.Name, err)
		}
		return done, err
	}
	return done, nil
}

// textOf gives text columns one form whether a backend reads them as
// string or []byte.
func textOf(v any) any {
	if b, ok := v.([]byte); ok {
		return string(b)
	}
	return v
}

func compareKeys(a, b []any, idx []int) int {
	for _, i := range idx {
		if c := compareValue(a[i], b[i]); c != 0 {
			return c
		}
	}
	return 0
}

// compareValue orders key values: numbers by value, text byte by byte.
func compareValue(a, b any) int {
	an, aNum := num(a)
	bn, bNum := num(b)
	if aNum && bNum {
		return cmp.Compare(an, bn)
	}
	as, aText := textOf(a).(string)
	bs, bText := textOf(b).(string)
	if aText && bText {
		return strings.Compare(as, bs)
	}
	// Different kinds (should not happen in one key column): order by kind.
	return cmp.Compare(fmt.Sprintf("%T", a), fmt.Sprintf("%T", b))
}

func num(v any) (float64, bool) {
	switch x := v.(type) {
	case int64:
		return float64(x), true
	case float64:
		return x, true
	}
	return 0, false
}

// equalValue compares two column values in the neutral form: integers
// exactly, an integer and a float by value, text and bytes by their bytes.
func equalValue(a, b any) bool {
	switch x := a.(type) {
	case nil:
		return b == nil
	case int64:
		switch y := b.(type) {
		case int64:
			return x == y
		case float64:
			return float64(x) == y
		}
	case float64:
		switch y := b.(type) {
		case float64:
			return x == y
		case int64:
			return x == float64(y)
		}
	case string:
		switch y := b.(type) {
		case string:
			return x == y
		case []byte:
			return x == string(y)
		}
	case []byte:
		switch y := b.(type) {
		case []byte:
			return bytes.Equal(x, y)
		case string:
			return string(x) == y
		}
	}
	return false
}
