-- 0001: users, collections with a change counter, objects with tombstones.
CREATE TABLE users (
	name   TEXT PRIMARY KEY,
	pwhash BLOB NOT NULL
);

CREATE TABLE collections (
	id          INTEGER PRIMARY KEY,
	owner       TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
	kind        TEXT NOT NULL CHECK (kind IN ('addressbook', 'calendar')),
	name        TEXT NOT NULL,
	displayname TEXT NOT NULL DEFAULT '',
	description TEXT NOT NULL DEFAULT '',
	components  TEXT NOT NULL DEFAULT '',
	counter     INTEGER NOT NULL DEFAULT 0,
	purged      INTEGER NOT NULL DEFAULT 0,
	UNIQUE (owner, kind, name)
);

-- Key/value state of the server. "counter_floor" is the highest change
-- counter of any deleted collection: a new collection starts above it so that
-- sync tokens of an older collection with the same path are refused.
CREATE TABLE meta (
	key   TEXT PRIMARY KEY,
	value INTEGER NOT NULL
);

-- A row whose data is NULL is a tombstone: the object was deleted at modseq.
CREATE TABLE objects (
	collection_id INTEGER NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
	name          TEXT NOT NULL,
	uid           TEXT NOT NULL DEFAULT '',
	etag          TEXT NOT NULL DEFAULT '',
	data          BLOB,
	modseq        INTEGER NOT NULL,
	modtime       INTEGER NOT NULL,
	PRIMARY KEY (collection_id, name)
);

CREATE INDEX objects_modseq ON objects (collection_id, modseq);
CREATE INDEX objects_uid ON objects (collection_id, uid);
