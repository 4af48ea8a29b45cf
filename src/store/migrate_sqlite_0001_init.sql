-- 0001: resources and their versions, users, tokens.
--
-- resource: one row per logical resource (type, id) with its current version.
-- version:  every version ever written, in global write order (vkey), with
--           the JSON exactly as served; json is NULL for a delete.
-- Times are milliseconds since the epoch (UTC).

CREATE TABLE resource (
    rkey     INTEGER PRIMARY KEY,
    type     TEXT NOT NULL,
    id       TEXT NOT NULL,
    vid      INTEGER NOT NULL,          -- current version
    deleted  INTEGER NOT NULL DEFAULT 0,
    UNIQUE (type, id)
);

CREATE TABLE version (
    vkey     INTEGER PRIMARY KEY,       -- system history order
    rkey     INTEGER NOT NULL REFERENCES resource (rkey),
    vid      INTEGER NOT NULL,
    type     TEXT NOT NULL,             -- for type history
    ts       INTEGER NOT NULL,          -- meta.lastUpdated
    method   INTEGER NOT NULL,          -- 1 POST, 2 PUT, 3 DELETE, 4 PATCH
    chash    BLOB,                      -- hash of the content, for no-op updates
    json     TEXT,                      -- NULL for a delete
    UNIQUE (rkey, vid)
);
CREATE INDEX version_type ON version (type, vkey);

CREATE TABLE app_user (
    uid           INTEGER PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    role          TEXT NOT NULL,
    pw_hash       TEXT NOT NULL,        -- argon2id string (libsodium)
    practitioner  TEXT NOT NULL DEFAULT '',
    active        INTEGER NOT NULL DEFAULT 1,
    failed_logins INTEGER NOT NULL DEFAULT 0,
    locked_until  INTEGER NOT NULL DEFAULT 0,
    created       INTEGER NOT NULL
);

CREATE TABLE token (
    hash     BLOB PRIMARY KEY,          -- BLAKE2b-256 of the token
    uid      INTEGER NOT NULL REFERENCES app_user (uid),
    kind     TEXT NOT NULL,
    scopes   TEXT NOT NULL DEFAULT '',
    issued   INTEGER NOT NULL,
    expires  INTEGER NOT NULL,
    revoked  INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
