-- 0006: OAuth2 (POST /auth/token, /auth/revoke).
--
-- oauth_client: registered system clients (grant_type=client_credentials),
--               made with `chartkeep client add`.  The secret is kept only
--               as an argon2id string, as passwords are.  A client's
--               principal has uid = -ckey, so it never collides with an
--               app_user uid (those are positive) where work is owned by a
--               uid (export jobs).
-- token:        client_id  the registered client the token was issued to
--                          ('' for tokens from the CLI and the password grant
--                          without client authentication); a token of a
--                          client alone has uid 0
--               patient    the launch context of patient/ scopes (a Patient
--                          id) or ''
--               family     16 random bytes shared by the refresh tokens of
--                          one login and the access tokens issued with them;
--                          NULL for tokens that belong to no refresh chain.
--                          A refresh token used twice revokes its family.
-- Times are milliseconds since the epoch (UTC).

CREATE TABLE oauth_client (
    ckey        INTEGER PRIMARY KEY,
    client_id   TEXT NOT NULL UNIQUE,
    role        TEXT NOT NULL,
    secret_hash TEXT NOT NULL,              -- argon2id string (libsodium)
    scopes      TEXT NOT NULL DEFAULT '',   -- the most it may ask for; '' any system/ scope
    active      INTEGER NOT NULL DEFAULT 1,
    created     INTEGER NOT NULL
);

ALTER TABLE token ADD COLUMN client_id TEXT NOT NULL DEFAULT '';
ALTER TABLE token ADD COLUMN patient TEXT NOT NULL DEFAULT '';
ALTER TABLE token ADD COLUMN family BLOB;
CREATE INDEX token_family ON token (family) WHERE family IS NOT NULL;
