/* err.c - the one error type (see err.h). */
#include <stdarg.h>
#include <stdio.h>

#include "err.h"
#include "banned.h"

void err_clear(struct err *e)
{
	e->code = ERR_NONE;
	e->msg[0] = e->expr[0] = e->detail[0] = '\0';
}

int err_set(struct err *e, int code, const char *fmt, ...)
{
	va_list ap;

	if (!e)
		return -1;
	e->code = code;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	e->expr[0] = '\0';
	e->detail[0] = '\0';
	return -1;
}

void err_detail(struct err *e, const char *fmt, ...)
{
	va_list ap;

	if (!e)
		return;
	va_start(ap, fmt);
	vsnprintf(e->detail, sizeof(e->detail), fmt, ap);
	va_end(ap);
}

void err_expr(struct err *e, const char *expr)
{
	if (e)
		snprintf(e->expr, sizeof(e->expr), "%s", expr ? expr : "");
}

const char *err_code_name(int code)
{
	static const char *const names[ERR__COUNT] = {
		[ERR_NONE] = "none",
		[ERR_INVALID] = "invalid",
		[ERR_UNPROCESSABLE] = "unprocessable",
		[ERR_NOT_FOUND] = "not-found",
		[ERR_GONE] = "gone",
		[ERR_CONFLICT] = "conflict",
		[ERR_PRECONDITION] = "precondition-failed",
		[ERR_UNAUTHENTICATED] = "unauthenticated",
		[ERR_FORBIDDEN] = "forbidden",
		[ERR_TOO_LARGE] = "too-large",
		[ERR_MEDIA_TYPE] = "unsupported-media-type",
		[ERR_NOT_ACCEPTABLE] = "not-acceptable",
		[ERR_METHOD] = "method-not-allowed",
		[ERR_NOT_SUPPORTED] = "not-supported",
		[ERR_UNAVAILABLE] = "unavailable",
		[ERR_IO] = "io",
		[ERR_DB] = "db",
		[ERR_NOMEM] = "no-memory",
		[ERR_INTERNAL] = "internal",
	};

	if (code < 0 || code >= ERR__COUNT || !names[code])
		return "unknown";
	return names[code];
}
