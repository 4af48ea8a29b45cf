/* fuzz_codes_pos.c - libFuzzer: the place-of-service CodeSystem JSON (coding_parse; the check is
 * fuzz_codes_common.h's). */
#include "fuzz_codes_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const systems[] = { "pos", NULL };

	return fuzz_codes_parse(systems, data, size);
}
