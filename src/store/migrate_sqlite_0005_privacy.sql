-- 0005: break-the-glass grants (src/privacy, issue 3).
--
-- break_glass: one row per grant.  A clinician (the roles the policy names)
--              who gives a reason gets access to one patient's restricted
--              records (sensitivity labels) until `until`.  Rows are only
--              ever inserted: the privacy officer's report lists them, and
--              the audit trail records each access made under a grant.
-- Times are milliseconds since the epoch (UTC).

CREATE TABLE break_glass (
    id        INTEGER PRIMARY KEY,
    uid       INTEGER NOT NULL,          -- app_user who broke the glass
    username  TEXT NOT NULL,             -- as it was then (users are never renamed, but a
    role      TEXT NOT NULL,             --   report must not depend on that)
    patient   TEXT NOT NULL,             -- the Patient id
    reason    TEXT NOT NULL,             -- 1..500 bytes, printable
    granted   INTEGER NOT NULL,
    until     INTEGER NOT NULL,          -- granted + the configured minutes
    source    TEXT NOT NULL DEFAULT ''   -- client address
);
-- privacy_btg_active: is there a grant for this user and patient that has
-- not ended?  One seek, newest end first.
CREATE INDEX break_glass_active ON break_glass (uid, patient, until);
-- the report: grants since a time
CREATE INDEX break_glass_granted ON break_glass (granted);
