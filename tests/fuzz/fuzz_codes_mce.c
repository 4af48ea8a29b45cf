/* fuzz_codes_mce.c - libFuzzer: the MCE edit lists and the POA-exempt list (coding_parse; the check is
 * fuzz_codes_common.h's). */
#include "fuzz_codes_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const systems[] = { "mce", "poa-exempt", NULL };

	return fuzz_codes_parse(systems, data, size);
}
