/* op.c - the MPI's FHIR operations as the server hands them over:
 * POST /Patient/$merge, POST /Patient/$unmerge (Parameters in, Parameters
 * out).  Parsing of the Parameters body is here (mpi_params_parse, fuzzed
 * by tests/fuzz/fuzz_mpi_params.c); the work is merge.c's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "base/url.h"
#include "fhir/fhir.h"
#include "mpi/mpi.h"
#include "base/banned.h"

void mpi_params_release(struct mpi_params *p)
{
	buf_release(&p->source_ident);
	buf_release(&p->target_ident);
	free(p->result_json);
	json_object_put(p->resource);
	memset(p, 0, sizeof(*p));
}

/* A Patient id from valueReference.reference ("Patient/x" or an absolute
 * URL ending in /Patient/x). */
static int patient_ref(json_object *par, const char *name, char *out, size_t cap, struct err *e)
{
	const char *ref = json_get_str(json_get_obj(par, "valueReference"), "reference");
	const char *p;

	if (!ref)
		return err_set(e, ERR_INVALID, "Parameters: %s needs a valueReference to a Patient", name);
	p = strstr(ref, "Patient/");
	if (!p || (p != ref && (p[-1] != '/' || !strstr(ref, "://"))) || !id_valid(p + 8, strlen(p + 8)) ||
	    strlen(p + 8) >= cap)
		return err_set(e, ERR_INVALID, "Parameters: %s must refer to a Patient (Patient/[id])", name);
	snprintf(out, cap, "%s", p + 8);
	return 0;
}

static int identifier_of(json_object *par, const char *name, struct mpi_params *p, int which,
			 struct err *e)
{
	json_object *id = json_get_obj(par, "valueIdentifier");
	const char *sys = json_get_str(id, "system"), *val = json_get_str(id, "value");
	struct buf *b = which == 0 ? &p->source_ident : &p->target_ident;

	if (!val || !*val)
		return err_set(e, ERR_INVALID, "Parameters: %s needs a valueIdentifier with a value", name);
	buf_reset(b);
	buf_addstr(b, sys ? sys : "");
	buf_addch(b, '|');
	buf_addstr(b, val);
	return b->failed ? err_set(e, ERR_NOMEM, "out of memory") : 0;
}

static int boolean_of(json_object *par, const char *name, bool *out, struct err *e)
{
	json_object *v = json_get(par, "valueBoolean");

	if (!v || !json_object_is_type(v, json_type_boolean))
		return err_set(e, ERR_INVALID, "Parameters: %s needs a valueBoolean", name);
	*out = json_object_get_boolean(v);
	return 0;
}

static int integer_of(json_object *par, const char *name, int *out, struct err *e)
{
	json_object *v = json_get(par, "valueInteger");
	int64_t n;

	if (!v || !json_object_is_type(v, json_type_int))
		return err_set(e, ERR_INVALID, "Parameters: %s needs a valueInteger", name);
	n = json_object_get_int64(v);
	if (n < 1 || n > 1000)
		return err_set(e, ERR_INVALID, "Parameters: %s must be between 1 and 1000", name);
	*out = (int)n;
	return 0;
}

int mpi_params_parse(const char *body, size_t len, int max_depth, struct mpi_params *p,
		     struct err *e)
{
	json_object *root, *pars;
	int rc = -1;

