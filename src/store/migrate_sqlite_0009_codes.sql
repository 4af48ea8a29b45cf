-- 0009: code sets and coding edits (src/coding/, sqlite_codes.c).
--
-- code_version: one row per loaded (system, version): ICD-10-CM FY2016,
--               HCPCS 2019, MCE v37, ...  eff_from/eff_to are the dates of
--               service it covers (YYYY-MM-DD, both inclusive): a code is
--               valid for a date when a version covering that date holds it.
--               sha256 of the file loaded: loading the same file again is a
--               no-op; a different file replaces the version's rows in one
--               transaction.
-- code_concept: the codes of a version, without dots, in the file's order
--               (cid), with the parent (the nearest enclosing code) and,
--               where the file has them (HCPCS), the code's own added and
--               terminated dates (YYYYMMDD integers, 0: none).  tag is
--               "k<vkey>b<billable>", a token for the full-text index so a
--               search is confined to one version and billable codes come
--               first without a sort.
-- code_fts:     FTS5 over display, code and tag (external content), with
--               prefix indexes of 2, 3 and 6 characters: a type-ahead word is
--               looked up by the longest indexed prefix it has (one doclist,
--               which FTS5 can seek in) and checked whole afterwards, since a
--               prefix no index has makes FTS5 merge the doclists of every
--               term it matches ("unspecif"*: ~40,000 rows) on each query.
-- code_edit:    edit tables (MCE v37 lists, POA-exempt codes): one row per
--               (version, kind, code type, code).
CREATE TABLE code_version (
    vkey      INTEGER PRIMARY KEY,
    system    TEXT NOT NULL,
    version   TEXT NOT NULL,
    eff_from  TEXT NOT NULL,
    eff_to    TEXT NOT NULL,
    source    TEXT NOT NULL,
    sha256    TEXT NOT NULL,
    loaded    INTEGER NOT NULL,
    n_codes   INTEGER NOT NULL,
    n_billable INTEGER NOT NULL,
    UNIQUE (system, version)
);

CREATE TABLE code_concept (
    cid       INTEGER PRIMARY KEY,
    vkey      INTEGER NOT NULL REFERENCES code_version (vkey),
    code      TEXT NOT NULL,
    billable  INTEGER NOT NULL,
    display   TEXT NOT NULL,
    short     TEXT NOT NULL DEFAULT '',
    parent    TEXT NOT NULL DEFAULT '',
    added     INTEGER NOT NULL DEFAULT 0,
    terminated INTEGER NOT NULL DEFAULT 0,
    tag       TEXT NOT NULL
);
CREATE UNIQUE INDEX code_concept_code ON code_concept (vkey, code);

CREATE VIRTUAL TABLE code_fts USING fts5 (
    display, code, tag,
    content = 'code_concept', content_rowid = 'cid',
    tokenize = 'unicode61 remove_diacritics 2',
    prefix = '2 3 6'
);

CREATE TABLE code_edit (
    vkey      INTEGER NOT NULL REFERENCES code_version (vkey),
    kind      TEXT NOT NULL,
    code_type TEXT NOT NULL,     -- 'D' diagnosis, 'P' procedure
    code      TEXT NOT NULL,
    PRIMARY KEY (vkey, code_type, code, kind)
) WITHOUT ROWID;
