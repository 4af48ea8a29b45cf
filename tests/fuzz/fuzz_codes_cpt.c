/* fuzz_codes_cpt.c - libFuzzer: the site's CPT CSV (coding_parse; the check is
 * fuzz_codes_common.h's). */
#include "fuzz_codes_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const systems[] = { "cpt", NULL };

	return fuzz_codes_parse(systems, data, size);
}
