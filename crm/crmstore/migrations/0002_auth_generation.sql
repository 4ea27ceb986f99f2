-- Revocation: every user has a token generation. Disabling a user
-- or changing the password bumps it; a token is valid only while its
-- generation is the user's current one, and the server's Basic-auth cache
-- keys on it too.
ALTER TABLE users ADD COLUMN generation INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tokens ADD COLUMN generation INTEGER NOT NULL DEFAULT 0;
