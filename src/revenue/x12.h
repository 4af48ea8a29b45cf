/* x12.h - the X12 5010 engine: tokeniser, loop recognition, validation to
 * a 999 / TA1, JSON out and back.
 *
 * Everything streams.  A reader hands out one segment at a time from a file
 * descriptor (or memory) through a fixed window, whatever the size of the
 * input; the engine keeps, per transaction set, only the loop stack of the
 * guide (a few counters per level) and writes its JSON and acknowledgement
 * as it goes.  Memory is flat on batches of any size.
 *
 * Loops, segments, element names, types, code lists and syntax notes come
 * from the implementation-guide tables generated at build time
 * (x12_int.h, tools/gen_x12.c). */
#ifndef CK_X12_H
#define CK_X12_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "base/buf.h"
#include "base/err.h"

#define X12_MAX_ELEMENTS 256           /* elements in one segment */
#define X12_MAX_SEGMENT (1u << 20)     /* bytes in one segment */

struct x12_delims {
	char ele;     /* element separator (ISA, 4th byte) */
	char rep;     /* repetition separator (ISA11), 0 before 5010 */
	char comp;    /* component separator (ISA16) */
	char seg;     /* segment terminator */
};

/* One segment, pointing into the reader's window: valid until the next call
 * of x12_reader_next. */
struct x12_seg {
	const char *p;          /* the segment, without its terminator */
	size_t len;
	char id[4];             /* NUL-terminated segment id ("" if none) */
	unsigned n;             /* elements after the id */
	uint32_t sep[X12_MAX_ELEMENTS + 2]; /* element i is p[sep[i]+1 .. sep[i+1]) */
	const char *suffix;     /* CR/LF after the terminator */
	size_t suffix_len;
	uint64_t offset;        /* of the segment in the input */
	bool terminated;        /* false: the input ended inside it */
};

/* Element i (1-based) of s as a span; empty when absent. */
static inline const char *x12_ele(const struct x12_seg *s, unsigned i, size_t *len)
{
	if (i == 0 || i > s->n) {
		*len = 0;
		return "";
	}
	*len = s->sep[i + 1] - s->sep[i] - 1;
	return s->p + s->sep[i] + 1;
}

/* TA1 note codes (TA105) the reader and engine use. */
enum x12_ta1 {
	X12_TA1_OK = 0,
	X12_TA1_CONTROL_MISMATCH = 1,  /* ISA13 and IEA02 differ */
	X12_TA1_BAD_TERMINATOR = 4,
	X12_TA1_BAD_DATE = 14,
	X12_TA1_BAD_TIME = 15,
	X12_TA1_BAD_VERSION = 17,
	X12_TA1_BAD_CONTROL = 18,
	X12_TA1_BAD_GROUP_COUNT = 21,
	X12_TA1_BAD_STRUCTURE = 22,
	X12_TA1_EOF = 23,              /* premature end of file */
	X12_TA1_BAD_CONTENT = 24,
	X12_TA1_BAD_ELE_SEP = 26,
	X12_TA1_BAD_COMP_SEP = 27,
};

struct x12_reader {
	int fd;                 /* -1 for memory input */
	char *buf;              /* the window (fd input) */
	const char *data;       /* the window's bytes */
	size_t cap, start, end;
	bool eof;
	uint64_t base;          /* input offset of data[0] */
	struct x12_delims d;
	bool in_isa;            /* between ISA and IEA */
	bool at_start;          /* nothing read yet */
	bool failed;            /* sticky: an error stopped the reader */
	int ta1;                /* enum x12_ta1 of the last error */
	uint64_t bytes;         /* consumed so far */
	char isa[106];          /* the last ISA met (even a bad one), for the TA1 */
	bool have_isa;
	bool bad_isa;           /* the error is in (or cuts short) an ISA */
};

