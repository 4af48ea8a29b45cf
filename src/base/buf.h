/* buf.h - growable byte buffer with a hard size cap.
 *
 * Everything chartkeep builds incrementally (JSON output, SQL text, HTTP
 * bodies) goes through struct buf.  A buffer never grows past `max`; an
 * append that would, or an allocation failure, sets the sticky `failed` flag
 * and every later append is a no-op.  Callers check the flag once, at the end
 * (as SQLite does with its out-of-memory flag).
 *
 * Lifecycle: buf_init() / buf_release() for an embedded buffer; buf_detach()
 * hands the NUL-terminated data to the caller, who frees it with free(). */
#ifndef CK_BUF_H
#define CK_BUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

struct buf {
	char *data;   /* NUL-terminated when len > 0 or after buf_cstr() */
	size_t len;
	size_t cap;
	size_t max;   /* hard cap on len, 0 means BUF_DEFAULT_MAX */
	bool failed;  /* sticky: the cap was hit or malloc failed */
};

#define BUF_DEFAULT_MAX ((size_t)1 << 30)
#define BUF_INIT(m) { NULL, 0, 0, (m), false }

void buf_init(struct buf *b, size_t max);
void buf_release(struct buf *b);
/* Empty the buffer but keep its memory and its cap; clears `failed`. */
void buf_reset(struct buf *b);
/* Make room for `extra` more bytes; returns 0, or -1 (and sets failed). */
int buf_grow(struct buf *b, size_t extra);
void buf_add(struct buf *b, const void *p, size_t n);
void buf_addstr(struct buf *b, const char *s);
void buf_addch(struct buf *b, char c);
void buf_addf(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void buf_vaddf(struct buf *b, const char *fmt, va_list ap);
/* Append s as the body of a JSON string (no surrounding quotes). */
void buf_add_json_str(struct buf *b, const char *s, size_t n);
/* Drop the last n bytes (or everything if n > len). */
void buf_truncate(struct buf *b, size_t len);
/* Always returns a NUL-terminated string ("" for an empty buffer). */
const char *buf_cstr(struct buf *b);
/* Take ownership of malloc'd data[0..len] (NUL-terminated); the buffer's
 * previous contents are released. */
void buf_attach(struct buf *b, char *data, size_t len);
/* Hand the data to the caller (malloc'd, NUL-terminated, never NULL unless
 * the buffer failed); the buffer is left empty.  *len_out may be NULL. */
char *buf_detach(struct buf *b, size_t *len_out);

#endif
