/* fuzz_mllp.c - libFuzzer: the MLLP framer, fed the input in pieces whose
 * sizes come from the input itself; every frame handed out lies inside
 * what was fed and holds no frame bytes. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base/base.h"
#include "hl7v2/hl7v2.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hl7_mllp f;
	size_t i = 0, max = size ? (size_t)data[0] * 4 + 1 : 1;

	hl7_mllp_init(&f, max);
	while (i < size) {
		size_t n = (size_t)(data[i] & 0x3f) + 1;
		const char *msg;
		size_t len;
		int r;

		if (n > size - i)
			n = size - i;
		hl7_mllp_feed(&f, data + i, n);
		i += n;
		while ((r = hl7_mllp_next(&f, &msg, &len)) != 0) {
			if (r == 1 && (len > max || memchr(msg, HL7_MLLP_SB, len) || memchr(msg, HL7_MLLP_EB, len)))
				__builtin_trap();
		}
	}
	hl7_mllp_release(&f);
	return 0;
}
