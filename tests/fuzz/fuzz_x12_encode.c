/* fuzz_x12_encode.c - libFuzzer: the X12 encoder on arbitrary JSON.  It
 * either writes X12 or refuses with a message; it never writes a value
 * holding one of the delimiters it uses. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base/base.h"
#include "revenue/x12.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf out = BUF_INIT(1 << 24);
	struct err e = ERR_INIT;
	int rc = x12_encode_json((const char *)data, size, size % 2 == 0, &out, &e);

	if (rc < 0 && !e.msg[0])
		__builtin_trap(); /* a refusal always says why */
	if (rc == 0 && size % 2 == 0) {
		/* our delimiters: each segment ends with ~ and a newline */
		if (out.len && (out.len < 2 || out.data[out.len - 1] != '\n' || out.data[out.len - 2] != '~'))
			__builtin_trap();
	}
	buf_release(&out);
	return 0;
}
