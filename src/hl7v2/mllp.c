/* mllp.c - the Minimal Lower Layer Protocol framer: <VT> message <FS><CR>
 * (HL7 v2 Transport Specification: MLLP, release 2).
 *
 * Bytes arrive in any pieces; a frame is handed out once its end block is
 * in.  Senders are not always tidy, so: bytes between frames are skipped
 * (and counted); a start block inside a frame means the frame before it was
 * cut off, and it is dropped; an end block without its CR still ends the
 * frame; a frame larger than the limit is dropped up to its end and
 * reported, so the listener can answer it with a rejection instead of
 * closing on the sender. */
#include <string.h>

#include "base/base.h"
#include "hl7v2/hl7v2.h"
#include "base/banned.h"

void hl7_mllp_init(struct hl7_mllp *f, size_t max_frame)
{
	memset(f, 0, sizeof(*f));
	buf_init(&f->in, 0);
	f->max_frame = max_frame;
}

void hl7_mllp_release(struct hl7_mllp *f)
{
	buf_release(&f->in);
}

int hl7_mllp_feed(struct hl7_mllp *f, const void *p, size_t n)
{
	/* drop what was handed out before growing */
	if (f->pos && (f->pos == f->in.len || f->pos > f->in.len / 2)) {
		memmove(f->in.data, f->in.data + f->pos, f->in.len - f->pos);
		f->in.len -= f->pos;
		f->pos = 0;
	}
	buf_add(&f->in, p, n);
	return f->in.failed ? -1 : 0;
}

int hl7_mllp_next(struct hl7_mllp *f, const char **msg, size_t *len)
{
	char *d = f->in.data;
	size_t n = f->in.len;

	for (;;) {
		const char *sb, *eb;
		size_t start, end;

		if (f->pos >= n)
			return 0;
		if (!f->in_frame) {
			sb = memchr(d + f->pos, HL7_MLLP_SB, n - f->pos);
			for (size_t i = f->pos; i < (sb ? (size_t)(sb - d) : n); i++)
				if (d[i] != '\r' && d[i] != '\n')
					f->junk++;
			if (!sb) {
				f->pos = n;
				return 0;
			}
			f->pos = (size_t)(sb - d) + 1;
			f->in_frame = true;
			f->oversized = false;
		}
		start = f->pos;
		eb = memchr(d + start, HL7_MLLP_EB, n - start);
		sb = memchr(d + start, HL7_MLLP_SB, (eb ? (size_t)(eb - d) : n) - start);
		if (sb) {
			/* a new frame before this one ended: this one was cut off */
			f->junk += (size_t)(sb - (d + start)) + 1;
			f->pos = (size_t)(sb - d) + 1;
			f->oversized = false;
			continue;
		}
		if (!eb) {
			if (n - start > f->max_frame) {
				/* too large: forget it, keep looking for its end */
				f->oversized = true;
				f->in.len = start;
				if (f->pos > f->in.len)
					f->pos = f->in.len;
			}
			return 0;
		}
		end = (size_t)(eb - d);
		f->pos = end + 1;
		if (f->pos < n && d[f->pos] == HL7_MLLP_CR)
			f->pos++;
		f->in_frame = false;
		if (f->oversized || end - start > f->max_frame) {
			f->oversized = false;
			return 2;
		}
		*msg = d + start;
		*len = end - start;
		return 1;
	}
}

void hl7_mllp_wrap(const char *text, size_t n, struct buf *out)
{
	buf_addch(out, HL7_MLLP_SB);
	buf_add(out, text, n);
	buf_addch(out, HL7_MLLP_EB);
	buf_addch(out, HL7_MLLP_CR);
}
