/* x12_tok.c - the X12 tokeniser: delimiters from each ISA, one segment at
 * a time through a fixed window.
 *
 * The ISA is fixed-width (106 bytes with its terminator), so its 4th byte is
 * the element separator, byte 83 (ISA11) the repetition separator (5010 and
 * later; "U" before), byte 105 (ISA16) the component separator and byte 106
 * the segment terminator.  Every interchange of a file may use its own.
 * The window is refilled (the unread tail moved to the front) only when a
 * segment does not end inside it, so a segment is never copied. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "revenue/x12.h"
#include "base/banned.h"

#define ISA_LEN 106
#define DEFAULT_WINDOW ((size_t)4 << 20)

/* Where the element separator must be in a fixed-width ISA. */
static const uint8_t isa_seps[16] = { 3,  6,  17, 20, 31, 34, 50, 53,
				      69, 76, 81, 83, 89, 99, 101, 103 };

int x12_reader_init_fd(struct x12_reader *r, int fd, size_t window, struct err *e)
{
	memset(r, 0, sizeof(*r));
	r->fd = fd;
	r->cap = window ? window : DEFAULT_WINDOW;
	if (r->cap < 2 * X12_MAX_SEGMENT)
		r->cap = 2 * X12_MAX_SEGMENT;
	r->buf = malloc(r->cap);
	if (!r->buf)
		return err_set(e, ERR_NOMEM, "out of memory");
	r->data = r->buf;
	r->at_start = true;
	return 0;
}

void x12_reader_init_mem(struct x12_reader *r, const char *p, size_t n)
{
	memset(r, 0, sizeof(*r));
	r->fd = -1;
	r->data = p;
	r->end = n;
	r->eof = true;
	r->at_start = true;
}

void x12_reader_release(struct x12_reader *r)
{
	free(r->buf);
	r->buf = NULL;
}

/* Move the unread bytes to the front and read more.  Returns 1 when bytes
 * were added, 0 at the end of the input, -1 on an I/O error. */
static int refill(struct x12_reader *r, struct err *e)
{
	ssize_t n;

	if (r->eof)
		return 0;
	if (r->start == 0 && r->end == r->cap) {
		err_set(e, ERR_INVALID, "a segment is longer than the read window");
		return -1;
	}
	if (r->start > 0) {
		memmove(r->buf, r->buf + r->start, r->end - r->start);
		r->base += r->start;
		r->end -= r->start;
		r->start = 0;
	}
	for (;;) {
		n = read(r->fd, r->buf + r->end, r->cap - r->end);
		if (n >= 0 || errno != EINTR)
			break;
	}
	if (n < 0) {
		err_set(e, ERR_IO, "cannot read the input: %s", strerror(errno));
		return -1;
	}
	if (n == 0) {
		r->eof = true;
		return 0;
	}
	r->end += (size_t)n;
	return 1;
}

/* Make at least want bytes available from start (fewer only at the end). */
static int ensure(struct x12_reader *r, size_t want, struct err *e)
{
	while (r->end - r->start < want) {
		int rc = refill(r, e);

		if (rc <= 0)
			return rc;
	}
	return 1;
}

static int fail(struct x12_reader *r, struct err *e, int ta1, int code, const char *fmt,
		unsigned long long off)
	__attribute__((format(printf, 5, 0)));

/* Stop the reader for good with e set (fmt takes the byte offset). */
static int fail(struct x12_reader *r, struct err *e, int ta1, int code, const char *fmt,
		unsigned long long off)
{
	char msg[ERR_MSG_MAX];

	r->ta1 = ta1;
	r->eof = true;
	r->start = r->end;
	r->in_isa = false;
	r->failed = true;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	snprintf(msg, sizeof(msg), fmt, off);
#pragma GCC diagnostic pop
	err_set(e, code, "%s", msg);
	return -1;
}

