/* fuzz_search_params.c - libFuzzer: FHIR search requests from arbitrary
 * query strings, planned and run against a small real database.
 *
 * The first byte picks the interaction (type search on one of a few types,
 * a Patient compartment search, $everything) and Prefer: handling=strict;
 * the rest is a query string, split at & and = and %-decoded as the server
 * does.  A request may fail only as the client's fault: besides crashes and
 * leaks the target traps on a 500 (a database error means the planner wrote
 * SQL that SQLite refused, or bound the wrong values) and on a body that is
 * not JSON (an answer quoting bytes that are not UTF-8 back).  The database (a temporary directory, removed at exit) holds
 * a few resources of each kind the parameters index, so that queries run
 * their full SQL, not an empty plan. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"
#include "base/url.h"
#include "fhir/fhir.h"
#include "fhir/search.h"
#include "store/store.h"
#include "base/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const seed[] = {
	"{\"resourceType\":\"Patient\",\"id\":\"p1\",\"name\":[{\"family\":\"Ångström\",\"given\":[\"Anna\"]}],"
	"\"birthDate\":\"1970-03-15\",\"gender\":\"female\",\"identifier\":[{\"system\":\"urn:s\",\"value\":\"1|2\","
	"\"type\":{\"coding\":[{\"system\":\"urn:t\",\"code\":\"MR\"}]}}],\"managingOrganization\":"
	"{\"reference\":\"Organization/o1\"},\"text\":{\"status\":\"generated\",\"div\":"
	"\"<div xmlns=\\\"http://www.w3.org/1999/xhtml\\\">Anna &#197;ngstr&#246;m</div>\"}}",
	"{\"resourceType\":\"Organization\",\"id\":\"o1\",\"name\":\"Springfield\",\"partOf\":"
	"{\"reference\":\"Organization/o2\"}}",
	"{\"resourceType\":\"Organization\",\"id\":\"o2\",\"name\":\"Acme\"}",
	"{\"resourceType\":\"Observation\",\"id\":\"b1\",\"status\":\"final\",\"code\":{\"coding\":"
	"[{\"system\":\"http://loinc.org\",\"code\":\"85354-9\",\"display\":\"BP\"}],\"text\":\"bp\"},"
	"\"subject\":{\"reference\":\"Patient/p1\"},\"effectiveDateTime\":\"2021-03-04T10:15:00+01:00\","
	"\"component\":[{\"code\":{\"coding\":[{\"system\":\"http://loinc.org\",\"code\":\"8480-6\"}]},"
	"\"valueQuantity\":{\"value\":140,\"unit\":\"mmHg\",\"system\":\"http://unitsofmeasure.org\","
	"\"code\":\"mm[Hg]\"}}],\"note\":[{\"text\":\"left arm\"}]}",
	"{\"resourceType\":\"Observation\",\"id\":\"g1\",\"status\":\"final\",\"code\":{\"coding\":"
	"[{\"system\":\"http://loinc.org\",\"code\":\"2339-0\"}]},\"subject\":{\"reference\":\"Patient/p1\"},"
	"\"effectivePeriod\":{\"start\":\"2021\"},\"valueQuantity\":{\"value\":1.50,\"unit\":\"mg/dL\"}}",
	"{\"resourceType\":\"Encounter\",\"id\":\"e1\",\"status\":\"finished\",\"class\":{\"code\":\"AMB\"},"
	"\"subject\":{\"reference\":\"Patient/p1\"},\"serviceProvider\":{\"reference\":\"Organization/o1\"},"
	"\"length\":{\"value\":20,\"unit\":\"min\"}}",
	"{\"resourceType\":\"ValueSet\",\"id\":\"v1\",\"status\":\"active\",\"url\":\"http://e.org/vs/a\"}",
	"{\"resourceType\":\"List\",\"id\":\"l1\",\"status\":\"current\",\"mode\":\"working\",\"entry\":"
	"[{\"item\":{\"reference\":\"Patient/p1\"}}]}",
	"{\"resourceType\":\"RiskAssessment\",\"id\":\"r1\",\"status\":\"final\",\"subject\":"
	"{\"reference\":\"Patient/p1\"},\"prediction\":[{\"probabilityDecimal\":0.25}]}",
};

static const char *const types[] = { "Patient", "Observation", "Encounter", "ValueSet",
				     "Organization", "RiskAssessment", "List", "Condition" };

static struct fhir_config cfg;
static char dir[64];

static void cleanup(void)
{
	static const char *const names[] = { "db", "db-wal", "db-shm" };
	char p[128];

	fhir_params_free(cfg.params);
	store_close(cfg.store);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", dir, names[i]);
		unlink(p);
	}
	rmdir(dir);
}

static void setup(void)
{
	struct err e = ERR_INIT;
	char path[96];

	if (cfg.store)
		return;
	log_level = LOG_ERROR;
	snprintf(dir, sizeof(dir), "/tmp/ck-fuzz-search-XXXXXX");
	if (!mkdtemp(dir))
		abort();
	snprintf(path, sizeof(path), "%s/db", dir);
	if (store_create(path, &e) < 0 || store_open(path, NULL, &cfg.store, &e) < 0 ||
	    fhir_params_load(cfg.store, &cfg.params, &e) < 0) {
		fprintf(stderr, "fuzz_search_params: %s\n", e.msg);
		abort();
	}
	cfg.software_version = "fuzz";
	for (size_t i = 0; i < sizeof(seed) / sizeof(seed[0]); i++) {
		json_object *o = json_parse_buf(seed[i], strlen(seed[i]), 0, &e);
		struct fhir_prepared p;
		struct store_op op;
		struct store_txn t;

		fhir_prepared_init(&p);
		if (!o || fhir_prepare(cfg.params, o, json_get_str(o, "id"), &p, &e) < 0)
			abort();
		memset(&op, 0, sizeof(op));
		fhir_prepared_op(&p, &op);
		op.kind = STORE_UPDATE;
		op.method = STORE_PUT;
		memset(&t, 0, sizeof(t));
		t.ops = &op;
		t.n = 1;
		t.atomic = true;
		if (store_commit(cfg.store, &t) != 0)
			abort();
		fhir_prepared_release(&p);
		json_object_put(o);
	}
	atexit(cleanup);
}

/* name=value pairs of s[0..n), %-decoded into the arena (as the server's
 * query parsing does); at most cap. */
