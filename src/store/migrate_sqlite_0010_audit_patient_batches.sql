-- 0010: the audit trail's patient index is filled in batches, not per entry.
--
-- Every audited read named its patient in audit_patient (patient, seq) by a
-- trigger, in the read's own group commit.  Patients come in random order,
-- so each entry dirtied its own leaf page of that index: about one 4 KB page
-- written to the WAL (and later to the database) per read, which cost more
-- than the entry itself (bench/read: 10.8k audited reads/s with the trigger,
-- 18.2k without).
--
-- Now the store's writer adds the rows for many entries at once (store.md:
-- "The audit trail's patient index"), keyed by bucket = seq >> 14 first, so
-- that a batch lands in the few pages of the newest bucket.  audit_indexed
-- holds the highest seq whose rows are in; readers look at the entries above
-- it directly (at most a batch), so nothing is ever missing from a search.
-- The index is derived data: audit verify checks the chain, not this table.
DROP TRIGGER audit_log_patients;

CREATE TABLE audit_patient_b (
    bucket   INTEGER NOT NULL,             -- seq >> 14
    patient  TEXT NOT NULL,
    seq      INTEGER NOT NULL,
    PRIMARY KEY (bucket, patient, seq)
) WITHOUT ROWID;
INSERT INTO audit_patient_b (bucket, patient, seq)
    SELECT seq >> 14, patient, seq FROM audit_patient ORDER BY seq >> 14, patient, seq;
DROP TABLE audit_patient;
ALTER TABLE audit_patient_b RENAME TO audit_patient;
CREATE TRIGGER audit_patient_no_update BEFORE UPDATE ON audit_patient
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
CREATE TRIGGER audit_patient_no_delete BEFORE DELETE ON audit_patient
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;

CREATE TABLE audit_indexed (
    one      INTEGER PRIMARY KEY CHECK (one = 1),
    upto     INTEGER NOT NULL              -- entries with seq <= upto are in audit_patient
);
INSERT INTO audit_indexed (one, upto) SELECT 1, coalesce(max(seq), 0) FROM audit_log;