	memset(p, 0, sizeof(*p));
	buf_init(&p->source_ident, 4096);
	buf_init(&p->target_ident, 4096);
	root = json_parse_buf(body, len, max_depth, e);
	if (!root)
		return -1;
	if (!json_is_str(json_get(root, "resourceType"), "Parameters")) {
		err_set(e, ERR_INVALID, "the body must be a Parameters resource");
		goto out;
	}
	pars = json_get(root, "parameter");
	if (pars && !json_object_is_type(pars, json_type_array)) {
		err_set(e, ERR_INVALID, "Parameters.parameter must be an array");
		goto out;
	}
	for (size_t i = 0; pars && i < json_object_array_length(pars); i++) {
		json_object *par = json_object_array_get_idx(pars, i);
		const char *name = json_get_str(par, "name");
		char expr[64];
		int r = 0;
		snprintf(expr, sizeof(expr), "Parameters.parameter[%zu]", i);
		if (!name) {
			err_set(e, ERR_INVALID, "Parameters: every parameter needs a name");
			err_expr(e, expr);
			goto out;
		}
		if (strcmp(name, "source-patient") == 0) {
			r = patient_ref(par, name, p->source, sizeof(p->source), e);
		} else if (strcmp(name, "target-patient") == 0) {
			r = patient_ref(par, name, p->target, sizeof(p->target), e);
		} else if (strcmp(name, "source-patient-identifier") == 0) {
			r = identifier_of(par, name, p, 0, e);
		} else if (strcmp(name, "target-patient-identifier") == 0) {
			r = identifier_of(par, name, p, 1, e);
		} else if (strcmp(name, "preview") == 0) {
			r = boolean_of(par, name, &p->preview, e);
		} else if (strcmp(name, "onlyCertainMatches") == 0) {
			r = boolean_of(par, name, &p->only_certain, e);
		} else if (strcmp(name, "count") == 0) {
			r = integer_of(par, name, &p->count, e);
		} else if (strcmp(name, "result-patient") == 0 || strcmp(name, "resource") == 0) {
			json_object *res = json_get_obj(par, "resource");
			const char *s;
			size_t n;
			if (!res || !json_is_str(json_get(res, "resourceType"), "Patient")) {
				r = err_set(e, ERR_INVALID, "Parameters: %s needs a Patient resource", name);
			} else if (strcmp(name, "resource") == 0) {
				json_object_put(p->resource);
				p->resource = json_object_get(res);
			} else {
				s = json_dump_str(res, &n);
				free(p->result_json);
				p->result_json = strndup(s, n);
				if (!p->result_json)
					r = err_set(e, ERR_NOMEM, "out of memory");
			}
		} else {
			r = err_set(e, ERR_INVALID, "Parameters: unknown parameter '%.64s'", name);
		}
		if (r < 0) {
			err_expr(e, expr);
			goto out;
		}
	}
	rc = 0;
out:
	json_object_put(root);
	if (rc < 0)
		mpi_params_release(p);
	return rc;
}

/* A Patient id from an identifier (system|value): exactly one must match. */
static int resolve_ident(const struct fhir_config *cfg, struct buf *ident, const char *name, char *out,
			 size_t cap, struct err *e)
{
	struct buf q = BUF_INIT(8192);
	char ids[2][ID_MAX + 1];
	size_t n = 0;
	int rc = -1;

	buf_addstr(&q, "identifier=");
	url_encode(&q, buf_cstr(ident));
	if (q.failed) {
		err_set(e, ERR_INVALID, "Parameters: %s is too long", name);
		goto out;
	}
	if (fhir_search_ids(cfg, "Patient", buf_cstr(&q), ids, 1, &n, e) < 0)
		goto out;
	if (n == 0) {
		err_set(e, ERR_NOT_FOUND, "%s: no Patient has this identifier", name);
		goto out;
	}
	if (n > 1) {
		err_set(e, ERR_UNPROCESSABLE, "%s: more than one Patient has this identifier", name);
		goto out;
	}
	snprintf(out, cap, "%s", ids[0]);
	rc = 0;
out:
	buf_release(&q);
	return rc;
}

/* GET /mpi/report[?sample=N] */
static int report(const struct fhir_config *cfg, const struct mpi_op_req *rq, struct fhir_resp *resp)
{
	struct err e = ERR_INIT;
	size_t sample = 500;

	for (size_t i = 0; i < rq->n_params; i++) {
		const char *n = rq->params[i].name, *v = rq->params[i].value;
		char *end;
		unsigned long k;
		if (strcmp(n, "_format") == 0 || strcmp(n, "_pretty") == 0)
			continue;
		if (strcmp(n, "sample") != 0) {
			err_set(&e, ERR_INVALID, "unknown parameter '%.64s' (the report takes sample)", n);
			goto fail;
		}
		k = strtoul(v, &end, 10);
		if (!*v || *end || k > 5000 || v[0] == '-') {
			err_set(&e, ERR_INVALID, "sample: a number of patients from 0 to 5000");
			goto fail;
		}
		sample = k;
	}
	if (mpi_report(cfg, sample, &resp->body, &e) < 0) {
		buf_reset(&resp->body);
		goto fail;
	}
	resp->status = 200;
	return 0;
fail:
	fhir_resp_error(resp, &e);
	return 0;
}