static bool is_delim_char(char c)
{
	/* a delimiter must not be able to occur in data: no letters, digits or
	 * space */
	return c != 0 && !isalnum((unsigned char)c) && c != ' ';
}

/* Read the delimiters from the ISA at data[start]; 0 or -1 with e set. */
static int read_isa(struct x12_reader *r, struct err *e)
{
	const char *p = r->data + r->start;
	unsigned long long off = (unsigned long long)(r->base + r->start);
	char ele = p[3];

	if (!is_delim_char(ele))
		return fail(r, e, X12_TA1_BAD_ELE_SEP, ERR_INVALID,
			    "the ISA at byte %llu has an invalid element separator", off);
	if (p[104] == ele)
		return fail(r, e, X12_TA1_BAD_COMP_SEP, ERR_INVALID,
			    "the ISA at byte %llu has an invalid component separator (ISA16)", off);
	for (size_t i = 0; i < sizeof(isa_seps); i++)
		if (p[isa_seps[i]] != ele)
			return fail(r, e, X12_TA1_BAD_STRUCTURE, ERR_INVALID,
				    "the ISA at byte %llu is not 106 characters of fixed-width elements",
				    off);
	for (size_t i = 4; i < ISA_LEN - 1; i++) {
		bool sep = memchr(isa_seps, (int)i, sizeof(isa_seps)) != NULL;

		if (!sep && p[i] == ele)
			return fail(r, e, X12_TA1_BAD_STRUCTURE, ERR_INVALID,
				    "the ISA at byte %llu is not 106 characters of fixed-width elements",
				    off);
	}
	r->d.ele = ele;
	r->d.comp = p[104];
	r->d.seg = p[105];
	/* ISA11 is the repetition separator from 00501 on; before, "U" */
	r->d.rep = memcmp(p + 84, "00501", 5) >= 0 ? p[82] : 0;
	if (!is_delim_char(r->d.seg) || r->d.seg == ele)
		return fail(r, e, X12_TA1_BAD_TERMINATOR, ERR_INVALID,
			    "the ISA at byte %llu has an invalid segment terminator", off);
	if (!is_delim_char(r->d.comp) || r->d.comp == ele || r->d.comp == r->d.seg)
		return fail(r, e, X12_TA1_BAD_COMP_SEP, ERR_INVALID,
			    "the ISA at byte %llu has an invalid component separator (ISA16)", off);
	if (r->d.rep && (!is_delim_char(r->d.rep) || r->d.rep == ele || r->d.rep == r->d.seg ||
			 r->d.rep == r->d.comp))
		/* 5010 has no TA1 code of its own for this: X12 RFI 1497 says 022 */
		return fail(r, e, X12_TA1_BAD_STRUCTURE, ERR_INVALID,
			    "the ISA at byte %llu has an invalid repetition separator (ISA11)", off);
	return 0;
}

static bool is_ws(char c)
{
	return c == '\r' || c == '\n';
}

