-- 0001: the client cache (the Outlook Sync Client Cache, docs/sync-rules.md).
-- Times are INTEGER unix nanoseconds UTC; NULL is "never".

CREATE TABLE idmapping (
    map_id           INTEGER PRIMARY KEY AUTOINCREMENT,
    crm_entity       TEXT    NOT NULL,
    crm_id           TEXT    NOT NULL,              -- lower-case GUID
    pim_collection   TEXT    NOT NULL,              -- collection href, or IMAP mailbox
    pim_href         TEXT    NOT NULL DEFAULT '',   -- object href ('' for mail)
    pim_uidvalidity  INTEGER NOT NULL DEFAULT 0,    -- mail only
    pim_uid          INTEGER NOT NULL DEFAULT 0,    -- mail only
    pim_etag         TEXT    NOT NULL DEFAULT '',   -- verbatim, weak or unquoted ETags kept as sent
    object_type      INTEGER NOT NULL,
    deleted_locally  INTEGER NOT NULL DEFAULT 0,
    linked           INTEGER NOT NULL DEFAULT 1,
    visited          INTEGER NOT NULL DEFAULT 0,
    verified_time    INTEGER,
    tracked_from_pim INTEGER NOT NULL DEFAULT 0,
    owner_id         TEXT    NOT NULL DEFAULT '',   -- CRM owner at the last sync ('' unknown)
    UNIQUE (crm_entity, crm_id),
    UNIQUE (pim_collection, pim_href, pim_uidvalidity, pim_uid)
);
CREATE INDEX idmapping_verified ON idmapping (verified_time, map_id);

-- OutlookSyncTable: at most one pending change per mapping, one kind per side.
CREATE TABLE outlooksync (
    change_id     INTEGER PRIMARY KEY AUTOINCREMENT,
    map_id        INTEGER NOT NULL UNIQUE REFERENCES idmapping (map_id) ON DELETE CASCADE,
    seq           INTEGER NOT NULL DEFAULT 1,       -- bumped by every new change, guards Complete
    pim_time      INTEGER,
    pim_change    INTEGER NOT NULL DEFAULT 0,
    crm_time      INTEGER,
    crm_change    INTEGER NOT NULL DEFAULT 0,
    attempts      INTEGER NOT NULL DEFAULT 0,
    next_attempt  INTEGER,                          -- NULL: parked behind a sync error
    last_error    TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX outlooksync_due ON outlooksync (next_attempt);

-- OriginalXML: the last-synced mapped fields plus the raw PIM object.
CREATE TABLE snapshot (
    map_id   INTEGER PRIMARY KEY REFERENCES idmapping (map_id) ON DELETE CASCADE,
    fields   BLOB    NOT NULL,
    raw      BLOB    NOT NULL,
    etag     TEXT    NOT NULL DEFAULT '',
    updated  INTEGER NOT NULL
);

CREATE TABLE cursor (
    account    TEXT NOT NULL,
    collection TEXT NOT NULL,
    value      TEXT NOT NULL,
    updated    INTEGER NOT NULL,
    PRIMARY KEY (account, collection)
);

CREATE TABLE syncerror (
    error_id  INTEGER PRIMARY KEY AUTOINCREMENT,
    map_id    INTEGER REFERENCES idmapping (map_id) ON DELETE SET NULL,
    item      TEXT    NOT NULL UNIQUE,   -- what the user sees: href, mailbox/UID or entity(id)
    field     TEXT    NOT NULL DEFAULT '',
    message   TEXT    NOT NULL,
    attempts  INTEGER NOT NULL DEFAULT 1,
    retry     INTEGER NOT NULL DEFAULT 0, -- user asked for a retry of an item without a pending change
    created   INTEGER NOT NULL,
    updated   INTEGER NOT NULL
);

CREATE TABLE setting (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
