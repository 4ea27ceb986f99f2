-- 0003 (PostgreSQL): as migrations/0003_custom_entities.sql.
CREATE TABLE custom_entities (
    name    TEXT COLLATE "C" PRIMARY KEY,
    setname TEXT COLLATE "C" NOT NULL UNIQUE,
    def     TEXT NOT NULL,
    seq     BIGINT NOT NULL
);
