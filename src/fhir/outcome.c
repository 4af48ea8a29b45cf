/* outcome.c - issues, OperationOutcome, and the error -> HTTP status map. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "fhir/fhir.h"
#include "base/banned.h"

void fhir_issues_init(struct fhir_issues *iss)
{
	iss->n = 0;
	iss->dropped = 0;
	iss->errors = 0;
	iss->status = 0;
}

void fhir_issue_add(struct fhir_issues *iss, int severity, const char *code, const char *expr,
		    const char *fmt, ...)
{
	struct fhir_issue *it;
	va_list ap;

	if (severity <= FHIR_ERROR)
		iss->errors++;
	if (iss->n == FHIR_MAX_ISSUES) {
		iss->dropped++;
		return;
	}
	it = &iss->v[iss->n++];
	it->severity = severity;
	it->code = code;
	va_start(ap, fmt);
	vsnprintf(it->msg, sizeof(it->msg), fmt, ap);
	va_end(ap);
	snprintf(it->expr, sizeof(it->expr), "%s", expr ? expr : "");
}

const char *fhir_issue_code(int err_code)
{
	switch (err_code) {
	case ERR_INVALID: return "invalid";
	case ERR_UNPROCESSABLE: return "processing";
	case ERR_NOT_FOUND: return "not-found";
	case ERR_GONE: return "deleted";
	case ERR_CONFLICT: return "conflict";
	case ERR_PRECONDITION: return "conflict";
	case ERR_UNAUTHENTICATED: return "login";
	case ERR_FORBIDDEN: return "forbidden";
	case ERR_TOO_LARGE: return "too-long";
	case ERR_MEDIA_TYPE:
	case ERR_NOT_ACCEPTABLE:
	case ERR_METHOD:
	case ERR_NOT_SUPPORTED: return "not-supported";
	case ERR_UNAVAILABLE: return "transient";
	default: return "exception";
	}
}

int fhir_http_status(int err_code)
{
	switch (err_code) {
	case ERR_NONE: return 200;
	case ERR_INVALID: return 400;
	case ERR_UNPROCESSABLE: return 422;
	case ERR_NOT_FOUND: return 404;
	case ERR_GONE: return 410;
	case ERR_CONFLICT: return 409;
	case ERR_PRECONDITION: return 412;
	case ERR_UNAUTHENTICATED: return 401;
	case ERR_FORBIDDEN: return 403;
	case ERR_TOO_LARGE: return 413;
	case ERR_MEDIA_TYPE: return 415;
	case ERR_NOT_ACCEPTABLE: return 406;
	case ERR_METHOD: return 405;
	case ERR_NOT_SUPPORTED: return 501;
	case ERR_UNAVAILABLE: return 503;
	default: return 500;
	}
}

void fhir_issues_from_err(struct fhir_issues *iss, const struct err *e)
{
	int sev = e->code == ERR_NONE ? FHIR_INFORMATION : FHIR_ERROR;

	fhir_issue_add(iss, sev, e->code == ERR_NONE ? "informational" : fhir_issue_code(e->code),
		       e->expr, "%s", e->msg[0] ? e->msg : "error");
}

static const char *severity_name(int s)
{
	static const char *const names[] = { "fatal", "error", "warning", "information" };
	return s >= 0 && s <= FHIR_INFORMATION ? names[s] : "error";
}

void fhir_outcome_write(const struct fhir_issues *iss, struct buf *out)
{
	buf_addstr(out, "{\"resourceType\":\"OperationOutcome\",\"issue\":[");
	for (size_t i = 0; i < iss->n; i++) {
		const struct fhir_issue *it = &iss->v[i];
		if (i)
			buf_addch(out, ',');
		buf_addf(out, "{\"severity\":\"%s\",\"code\":\"%s\",\"diagnostics\":\"",
			 severity_name(it->severity), it->code ? it->code : "processing");
		buf_add_json_str(out, it->msg, strlen(it->msg));
		buf_addch(out, '"');
		if (it->expr[0]) {
			buf_addstr(out, ",\"expression\":[\"");
			buf_add_json_str(out, it->expr, strlen(it->expr));
			buf_addstr(out, "\"]");
		}
		buf_addch(out, '}');
	}
	if (iss->dropped) {
		if (iss->n)
			buf_addch(out, ',');
		buf_addf(out, "{\"severity\":\"information\",\"code\":\"informational\","
			      "\"diagnostics\":\"%zu further issues not shown\"}", iss->dropped);
	}
	if (iss->n == 0 && iss->dropped == 0)
		buf_addstr(out, "{\"severity\":\"information\",\"code\":\"informational\","
				"\"diagnostics\":\"ok\"}");
	buf_addstr(out, "]}");
}
