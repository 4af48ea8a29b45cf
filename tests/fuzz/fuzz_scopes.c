/* fuzz_scopes.c - libFuzzer: SMART scope strings.
 *
 * privacy_scopes_parse() must not crash on any text; when it accepts one,
 * the allocation-free scan the decision point runs on every request
 * (policy_scopes_allow_text) must agree with the parsed form for every
 * action on a few types and the system level. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "privacy/policy.h"
#include "privacy/policy_int.h"
#include "base/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const types[] = { "Patient", "Observation", "AuditEvent", "Claim", NULL };
	struct privacy_scopes *sc;
	struct err e = ERR_INIT;
	char *s;

	if (size > 4096)
		return 0;
	s = malloc(size + 1);
	sc = malloc(sizeof(*sc));
	if (!s || !sc)
		goto out;
	memcpy(s, data, size);
	s[size] = '\0';
	if (privacy_scopes_parse(s, sc, &e) == 0) {
		for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
			int ti = types[t] ? policy_type_index(types[t]) : (int)policy_n_types();
			for (int a = PA_READ; a <= PA_CAPABILITIES; a++) {
				int want = privacy_scopes_allow(sc, a, types[t]);
				int got = policy_scopes_allow_text(s, a, ti, true);
				if (want != got)
					__builtin_trap();
			}
		}
	} else if (!e.msg[0]) {
		__builtin_trap();
	}
out:
	free(sc);
	free(s);
	return 0;
}
