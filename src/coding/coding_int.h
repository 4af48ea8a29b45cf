/* coding_int.h - shared by the files of src/coding/. */
#ifndef CK_CODING_INT_H
#define CK_CODING_INT_H

#include "coding/coding.h"

/* One kind of row of an edit table (MCE list, POA-exempt list) and the edit
 * it drives (edits.c). */
struct coding_edit_def {
	const char *kind;       /* as in the file: "Female_Only" */
	char code_type;         /* 'D', 'P', or 0 for either */
	const char *id_d, *id_p;/* the edit's id for a diagnosis / a procedure */
};

extern const struct coding_edit_def coding_edit_defs[];
extern const size_t coding_n_edit_defs;
const struct coding_edit_def *coding_edit_def_find(const char *kind, size_t n);

#endif

/* A concept copied out of the store. */
struct coding_concept {
	char code[STORE_CODE_MAX];
	char parent[STORE_CODE_MAX];
	char display[1024];
	char short_desc[256];
	bool billable;
	int32_t added, terminated;   /* YYYYMMDD, 0: none */
};

/* The version of system to use: version (when not NULL), else the one
 * covering date (YYYY-MM-DD, when not NULL), else the newest.  *found false
 * when there is none. */
int coding_pick_version(struct store *s, const char *system, const char *version, const char *date,
			struct store_code_version *out, bool *found, struct err *e);
/* One code of a version.  *found false when it is not there. */
int coding_concept_get(struct store *s, int64_t vkey, const char *code, struct coding_concept *out,
		       bool *found, struct err *e);
/* A date of service from a FHIR date or dateTime: YYYY-MM-DD in out (the
 * day of its start); -1 if it is neither. */
int coding_date_of(const char *s, char out[11]);
/* YYYY-MM-DD as YYYYMMDD. */
int32_t coding_date_num(const char *d);

/* A type-ahead filter's words, lower case (terminology.c). */
#define CODING_FILTER_WORDS_MAX 8
#define CODING_FILTER_MAX 200
struct coding_words {
	char w[CODING_FILTER_WORDS_MAX][CODING_FILTER_MAX + 1];
	size_t n;
};

/* The ValueSet/$expand filter as an FTS5 query on code_fts for version vkey
 * (appended to q), its words in ws.  0, or 1 when the filter has no words;
 * -1 (ERR_INVALID) for too many words.  Any text gives a query FTS5 accepts
 * (fuzz_codes_filter checks it). */
int coding_filter_fts(const struct coding_system *sys, int64_t vkey, const char *filter, struct buf *q,
		      struct coding_words *ws, struct err *e);

#ifndef CK_CODING_EDIT_NS
#define CODING_EDIT_SYSTEM "https://chartkeep.org/fhir/CodeSystem/coding-edit"
#endif
