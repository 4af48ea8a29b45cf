/* err.h - the one error type.
 *
 * A failing function returns -1 and fills a struct err: a code (what kind of
 * failure, which each edge maps once to an HTTP status, an HL7 ACK code or a
 * CLI exit status), a short message that is safe to show a client (never
 * patient data), an optional FHIRPath-style expression naming the element at
 * fault, and a detail that goes only to the log. */
#ifndef CK_ERR_H
#define CK_ERR_H

enum err_code {
	ERR_NONE = 0,
	ERR_INVALID,         /* malformed input: 400 */
	ERR_UNPROCESSABLE,   /* well-formed but breaks a rule: 422 */
	ERR_NOT_FOUND,       /* 404 */
	ERR_GONE,            /* deleted: 410 */
	ERR_CONFLICT,        /* 409 */
	ERR_PRECONDITION,    /* If-Match and friends: 412 */
	ERR_UNAUTHENTICATED, /* 401 */
	ERR_FORBIDDEN,       /* 403 */
	ERR_TOO_LARGE,       /* 413 */
	ERR_MEDIA_TYPE,      /* unsupported content type: 415 */
	ERR_NOT_ACCEPTABLE,  /* 406 */
	ERR_METHOD,          /* method not allowed: 405 */
	ERR_NOT_SUPPORTED,   /* not implemented: 501 */
	ERR_UNAVAILABLE,     /* shutting down, busy: 503 */
	ERR_IO,              /* files, sockets */
	ERR_DB,              /* the store failed */
	ERR_NOMEM,
	ERR_INTERNAL,
	ERR__COUNT
};

#define ERR_MSG_MAX 256
#define ERR_EXPR_MAX 192
#define ERR_DETAIL_MAX 256

struct err {
	int code;
	char msg[ERR_MSG_MAX];       /* for the client */
	char expr[ERR_EXPR_MAX];     /* element path, e.g. Patient.name[0].given[1] */
	char detail[ERR_DETAIL_MAX]; /* for the log only */
};

#define ERR_INIT { ERR_NONE, "", "", "" }

void err_clear(struct err *e);
/* Set code and client message; returns -1 so callers can `return err_set(...)`. */
int err_set(struct err *e, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Log-only detail (may name files, SQL errors; never patient data). */
void err_detail(struct err *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void err_expr(struct err *e, const char *expr);
/* Stable lower-case name of a code, for logs and tests ("invalid", ...). */
const char *err_code_name(int code);

#endif
