/* arena.h - memory for one lifetime (an HTTP request, an HL7 message, an
 * import batch).
 *
 * Allocate freely, never free one piece: arena_reset() at the top of the loop
 * or arena_release() at the end gives everything back at once.  Copy what must
 * outlive the arena.  An allocation past `max` bytes returns NULL and sets the
 * sticky `failed` flag. */
#ifndef CK_ARENA_H
#define CK_ARENA_H

#include <stdbool.h>
#include <stddef.h>

struct arena_chunk;

struct arena {
	struct arena_chunk *head;
	size_t used;   /* bytes handed out since the last reset */
	size_t max;    /* 0: unlimited */
	bool failed;
};

void arena_init(struct arena *a, size_t max);
void arena_release(struct arena *a);
/* Keep the first chunk for reuse, drop the rest. */
void arena_reset(struct arena *a);
void *arena_alloc(struct arena *a, size_t n);   /* 16-byte aligned */
char *arena_strndup(struct arena *a, const char *s, size_t n);
char *arena_strdup(struct arena *a, const char *s);
char *arena_printf(struct arena *a, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
