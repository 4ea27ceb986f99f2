-- 0004: idempotency keys of replayed writes (the offline GoOnline sends
-- every queued request with MSCRM.ReplayID). A key is per user; the row
-- is written in the same transaction as the write it answers, and holds
-- that answer, so that the same key again is answered without applying
-- the write twice. Rows older than crmserver.ReplayKeyTTL are pruned when
-- a new key is recorded.
CREATE TABLE replay_keys (
    userid   TEXT NOT NULL,
    key      TEXT NOT NULL,
    reqhash  TEXT NOT NULL,        -- method, path, query and body
    status   INTEGER NOT NULL,
    headers  TEXT NOT NULL,        -- JSON http.Header
    body     BLOB,                 -- NULL: no body
    recorded INTEGER NOT NULL,     -- unix milliseconds
    PRIMARY KEY (userid, key)
);
CREATE INDEX replay_keys_recorded ON replay_keys (recorded);