int x12_reader_next(struct x12_reader *r, struct x12_seg *s, struct err *e)
{
	const char *p, *t;
	size_t scan = 0, len;
	int rc;

	if (r->failed)
		return -1;
	if (!r->in_isa) {
		/* between interchanges: only an ISA may come */
		rc = ensure(r, ISA_LEN, e);
		if (rc < 0)
			return fail(r, e, 0, ERR_IO, "cannot read the input at byte %llu",
				    (unsigned long long)(r->base + r->start));
		if (r->start == r->end) {
			if (r->at_start)
				return fail(r, e, 0, ERR_INVALID, "the input is empty (%llu bytes)", 0);
			return 0;
		}
		p = r->data + r->start;
		if (r->end - r->start < 3 || memcmp(p, "ISA", 3) != 0) {
			if (r->at_start)
				return fail(r, e, 0, ERR_INVALID,
					    "not an X12 interchange: byte %llu is not the start of an ISA",
					    (unsigned long long)(r->base + r->start));
			return fail(r, e, X12_TA1_BAD_STRUCTURE, ERR_INVALID,
				    "data after the IEA at byte %llu is not an interchange",
				    (unsigned long long)(r->base + r->start));
		}
		if (r->end - r->start < ISA_LEN) {
			memset(r->isa, ' ', ISA_LEN);
			memcpy(r->isa, p, r->end - r->start);
			r->have_isa = r->bad_isa = true;
			return fail(r, e, X12_TA1_EOF, ERR_INVALID,
				    "the input ends inside the ISA at byte %llu",
				    (unsigned long long)(r->base + r->start));
		}
		memcpy(r->isa, p, ISA_LEN);
		r->have_isa = true;
		if (read_isa(r, e) < 0) {
			r->bad_isa = true;
			return -1;
		}
		r->in_isa = true;
	}
	r->at_start = false;
	/* find the terminator, refilling while it is not in the window */
	for (;;) {
		p = r->data + r->start;
		t = memchr(p + scan, r->d.seg, r->end - r->start - scan);
		if (t)
			break;
		scan = r->end - r->start;
		if (scan > X12_MAX_SEGMENT)
			return fail(r, e, X12_TA1_BAD_STRUCTURE, ERR_INVALID,
				    "the segment at byte %llu is longer than 1 MiB",
				    (unsigned long long)(r->base + r->start));
		rc = refill(r, e);
		if (rc < 0)
			return -1;
		if (rc == 0) {
			if (r->start == r->end)
				return fail(r, e, X12_TA1_EOF, ERR_INVALID,
					    "the input ends at byte %llu before the IEA",
					    (unsigned long long)(r->base + r->start));
			return fail(r, e, X12_TA1_EOF, ERR_INVALID,
				    "the input ends inside the segment at byte %llu (no terminator)",
				    (unsigned long long)(r->base + r->start));
		}
	}
	len = (size_t)(t - p);
	/* the suffix (CR/LF) may run past the window */
	for (;;) {
		size_t k = len + 1;

		while (r->start + k < r->end && is_ws(r->data[r->start + k]) &&
		       r->data[r->start + k] != r->d.seg)
			k++;
		if (r->start + k < r->end || r->eof)
			break;
		rc = refill(r, e);
		if (rc < 0)
			return -1;
	}
	p = r->data + r->start;
	s->p = p;
	s->len = len;
	s->offset = r->base + r->start;
	s->terminated = true;
	s->suffix = p + len + 1;
	s->suffix_len = 0;
	while (r->start + len + 1 + s->suffix_len < r->end && is_ws(s->suffix[s->suffix_len]) &&
	       s->suffix[s->suffix_len] != r->d.seg)
		s->suffix_len++;
	/* split the elements */
	s->n = 0;
	{
		/* a plain loop: elements are short, a call per element costs more */
		unsigned n = 0;
		const char ele = r->d.ele;

		s->sep[0] = 0;
		for (size_t i = 0; i < len; i++) {
			if (p[i] != ele)
				continue;
			if (n == X12_MAX_ELEMENTS)
				return fail(r, e, X12_TA1_BAD_STRUCTURE, ERR_INVALID,
					    "the segment at byte %llu has more than 256 elements",
					    (unsigned long long)s->offset);
			s->sep[++n] = (uint32_t)i;
		}
		/* sep[1] is the end of the id; element i runs from sep[i]+1 to
		 * sep[i+1] */
		s->sep[n + 1] = (uint32_t)len;
		s->n = n;
	}
	{
		size_t idl = s->sep[1];

		memset(s->id, 0, sizeof(s->id));
		if (idl >= 2 && idl <= 3)
			memcpy(s->id, p, idl);
	}
	r->start += len + 1 + s->suffix_len;
	r->bytes = r->base + r->start;
	if (memcmp(s->id, "IEA", 4) == 0)
		r->in_isa = false;
	return 1;
}
