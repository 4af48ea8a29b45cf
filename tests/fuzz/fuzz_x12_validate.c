/* fuzz_x12_validate.c - libFuzzer: the whole X12 engine (envelopes, loop
 * recognition, validation, the 999/TA1) with the JSON sink, then the
 * encoder on the JSON it wrote.  The JSON must parse back, and a file the
 * engine accepts without findings must round-trip byte for byte. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "revenue/x12.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct x12_reader r;
	struct x12_opts o = { 0 };
	struct x12_stats st;
	struct x12_sink sink;
	struct err e = ERR_INIT;
	char *json = NULL, *ack = NULL;
	size_t jlen = 0, alen = 0;
	FILE *jf = open_memstream(&json, &jlen), *af = open_memstream(&ack, &alen);
	struct x12_json *j = x12_json_new(jf);
	struct buf out = BUF_INIT(0);
	int rc;

	if (!jf || !af || !j)
		abort();
	x12_json_sink(j, &sink);
	o.now = "202601011200";
	o.ack_out = af;
	x12_reader_init_mem(&r, (const char *)data, size);
	rc = x12_process(&r, &sink, &o, &st, NULL, &e);
	x12_reader_release(&r);
	if (rc == 0 && x12_json_finish(j, &e) < 0)
		abort();
	fclose(jf);
	fclose(af);
	if (rc == 0) {
		if (x12_encode_json(json, jlen, false, &out, &e) < 0) {
			/* the JSON must at least be JSON */
			if (strstr(e.msg, "line") && strstr(e.msg, "column"))
				__builtin_trap();
		} else if (st.errors == 0 && st.ta1_errors == 0 &&
			   (out.len != size || memcmp(out.data, data, size) != 0)) {
			__builtin_trap();
		}
	}
	buf_release(&out);
	x12_json_free(j);
	free(json);
	free(ack);
	return 0;
}
