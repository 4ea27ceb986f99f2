// Package offline is the embedded offline engine (docs/offline.md): a local replica of one user's CRM data, the
// GoOffline download in dynamically sized batches, the local Web API that
// keeps working when the CRM server is out of reach, the offline queue of
// the writes made there, the GoOnline replay of that queue, and the
// persisted ClientState.
//
// It imports crm, crm/crmserver (the local API is crmserver's handler over
// an offline Store), crm/crmstore (the replica is a crmstore database, the
// same schema code as the server's) and crm/crmclient (the JSON types of the
// sync API). It must not import bridge, pim or cmd.
//
// # On-disk layout
//
// One SQLite file per user (Options.Path, normally
// <state_dir>/offline-<user>.db) holding crmstore's schema plus the
// engine's own tables, created at Open:
//
//   - offline_state: key/value pairs (ClientState, subscription id, the
//     server metadata version the replica was propagated to, the cached
//     user id, name, roles and bcrypt password hash, the time of the last
//     runs).
//   - offline_batches: the ids of the sync batches applied to the replica,
//     written in the same transaction as the batch's rows, and whether the
//     server acknowledged them; offline_fetches logs each fetch.
//   - offline_queue: the offline queue: row number, object id and
//     type, action time, command, method, url, headers, body, group id,
//     state. A row is written in the same transaction as the replica write
//     it records.
//   - offline_errors: rejected replays (sync errors) with the server's
//     message, until retried or discarded.
//   - offline_restore: the records whose offline change was discarded,
//     until the server's version (or its absence) is back in the replica.
package offline
