/* fuzz_time.c - libFuzzer: FHIR date/time parsing and ETag parsing. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/time.h"
#include "fhir/fhir_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s;
	int64_t vid;

	for (int k = TIME_DATE; k <= TIME_TIME; k++) {
		struct time_val v;
		if (time_parse((const char *)data, size, (enum time_kind)k, &v) == 0 && v.hi_ms <= v.lo_ms)
			__builtin_trap(); /* a value always denotes a non-empty range */
	}
	s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (fhir_parse_etag(s, &vid) == 0 && vid <= 0)
		__builtin_trap();
	free(s);
	return 0;
}
