-- 0002: search indexes.
--
-- search_param: every search parameter definition (R4 and custom) gets a
-- small integer id (pid) that index rows use; stable for the database.
-- ix_*: one table per parameter type, rows of the current version of each
-- resource only (a delete removes them), rewritten in the same transaction
-- as the version.  grp ties the components of one composite value together
-- (0 outside composites).  Dates and numbers are stored as the range they
-- denote: [lo, hi) for dates in ms, [lo, hi] for numbers by their precision.

-- the current version's time, for _lastUpdated searches and sorting
ALTER TABLE resource ADD COLUMN ts INTEGER NOT NULL DEFAULT 0;
UPDATE resource SET ts = (SELECT v.ts FROM version v WHERE v.rkey = resource.rkey AND v.vid = resource.vid);
CREATE INDEX resource_type_ts ON resource (type, ts);
-- the live resources of a type in rkey order: a search with no selective
-- condition reads these and stops at the end of its page
CREATE INDEX resource_type_live ON resource (type, deleted);

CREATE TABLE search_param (
    pid   INTEGER PRIMARY KEY,
    url   TEXT NOT NULL UNIQUE,
    code  TEXT NOT NULL,
    type  TEXT NOT NULL
);

-- Each table is keyed by what searches look up (pid first), so a row costs
-- one B-tree insert there and one in the (rkey, pid) index that deletes,
-- sorting and _include use.  Absent texts are '' (key columns cannot be NULL).
--
-- Tokens, quantity units and reference targets repeat across millions of
-- rows; they are stored once in ix_dict and rows carry its integer id, which
-- keeps the index B-trees small and their keys quick to compare.

CREATE TABLE ix_dict (
    id    INTEGER PRIMARY KEY,
    sys   TEXT NOT NULL,      -- token system, quantity system, reference target type
    code  TEXT NOT NULL,      -- token code, quantity code (or unit), reference target id
    text  TEXT NOT NULL,      -- for sys '#text' (the folded words of a display or a
                              -- CodeableConcept.text, searched by :text): the same
                              -- as code; otherwise whatever the first row brought
    UNIQUE (code, sys)
);
-- :text looks for words inside the '#text' entries: a scan of this index,
-- not of the whole dictionary
CREATE INDEX ix_dict_text ON ix_dict (text) WHERE text <> '';

CREATE TABLE ix_token (
    pid   INTEGER NOT NULL,
    tok   INTEGER NOT NULL,   -- ix_dict (system, code)
    rkey  INTEGER NOT NULL,
    grp   INTEGER NOT NULL,
    PRIMARY KEY (pid, tok, rkey, grp)
) WITHOUT ROWID;
CREATE INDEX ix_token_r ON ix_token (rkey, pid);

CREATE TABLE ix_string (
    pid   INTEGER NOT NULL,
    norm  TEXT NOT NULL,      -- case and accents folded: starts-with matching
    exact TEXT NOT NULL,
    rkey  INTEGER NOT NULL,
    grp   INTEGER NOT NULL,
    PRIMARY KEY (pid, norm, exact, rkey, grp)
) WITHOUT ROWID;
CREATE INDEX ix_string_r ON ix_string (rkey, pid);

CREATE TABLE ix_date (
    pid   INTEGER NOT NULL,
    lo    INTEGER NOT NULL,
    hi    INTEGER NOT NULL,
    rkey  INTEGER NOT NULL,
    grp   INTEGER NOT NULL,
    PRIMARY KEY (pid, lo, hi, rkey, grp)
) WITHOUT ROWID;
CREATE INDEX ix_date_r ON ix_date (rkey, pid);

CREATE TABLE ix_number (
    pid   INTEGER NOT NULL,
    val   REAL NOT NULL,
    lo    REAL NOT NULL,
    hi    REAL NOT NULL,
    rkey  INTEGER NOT NULL,
    grp   INTEGER NOT NULL,
    PRIMARY KEY (pid, val, rkey, grp, lo, hi)
) WITHOUT ROWID;
CREATE INDEX ix_number_r ON ix_number (rkey, pid);

CREATE TABLE ix_quantity (
    pid   INTEGER NOT NULL,
    val   REAL NOT NULL,
    tok   INTEGER NOT NULL,   -- ix_dict (system, code or unit; text: unit)
    lo    REAL NOT NULL,
    hi    REAL NOT NULL,
    rkey  INTEGER NOT NULL,
    grp   INTEGER NOT NULL,
    PRIMARY KEY (pid, val, tok, rkey, grp, lo, hi)
) WITHOUT ROWID;
CREATE INDEX ix_quantity_r ON ix_quantity (rkey, pid);

-- Type/id references; absolute and canonical ones are ix_uri rows
CREATE TABLE ix_reference (
    pid   INTEGER NOT NULL,
    tok   INTEGER NOT NULL,   -- ix_dict (target type, target id)
    rkey  INTEGER NOT NULL,
    grp   INTEGER NOT NULL,
    PRIMARY KEY (pid, tok, rkey, grp)
) WITHOUT ROWID;
CREATE INDEX ix_reference_r ON ix_reference (rkey, pid);

CREATE TABLE ix_uri (
    pid   INTEGER NOT NULL,
    uri   TEXT NOT NULL,
    rkey  INTEGER NOT NULL,
    grp   INTEGER NOT NULL,
    PRIMARY KEY (pid, uri, rkey, grp)
) WITHOUT ROWID;
CREATE INDEX ix_uri_r ON ix_uri (rkey, pid);

-- _text (narrative) and _content (all text) of the current versions; rowid = rkey
-- detail=column: which column a word is in, no positions.  Every search here
-- is words ANDed within one column ("narrative : (...)"), which needs the
-- column but not the positions; detail=none would refuse the column filter,
-- detail=full would store positions nothing uses.
CREATE VIRTUAL TABLE ix_fts USING fts5 (narrative, content, detail = column, columnsize = 0,
                                        tokenize = 'unicode61 remove_diacritics 2');
