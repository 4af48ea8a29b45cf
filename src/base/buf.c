/* buf.c - growable byte buffer with a hard size cap (see buf.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "banned.h"

void buf_init(struct buf *b, size_t max)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max ? max : BUF_DEFAULT_MAX;
	b->failed = false;
}

void buf_release(struct buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
	b->failed = false;
}

void buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
	b->failed = false;
}

int buf_grow(struct buf *b, size_t extra)
{
	size_t max = b->max ? b->max : BUF_DEFAULT_MAX;
	size_t need, ncap;
	char *p;

	if (b->failed)
		return -1;
	if (extra > max || b->len > max - extra) {
		b->failed = true;
		return -1;
	}
	need = b->len + extra + 1; /* room for the NUL */
	if (need <= b->cap)
		return 0;
	ncap = b->cap ? b->cap : 64;
	while (ncap < need)
		ncap = ncap < ((size_t)1 << 62) ? ncap * 2 : need;
	p = realloc(b->data, ncap);
	if (!p) {
		b->failed = true;
		return -1;
	}
	b->data = p;
	b->cap = ncap;
	return 0;
}

void buf_add(struct buf *b, const void *p, size_t n)
{
	if (n == 0 || buf_grow(b, n) < 0)
		return;
	memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void buf_addstr(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

void buf_addch(struct buf *b, char c)
{
	if (buf_grow(b, 1) < 0)
		return;
	b->data[b->len++] = c;
	b->data[b->len] = '\0';
}

void buf_vaddf(struct buf *b, const char *fmt, va_list ap)
{
	va_list cp;
	int n;

	if (b->failed)
		return;
	va_copy(cp, ap);
	n = vsnprintf(NULL, 0, fmt, cp);
	va_end(cp);
	if (n < 0) {
		b->failed = true;
		return;
	}
	if (buf_grow(b, (size_t)n) < 0)
		return;
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
}

void buf_addf(struct buf *b, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	buf_vaddf(b, fmt, ap);
	va_end(ap);
}

void buf_add_json_str(struct buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t i, run = 0;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		const char *esc = NULL;
		char u[6];

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		buf_add(b, s + run, i - run);
		run = i + 1;
		switch (c) {
		case '"': esc = "\\\""; break;
		case '\\': esc = "\\\\"; break;
		case '\n': esc = "\\n"; break;
		case '\r': esc = "\\r"; break;
		case '\t': esc = "\\t"; break;
		default:
			u[0] = '\\'; u[1] = 'u'; u[2] = '0'; u[3] = '0';
			u[4] = hex[c >> 4]; u[5] = hex[c & 15];
			buf_add(b, u, 6);
			continue;
		}
		buf_addstr(b, esc);
	}
	buf_add(b, s + run, n - run);
}

void buf_truncate(struct buf *b, size_t len)
{
	if (len < b->len) {
		b->len = len;
		b->data[len] = '\0';
	}
}

const char *buf_cstr(struct buf *b)
{
	return b->data ? b->data : "";
}

void buf_attach(struct buf *b, char *data, size_t len)
{
	free(b->data);
	b->data = data;
	b->len = len;
	b->cap = len + 1;
	b->failed = false;
}

char *buf_detach(struct buf *b, size_t *len_out)
{
	char *p;

	if (b->failed) {
		buf_release(b);
		if (len_out)
			*len_out = 0;
		return NULL;
	}
	if (!b->data && buf_grow(b, 0) < 0)
		return NULL;
	if (b->len == 0)
		b->data[0] = '\0';
	p = b->data;
	if (len_out)
		*len_out = b->len;
	b->data = NULL;
	b->len = b->cap = 0;
	return p;
}
