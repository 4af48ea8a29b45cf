/* fuzz_hl7v2.c - libFuzzer: the HL7 v2 parser, the accessor, unescaping, the
 * JSON dump, the ACK built for whatever was (or was not) parsed, and the
 * mapping to a FHIR transaction Bundle (which must be valid JSON). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base/base.h"
#include "hl7v2/hl7v2.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const paths[] = { "MSH-9.2", "PID-5[2].1", "OBX(3)-5", "PID-3[1].4.2", "MSH-2" };
	const char *text = (const char *)data;
	struct hl7_span sp;
	size_t pos = 0;
	struct arena a;
	struct buf b = BUF_INIT(1 << 24);

	arena_init(&a, 64u << 20);
	while (hl7_next_message(text, size, &pos, &sp) == 1) {
		struct hl7_msg m;
		struct err e = ERR_INIT;
		int rc;

		if (sp.off + sp.len > size)
			__builtin_trap();
		arena_reset(&a);
		buf_reset(&b);
		rc = hl7_parse(text + sp.off, sp.len, &a, &m, &e);
		/* an ACK is made for every message, parsed or not */
		hl7_ack_build(m.nsegs ? &m : NULL, rc ? HL7_AR : HL7_AA, NULL, "1", 0, &b);
		/* and the application ACK of enhanced mode (the feed's) */
		if (m.nsegs) {
			struct hl7_ack_err ae = { "207", "x", "", 0, 0, 'E' };
			hl7_app_ack_build(&m, rc ? HL7_AE : HL7_AA, rc ? &ae : NULL, "CKA1AA", 0, &b);
		}
		if (rc < 0)
			continue;
		hl7_dump_json(&m, &b);
		for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
			hl7_get_str(&m, paths[i], &b, &e);
		{
			struct hl7_ack_err ae;
			int ack;
			if (hl7_map_check(&m, &ae, &ack) == 0) {
				struct buf fb = BUF_INIT(1 << 24);
				if (hl7_map_bundle(&m, &fb, NULL, &e) == 0) {
					struct err je = ERR_INIT;
					json_object *o = json_parse_buf(fb.data, fb.len, 0, &je);
					if (!o)
						__builtin_trap(); /* the mapper made bad JSON */
					json_object_put(o);
				}
				buf_release(&fb);
				{
					struct buf sq = BUF_INIT(1 << 20), tq = BUF_INIT(1 << 20);
					hl7_map_merge(&m, &sq, &tq, &e);
					buf_release(&sq);
					buf_release(&tq);
				}
			}
		}
		for (size_t s = 0; s < m.nsegs; s++)
			for (size_t f = 0; f < m.segs[s].nf; f++) {
				struct hl7_span fs = hl7_field(&m, s, f);
				if (fs.off + fs.len > m.len)
					__builtin_trap();
			}
	}
	arena_release(&a);
	buf_release(&b);
	return 0;
}
