/* fuzz_codes_filter.c - libFuzzer: the ValueSet/$expand filter (the words a
 * coder types) as an FTS5 query (coding_filter_fts).  Whatever the text, the
 * query must be one FTS5 accepts: a filter is text, never query syntax. */
#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "coding/coding_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static sqlite3 *db;
static sqlite3_stmt *st;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const systems[] = { "icd10cm", "icd10pcs", "hcpcs", NULL };
	struct coding_words ws;
	char *filter;

	if (!db) {
		if (sqlite3_open(":memory:", &db) != SQLITE_OK ||
		    sqlite3_exec(db, "CREATE VIRTUAL TABLE code_fts USING fts5(display, code, tag, "
				     "tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3 6');"
				     "INSERT INTO code_fts VALUES ('Fracture of neck of right femur', 'S72001A', 'k1');",
				 NULL, NULL, NULL) != SQLITE_OK ||
		    sqlite3_prepare_v2(db, "SELECT rowid FROM code_fts WHERE code_fts MATCH ?1", -1, &st, NULL) !=
			    SQLITE_OK)
			abort();
	}
	if (size > CODING_FILTER_MAX)
		return 0; /* longer filters are refused before this */
	filter = malloc(size + 1);
	if (!filter)
		return 0;
	memcpy(filter, data, size);
	filter[size] = '\0';
	for (const char *const *name = systems; *name; name++) {
		struct buf q = BUF_INIT(0);
		struct err e = ERR_INIT;
		int rc = coding_filter_fts(coding_system_by_name(*name), 1, filter, &q, &ws, &e), step;

		if (rc == 0) {
			sqlite3_bind_text(st, 1, buf_cstr(&q), -1, SQLITE_STATIC);
			while ((step = sqlite3_step(st)) == SQLITE_ROW)
				;
			if (step != SQLITE_DONE)
				__builtin_trap(); /* the filter made a query FTS5 refuses */
			sqlite3_reset(st);
		} else if (rc < 0 && !e.msg[0]) {
			__builtin_trap();
		}
		buf_release(&q);
	}
	free(filter);
	return 0;
}
