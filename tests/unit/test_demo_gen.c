/* test_demo_gen.c - the synthetic HIM data generator (src/cli/demo_gen.c).
 *
 * Runs the generator through a collecting callback and checks what the
 * loaders, the MPI and the benchmarks rely on: determinism per seed, the
 * shape of every resource (parses, resourceType/id first and matching the
 * callback's view, FHIR ids), references that resolve, the unsigned-note
 * share, near-duplicates and their ground truth, and no CPT codes. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/id.h"
#include "base/json.h"
#include "cli/demo_gen.h"
#include "base/banned.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* ------------------------------------------------ a small string set */

struct strset {
	char **slot;
	size_t cap, n;
};

static uint64_t fnv1a(const void *p, size_t n, uint64_t h)
{
	const unsigned char *s = p;

	for (size_t i = 0; i < n; i++) {
		h ^= s[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

static void set_grow(struct strset *s)
{
	struct strset big = { calloc(s->cap ? s->cap * 2 : 1024, sizeof(char *)),
		s->cap ? s->cap * 2 : 1024, 0 };

	assert_non_null(big.slot);
	for (size_t i = 0; i < s->cap; i++) {
		if (!s->slot[i])
			continue;
		size_t j = fnv1a(s->slot[i], strlen(s->slot[i]), 14695981039346656037ULL) & (big.cap - 1);

		while (big.slot[j])
			j = (j + 1) & (big.cap - 1);
		big.slot[j] = s->slot[i];
		big.n++;
	}
	free(s->slot);
	*s = big;
}

/* Adds s; returns false if it was there already. */
static bool set_add(struct strset *s, const char *str)
{
	size_t j;

	if ((s->n + 1) * 2 > s->cap)
		set_grow(s);
	j = fnv1a(str, strlen(str), 14695981039346656037ULL) & (s->cap - 1);
	while (s->slot[j]) {
		if (strcmp(s->slot[j], str) == 0)
			return false;
		j = (j + 1) & (s->cap - 1);
	}
	s->slot[j] = strdup(str);
	assert_non_null(s->slot[j]);
	s->n++;
	return true;
}

static bool set_has(const struct strset *s, const char *str)
{
	size_t j;

	if (!s->cap)
		return false;
	j = fnv1a(str, strlen(str), 14695981039346656037ULL) & (s->cap - 1);
	while (s->slot[j]) {
		if (strcmp(s->slot[j], str) == 0)
			return true;
		j = (j + 1) & (s->cap - 1);
	}
	return false;
}

static void set_free(struct strset *s)
{
	for (size_t i = 0; i < s->cap; i++)
		free(s->slot[i]);
	free(s->slot);
	memset(s, 0, sizeof(*s));
}

/* ------------------------------------------------------- collecting */

struct stats {
	uint64_t hash;           /* over every byte the callback saw */
	size_t resources, batches, patients, dups, docs, unsigned_docs;
	size_t trailing_zero;    /* decimals such as 7.50 or 13.0 */
	bool parse;              /* parse and check every resource */
	struct strset ids;       /* "Type/id" of everything emitted */
	struct strset refs;      /* every reference seen */
	struct strset patient_ids;
	char first_type[32];
	int stop_after;          /* stop after this many batches (0: never) */
};

static void collect_refs(json_object *o, struct stats *st)
{
	if (json_object_is_type(o, json_type_object)) {
		json_object_object_foreach(o, key, val) {
			if (strcmp(key, "reference") == 0 &&
			    json_object_is_type(val, json_type_string))
				set_add(&st->refs, json_object_get_string(val));
			else
				collect_refs(val, st);
		}
	} else if (json_object_is_type(o, json_type_array)) {
		size_t n = json_object_array_length(o);

		for (size_t i = 0; i < n; i++)
			collect_refs(json_object_array_get_idx(o, i), st);
	}
}

static void check_resource(const struct demo_res *r, struct stats *st)
{
	struct err e = ERR_INIT;
	json_object *o = json_parse_buf(r->json, r->len, 0, &e);
	struct buf key = BUF_INIT(0);
	struct json_object_iterator it;
	const char *prefix = "{\"resourceType\":\"";

	if (!o)
		fail_msg("%s/%s does not parse: %s", r->type, r->id, e.msg);
	assert_string_equal(json_get_str(o, "resourceType"), r->type);
	assert_string_equal(json_get_str(o, "id"), r->id);
	assert_true(id_valid(r->id, strlen(r->id)));
	assert_int_equal(strlen(r->json), r->len);
	/* resourceType first, then id, and no meta */
	assert_memory_equal(r->json, prefix, strlen(prefix));
	it = json_object_iter_begin(o);
	json_object_iter_next(&it);
	assert_string_equal(json_object_iter_peek_name(&it), "id");
	assert_null(json_get(o, "meta"));
	/* HCPCS Level II codes are a letter and four digits: never CPT */
	assert_null(strstr(r->json, "\"system\":\"http://www.ama-assn.org/go/cpt\""));

	buf_addstr(&key, r->type);
	buf_addch(&key, '/');
	buf_addstr(&key, r->id);
	if (!set_add(&st->ids, buf_cstr(&key)))
		fail_msg("duplicate id %s", buf_cstr(&key));
	buf_release(&key);
	collect_refs(o, st);

	if (strcmp(r->type, "DocumentReference") == 0) {
		st->docs++;
		if (!json_get(o, "authenticator")) {
			st->unsigned_docs++;
			assert_string_equal(json_get_str(o, "docStatus"), "preliminary");
		} else {
			assert_string_equal(json_get_str(o, "docStatus"), "final");
		}
	}
	json_object_put(o);
}

static int collect(void *ctx, const struct demo_res *res, size_t n, struct err *e)
{
	struct stats *st = ctx;

	st->batches++;
	if (st->stop_after && (int)st->batches > st->stop_after)
		fail_msg("callback called after it asked to stop");
	for (size_t i = 0; i < n; i++) {
		const struct demo_res *r = &res[i];
		const char *p;

		st->hash = fnv1a(r->type, strlen(r->type) + 1, st->hash);
		st->hash = fnv1a(r->id, strlen(r->id) + 1, st->hash);
		st->hash = fnv1a(r->json, r->len, st->hash);
		st->resources++;
		if (st->resources == 1)
			snprintf(st->first_type, sizeof(st->first_type), "%s", r->type);
		if (strcmp(r->type, "Patient") == 0) {
			st->patients++;
			set_add(&st->patient_ids, r->id);
			if (r->dup_of) {
				st->dups++;
				/* the original came earlier in the same batch */
				assert_true(set_has(&st->patient_ids, r->dup_of));
				assert_string_not_equal(r->dup_of, r->id);
			}
		} else {
			assert_null(r->dup_of);
		}
		for (p = strstr(r->json, "\"value\":"); p; p = strstr(p + 1, "\"value\":")) {
			const char *q = p + 8;

			while (*q >= '0' && *q <= '9')
				q++;
			if (*q == '.') {
				q++;
				while (*q >= '0' && *q <= '9')
					q++;
				if (q[-1] == '0')
					st->trailing_zero++;
			}
		}
		if (st->parse)
			check_resource(r, st);
	}
	if (st->stop_after && (int)st->batches == st->stop_after) {
		err_set(e, ERR_UNAVAILABLE, "stopped by test");
		return -1;
	}
	return 0;
}

static void stats_init(struct stats *st, bool parse)
{
	memset(st, 0, sizeof(*st));
	st->hash = 14695981039346656037ULL;
	st->parse = parse;
}

static void stats_release(struct stats *st)
{
	set_free(&st->ids);
	set_free(&st->refs);
	set_free(&st->patient_ids);
}

static void run(struct stats *st, unsigned patients, uint64_t seed, bool patients_only,
	unsigned dup_pct)
{
	struct demo_opts o;
	struct err e = ERR_INIT;

	demo_opts_init(&o);
	o.patients = patients;
	o.seed = seed;
	o.patients_only = patients_only;
	o.duplicate_pct = dup_pct;
	if (demo_generate(&o, collect, st, &e) != 0)
		fail_msg("demo_generate failed: %s (%s)", e.msg, e.detail);
}

/* ------------------------------------------------------------ tests */

static void test_same_seed_identical(void **state)
{
	struct stats a, b;

	(void)state;
	stats_init(&a, false);
	stats_init(&b, false);
	run(&a, 60, 42, false, 5);
	run(&b, 60, 42, false, 5);
	assert_int_equal(a.resources, b.resources);
	assert_int_equal(a.batches, b.batches);
	assert_true(a.hash == b.hash);
	stats_release(&a);
	stats_release(&b);
}

static void test_different_seed_differs(void **state)
{
	struct stats a, b;

	(void)state;
	stats_init(&a, false);
	stats_init(&b, false);
	run(&a, 30, 1, false, 2);
	run(&b, 30, 2, false, 2);
	assert_true(a.hash != b.hash);
	stats_release(&a);
	stats_release(&b);
}

static void test_full_mode_shape(void **state)
{
	struct stats st;
	double per_patient, unsigned_share;

	(void)state;
	stats_init(&st, true);
	run(&st, 400, 7, false, 2);
	/* one directory batch, then one per patient */
	assert_int_equal(st.batches, 401);
	assert_string_equal(st.first_type, "Organization");
	assert_true(st.patients >= 400);
	per_patient = (double)st.resources / 400;
	assert_true(per_patient > 25 && per_patient < 50);

	/* every reference points at something that was emitted */
	for (size_t i = 0; i < st.refs.cap; i++)
		if (st.refs.slot[i] && !set_has(&st.ids, st.refs.slot[i]))
			fail_msg("dangling reference %s", st.refs.slot[i]);

	/* ~15% of notes wait for a signature */
	assert_true(st.docs > 500);
	unsigned_share = (double)st.unsigned_docs / (double)st.docs;
	if (unsigned_share < 0.11 || unsigned_share > 0.20)
		fail_msg("unsigned share %.3f outside 0.11..0.20", unsigned_share);

	/* decimals keep their precision (13.0, 7.50, 182.00) */
	assert_true(st.trailing_zero > 100);
	stats_release(&st);
}

static void test_patients_only(void **state)
{
	struct stats st;

	(void)state;
	stats_init(&st, true);
	run(&st, 300, 9, true, 2);
	assert_int_equal(st.resources, st.patients);
	assert_int_equal(st.batches, 300);   /* no directory batch */
	assert_true(st.patients >= 300 && st.patients < 330);
	assert_int_equal(st.refs.n, 0);      /* nothing to dangle */
	stats_release(&st);
}

/* The same patient in both modes, apart from its references. */
static int first_patient(void *ctx, const struct demo_res *res, size_t n, struct err *e)
{
	char **out = ctx;

	(void)e;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(res[i].type, "Patient") == 0 && !*out) {
			*out = strdup(res[i].json);
			assert_non_null(*out);
		}
	}
	return 0;
}

static void test_patient_independent_of_mode(void **state)
{
	struct demo_opts o;
	struct err e = ERR_INIT;
	char *full = NULL, *only = NULL;
	json_object *a, *b;

	(void)state;
	demo_opts_init(&o);
	o.patients = 1;
	o.seed = 5;
	assert_int_equal(demo_generate(&o, first_patient, &full, &e), 0);
	o.patients_only = true;
	assert_int_equal(demo_generate(&o, first_patient, &only, &e), 0);
	a = json_parse_buf(full, strlen(full), 0, &e);
	b = json_parse_buf(only, strlen(only), 0, &e);
	assert_non_null(a);
	assert_non_null(b);
	json_object_object_del(a, "managingOrganization");
	json_object_object_del(a, "generalPractitioner");
	json_object_object_del(json_object_array_get_idx(json_get_arr(a, "identifier"), 0),
		"assigner");
	assert_true(json_object_equal(a, b));
	json_object_put(a);
	json_object_put(b);
	free(full);
	free(only);
}

static void test_duplicates(void **state)
{
	struct stats st;

	(void)state;
	stats_init(&st, true);
	run(&st, 50, 3, true, 100);
	assert_int_equal(st.dups, 50);
	assert_int_equal(st.patients, 100);
	stats_release(&st);

	stats_init(&st, false);
	run(&st, 200, 3, true, 0);
	assert_int_equal(st.dups, 0);
	assert_int_equal(st.patients, 200);
	stats_release(&st);
}

static void test_callback_stops_run(void **state)
{
	struct stats st;
	struct demo_opts o;
	struct err e = ERR_INIT;

	(void)state;
	stats_init(&st, false);
	st.stop_after = 3;
	demo_opts_init(&o);
	o.patients = 20;
	assert_int_equal(demo_generate(&o, collect, &st, &e), -1);
	assert_int_equal(e.code, ERR_UNAVAILABLE);
	assert_string_equal(e.msg, "stopped by test");
	assert_int_equal(st.batches, 3);
	stats_release(&st);
}

static void test_bad_options(void **state)
{
	struct demo_opts o;
	struct err e = ERR_INIT;
	struct stats st;

	(void)state;
	stats_init(&st, false);
	demo_opts_init(&o);
	assert_int_equal(demo_generate(&o, NULL, NULL, &e), -1);
	assert_int_equal(e.code, ERR_INVALID);
	err_clear(&e);
	o.patients = 4000000000u;
	assert_int_equal(demo_generate(&o, collect, &st, &e), -1);
	assert_int_equal(e.code, ERR_INVALID);
	err_clear(&e);
	o.patients = 1;
	o.as_of_day = 1000; /* 1972: before the supported range */
	assert_int_equal(demo_generate(&o, collect, &st, &e), -1);
	assert_int_equal(e.code, ERR_INVALID);
	assert_int_equal(st.batches, 0);
	err_clear(&e);
	o.as_of_day = 0;
	o.patients = 0;
	assert_int_equal(demo_generate(&o, collect, &st, &e), 0);
	assert_int_equal(st.batches, 1); /* the directory only */
	stats_release(&st);
}

static void test_as_of_moves_dates(void **state)
{
	struct stats a, b;
	struct demo_opts o;
	struct err e = ERR_INIT;

	(void)state;
	stats_init(&a, false);
	stats_init(&b, false);
	demo_opts_init(&o);
	o.patients = 10;
	assert_int_equal(demo_generate(&o, collect, &a, &e), 0);
	o.as_of_day = 20269; /* the default, spelt out */
	assert_int_equal(demo_generate(&o, collect, &b, &e), 0);
	assert_true(a.hash == b.hash);
	stats_release(&b);
	stats_init(&b, true);
	o.as_of_day = 20000;
	assert_int_equal(demo_generate(&o, collect, &b, &e), 0);
	assert_true(a.hash != b.hash);
	stats_release(&a);
	stats_release(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_same_seed_identical),
		cmocka_unit_test(test_different_seed_differs),
		cmocka_unit_test(test_full_mode_shape),
		cmocka_unit_test(test_patients_only),
		cmocka_unit_test(test_patient_independent_of_mode),
		cmocka_unit_test(test_duplicates),
		cmocka_unit_test(test_callback_stops_run),
		cmocka_unit_test(test_bad_options),
		cmocka_unit_test(test_as_of_moves_dates),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
