/* codes_inproc.c - bench/codes helper: the coding engine without HTTP.
 *
 *   codes_inproc DB FILTERS CLAIM N
 *
 * Runs ValueSet/$expand (count 20) for each line of FILTERS (round robin, N
 * times) and Claim/$code-edits on the Claim in CLAIM (N times) through the
 * same functions the server calls, on a store opened as serve opens it, and
 * prints p50/p99/max in milliseconds (for $code-edits also the thread's CPU
 * time: the wall-clock tail on a busy machine is time spent waiting for a
 * core).  No policy and no audit: those are the
 * server's and are measured by the HTTP part of bench/codes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/base.h"
#include "coding/coding.h"
#include "fhir/fhir.h"

static double now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/* CPU time of this thread: what a run costs, without the time it waited
 * for a core (on a shared machine the wall-clock tail is other processes). */
static double cpu_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static void report(const char *what, double *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp);
	printf("%s: n=%zu p50=%.3f ms p99=%.3f ms max=%.3f ms\n", what, n, v[n / 2], v[n * 99 / 100], v[n - 1]);
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *d;
	long n;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	d = malloc((size_t)n + 1);
	if (d && fread(d, 1, (size_t)n, f) != (size_t)n) {
		free(d);
		d = NULL;
	}
	if (d)
		d[n] = '\0';
	fclose(f);
	*len = (size_t)n;
	return d;
}

int main(int argc, char **argv)
{
	struct store *s = NULL;
	struct fhir_config cfg;
	struct err e = ERR_INIT;
	char *filters, *claim, *lines[4096];
	size_t flen, clen, nl = 0, n;
	double *t, *tc;

	if (argc != 5) {
		fprintf(stderr, "usage: codes_inproc DB FILTERS CLAIM N\n");
		return 2;
	}
	n = (size_t)atol(argv[4]);
	filters = slurp(argv[2], &flen);
	claim = slurp(argv[3], &clen);
	t = calloc(n ? n : 1, sizeof(*t));
	tc = calloc(n ? n : 1, sizeof(*tc));
	if (!filters || !claim || !t || !tc || !n || store_open(argv[1], NULL, &s, &e) < 0) {
		fprintf(stderr, "codes_inproc: cannot start: %s\n", e.msg);
		return 1;
	}
	{
		char *save = NULL;
		for (char *p = strtok_r(filters, "\n", &save); p && nl < 4096; p = strtok_r(NULL, "\n", &save))
			lines[nl++] = p;
	}
	memset(&cfg, 0, sizeof(cfg));
	cfg.store = s;
	cfg.max_depth = 64;
	for (size_t i = 0; i < n; i++) {
		struct fhir_param prm[3] = { { "url", "http://hl7.org/fhir/sid/icd-10-cm" },
					     { "filter", lines[i % nl] }, { "count", "20" } };
		struct fhir_req req;
		struct fhir_resp resp;
		struct arena a;
		double t0;

		memset(&req, 0, sizeof(req));
		arena_init(&a, 0);
		req.params = prm;
		req.n_params = 3;
		req.arena = &a;
		fhir_resp_init(&resp);
		t0 = now_ms();
		coding_terminology(&cfg, &req, COP_EXPAND, &resp);
		t[i] = now_ms() - t0;
		if (resp.status != 200) {
			fprintf(stderr, "expand %s: %d %s\n", lines[i % nl], resp.status, buf_cstr(&resp.body));
			return 1;
		}
		fhir_resp_release(&resp);
		arena_release(&a);
	}
	{
		/* the slowest filters, to see whether a tail is the query or the machine */
		size_t worst[3] = { 0, 0, 0 };
		for (size_t i = 0; i < n; i++)
			for (size_t k = 0; k < 3; k++)
				if (t[i] > t[worst[k]]) {
					memmove(worst + k + 1, worst + k, (2 - k) * sizeof(worst[0]));
					worst[k] = i;
					break;
				}
		for (size_t k = 0; k < 3 && k < n; k++)
			printf("  slow: %.3f ms \"%s\"\n", t[worst[k]], lines[worst[k] % nl]);
	}
	report("in-process $expand (1-3 word filters, count 20)", t, n);
	for (size_t i = 0; i < n; i++) {
		struct fhir_req req;
		struct fhir_resp resp;
		struct arena a;
		char pid[ID_MAX + 1];
		double t0, c0;

		memset(&req, 0, sizeof(req));
		arena_init(&a, 0);
		req.body = claim;
		req.body_len = clen;
		req.arena = &a;
		fhir_resp_init(&resp);
		c0 = cpu_ms();
		t0 = now_ms();
		coding_code_edits(&cfg, &req, COP_EDITS_CLAIM, &resp, pid);
		t[i] = now_ms() - t0;
		tc[i] = cpu_ms() - c0;
		if (resp.status != 200) {
			fprintf(stderr, "code-edits: %d %s\n", resp.status, buf_cstr(&resp.body));
			return 1;
		}
		fhir_resp_release(&resp);
		arena_release(&a);
	}
	report("in-process $code-edits (25 diagnoses)", t, n);
	report("in-process $code-edits (25 diagnoses), CPU time", tc, n);
	store_close(s);
	free(t);
	free(tc);
	free(filters);
	free(claim);
	return 0;
}
