-- 0007: the HL7 v2 inbox and its error queue (src/hl7v2, issue 5).
--
-- hl7_inbox: one row per message received over MLLP (or handed to
--            `chartkeep hl7 reprocess`), written durably before the sender
--            gets its ACK, raw as it arrived.  Rows are never deleted: a
--            message's state moves on as it is processed.
--   state    0 pending    stored, not yet turned into FHIR
--            1 processed  its FHIR writes committed (in the same transaction
--                         as this state, so a message is processed once)
--            2 error      processing failed: the error queue (`hl7 errors`),
--                         `reason` says why; `hl7 reprocess ID` retries
--            3 rejected   refused on receipt (AR/AE sent): malformed, an
--                         unsupported type or processing id; kept for the
--                         interface analyst, never processed
--   A resend (same sending application, facility, MSH-10 and the same bytes)
--   is ACKed again from its first row and not stored twice; the same MSH-10
--   with other bytes is stored and processed, with `collision` set to the id
--   of the earlier row.
-- Times are milliseconds since the epoch (UTC).

CREATE TABLE hl7_inbox (
    id           INTEGER PRIMARY KEY,
    received     INTEGER NOT NULL,
    peer         TEXT NOT NULL DEFAULT '',   -- sender address, or "cli"
    sending_app  TEXT NOT NULL DEFAULT '',   -- MSH-3 as written
    sending_fac  TEXT NOT NULL DEFAULT '',   -- MSH-4 as written
    control_id   TEXT NOT NULL DEFAULT '',   -- MSH-10
    msg_type     TEXT NOT NULL DEFAULT '',   -- "ADT^A01"
    hash         BLOB NOT NULL,              -- BLAKE2b-128 of raw
    raw          BLOB NOT NULL,
    state        INTEGER NOT NULL,
    ack          TEXT NOT NULL DEFAULT '',   -- the acknowledgement code sent
    collision    INTEGER NOT NULL DEFAULT 0, -- id of the row with the same MSH-10, or 0
    reason       TEXT NOT NULL DEFAULT '',   -- error / rejection, for people (no patient data)
    attempts     INTEGER NOT NULL DEFAULT 0,
    processed    INTEGER NOT NULL DEFAULT 0  -- when it last reached state 1 or 2
);
-- duplicate and collision detection: one seek
CREATE INDEX hl7_inbox_control ON hl7_inbox (sending_app, sending_fac, control_id);
-- the processor's queue and the error queue, in arrival order
CREATE INDEX hl7_inbox_state ON hl7_inbox (state, id);
