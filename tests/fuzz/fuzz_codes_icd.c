/* fuzz_codes_icd.c - libFuzzer: ICD-10-CM and ICD-10-PCS order files and TSVs (coding_parse; the check is
 * fuzz_codes_common.h's). */
#include "fuzz_codes_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const systems[] = { "icd10cm", "icd10pcs", NULL };

	return fuzz_codes_parse(systems, data, size);
}
