-- 0002 (PostgreSQL): as migrations/0002_auth_generation.sql.
ALTER TABLE users ADD COLUMN generation BIGINT NOT NULL DEFAULT 0;
ALTER TABLE tokens ADD COLUMN generation BIGINT NOT NULL DEFAULT 0;
