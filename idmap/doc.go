// Package idmap is the bridge's client cache: the SQLite database in the
// state directory that remembers which CRM record is which PIM object, what
// is still to be applied, the last-synced state of every pair and how far
// each collection has been read. It is the "Outlook Sync Client
// Cache" carried over to CardDAV, CalDAV (RFC 6352, 4791, 6578) and IMAP
// (RFC 9051, 7162).
//
// It owns the database file and nothing else. It imports only the crm
// types and modernc.org/sqlite; it must not import bridge, reconcile,
// mapping or any pim connector. It makes no decisions: reconcile decides,
// bridge applies, idmap records.
//
// # On-disk layout
//
// One SQLite file (conventionally <state_dir>/cache.db) in WAL mode, so
// cache.db-wal and cache.db-shm sit beside it while it is open. Every
// connection runs busy_timeout(5000), journal_mode(WAL), foreign_keys(1),
// synchronous(NORMAL), and write transactions begin IMMEDIATE. The schema
// version is PRAGMA user_version; the numbered scripts in migrations/ are
// embedded and applied in order, each in its own transaction together with
// the user_version bump, so a crash leaves either the old or the new
// schema. A file whose user_version is newer than this binary knows fails
// with ErrSchemaTooNew. Tables:
//
//   - idmapping (IDMappingTable): map_id; CRM entity and id; PIM entry id
//     = collection + href, or mailbox + UIDVALIDITY + UID for mail; the
//     PIM ETag; object type (Dynamics objecttypecode); DeletedLocally,
//     Linked, Visited; VerifiedTime; TrackedFromPIM; the CRM owner at the
//     last sync. Both the CRM key and the PIM key are unique. Rows of
//     unlinked and locally deleted pairs are kept: they are what stops a
//     pair from being re-created on either side.
//   - outlooksync (OutlookSyncTable): at most one pending change per
//     mapping, with the PIM-side time and change kind and the CRM-side
//     time and change kind, attempts, next attempt time and last error. A
//     row leaves only when the change was applied (Complete); a row parked
//     after repeated failures has a NULL next attempt and a syncerror row.
//   - snapshot (OriginalXML): per mapping the canonical bytes of the
//     last-synced mapped fields (opaque to idmap), the raw PIM object as
//     the server sent it and its ETag.
//   - cursor: an opaque string per (account, collection): a sync-token, an
//     ETag listing digest, or an IMAP UIDVALIDITY/HIGHESTMODSEQ state.
//   - syncerror: failures the user can list, retry or discard (item,
//     field, server message, attempts).
//   - setting: a small key/value store (e.g. the primary generation;
//     "duplicate.allow.<map id>" marks an item the user allowed to be
//     created despite duplicates, see resolve.go).
//
// Times are stored as INTEGER unix nanoseconds in UTC, NULL meaning never.
//
// # Transactions
//
// Reads are available on *Store and *Tx. Every write goes through
// Store.Tx, so that a change set, the snapshots it produces and the cursor
// that covers it commit together or not at all.
package idmap
