-- 0004: the audit trail (append-only, hash-chained AuditEvents).
--
-- audit_log:   one row per audited request.  entry is the AuditEvent JSON
--              exactly as hashed; hash = BLAKE2b-256(prev hash || seq as 8
--              bytes big-endian || ts as 8 bytes big-endian || entry), the
--              first prev being 32 zero bytes.  seq has no gaps: a deleted,
--              inserted or reordered row breaks the chain at that place.
--              Rows are written only by the store's writer, in the same
--              transaction as the data a write touches.
-- audit_patient: the patients an entry names (entity what = Patient/id),
--              filled by a trigger, for GET /AuditEvent?patient= and
--              Patient/[id]/$access-log.
-- audit_checkpoint: every so often the chain head (seq, hash) signed with
--              an Ed25519 key kept outside the database; a rewrite of the
--              whole chain by someone with the database but not the key is
--              caught at the first checkpoint.
-- The triggers make UPDATE and DELETE fail for every connection, admin and
-- CLI included; they are not a defence against someone who can drop them
-- (the chain and the checkpoints are), but they stop every code path of
-- ours and every honest mistake.
-- Times are milliseconds since the epoch (UTC).

CREATE TABLE audit_log (
    seq      INTEGER PRIMARY KEY,          -- 1, 2, 3, ... no gaps
    ts       INTEGER NOT NULL,
    entry    TEXT NOT NULL,                -- the AuditEvent (without id/meta)
    hash     BLOB NOT NULL,                -- 32 bytes
    -- searchable parts of the entry
    agent    TEXT GENERATED ALWAYS AS (entry ->> '$.agent[0].who.identifier.value') VIRTUAL,
    subtype  TEXT GENERATED ALWAYS AS (entry ->> '$.subtype[0].code') VIRTUAL,
    outcome  TEXT GENERATED ALWAYS AS (entry ->> '$.outcome') VIRTUAL
);
CREATE INDEX audit_log_ts ON audit_log (ts);
CREATE INDEX audit_log_agent ON audit_log (agent, ts);

CREATE TABLE audit_patient (
    patient  TEXT NOT NULL,
    seq      INTEGER NOT NULL,
    PRIMARY KEY (patient, seq)
) WITHOUT ROWID;

CREATE TRIGGER audit_log_patients AFTER INSERT ON audit_log
BEGIN
    INSERT OR IGNORE INTO audit_patient (patient, seq)
        SELECT substr(value ->> '$.what.reference', 9), NEW.seq
        FROM json_each(NEW.entry, '$.entity')
        WHERE value ->> '$.what.reference' LIKE 'Patient/%';
END;

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
CREATE TRIGGER audit_patient_no_update BEFORE UPDATE ON audit_patient
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
CREATE TRIGGER audit_patient_no_delete BEFORE DELETE ON audit_patient
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;

CREATE TABLE audit_checkpoint (
    seq      INTEGER PRIMARY KEY,          -- the entry the signature covers (and all before it)
    ts       INTEGER NOT NULL,
    hash     BLOB NOT NULL,                -- that entry's hash
    key_id   TEXT NOT NULL,                -- hex of the first 8 bytes of the public key
    sig      BLOB NOT NULL                 -- Ed25519 over "chartkeep-audit-v1" || seq || ts || hash
);
CREATE TRIGGER audit_checkpoint_no_update BEFORE UPDATE ON audit_checkpoint
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
CREATE TRIGGER audit_checkpoint_no_delete BEFORE DELETE ON audit_checkpoint
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
