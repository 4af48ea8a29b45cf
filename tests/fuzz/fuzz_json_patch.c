/* fuzz_json_patch.c - libFuzzer target for JSON Patch and JSON Pointer.
 *
 * The input is a document and a patch, split at the first NUL byte or
 * newline, each parsed with json_parse_buf().  A document that does not parse
 * is patched as JSON null; a patch that does not parse is used instead as a
 * JSON Pointer into the document.  Beyond "no crash, no leak" the target
 * checks that the caller's document is never changed, applied or not, and
 * that a result equals itself. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/json.h"
#include "base/json_patch.h"
#include "base/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *dup_text(json_object *o, size_t *n)
{
	const char *s = json_dump_str(o, n);
	char *p = malloc(*n + 1);

	if (!p)
		abort();
	memcpy(p, s, *n + 1);
	return p;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	struct err e = ERR_INIT;
	json_object *doc, *patch, *out = NULL;
	size_t cut = 0, rest_n, before_n, after_n;
	const char *rest;
	char *before, *after;
	int rc;

	while (cut < size && s[cut] != '\0' && s[cut] != '\n')
		cut++;
	rest = cut < size ? s + cut + 1 : s + size;
	rest_n = cut < size ? size - cut - 1 : 0;

	doc = json_parse_buf(s, cut, 0, &e);
	before = dup_text(doc, &before_n);
	patch = json_parse_buf(rest, rest_n, 0, &e);
	if (!patch) {
		/* not a patch: try the text as a pointer */
		char *ptr = malloc(rest_n + 1);
		if (!ptr)
			abort();
		memcpy(ptr, rest, rest_n);
		ptr[rest_n] = '\0';
		json_pointer_resolve(doc, ptr, &e);
		free(ptr);
	} else {
		rc = json_patch_apply_ex(doc, patch, &out, &e);
		if (rc == 0) {
			size_t n;
			if (e.code != ERR_NONE)
				abort();
			json_dump_str(out, &n);
			if (!json_patch_equal(out, out))
				abort();
			json_object_put(out);
		} else if (out || (e.code != ERR_INVALID && e.code != ERR_UNPROCESSABLE &&
				   e.code != ERR_NOMEM) || e.msg[0] == '\0') {
			abort();
		}
	}
	after = dup_text(doc, &after_n);
	if (before_n != after_n || memcmp(before, after, before_n) != 0)
		abort(); /* the caller's document changed */
	free(before);
	free(after);
	json_object_put(doc);
	json_object_put(patch);
	return 0;
}
