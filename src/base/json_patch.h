/* json_patch.h - RFC 6902 JSON Patch and RFC 6901 JSON Pointer over json-c.
 *
 * Used by FHIR PATCH (application/json-patch+json).  A patch never touches the
 * caller's document: it is applied to a deep copy, so a patch that fails
 * part-way leaves nothing behind (the copy is freed) and the caller's tree is
 * unchanged.  json-c's deep copy keeps each parsed number's original text, so
 * a decimal such as 7.50 still serialises as 7.50 after patching.
 *
 * JSON null is a NULL json_object * in json-c.  That is why the primary entry
 * point, json_patch_apply_ex(), returns the result through an out parameter,
 * and why json_pointer_resolve() clears e: a NULL return with e->code ==
 * ERR_NONE means "present, and null".
 *
 * Messages name the failing operation by its 0-based position in the patch
 * array and its op, then the pointer, e.g.
 *     patch operation 2 (replace): path "/name/5" does not exist
 * They quote pointers (escaped, cut at 80 bytes) but never values, so a failed
 * "test" does not echo patient data back to the client. */
#ifndef CK_JSON_PATCH_H
#define CK_JSON_PATCH_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"
#include "json.h"

/* An add, replace, copy or move may not nest a value deeper than this (counted
 * as json-c's parser counts: a scalar or an empty container is one level), so
 * that what a patch puts in a document parses again at json_parse_buf()'s
 * default depth. */
#define JSON_PATCH_MAX_DEPTH JSON_DEFAULT_MAX_DEPTH
/* "copy" can double a document with each operation, so a 4 KB patch could
 * otherwise build gigabytes.  The values copied by all the copy operations of
 * one patch may hold at most this many JSON values (about 5 MB of json-c
 * objects), far more than any FHIR PATCH copies. */
#define JSON_PATCH_MAX_COPY_NODES ((size_t)1 << 16)

/*
 * Apply patch (a JSON array of operations) to doc.  doc is only read; on
 * success *out receives a new tree the caller owns (json_object_put), which
 * may be NULL when the patched document is JSON null.  Returns 0, or -1 with
 * *out = NULL and e set:
 *   ERR_INVALID        the patch document itself is malformed: not an array,
 *                      an operation that is not an object, an unknown "op", a
 *                      missing or non-string "path"/"from", a missing "value",
 *                      a "path"/"from" that is not a JSON Pointer.  The whole
 *                      patch is checked before any operation runs, so a
 *                      malformed patch always reports ERR_INVALID.
 *   ERR_UNPROCESSABLE  a well-formed patch cannot be applied: a path that does
 *                      not exist, an array index out of range or not a valid
 *                      index ("01", "-" other than for add), "test" failing,
 *                      "move" into its own child, removing the root, a result
 *                      nested deeper than JSON_PATCH_MAX_DEPTH, or copies
 *                      beyond JSON_PATCH_MAX_COPY_NODES.
 *   ERR_NOMEM          allocation failed.
 * Unknown members of an operation object are ignored (RFC 6902 section 4).
 * Values taken from the patch are copied: the result shares nothing with
 * either argument.
 */
int json_patch_apply_ex(json_object *doc, json_object *patch, json_object **out,
			struct err *e);

/* Same as json_patch_apply_ex(), returning the new tree or NULL with e set.
 * A patch whose result is JSON null also returns NULL, with e->code ==
 * ERR_NONE; use json_patch_apply_ex() where that can matter. */
json_object *json_patch_apply(json_object *doc, json_object *patch, struct err *e);

/*
 * RFC 6901: resolve the NUL-terminated pointer ptr against doc.  Returns a
 * borrowed reference into doc (no reference is taken), or NULL:
 *   e->code == ERR_NONE       the value exists and is JSON null;
 *   e->code == ERR_INVALID    ptr is not a JSON Pointer ("a", "/~2");
 *   e->code == ERR_NOT_FOUND  nothing there (member absent, index out of
 *                             range or not a valid index, "-").
 * e may be NULL when the caller does not need to tell these apart.
 */
json_object *json_pointer_resolve(json_object *doc, const char *ptr, struct err *e);

/* Is p[0..n) a syntactically valid JSON Pointer ("" or "/..." with every '~'
 * followed by '0' or '1')? */
bool json_pointer_valid(const char *p, size_t n);

/*
 * JSON equality as RFC 6902 "test" uses it: same type; strings byte for byte;
 * numbers by mathematical value whatever their spelling (1 == 1.0 == 1e0,
 * 7.5 == 7.50); arrays element by element in order; objects with the same
 * set of names, each with equal values, in any order; null == null.
 * Neither argument is modified.  Comparing decimals allocates a little; if
 * that fails the answer is false (json_patch_apply_ex reports ERR_NOMEM).
 */
bool json_patch_equal(json_object *a, json_object *b);

#endif
