/* fuzz_codes_common.h - the one check every code-set file fuzz target makes
 * (coding_parse): a parse either fails with a message naming a line or gives
 * codes that are well-formed, described, and no more billable than there are
 * codes; and code normalisation takes any text.  Each fuzz_codes_<format>.c
 * names the systems whose parser its input goes to. */
#ifndef FUZZ_CODES_COMMON_H
#define FUZZ_CODES_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "coding/coding.h"

static int fuzz_codes_parse(const char *const *systems, const uint8_t *data, size_t size)
{
	for (const char *const *name = systems; *name; name++) {
		const struct coding_system *sys = coding_system_by_name(*name);
		struct coding_set cs;
		struct err e = ERR_INIT;

		coding_set_init(&cs);
		if (coding_parse(sys, "37", (const char *)data, size, &cs, &e) == 0) {
			if (cs.billable > cs.n || (cs.n == 0 && cs.m == 0))
				__builtin_trap();
			for (size_t i = 0; i < cs.n; i++) {
				char norm[STORE_CODE_MAX];
				if (!cs.c[i].display[0] || coding_code_norm(sys, cs.c[i].code, strlen(cs.c[i].code),
									       norm, &e) < 0 ||
				    strcmp(norm, cs.c[i].code) != 0)
					__builtin_trap();
			}
		} else if (!e.msg[0]) {
			__builtin_trap(); /* a failure always says why */
		}
		coding_set_release(&cs);
		{
			char norm[STORE_CODE_MAX];
			coding_code_norm(sys, (const char *)data, size < 64 ? size : 64, norm, &e);
		}
	}
	return 0;
}

#endif