int mpi_operation(const struct fhir_config *cfg, const struct mpi_op_req *rq, struct fhir_resp *resp)
{
	struct mpi_params p;
	struct mpi_merge_out mo;
	struct err e = ERR_INIT;
	int rc;

	memset(&mo, 0, sizeof(mo));
	resp->status = 0;
	buf_reset(&resp->body);
	if (rq->op == MPI_OP_REPORT)
		return report(cfg, rq, resp);
	if (mpi_params_parse(rq->body, rq->body_len, cfg->max_depth, &p, &e) < 0)
		goto fail;
	if (rq->op == MPI_OP_MATCH) {
		struct fhir_issues iss;
		if (p.source[0] || p.target[0] || p.source_ident.len || p.target_ident.len || p.result_json ||
		    p.preview) {
			err_set(&e, ERR_INVALID, "Parameters: $match takes resource, onlyCertainMatches and count");
			goto fail_p;
		}
		if (!p.resource) {
			err_set(&e, ERR_INVALID, "Parameters: resource (the Patient to match) is required");
			goto fail_p;
		}
		fhir_issues_init(&iss);
		if (fhir_validate(p.resource, "Patient", &iss) > 0) {
			mpi_params_release(&p);
			fhir_resp_issues(resp, 400, &iss);
			return 0;
		}
		if (mpi_match(cfg, p.resource, p.count ? (size_t)p.count : 10, p.only_certain, rq->base,
			      rq->visible, rq->visible_ctx, &resp->body, &e) < 0) {
			buf_reset(&resp->body);
			goto fail_p;
		}
		mpi_params_release(&p);
		resp->status = 200;
		return 0;
	}
	if ((p.source_ident.len && p.source[0]) || (p.target_ident.len && p.target[0])) {
		err_set(&e, ERR_INVALID, "Parameters: give a patient by reference or by identifier, not both");
		goto fail_p;
	}
	if (p.source_ident.len &&
	    resolve_ident(cfg, &p.source_ident, "source-patient-identifier", p.source, sizeof(p.source), &e) < 0)
		goto fail_p;
	if (p.target_ident.len &&
	    resolve_ident(cfg, &p.target_ident, "target-patient-identifier", p.target, sizeof(p.target), &e) < 0)
		goto fail_p;
	if (!p.source[0] || !p.target[0]) {
		err_set(&e, ERR_INVALID, "Parameters: %s is required",
			!p.source[0] ? "source-patient (or source-patient-identifier)"
				     : "target-patient (or target-patient-identifier)");
		goto fail_p;
	}
	if (rq->op == MPI_OP_UNMERGE && p.result_json) {
		err_set(&e, ERR_INVALID, "Parameters: $unmerge takes no result-patient");
		goto fail_p;
	}
	if (rq->op == MPI_OP_MERGE)
		rc = mpi_merge(cfg, rq->who, rq->ai, p.source, p.target, p.result_json, p.preview, &resp->body,
			       &mo, &e);
	else
		rc = mpi_unmerge(cfg, rq->who, rq->ai, p.source, p.target, p.preview, &resp->body, &mo, &e);
	mpi_params_release(&p);
	if (rc < 0) {
		buf_reset(&resp->body);
		fhir_resp_error(resp, &e);
	} else {
		resp->status = 200;
	}
	return mo.audited ? 1 : 0;
fail_p:
	mpi_params_release(&p);
fail:
	fhir_resp_error(resp, &e);
	return 0;
}