/* Read from fd (not owned) through a window of window bytes (0: 4 MiB). */
int x12_reader_init_fd(struct x12_reader *r, int fd, size_t window, struct err *e);
/* Read n bytes at p (not copied: p must outlive the reader). */
void x12_reader_init_mem(struct x12_reader *r, const char *p, size_t n);
void x12_reader_release(struct x12_reader *r);
/* The next segment: 1, 0 at the end of the input, or -1 with e set (and
 * r->ta1 the TA1 note code when the envelope is at fault): not X12, a bad
 * ISA, garbage after an IEA, a truncated segment, an I/O error.  After -1
 * the reader stops.  CR/LF after a terminator is the segment's suffix, so
 * that the input can be written back byte for byte. */
int x12_reader_next(struct x12_reader *r, struct x12_seg *s, struct err *e);

/* ---- the engine ---- */

/* What the engine hands a sink: containers open and close around segments,
 * from the interchange down to the guide's loops. */
enum x12_level { X12_L_INTERCHANGE, X12_L_GROUP, X12_L_TRANSACTION, X12_L_LOOP };

struct x12_node;
struct x12_map;

struct x12_sink {
	void *u;
	/* A container opens: kind is enum x12_level; id is the loop id, the
	 * control number, or the guide; name the guide's name (may be "").
	 * d: the interchange's delimiters (interchange level only). */
	void (*open)(void *u, int kind, const char *id, size_t id_len, const char *name,
		     const struct x12_delims *d, const char *guide);
	/* A segment; node is the guide's segment (NULL when unrecognised). */
	void (*segment)(void *u, const struct x12_seg *s, const struct x12_node *node,
			const struct x12_delims *d);
	void (*close)(void *u, int kind);
};

struct x12_opts {
	const char *now;        /* "CCYYMMDDHHMM" for the acknowledgements; NULL: the clock */
	uint32_t ack_control;   /* first control number of the acknowledgements (0: 1) */
	FILE *ack_out;          /* where 999/TA1 go, flushed per interchange (NULL: none) */
	bool no_validate;       /* structure only (x12 parse) */
};

struct x12_stats {
	uint64_t bytes, segments, interchanges, groups, transactions;
	uint64_t accepted, rejected;  /* transaction sets: IK5 A, IK5 R */
	uint64_t groups_rejected; /* AK9 other than A */
	uint64_t ta1_errors;    /* interchanges with a TA1 other than accepted */
	uint64_t errors;        /* IK3/IK4/IK5/AK9/TA1 problems found */
};

/* Read every interchange of r, calling sink (may be NULL) and writing the
 * acknowledgements to o->ack_out.  Problems in the data are findings (in the
 * stats and the 999/TA1), not failures; messages naming the interchange,
 * transaction, segment position, loop and element go to diag (may be NULL),
 * one a line.  Returns 0, or -1 with e set when the input cannot be read at
 * all (an I/O error, or no ISA at its start). */
int x12_process(struct x12_reader *r, const struct x12_sink *sink, const struct x12_opts *o,
		struct x12_stats *st, FILE *diag, struct err *e);

/* ---- JSON ---- */

/* A sink writing the interchanges as JSON to out (see docs/x12.md); call
 * x12_json_finish after x12_process.  Output is flushed as it grows. */
struct x12_json;
struct x12_json *x12_json_new(FILE *out);
/* Close the document; returns 0, or -1 with e set on a write error. */
int x12_json_finish(struct x12_json *j, struct err *e);
void x12_json_free(struct x12_json *j);
void x12_json_sink(struct x12_json *j, struct x12_sink *sink);

/* JSON text (as x12 parse writes it, or the short forms of docs/x12.md)
 * back to X12, appended to out.  With our_delims, the standard delimiters
 * (* ^ : ~ and a newline) replace the sender's.  Segment counts (SE01,
 * GE01, IEA01) and trailer control numbers are recomputed.  -1 with e set
 * (naming the JSON path) when the JSON is not an interchange. */
int x12_encode_json(const char *json, size_t len, bool our_delims, struct buf *out, struct err *e);

#endif
