/* cmd_mpi.c - chartkeep mpi: batch deduplication (scan) and training of
 * the matching model (train).  Both read every Patient, so each run is
 * one entry of the audit trail. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"
#include "cli/cli.h"
#include "fhir/fhir.h"
#include "fhir/search.h"
#include "mpi/mpi_int.h"
#include "privacy/privacy.h"
#include "base/banned.h"

static int scan(const struct cli_cmd *cmd, struct store *s, uint64_t threads)
{
	struct mpi_model m;
	struct mpi_scan sc;
	struct mpi_scan_opts o;
	struct mpi_skip *skip = NULL;
	struct err e = ERR_INIT;
	size_t links = 0;

	if (mpi_model_load(s, &m, &e) < 0 || mpi_skip_load(s, &skip, &e) < 0)
		return cli_fail(cmd, &e);
	memset(&o, 0, sizeof(o));
	o.model = &m;
	o.threads = (int)threads;
	o.progress = isatty(2);
	o.skip = mpi_skip_has;
	o.skip_ctx = skip;
	if (cli_audit(s, "mpi-scan", PA_SEARCH, 200, &e) < 0 || mpi_scan_run(s, &o, &sc, &e) < 0) {
		mpi_skip_free(skip);
		return cli_fail(cmd, &e);
	}
	for (size_t i = 0; i < sc.npairs; i++) {
		const struct mpi_scan_pair *p = &sc.pairs[i];
		bool link = p->decision == MPI_LINK;
		links += link;
		printf("%s,%s,%.4f,%s\n", sc.recs[p->a].id, sc.recs[p->b].id, p->prob, link ? "link" : "review");
	}
	/* one summary line on stderr, terminal or not (scripts read it) */
	fprintf(stderr, "mpi: %zu patients, %" PRIu64 " pairs compared, %zu to link, %zu to review%s\n",
		sc.n, sc.compared, links, sc.npairs - links, m.trained ? "" : " (untrained model)");
	if (sc.skipped_blocks)
		fprintf(stderr, "mpi: note: %zu blocks of more than 5000 patients sharing a key were not "
				"compared within (%zu entries)\n", sc.skipped_blocks, sc.skipped_records);
	mpi_scan_release(&sc);
	mpi_skip_free(skip);
	return fflush(stdout) == 0 ? 0 : 1;
}

static int train(const struct cli_cmd *cmd, struct store *s, uint64_t threads)
{
	struct mpi_model m;
	struct mpi_scan sc;
	struct mpi_scan_opts o;
	struct err e = ERR_INIT;
	int iters;

	if (mpi_model_load(s, &m, &e) < 0)
		return cli_fail(cmd, &e);
	memset(&o, 0, sizeof(o));
	o.model = &m;
	o.threads = (int)threads;
	o.progress = isatty(2);
	o.keep_levels = 4000000;
	o.min_prob = 2.0; /* keep no pairs: only their comparison vectors */
	if (cli_audit(s, "mpi-train", PA_SEARCH, 200, &e) < 0 || mpi_scan_run(s, &o, &sc, &e) < 0)
		return cli_fail(cmd, &e);
	if (sc.nlevels < 10) {
		mpi_scan_release(&sc);
		err_set(&e, ERR_UNPROCESSABLE, "too few candidate pairs to train on (%zu); the defaults stay",
			sc.nlevels);
		return cli_fail(cmd, &e);
	}
	/* from the defaults, not from the last training: the same data give the
	 * same model; the thresholds are the site's */
	{
		double upper = m.upper, lower = m.lower;
		mpi_model_default(&m);
		m.upper = upper;
		m.lower = lower;
	}
	/* EM over the candidate pairs gives m and lambda (its u describes the
	 * non-matches that blocking lets through, which agree on the blocked
	 * fields by construction); the weights then use u from random pairs of
	 * records: what an agreement means between two people taken at random.
	 * (EM with u fixed from the start drifts to lambda = 1 on candidates.) */
	mpi_estimate_u(&m, sc.recs, sc.n, 2000000, 1);
	iters = mpi_em(&m, sc.levels, sc.nlevels, false, 200);
	mpi_estimate_u(&m, sc.recs, sc.n, 2000000, 1);
	m.trained_pairs = sc.nlevels;
	m.trained_ms = time_now_ms();
	{
		struct fhir_params *params = NULL;
		struct audit_info ai;
		memset(&ai, 0, sizeof(ai));
		ai.username = cli_actor();
		ai.action = PA_UPDATE;
		ai.interaction = "mpi-train";
		ai.source = "local";
		if (fhir_params_load(s, &params, &e) < 0 || mpi_model_save(s, params, &ai, &m, &e) < 0) {
			fhir_params_free(params);
			mpi_scan_release(&sc);
			return cli_fail(cmd, &e);
		}
		fhir_params_free(params);
	}
	printf("trained on %zu candidate pairs of %zu patients: %d EM iterations, lambda %.4f\n",
	       sc.nlevels, sc.n, iters, m.lambda);
	printf("%-12s %-32s %10s %10s %8s\n", "comparison", "level", "m", "u", "weight");
	for (size_t k = 0; k < MPI_NCMP; k++)
		for (int l = 0; l < mpi_cmps[k].nlevels; l++)
			printf("%-12s %-32s %10.6f %10.6f %8.2f\n", l ? "" : mpi_cmps[k].name,
			       mpi_cmps[k].levels[l], m.m[k][l], m.u[k][l], m.w[k][l]);
	mpi_scan_release(&sc);
	return 0;
}

int cmd_mpi(const struct cli_cmd *cmd, int argc, char **argv)
{
	const char *db = NULL;
	uint64_t threads = 2;
	const struct cli_opt opts[] = {
		{ "db", CLI_STR, &db, 0, 0 },
		{ "threads", CLI_UINT, &threads, 1, 8 },
		{ NULL, 0, NULL, 0, 0 },
	};
	static const char *const actions[] = { "scan", "train", NULL };
	struct store *s = NULL;
	int which, npos, rc;

	if ((rc = cli_action(cmd, argc, argv, actions, &which)) != CLI_GO)
		return rc;
	if ((rc = cli_options(cmd, argc - 1, argv + 1, opts, 0, &npos)) != CLI_GO)
		return rc;
	if ((rc = cli_open_store(cmd, db, NULL, &s)) != 0)
		return rc;
	rc = which == 0 ? scan(cmd, s, threads) : train(cmd, s, threads);
	store_close(s);
	return rc;
}
