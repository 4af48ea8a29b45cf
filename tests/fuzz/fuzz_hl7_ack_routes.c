/* fuzz_hl7_ack_routes.c - libFuzzer: serve --mllp-ack-to destination lists.
 *
 * hl7_ack_routes_parse() must not crash on any text, leave nothing behind
 * when it refuses (n == 0), and every destination it accepts must be
 * usable: an application, a host, a port 1-65535, all NUL-terminated.  The
 * lookup is run with the input's own halves as MSH-3 and MSH-4. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "hl7v2/hl7v2.h"
#include "base/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hl7_ack_routes *r = malloc(sizeof(*r));
	struct err e = ERR_INIT;
	char *s = malloc(size + 1);

	if (!r || !s || size > 8192)
		goto out;
	memcpy(s, data, size);
	s[size] = '\0';
	if (hl7_ack_routes_parse(s, r, &e) < 0) {
		if (r->n != 0 || e.code != ERR_INVALID || !e.msg[0])
			abort();
		goto out;
	}
	for (size_t i = 0; i < r->n; i++) {
		int port = atoi(r->v[i].port);
		if (!r->v[i].app[0] || !r->v[i].host[0] || port < 1 || port > 65535)
			abort();
		if (!memchr(r->v[i].fac, 0, sizeof(r->v[i].fac)) || !memchr(r->v[i].app, 0, sizeof(r->v[i].app)))
			abort();
	}
	{
		size_t half = size / 2;
		char *app = s, *fac = s + half;
		const struct hl7_ack_route *rt;
		char keep = s[half];
		s[half] = '\0';
		rt = hl7_ack_route_find(r, app, keep ? fac + 1 : fac);
		if (rt && (rt < r->v || rt >= r->v + r->n))
			abort();
	}
out:
	free(r);
	free(s);
	return 0;
}
