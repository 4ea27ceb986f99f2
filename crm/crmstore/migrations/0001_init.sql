-- 0001: fixed tables of the CRM store. Entity tables (e_<logicalname>) are
-- created from the metadata by the store itself, one column per attribute.

-- Metadata version and the custom attributes added by admins.
CREATE TABLE meta (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
);
INSERT INTO meta (id, version) VALUES (1, 1);

CREATE TABLE custom_attributes (
    entity TEXT NOT NULL,
    name   TEXT NOT NULL,
    def    TEXT NOT NULL,         -- JSON crm.Attribute
    seq    INTEGER NOT NULL,      -- order of addition
    PRIMARY KEY (entity, name)
);

-- The one global, strictly increasing version sequence (versionnumber).
CREATE TABLE seq (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    v  INTEGER NOT NULL
);
INSERT INTO seq (id, v) VALUES (1, 0);

-- Deleted records, so that incremental prepare sees deletions.
CREATE TABLE tombstones (
    entity  TEXT NOT NULL,
    id      TEXT NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (entity, id)
) WITHOUT ROWID;
CREATE INDEX tombstones_version ON tombstones (entity, version);

-- Activity parties of every activity (for isparty(@me)).
CREATE TABLE activityparty (
    activityid TEXT NOT NULL,
    partyid    TEXT NOT NULL,
    PRIMARY KEY (activityid, partyid)
) WITHOUT ROWID;
CREATE INDEX activityparty_party ON activityparty (partyid);

-- Hash of the body of a create with a client-chosen id (idempotent POST).
CREATE TABLE create_hash (
    entity TEXT NOT NULL,
    id     TEXT NOT NULL,
    hash   TEXT NOT NULL,
    PRIMARY KEY (entity, id)
) WITHOUT ROWID;

-- Users (logins of systemuser records), roles, tokens.
CREATE TABLE users (
    id       TEXT PRIMARY KEY,      -- systemuserid
    name     TEXT NOT NULL UNIQUE COLLATE NOCASE,
    pwhash   TEXT NOT NULL,         -- bcrypt
    disabled INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE roles (
    name TEXT PRIMARY KEY,
    def  TEXT NOT NULL              -- JSON crmserver.Role
);
CREATE TABLE user_roles (
    user TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role TEXT NOT NULL REFERENCES roles (name) ON DELETE CASCADE,
    PRIMARY KEY (user, role)
);
CREATE TABLE tokens (
    hash    TEXT PRIMARY KEY,       -- hex SHA-256 of the token; the token itself is never stored
    user    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires INTEGER NOT NULL
);

-- Sync: subscriptions, SyncEntry, batches, statistics, filters, primary.
CREATE TABLE subscriptions (
    id          TEXT PRIMARY KEY,
    user        TEXT NOT NULL,
    client      TEXT NOT NULL,
    kind        TEXT NOT NULL,
    cursor      INTEGER NOT NULL DEFAULT 0,
    created     INTEGER NOT NULL,
    lastprepare INTEGER NOT NULL DEFAULT 0,
    gen         INTEGER NOT NULL DEFAULT 0,   -- prepare generation
    UNIQUE (user, client, kind)
);
CREATE TABLE subscription_specs (
    sub    TEXT NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
    entity TEXT NOT NULL,
    hash   TEXT NOT NULL,
    PRIMARY KEY (sub, entity)
);
CREATE TABLE syncentry (
    sub      TEXT NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
    entity   TEXT NOT NULL,
    objectid TEXT NOT NULL,
    state    INTEGER NOT NULL,      -- 0 synced, 1 to send, 2 to delete
    version  INTEGER NOT NULL,      -- record version prepare saw, or the batch sent
    gen      INTEGER NOT NULL,      -- prepare generation that last marked the row
    PRIMARY KEY (sub, entity, objectid)
) WITHOUT ROWID;
-- Pending rows in (state, objectid) order: batches are ranges of it
-- (covering, so that cutting and reading a batch needs no row lookups).
CREATE INDEX syncentry_state ON syncentry (sub, entity, state, objectid, gen, version);
CREATE TABLE batches (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    sub     TEXT NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
    entity  TEXT NOT NULL,
    acked   INTEGER NOT NULL DEFAULT 0,
    rows    INTEGER NOT NULL,
    histate INTEGER NOT NULL,       -- the batch holds the pending rows up to
    hiobj   TEXT NOT NULL,          -- (histate, hiobj) in (state, objectid) order
    gen     INTEGER NOT NULL,       -- marked by prepare generation <= gen
    created INTEGER NOT NULL
);
CREATE INDEX batches_open ON batches (sub, entity, acked);
CREATE TABLE syncinfo (
    id   INTEGER PRIMARY KEY AUTOINCREMENT,
    sub  TEXT NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
    info TEXT NOT NULL              -- JSON crmserver.SyncInfo
);
CREATE TABLE localfilters (
    user   TEXT NOT NULL,           -- '' for the default
    entity TEXT NOT NULL,
    filter TEXT NOT NULL,
    locked INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (user, entity)
);
CREATE TABLE primaries (
    user       TEXT PRIMARY KEY,
    client     TEXT NOT NULL,
    generation INTEGER NOT NULL,
    claimed    INTEGER NOT NULL
);
