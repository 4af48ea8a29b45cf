/* fuzz_labels.c - libFuzzer: sensitivity labels from JSON text.
 *
 * privacy_labels_of_json() scans a resource's text without parsing it.  It
 * must not crash or read past the input, and must never see less than the
 * json-c version (privacy_labels_of) sees in the same resource: where they
 * differ, the scan must be the more restrictive one (it fails closed). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "privacy/policy.h"
#include "base/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct privacy_labels text, tree;
	struct err e = ERR_INIT;
	json_object *o;
	char *s;

	if (size > 65536)
		return 0;
	/* an exact-size copy, so that ASan catches any read past the end */
	s = malloc(size ? size : 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	if (privacy_labels_of_json(s, size, &text) < 0 &&
	    (text.conf != PCONF_V || text.cats != PCAT__ALL))
		__builtin_trap();
	o = json_parse_buf(s, size, 0, &e);
	if (o && json_object_is_type(o, json_type_object) && json_get(o, "resourceType")) {
		privacy_labels_of(o, &tree);
		if (text.conf < tree.conf || (tree.cats & ~text.cats))
			__builtin_trap();
	}
	json_object_put(o);
	free(s);
	return 0;
}
