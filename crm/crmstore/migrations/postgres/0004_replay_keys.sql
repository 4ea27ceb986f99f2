-- 0004 (PostgreSQL): as migrations/0004_replay_keys.sql.
CREATE TABLE replay_keys (
    userid   TEXT COLLATE "C" NOT NULL,
    key      TEXT COLLATE "C" NOT NULL,
    reqhash  TEXT NOT NULL,
    status   BIGINT NOT NULL,
    headers  TEXT NOT NULL,
    body     BYTEA,
    recorded BIGINT NOT NULL,
    PRIMARY KEY (userid, key)
);
CREATE INDEX replay_keys_recorded ON replay_keys (recorded);
