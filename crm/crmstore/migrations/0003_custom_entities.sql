-- 0003: custom entities made by admins. Their tables
-- (e_<name>) are created by the store from the definition, like every
-- entity table. Custom one-to-many relationships are custom lookup
-- attributes in custom_attributes (def carries the target).
CREATE TABLE custom_entities (
    name    TEXT PRIMARY KEY,
    setname TEXT NOT NULL UNIQUE,
    def     TEXT NOT NULL,         -- JSON crm.Entity
    seq     INTEGER NOT NULL       -- order of creation
);
