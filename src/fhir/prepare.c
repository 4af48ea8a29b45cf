/* prepare.c - split a resource into the fragments the store assembles.
 *
 * The store writes {"resourceType","id","meta":{versionId,lastUpdated,...},
 * ...} itself, so that version and time are set in the same place they are
 * decided.  Here the resource loses resourceType, id, meta.versionId and
 * meta.lastUpdated (which a client may send but never decides), and the rest
 * is serialised once: the other meta members and the other top-level members,
 * in the client's order. */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "fhir/fhir.h"
#include "mpi/mpi.h"
#include "fhir/search.h"
#include "base/banned.h"

void fhir_prepared_init(struct fhir_prepared *p)
{
	p->type[0] = '\0';
	p->id[0] = '\0';
	buf_init(&p->meta_rest, 0);
	buf_init(&p->body, 0);
	memset(p->chash, 0, sizeof(p->chash));
	p->ix = NULL;
	p->n_ix = 0;
	p->ixrows = NULL;
}

void fhir_prepared_release(struct fhir_prepared *p)
{
	buf_release(&p->meta_rest);
	buf_release(&p->body);
	if (p->ixrows) {
		fhir_ixrows_release(p->ixrows);
		free(p->ixrows);
		p->ixrows = NULL;
	}
	p->ix = NULL;
	p->n_ix = 0;
}

/* Serialise o's members except those in skip[], without the braces. */
static void members(json_object *o, const char *const *skip, struct buf *out)
{
	bool first = true;

	json_object_object_foreach(o, key, val) {
		bool skipped = false;
		for (const char *const *k = skip; *k; k++)
			if (strcmp(key, *k) == 0)
				skipped = true;
		if (skipped)
			continue;
		if (!first)
			buf_addch(out, ',');
		first = false;
		json_dump_member(key, val, out);
	}
}

int fhir_prepare(struct fhir_params *params, json_object *res, const char *id,
		 struct fhir_prepared *p, struct err *e)
{
	static const char *const top_skip[] = { "resourceType", "id", "meta", NULL };
	static const char *const meta_skip[] = { "versionId", "lastUpdated", NULL };
	const char *rt = json_get_str(res, "resourceType");
	json_object *meta = json_get_obj(res, "meta");
	crypto_generichash_state h;

	if (!rt || !id)
		return err_set(e, ERR_INTERNAL, "prepare: no type or id");
	/* a SearchParameter takes effect when written: refuse one we cannot use */
	if (params && strcmp(rt, "SearchParameter") == 0 && fhir_sp_check(res, e) < 0)
		return -1;
	snprintf(p->type, sizeof(p->type), "%s", rt);
	snprintf(p->id, sizeof(p->id), "%s", id);
	buf_reset(&p->meta_rest);
	buf_reset(&p->body);
	if (meta)
		members(meta, meta_skip, &p->meta_rest);
	members(res, top_skip, &p->body);
	if (p->meta_rest.failed || p->body.failed)
		return err_set(e, ERR_NOMEM, "out of memory");
	crypto_generichash_init(&h, NULL, 0, sizeof(p->chash));
	crypto_generichash_update(&h, (const unsigned char *)buf_cstr(&p->meta_rest), p->meta_rest.len);
	crypto_generichash_update(&h, (const unsigned char *)"", 1);
	crypto_generichash_update(&h, (const unsigned char *)buf_cstr(&p->body), p->body.len);
	crypto_generichash_final(&h, p->chash, sizeof(p->chash));
	p->ix = NULL;
	p->n_ix = 0;
	if (params) {
		int rc;
		if (!p->ixrows) {
			p->ixrows = malloc(sizeof(struct fhir_ixrows));
			if (!p->ixrows)
				return err_set(e, ERR_NOMEM, "out of memory");
			fhir_ixrows_init(p->ixrows);
		}
		fhir_params_rdlock(params);
		rc = fhir_index(params, res, p->ixrows, e);
		fhir_params_unlock(params);
		if (rc < 0)
			return -1;
		p->ix = ((struct fhir_ixrows *)p->ixrows)->v;
		p->n_ix = ((struct fhir_ixrows *)p->ixrows)->n;
	}
	return 0;
}

void fhir_prepared_op(const struct fhir_prepared *p, struct store_op *op)
{
	op->type = p->type;
	op->id = p->id;
	op->meta_rest = p->meta_rest.data;
	op->meta_rest_len = p->meta_rest.len;
	op->body = p->body.data;
	op->body_len = p->body.len;
	memcpy(op->chash, p->chash, sizeof(op->chash));
	op->ix = p->ix;
	op->n_ix = p->n_ix;
}

void fhir_after_commit(const struct fhir_config *cfg, const struct store_txn *t)
{
	struct err e = ERR_INIT;
	bool touched = false;

	if (!t || (t->atomic && t->rc < 0))
		return;
	if (cfg->mpi_incr)
		mpi_incr_push(cfg->mpi_incr, t);
	if (!cfg->params)
		return;
	for (size_t i = 0; i < t->n && !touched; i++) {
		const struct store_op *op = &t->ops[i];
		touched = op->status && !op->noop && op->type && op->kind != STORE_REINDEX &&
			  strcmp(op->type, "SearchParameter") == 0;
	}
	if (touched && fhir_params_reload(cfg->params, cfg->store, &e) < 0)
		log_error("event=search_params_reload_failed detail=\"%s\"", e.msg);
}
