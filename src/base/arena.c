/* arena.c - bump allocator in chunks (see arena.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "banned.h"

struct arena_chunk {
	struct arena_chunk *next;
	size_t size;
	size_t off;
	_Alignas(16) unsigned char mem[];
};

#define CHUNK_MIN 8192

void arena_init(struct arena *a, size_t max)
{
	a->head = NULL;
	a->used = 0;
	a->max = max;
	a->failed = false;
}

void arena_release(struct arena *a)
{
	struct arena_chunk *c = a->head, *next;

	while (c) {
		next = c->next;
		free(c);
		c = next;
	}
	a->head = NULL;
	a->used = 0;
	a->failed = false;
}

void arena_reset(struct arena *a)
{
	struct arena_chunk *c, *next;

	if (!a->head)
		return;
	/* The oldest chunk is last in the list; keep it, free the others. */
	c = a->head;
	while (c->next) {
		next = c->next;
		free(c);
		c = next;
	}
	c->off = 0;
	a->head = c;
	a->used = 0;
	a->failed = false;
}

void *arena_alloc(struct arena *a, size_t n)
{
	struct arena_chunk *c = a->head;
	size_t need = (n + 15) & ~(size_t)15;
	void *p;

	if (a->failed || need < n)
		return NULL;
	if (a->max && (need > a->max || a->used > a->max - need)) {
		a->failed = true;
		return NULL;
	}
	if (!c || c->size - c->off < need) {
		size_t size = need > CHUNK_MIN ? need : CHUNK_MIN;
		c = malloc(sizeof(*c) + size);
		if (!c) {
			a->failed = true;
			return NULL;
		}
		c->size = size;
		c->off = 0;
		c->next = a->head;
		a->head = c;
	}
	p = c->mem + c->off;
	c->off += need;
	a->used += need;
	return p;
}

char *arena_strndup(struct arena *a, const char *s, size_t n)
{
	char *p = arena_alloc(a, n + 1);

	if (!p)
		return NULL;
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *arena_strdup(struct arena *a, const char *s)
{
	return arena_strndup(a, s, strlen(s));
}

char *arena_printf(struct arena *a, const char *fmt, ...)
{
	va_list ap;
	int n;
	char *p;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return NULL;
	p = arena_alloc(a, (size_t)n + 1);
	if (!p)
		return NULL;
	va_start(ap, fmt);
	vsnprintf(p, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return p;
}
