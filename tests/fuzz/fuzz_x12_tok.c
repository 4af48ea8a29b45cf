/* fuzz_x12_tok.c - libFuzzer: the X12 tokeniser.  Every segment it hands
 * out lies inside the input, its elements inside the segment, and an error
 * always says why. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "revenue/x12.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct x12_reader r;
	struct x12_seg s;
	struct err e = ERR_INIT;
	const char *p = (const char *)data;
	int rc;

	x12_reader_init_mem(&r, p, size);
	while ((rc = x12_reader_next(&r, &s, &e)) == 1) {
		if (s.p < p || s.p + s.len > p + size)
			__builtin_trap();
		for (unsigned i = 1; i <= s.n; i++) {
			size_t n;
			const char *v = x12_ele(&s, i, &n);

			if (v < s.p || v + n > s.p + s.len || memchr(v, r.d.ele, n))
				__builtin_trap();
		}
		if (s.suffix + s.suffix_len > p + size)
			__builtin_trap();
	}
	if (rc < 0 && !e.msg[0])
		__builtin_trap();
	x12_reader_release(&r);
	return 0;
}