static size_t split_query(struct arena *a, const char *s, size_t n, struct fhir_param *out,
			  size_t cap)
{
	size_t k = 0;

	for (size_t i = 0; i <= n && k < cap;) {
		size_t amp = i, eq;
		struct buf name = BUF_INIT(0), value = BUF_INIT(0);

		while (amp < n && s[amp] != '&')
			amp++;
		for (eq = i; eq < amp && s[eq] != '='; eq++)
			;
		if (eq > i && url_decode(&name, s + i, eq - i, 1) == 0 &&
		    (eq == amp || url_decode(&value, s + eq + 1, amp - eq - 1, 1) == 0) &&
		    !memchr(buf_cstr(&name), '\0', name.len) && !memchr(buf_cstr(&value), '\0', value.len)) {
			out[k].name = arena_strdup(a, buf_cstr(&name));
			out[k].value = arena_strdup(a, buf_cstr(&value));
			if (out[k].name && out[k].value)
				k++;
		}
		buf_release(&name);
		buf_release(&value);
		i = amp + 1;
	}
	return k;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct arena a;
	struct fhir_req req;
	struct fhir_resp resp;
	struct fhir_param params[64];
	uint8_t pick;

	if (size < 1 || size > 4096)
		return 0;
	setup();
	pick = data[0];
	arena_init(&a, 4 << 20);
	memset(&req, 0, sizeof(req));
	req.base = "http://fuzz";
	req.arena = &a;
	req.strict = pick & 0x80;
	req.params = params;
	req.n_params = split_query(&a, (const char *)data + 1, size - 1, params, 64);
	switch ((pick >> 4) & 7) {
	case 0:
		req.interaction = FHIR_SEARCH_COMPARTMENT;
		req.type = "Patient";
		req.id = "p1";
		req.ctype = types[pick & 7];
		break;
	case 1:
		req.interaction = FHIR_EVERYTHING;
		req.type = "Patient";
		req.id = "p1";
		break;
	default:
		req.interaction = FHIR_SEARCH;
		req.type = types[pick & 7];
		break;
	}
	fhir_resp_init(&resp);
	fhir_search(&cfg, &req, &resp);
	switch (resp.status) {
	case 200: case 400: case 404: case 410: case 415: case 422: case 501: {
		/* a Bundle or an OperationOutcome, and JSON (valid UTF-8 too,
		 * whatever bytes the query quoted back) */
		struct err e = ERR_INIT;
		json_object *b = json_parse_buf(resp.body.data, resp.body.len, 0, &e);
		if (!b)
			__builtin_trap();
		json_object_put(b);
		break;
	}
	default:
		__builtin_trap(); /* 500: the database refused the SQL, or worse */
	}
	fhir_resp_release(&resp);
	arena_release(&a);
	return 0;
}
