-- 0011: HL7 v2 application acknowledgements (enhanced mode, MSH-16; src/hl7v2/appack.c).
--
-- hl7_app_ack: one row per application ACK owed to a sender.  A row is
--              written in the same transaction as the inbox row's outcome
--              (processed, or error), so an outcome that committed always
--              has its ACK on record and a restart never loses one; at most
--              one row per (inbox message, code), so a reprocess or a
--              restart never queues the same ACK twice.
--   state    0 waiting    not delivered yet: sent at next_try (backoff)
--            1 sent       the destination accepted it (CA/AA back)
--            2 failed     the destination refused it (CR/AR back): not retried
--   text     the ACK as built (segments end with CR), without MLLP framing;
--            its MSH-10 is control_id, stable across retries so a receiver
--            can recognise a resend.
--   last_error  why the last try failed, for people (no patient data).
-- Times are milliseconds since the epoch (UTC).

CREATE TABLE hl7_app_ack (
    id           INTEGER PRIMARY KEY,
    inbox_id     INTEGER NOT NULL,           -- hl7_inbox.id acknowledged
    code         TEXT NOT NULL,              -- MSA-1: AA, AE or AR
    control_id   TEXT NOT NULL,              -- MSH-10 of the ACK itself
    sending_app  TEXT NOT NULL DEFAULT '',   -- MSH-3 of the message (the destination's key)
    sending_fac  TEXT NOT NULL DEFAULT '',   -- MSH-4 of the message
    text         BLOB NOT NULL,
    state        INTEGER NOT NULL DEFAULT 0,
    created      INTEGER NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_try     INTEGER NOT NULL,
    sent         INTEGER NOT NULL DEFAULT 0, -- when it reached state 1 or 2
    destination  TEXT NOT NULL DEFAULT '',   -- HOST:PORT of the last try
    last_error   TEXT NOT NULL DEFAULT '',
    UNIQUE (inbox_id, code)
);
-- the sender's queue: waiting rows by due time
CREATE INDEX hl7_app_ack_due ON hl7_app_ack (state, next_try);
