-- 0003: bulk data export jobs ($export).
--
-- export_job:  one row per kick-off, so that a restarted server still answers
--              the status of a finished job (and knows which jobs it was
--              running when it stopped: those are marked failed).
-- export_file: the NDJSON files a finished job wrote, in manifest order.
-- The files themselves live on disk (<export dir>/<job>/<name>); rows and
-- files are removed together when the job expires or the client deletes it.
-- Times are milliseconds since the epoch (UTC).

CREATE TABLE export_job (
    job       TEXT PRIMARY KEY,          -- 32 lower-case hex digits
    uid       INTEGER NOT NULL,          -- app_user who started it: the only one who may see it
    level     INTEGER NOT NULL,          -- 1 system, 2 patient, 3 group
    group_id  TEXT NOT NULL DEFAULT '',  -- level 3: the Group's id
    types     TEXT NOT NULL DEFAULT '',  -- _type, comma-separated; '' means every type
    since     INTEGER,                   -- _since; NULL: none
    request   TEXT NOT NULL,             -- the kick-off request URL, for the manifest
    state     INTEGER NOT NULL,          -- 1 queued, 2 running, 3 done, 4 failed
    created   INTEGER NOT NULL,
    finished  INTEGER NOT NULL DEFAULT 0,
    tx_time   INTEGER NOT NULL DEFAULT 0,   -- the manifest's transactionTime
    resources INTEGER NOT NULL DEFAULT 0,   -- written, over all files
    bytes     INTEGER NOT NULL DEFAULT 0,
    expires   INTEGER NOT NULL DEFAULT 0,   -- 0 while queued or running
    error     TEXT NOT NULL DEFAULT ''      -- state 4: a message safe to show the client
) WITHOUT ROWID;
CREATE INDEX export_job_expires ON export_job (expires);

CREATE TABLE export_file (
    job    TEXT NOT NULL,
    seq    INTEGER NOT NULL,             -- manifest order
    type   TEXT NOT NULL,
    name   TEXT NOT NULL,                -- "Observation-2.ndjson"
    count  INTEGER NOT NULL,
    bytes  INTEGER NOT NULL,
    PRIMARY KEY (job, seq)
) WITHOUT ROWID;
CREATE UNIQUE INDEX export_file_name ON export_file (job, name);
