package crmserver

import "context"

// DumpTable is one table of a store in the store-neutral form that
// `pimbridge crm migrate` copies between backends (crm/crmmigrate). Every
// piece of server state lives in such a table: metadata (meta,
// custom_entities, custom_attributes), the version counter (seq), records
// (one table per entity, "e_<entity>"), tombstones, users and their
// password hashes, roles, tokens, subscriptions and SyncEntry rows,
// batches, filters, primaries, create hashes and replay keys. Names are
// those of crmstore's SQLite schema (migrations/*.sql); another backend
// maps its own names onto them.
type DumpTable struct {
	Name string
	// Entity is the entity logical name of a record table ("" for the
	// others).
	Entity string
	// Columns in the order Rows gives the values.
	Columns []string
	// Key is the primary key (a prefix-free subset of Columns); Rows
	// come in ascending key order, text compared byte by byte.
	Key []string
}

// DumpReader reads one consistent snapshot of a store. A value is nil,
// int64, float64, string or []byte: datetimes are Unix seconds, booleans
// 0 or 1, lookups two columns (id, "<name>__type"), as in crmstore.
type DumpReader interface {
	// Tables lists every table holding state.
	Tables(ctx context.Context) ([]DumpTable, error)
	// Count returns the number of rows of a table.
	Count(ctx context.Context, t DumpTable) (int64, error)
	// Rows calls fn for every row of t in key order; vals is reused
	// between calls.
	Rows(ctx context.Context, t DumpTable, fn func(vals []any) error) error
	// Counters returns the backend's id counters (e.g. the next batch id)
	// by table name.
	Counters(ctx context.Context) (map[string]int64, error)
}

// DumpWriter loads rows into an empty store, inside one transaction.
type DumpWriter interface {
	// Write inserts rows into table t (t.Columns name the values).
	Write(ctx context.Context, t DumpTable, rows [][]any) error
	// Schema creates the record tables of the metadata written so far
	// (meta, custom_entities, custom_attributes).
	Schema(ctx context.Context) error
	// SetCounters raises the id counters to at least the given values.
	SetCounters(ctx context.Context, c map[string]int64) error
}
