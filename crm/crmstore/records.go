package crmstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmserver"
)

// txn implements crmserver.Tx over a transaction (or a connection holding
// a read transaction).
type txn struct {
	s *Store
	q querier
}

// selectList returns the column list for the attributes named in sel (all
// when empty) and the attributes in column order.
func selectList(e *crm.Entity, sel []string) (string, []*crm.Attribute) {
	var b strings.Builder
	var attrs []*crm.Attribute
	b.WriteString("t.id, t.versionnumber")
	for i := range e.Attributes {
		a := &e.Attributes[i]
		if a.Type == crm.TypeUniqueID {
			continue
		}
		if len(sel) > 0 && !contains(sel, a.Name) && a.Name != "versionnumber" {
			continue
		}
		for _, c := range columns(a) {
			b.WriteString(", t.")
			b.WriteString(q(c))
		}
		attrs = append(attrs, a)
	}
	return b.String(), attrs
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// scanner decodes rows of selectList into records.
type scanner struct {
	e     *crm.Entity
	attrs []*crm.Attribute
	vals  []any
	ptrs  []any
}

func newScanner(e *crm.Entity, attrs []*crm.Attribute) *scanner {
	n := 2
	for _, a := range attrs {
		n += len(columns(a))
	}
	sc := &scanner{e: e, attrs: attrs, vals: make([]any, n), ptrs: make([]any, n)}
	for i := range sc.vals {
		sc.ptrs[i] = &sc.vals[i]
	}
	return sc
}

type rowScanner interface{ Scan(dest ...any) error }

func (sc *scanner) scan(r rowScanner) (crm.Record, error) {
	if err := r.Scan(sc.ptrs...); err != nil {
		return crm.Record{}, err
	}
	rec := crm.Record{Entity: sc.e.Name, Attrs: make(map[string]any, len(sc.attrs))}
	ids, _ := sc.vals[0].(string)
	id, err := crm.ParseID(ids)
	if err != nil {
		return crm.Record{}, fmt.Errorf("crmstore: %s: bad stored id %q", sc.e.Name, ids)
	}
	rec.ID = id
	rec.Version, _ = sc.vals[1].(int64)
	i := 2
	for _, a := range sc.attrs {
		v, err := fromSQL(a, sc.vals[i], sc.vals[min(i+1, len(sc.vals)-1)])
		if err != nil {
			return crm.Record{}, fmt.Errorf("crmstore: %s(%s).%s: %w", sc.e.Name, id, a.Name, err)
		}
		rec.Attrs[a.Name] = v
		i += len(columns(a))
	}
	return rec, nil
}

// values returns the Go values of sc's attributes for the last scanned row
// in column order, for the batch encoder.
func (sc *scanner) values(dst []any) ([]any, crm.ID, int64, error) {
	ids, _ := sc.vals[0].(string)
	id, err := crm.ParseID(ids)
	if err != nil {
		return nil, id, 0, fmt.Errorf("crmstore: %s: bad stored id %q", sc.e.Name, ids)
	}
	ver, _ := sc.vals[1].(int64)
	dst = dst[:0]
	i := 2
	for _, a := range sc.attrs {
		v, err := fromSQL(a, sc.vals[i], sc.vals[min(i+1, len(sc.vals)-1)])
		if err != nil {
			return nil, id, 0, err
		}
		dst = append(dst, v)
		i += len(columns(a))
	}
	return dst, id, ver, nil
}

func fromSQL(a *crm.Attribute, v, next any) (any, error) {
	if v == nil {
		if a.Type == crm.TypePartyList {
			return []crm.Party{}, nil
		}
		return nil, nil
	}
	switch a.Type {
	case crm.TypeString, crm.TypeMemo:
		switch x := v.(type) {
		case string:
			return x, nil
		case []byte:
			return string(x), nil
		}
	case crm.TypeInteger, crm.TypeBigInt, crm.TypePicklist, crm.TypeState, crm.TypeStatus:
		if x, ok := v.(int64); ok {
			return x, nil
		}
	case crm.TypeBoolean:
		if x, ok := v.(int64); ok {
			return x != 0, nil
		}
	case crm.TypeDateTime, crm.TypeDateOnly:
		if x, ok := v.(int64); ok {
			return fromUnix(x), nil
		}
	case crm.TypeDecimal, crm.TypeMoney:
		switch x := v.(type) {
		case float64:
			return x, nil
		case int64:
			return float64(x), nil
		}
	case crm.TypeUniqueID:
		if x, ok := v.(string); ok {
			return crm.ParseID(x)
		}
	case crm.TypeOwner:
		if x, ok := v.(string); ok {
			id, err := crm.ParseID(x)
			return crm.Ref{Entity: crm.EntitySystemUser, ID: id}, err
		}
	case crm.TypeLookup:
		if x, ok := v.(string); ok {
			id, err := crm.ParseID(x)
			t, _ := next.(string)
			return crm.Ref{Entity: t, ID: id}, err
		}
	case crm.TypePartyList:
		if x, ok := v.(string); ok {
			var ps []crm.Party
			if err := json.Unmarshal([]byte(x), &ps); err != nil {
				return nil, err
			}
			if ps == nil {
				ps = []crm.Party{}
			}
			return ps, nil
		}
	case crm.TypeBinary:
		if x, ok := v.([]byte); ok {
			return x, nil
		}
	}
	return nil, fmt.Errorf("stored %T does not fit %s", v, a.Type)
}

// toSQL returns the column values of attribute a for Go value v.
func toSQL(a *crm.Attribute, v any) ([]any, error) {
	if v == nil {
		if a.Type == crm.TypeLookup {
			return []any{nil, nil}, nil
		}
		return []any{nil}, nil
	}
	switch x := v.(type) {
	case bool:
		if x {
			return []any{int64(1)}, nil
		}
		return []any{int64(0)}, nil
	case time.Time:
		return []any{unix(x)}, nil
	case crm.ID:
		return []any{x.String()}, nil
	case crm.Ref:
		if a.Type == crm.TypeLookup {
			return []any{x.ID.String(), x.Entity}, nil
		}
		return []any{x.ID.String()}, nil
	case []crm.Party:
		b, err := json.Marshal(x)
		if err != nil {
			return nil, err
		}
		return []any{string(b)}, nil
	case string, int64, float64, []byte:
		return []any{x}, nil
	}
	return nil, fmt.Errorf("%w: %T for %s", crm.ErrInvalidArgument, v, a.Type)
}

func (t *txn) Exists(ctx context.Context, e *crm.Entity, id crm.ID) (bool, error) {
	var one int
	err := t.q.QueryRowContext(ctx, "SELECT 1 FROM "+table(e)+" WHERE id = ?", id.String()).Scan(&one)
	if err == errNoRows {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("crmstore: exists %s: %w", e.Name, err)
	}
	return true, nil
}

func (t *txn) Get(ctx context.Context, e *crm.Entity, id crm.ID) (crm.Record, error) {
	cols, attrs := selectList(e, nil)
	sc := newScanner(e, attrs)
	row := t.q.QueryRowContext(ctx, "SELECT "+cols+" FROM "+table(e)+" t WHERE t.id = ?", id.String())
	rec, err := sc.scan(row)
	if err != nil {
		return crm.Record{}, notFound(err, e.Name+"("+id.String()+")")
	}
	return rec, nil
}

func (t *txn) Query(ctx context.Context, e *crm.Entity, qy crm.Query, opts crmserver.QueryOptions) ([]crm.Record, error) {
	if err := e.CheckQuery(qy); err != nil {
		return nil, err
	}
	sel := qy.Select
	if len(sel) > 0 && len(qy.OrderBy) > 0 {
		sel = slices.Clone(sel)
		for _, o := range qy.OrderBy {
			sel = append(sel, o.Attr)
		}
	}
	cols, attrs := selectList(e, sel)
	var where []string
	var args []any
	if qy.Filter != nil {
		w, a, err := compileFilter(e, qy.Filter, env{me: opts.Me, now: opts.Now})
		if err != nil {
			return nil, err
		}
		where, args = append(where, w), a
	}
	if opts.After != nil {
		w, a, err := afterCondition(e, qy.OrderBy, *opts.After)
		if err != nil {
			return nil, err
		}
		where, args = append(where, w), append(args, a...)
	}
	if opts.Owner != (crm.ID{}) {
		where = append(where, "t.ownerid = ?")
		args = append(args, opts.Owner.String())
	}
	sqlText := "SELECT " + cols + " FROM " + table(e) + " t"
	if len(where) > 0 {
		sqlText += " WHERE " + strings.Join(where, " AND ")
	}
	var order []string
	for _, o := range qy.OrderBy {
		c := "t." + q(columns(e.Attr(o.Attr))[0])
		if o.Attr == e.PrimaryKey {
			c = "t.id"
		}
		if o.Desc {
			c += " DESC"
		}
		if t.s.pg {
			// SQLite's order of NULLs, which afterCondition spells out.
			if o.Desc {
				c += " NULLS LAST"
			} else {
				c += " NULLS FIRST"
			}
		}
		order = append(order, c)
	}
	order = append(order, "t.id")
	sqlText += " ORDER BY " + strings.Join(order, ", ")
	limit := opts.Limit
	if qy.Top > 0 {
		rest := qy.Top - opts.Skip
		if rest <= 0 {
			return nil, nil
		}
		if limit == 0 || rest < limit {
			limit = rest
		}
	}
	if limit > 0 || opts.Skip > 0 {
		if limit == 0 {
			limit = -1
		}
		// The limit is written into the text, not bound: SQLite plans with
		// a bound LIMIT's value and so re-prepares the statement (parser
		// and planner, about 2/3 of a small query's CPU) each time it is
		// bound. Limits take few values (page sizes, 10 for duplicate
		// detection), so the statement cache still holds them.
		sqlText += " LIMIT " + strconv.Itoa(limit) + " OFFSET ?"
		args = append(args, opts.Skip)
	}
	rows, err := t.q.QueryContext(ctx, sqlText, args...)
	if err != nil {
		return nil, fmt.Errorf("crmstore: query %s: %w", e.Name, err)
	}
	defer rows.Close()
	sc := newScanner(e, attrs)
	var out []crm.Record
	for rows.Next() {
		r, err := sc.scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("crmstore: query %s: %w", e.Name, err)
	}
	return out, nil
}

func (t *txn) Insert(ctx context.Context, e *crm.Entity, r crm.Record) (crm.Record, error) {
	if r.ID == (crm.ID{}) {
		return crm.Record{}, fmt.Errorf("%w: insert without id", crm.ErrInvalidArgument)
	}
	v, err := nextVersion(ctx, t.q)
	if err != nil {
		return crm.Record{}, err
	}
	now := t.s.now().UTC().Truncate(time.Second)
	attrs := make(map[string]any, len(r.Attrs)+3)
	for k, x := range r.Attrs {
		attrs[k] = x
	}
	attrs["createdon"] = now
	attrs["modifiedon"] = now
	delete(attrs, "versionnumber")
	delete(attrs, e.PrimaryKey)
	names := []string{"id", "versionnumber"}
	args := []any{r.ID.String(), v}
	for _, k := range sortedKeys(attrs) {
		a := e.Attr(k)
		if a == nil {
			return crm.Record{}, &crm.AttributeError{Entity: e.Name, Attribute: k, Err: crm.ErrUnknownAttribute}
		}
		vals, err := toSQL(a, attrs[k])
		if err != nil {
			return crm.Record{}, &crm.AttributeError{Entity: e.Name, Attribute: k, Err: err}
		}
		for i, c := range columns(a) {
			names = append(names, q(c))
			args = append(args, vals[i])
		}
	}
	ph := strings.TrimSuffix(strings.Repeat("?, ", len(names)), ", ")
	if _, err := t.q.ExecContext(ctx, "INSERT INTO "+table(e)+" ("+strings.Join(names, ", ")+") VALUES ("+ph+")", args...); err != nil {
		if isUniqueErr(err) {
			return crm.Record{}, fmt.Errorf("%w: %s(%s) exists", crm.ErrConflict, e.Name, r.ID)
		}
		return crm.Record{}, fmt.Errorf("crmstore: insert %s: %w", e.Name, err)
	}
	if _, err := t.q.ExecContext(ctx, "DELETE FROM tombstones WHERE entity = ? AND id = ?", e.Name, r.ID.String()); err != nil {
		return crm.Record{}, fmt.Errorf("crmstore: insert %s: %w", e.Name, err)
	}
	if e.IsActivity {
		if err := t.indexParties(ctx, e, r.ID, attrs, true); err != nil {
			return crm.Record{}, err
		}
	}
	return t.Get(ctx, e, r.ID)
}

// indexParties rewrites the activityparty rows of an activity from its
// party lists and owner.
func (t *txn) indexParties(ctx context.Context, e *crm.Entity, id crm.ID, attrs map[string]any, fresh bool) error {
	if !fresh {
		if _, err := t.q.ExecContext(ctx, "DELETE FROM activityparty WHERE activityid = ?", id.String()); err != nil {
			return fmt.Errorf("crmstore: parties: %w", err)
		}
	}
	seen := map[crm.ID]bool{}
	for _, a := range e.Attributes {
		if a.Type != crm.TypePartyList {
			continue
		}
		ps, _ := attrs[a.Name].([]crm.Party)
		for _, p := range ps {
			if p.Party == nil || seen[p.Party.ID] {
				continue
			}
			seen[p.Party.ID] = true
			if _, err := t.q.ExecContext(ctx, "INSERT INTO activityparty (activityid, partyid) VALUES (?, ?)", id.String(), p.Party.ID.String()); err != nil {
				return fmt.Errorf("crmstore: parties: %w", err)
			}
		}
	}
	return nil
}

func (t *txn) Patch(ctx context.Context, e *crm.Entity, id crm.ID, attrs map[string]any) (crm.Record, error) {
	v, err := nextVersion(ctx, t.q)
	if err != nil {
		return crm.Record{}, err
	}
	sets := []string{"versionnumber = ?", `"modifiedon" = ?`}
	args := []any{v, unix(t.s.now())}
	parties := false
	for _, k := range sortedKeys(attrs) {
		if k == "modifiedon" || k == "versionnumber" || k == "createdon" || k == e.PrimaryKey {
			continue
		}
		a := e.Attr(k)
		if a == nil {
			return crm.Record{}, &crm.AttributeError{Entity: e.Name, ID: id, Attribute: k, Err: crm.ErrUnknownAttribute}
		}
		vals, err := toSQL(a, attrs[k])
		if err != nil {
			return crm.Record{}, &crm.AttributeError{Entity: e.Name, ID: id, Attribute: k, Err: err}
		}
		for i, c := range columns(a) {
			sets = append(sets, q(c)+" = ?")
			args = append(args, vals[i])
		}
		parties = parties || a.Type == crm.TypePartyList
	}
	args = append(args, id.String())
	res, err := t.q.ExecContext(ctx, "UPDATE "+table(e)+" SET "+strings.Join(sets, ", ")+" WHERE id = ?", args...)
	if err != nil {
		return crm.Record{}, fmt.Errorf("crmstore: update %s: %w", e.Name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return crm.Record{}, fmt.Errorf("%w: %s(%s)", crm.ErrNotFound, e.Name, id)
	}
	rec, err := t.Get(ctx, e, id)
	if err != nil {
		return crm.Record{}, err
	}
	if d, ok := attrs["isdisabled"]; ok && e.Name == crm.EntitySystemUser {
		disabled, _ := d.(bool)
		if err := t.syncDisabled(ctx, id, disabled); err != nil {
			return crm.Record{}, err
		}
	}
	if parties && e.IsActivity {
		if err := t.indexParties(ctx, e, id, rec.Attrs, false); err != nil {
			return crm.Record{}, err
		}
	}
	return rec, nil
}

func (t *txn) Delete(ctx context.Context, e *crm.Entity, id crm.ID) error {
	res, err := t.q.ExecContext(ctx, "DELETE FROM "+table(e)+" WHERE id = ?", id.String())
	if err != nil {
		return fmt.Errorf("crmstore: delete %s: %w", e.Name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%w: %s(%s)", crm.ErrNotFound, e.Name, id)
	}
	v, err := nextVersion(ctx, t.q)
	if err != nil {
		return err
	}
	if _, err := t.q.ExecContext(ctx, "INSERT OR REPLACE INTO tombstones (entity, id, version) VALUES (?, ?, ?)", e.Name, id.String(), v); err != nil {
		return fmt.Errorf("crmstore: delete %s: %w", e.Name, err)
	}
	if e.IsActivity {
		if _, err := t.q.ExecContext(ctx, "DELETE FROM activityparty WHERE activityid = ?", id.String()); err != nil {
			return fmt.Errorf("crmstore: delete %s: %w", e.Name, err)
		}
	}
	return nil
}

// Deleted reports whether the record was deleted (it has a tombstone and
// no row).
func (t *txn) Deleted(ctx context.Context, e *crm.Entity, id crm.ID) (bool, error) {
	var n int
	if err := t.q.QueryRowContext(ctx, "SELECT count(*) FROM tombstones WHERE entity = ? AND id = ?", e.Name, id.String()).Scan(&n); err != nil {
		return false, fmt.Errorf("crmstore: tombstone: %w", err)
	}
	return n > 0, nil
}

func (t *txn) CreateHash(ctx context.Context, e *crm.Entity, id crm.ID) (string, bool, error) {
	var h string
	err := t.q.QueryRowContext(ctx, "SELECT hash FROM create_hash WHERE entity = ? AND id = ?", e.Name, id.String()).Scan(&h)
	if err == errNoRows {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("crmstore: create hash: %w", err)
	}
	return h, true, nil
}

func (t *txn) SetCreateHash(ctx context.Context, e *crm.Entity, id crm.ID, hash string) error {
	if _, err := t.q.ExecContext(ctx, "INSERT OR REPLACE INTO create_hash (entity, id, hash) VALUES (?, ?, ?)", e.Name, id.String(), hash); err != nil {
		return fmt.Errorf("crmstore: create hash: %w", err)
	}
	return nil
}

// afterCondition is the keyset condition "comes after rec in the order
// (orderBy..., id)": for each position, equal on the keys before it and
// strictly after on it. SQLite sorts NULL first ascending and last
// descending, and a comparison with NULL is never true, so NULLs are
// spelled out. Comparisons use the columns' own collation, as ORDER BY
// does.
func afterCondition(e *crm.Entity, orderBy []crm.Order, rec crm.Record) (string, []any, error) {
	var ors []string
	var args []any
	var eqs []string
	var eqArgs []any
	for _, o := range orderBy {
		a := e.Attr(o.Attr)
		if a == nil {
			return "", nil, &crm.AttributeError{Entity: e.Name, Attribute: o.Attr, Err: crm.ErrUnknownAttribute}
		}
		col := "t." + q(columns(a)[0])
		if o.Attr == e.PrimaryKey {
			col = "t.id"
		}
		v := rec.Attrs[o.Attr]
		if o.Attr == e.PrimaryKey {
			v = rec.ID
		}
		vals, err := toSQL(a, v)
		if err != nil {
			return "", nil, &crm.AttributeError{Entity: e.Name, Attribute: o.Attr, Err: err}
		}
		sv := vals[0]
		var strict string
		var strictArgs []any
		switch {
		case sv == nil && !o.Desc:
			strict = col + " IS NOT NULL"
		case sv == nil:
			strict = "false"
		case !o.Desc:
			strict, strictArgs = col+" > ?", []any{sv}
		default:
			strict, strictArgs = "("+col+" < ? OR "+col+" IS NULL)", []any{sv}
		}
		ors = append(ors, "("+strings.Join(append(slices.Clone(eqs), strict), " AND ")+")")
		args = append(append(args, eqArgs...), strictArgs...)
		if sv == nil {
			eqs = append(eqs, col+" IS NULL")
		} else {
			eqs, eqArgs = append(eqs, col+" = ?"), append(eqArgs, sv)
		}
	}
	ors = append(ors, "("+strings.Join(append(eqs, "t.id > ?"), " AND ")+")")
	args = append(append(args, eqArgs...), rec.ID.String())
	return "(" + strings.Join(ors, " OR ") + ")", args, nil
}

// Savepoint runs fn in a SQLite savepoint. txn keeps no state of its own
// beyond the transaction, so undoing fn's writes leaves nothing stale.
func (t *txn) Savepoint(ctx context.Context, fn func() error) error {
	if _, err := t.q.ExecContext(ctx, "SAVEPOINT part"); err != nil {
		return fmt.Errorf("crmstore: savepoint: %w", err)
	}
	if ferr := fn(); ferr != nil {
		// ROLLBACK TO undoes and keeps the savepoint open; RELEASE ends it.
		if _, err := t.q.ExecContext(ctx, "ROLLBACK TO part"); err != nil {
			return errors.Join(ferr, fmt.Errorf("crmstore: rollback to savepoint: %w", err))
		}
		if _, err := t.q.ExecContext(ctx, "RELEASE part"); err != nil {
			return errors.Join(ferr, fmt.Errorf("crmstore: release savepoint: %w", err))
		}
		return ferr
	}
	if _, err := t.q.ExecContext(ctx, "RELEASE part"); err != nil {
		return fmt.Errorf("crmstore: release savepoint: %w", err)
	}
	return nil
}

// env resolves @me and @now.
type env struct {
	me  crm.ID
	now time.Time
}

// compileFilter compiles a checked filter to a SQL condition over alias t.
// Values are always parameters; names come from metadata.
func compileFilter(e *crm.Entity, x crm.Expr, en env) (string, []any, error) {
	var args []any
	var b strings.Builder
	var walk func(x crm.Expr) error
	walk = func(x crm.Expr) error {
		switch x := x.(type) {
		case *crm.Logical:
			b.WriteByte('(')
			if err := walk(x.Left); err != nil {
				return err
			}
			b.WriteString(map[string]string{"and": " AND ", "or": " OR "}[x.Op])
			if err := walk(x.Right); err != nil {
				return err
			}
			b.WriteByte(')')
		case *crm.Not:
			b.WriteString("NOT coalesce(")
			if err := walk(x.X); err != nil {
				return err
			}
			b.WriteString(", false)")
		case *crm.Func:
			if x.Name == "isparty" {
				id := en.me
				if x.Value.Kind == crm.KindGUID {
					id = x.Value.ID
				}
				b.WriteString("EXISTS (SELECT 1 FROM activityparty p WHERE p.activityid = t.id AND p.partyid = ?)")
				args = append(args, id.String())
				return nil
			}
			a := e.Attr(x.Attr)
			if a == nil {
				return &crm.AttributeError{Entity: e.Name, Attribute: x.Attr, Err: crm.ErrUnknownAttribute}
			}
			pat := likeEscape(x.Value.Str)
			switch x.Name {
			case "contains":
				pat = "%" + pat + "%"
			case "startswith":
				pat += "%"
			case "endswith":
				pat = "%" + pat
			}
			b.WriteString("t." + q(a.Name) + ` LIKE ? ESCAPE '\'`)
			args = append(args, pat)
		case *crm.Compare:
			a := e.Attr(x.Attr)
			if a == nil {
				return &crm.AttributeError{Entity: e.Name, Attribute: x.Attr, Err: crm.ErrUnknownAttribute}
			}
			col := "t." + q(columns(a)[0])
			v, err := crm.LiteralValue(a, x.Value, en.me, en.now)
			if err != nil {
				return &crm.AttributeError{Entity: e.Name, Attribute: x.Attr, Err: err}
			}
			if v == nil {
				if x.Op == "eq" {
					b.WriteString(col + " IS NULL")
				} else {
					b.WriteString(col + " IS NOT NULL")
				}
				return nil
			}
			var sv any
			switch y := v.(type) {
			case crm.ID:
				sv = y.String()
			default:
				vals, err := toSQL(a, v)
				if err != nil {
					return err
				}
				sv = vals[0]
			}
			op := map[string]string{"eq": "=", "ne": "!=", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}[x.Op]
			coll := ""
			if a.Type == crm.TypeString || a.Type == crm.TypeMemo {
				coll = " COLLATE NOCASE"
			}
			if x.Op == "ne" {
				b.WriteString("(" + col + " IS NULL OR " + col + " != ?" + coll + ")")
			} else {
				b.WriteString(col + " " + op + " ?" + coll)
			}
			args = append(args, sv)
		default:
			return fmt.Errorf("%w: filter node %T", crm.ErrInvalidArgument, x)
		}
		return nil
	}
	if err := walk(x); err != nil {
		return "", nil, err
	}
	return b.String(), args, nil
}

func likeEscape(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return r.Replace(s)
}
