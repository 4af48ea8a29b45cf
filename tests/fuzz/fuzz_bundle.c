/* fuzz_bundle.c - libFuzzer: transaction/batch Bundle planning (entry
 * parsing, urn:uuid rewriting, validation, JSON Patch entries) against a real
 * store holding one Patient. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fhir/fhir.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct store *store;
static char db_path[] = "/tmp/ck-fuzz-bundle-XXXXXX";

static void remove_store(void)
{
	char p[sizeof(db_path) + 8];

	store_close(store);
	unlink(db_path);
	snprintf(p, sizeof(p), "%s-wal", db_path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", db_path);
	unlink(p);
}

static void open_store(void)
{
	char *path = db_path;
	int fd = mkstemp(path);
	struct err e = ERR_INIT;
	static const char pat[] = "\"gender\":\"male\"";
	struct store_op op = { 0 };
	struct store_txn t = { 0 };

	if (fd < 0)
		abort();
	close(fd);
	unlink(path);
	if (store_create(path, &e) < 0 || store_open(path, NULL, &store, &e) < 0)
		abort();
	op.kind = STORE_UPDATE;
	op.method = STORE_PUT;
	op.type = "Patient";
	op.id = "p1";
	op.body = pat;
	op.body_len = sizeof(pat) - 1;
	t.ops = &op;
	t.n = 1;
	t.atomic = true;
	if (store_commit(store, &t) < 0)
		abort();
	atexit(remove_store);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fhir_config cfg = { 0 };
	struct err e = ERR_INIT;
	struct fhir_issues iss;
	struct fhir_bundle_plan *plan = NULL;
	struct store_txn *txn = NULL;
	json_object *o;

	if (!store)
		open_store();
	cfg.store = store;
	cfg.max_bundle_entries = 1000;
	(void)o;
	(void)e;
	fhir_issues_init(&iss);
	if (fhir_bundle_plan(&cfg, (const char *)data, size, &plan, &txn, &iss) == 0) {
		if (!txn || txn->n > fhir_bundle_entries(plan))
			__builtin_trap();
		fhir_bundle_plan_free(plan);
	} else if (iss.n == 0) {
		__builtin_trap(); /* a refusal always says why */
	}
	return 0;
}
