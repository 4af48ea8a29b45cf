/* cmd_demo.c - synthetic HIM data: load it and serve it, or write it out.
 *
 * `chartkeep demo` creates demo.db (unless it exists), loads the generated
 * data set through the same loader as import, gives the demo-director user a
 * fresh random password and token, prints them, and serves.  With
 * --out-ndjson or --out-bundles it only writes files, which the benchmarks
 * and tests use. */
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"
#include "cli/cli.h"
#include "cli/demo_gen.h"
#include "privacy/privacy.h"
#include "server/server.h"
#include "base/banned.h"

#define DEMO_USER "demo-director"
#define DEMO_TOKEN_TTL (12 * 3600)

struct emit_ctx {
	struct loader *loader;
	FILE *ndjson;
	const char *dir;
	uint64_t bundle_size;
	struct buf bundle;
	size_t in_bundle;
	unsigned bundle_no;
	uint64_t resources;
	char first_patient[ID_MAX + 1];
};

static int write_bundle(struct emit_ctx *x, struct err *e)
{
	char path[4096];
	FILE *f;

	if (x->in_bundle == 0)
		return 0;
	buf_addstr(&x->bundle, "]}\n");
	snprintf(path, sizeof(path), "%s/bundle-%05u.json", x->dir, ++x->bundle_no);
	f = fopen(path, "wb");
	if (!f || fwrite(x->bundle.data, 1, x->bundle.len, f) != x->bundle.len) {
		if (f)
			fclose(f);
		return err_set(e, ERR_IO, "cannot write %s: %s", path, strerror(errno));
	}
	if (fclose(f) != 0)
		return err_set(e, ERR_IO, "cannot write %s: %s", path, strerror(errno));
	buf_reset(&x->bundle);
	x->in_bundle = 0;
	return 0;
}

static int emit(void *ctx, const struct demo_res *res, size_t n, struct err *e)
{
	struct emit_ctx *x = ctx;

	for (size_t i = 0; i < n; i++) {
		const struct demo_res *r = &res[i];
		x->resources++;
		if (!x->first_patient[0] && strcmp(r->type, "Patient") == 0)
			snprintf(x->first_patient, sizeof(x->first_patient), "%s", r->id);
		if (x->ndjson) {
			if (fwrite(r->json, 1, r->len, x->ndjson) != r->len || fputc('\n', x->ndjson) == EOF)
				return err_set(e, ERR_IO, "cannot write the NDJSON output");
		} else if (x->dir) {
			if (x->in_bundle == 0)
				buf_addstr(&x->bundle, "{\"resourceType\":\"Bundle\",\"type\":\"transaction\","
						       "\"entry\":[");
			else
				buf_addch(&x->bundle, ',');
			buf_addstr(&x->bundle, "{\"resource\":");
			buf_add(&x->bundle, r->json, r->len);
			buf_addf(&x->bundle, ",\"request\":{\"method\":\"PUT\",\"url\":\"%s/%s\"}}", r->type,
				 r->id);
			x->in_bundle++;
		} else {
			char origin[128];
			snprintf(origin, sizeof(origin), "demo %s/%s", r->type, r->id);
			loader_json(x->loader, r->json, r->len, origin);
		}
	}
	/* A patient's resources stay in one Bundle. */
	if (x->dir && x->in_bundle >= x->bundle_size)
		return write_bundle(x, e);
	return 0;
}

static void random_password(char *out, size_t cap)
{
	static const char alphabet[] = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
	size_t n = cap - 1 < 20 ? cap - 1 : 20;

	for (size_t i = 0; i < n; i++)
		out[i] = alphabet[randombytes_uniform(sizeof(alphabet) - 1)];
	out[n] = '\0';
}

/* demo-director (an HIM director) with a fresh password (created the first time). */
static int demo_user(struct store *s, char *pw, size_t pwcap, struct err *e)
{
	struct store_user u;
	char hash[STORE_HASH_MAX + 1];
	struct err nf = ERR_INIT;

	random_password(pw, pwcap);
	if (store_user_get(s, DEMO_USER, &u, &nf) < 0) {
		if (nf.code != ERR_NOT_FOUND) {
			*e = nf;
			return -1;
		}
		return privacy_user_add(s, DEMO_USER, "him_director", pw, e);
	}
	if (privacy_password_hash(pw, hash, e) < 0)
		return -1;
	return store_user_set_password(s, DEMO_USER, hash, e);
}

int cmd_demo(const struct cli_cmd *cmd, int argc, char **argv)
{
	const char *db = "demo.db", *listen = SERVER_DEFAULT_LISTEN, *out_ndjson = NULL;
	const char *out_dir = NULL;
	uint64_t patients = 200, seed = 1, bundle_size = 1000;
	bool no_serve = false, patients_only = false;
	const struct cli_opt opts[] = {
		{ "db", CLI_STR, &db, 0, 0 },
		{ "patients", CLI_UINT, &patients, 1, 10000000 },
		{ "seed", CLI_UINT, &seed, 0, UINT64_MAX },
		{ "listen", CLI_STR, &listen, 0, 0 },
		{ "no-serve", CLI_FLAG, &no_serve, 0, 0 },
		{ "out-ndjson", CLI_STR, &out_ndjson, 0, 0 },
		{ "out-bundles", CLI_STR, &out_dir, 0, 0 },
		{ "bundle-size", CLI_UINT, &bundle_size, 1, 1000000 },
		{ "patients-only", CLI_FLAG, &patients_only, 0, 0 },
		{ NULL, 0, NULL, 0, 0 },
	};
	struct emit_ctx x;
	struct demo_opts dopts;
	struct err e = ERR_INIT;
	struct store *s = NULL;
	struct stat sb;
	char pw[32], tok[PRIVACY_TOKEN_MAX];
	bool fresh;
	int npos, rc;

	if ((rc = cli_options(cmd, argc, argv, opts, 0, &npos)) != CLI_GO)
		return rc;
	if (out_ndjson && out_dir)
		return cli_usage_error(cmd, "--out-ndjson and --out-bundles exclude each other");
	if (patients_only && !out_ndjson && !out_dir)
		return cli_usage_error(cmd, "--patients-only goes with --out-ndjson or --out-bundles");

	memset(&x, 0, sizeof(x));
	buf_init(&x.bundle, 0);
	x.bundle_size = bundle_size;
	demo_opts_init(&dopts);
	dopts.patients = (unsigned)patients;
	dopts.seed = seed;
	dopts.patients_only = patients_only;

	if (out_ndjson || out_dir) {
		static char obuf[1 << 20];
		if (out_ndjson) {
			x.ndjson = strcmp(out_ndjson, "-") == 0 ? stdout : fopen(out_ndjson, "wb");
			if (!x.ndjson) {
				err_set(&e, ERR_IO, "cannot write %s: %s", out_ndjson, strerror(errno));
				return cli_fail(cmd, &e);
			}
			setvbuf(x.ndjson, obuf, _IOFBF, sizeof(obuf));
		} else {
			if (mkdir(out_dir, 0755) < 0 && errno != EEXIST) {
				err_set(&e, ERR_IO, "cannot create %s: %s", out_dir, strerror(errno));
				return cli_fail(cmd, &e);
			}
			x.dir = out_dir;
		}
		rc = demo_generate(&dopts, emit, &x, &e);
		if (rc == 0 && x.dir)
			rc = write_bundle(&x, &e);
		if (x.ndjson && (fflush(x.ndjson) != 0 || (x.ndjson != stdout && fclose(x.ndjson) != 0)) &&
		    rc == 0)
			rc = err_set(&e, ERR_IO, "cannot write the NDJSON output");
		buf_release(&x.bundle);
		if (rc < 0)
			return cli_fail(cmd, &e);
		fprintf(stderr, "wrote %llu resources\n", (unsigned long long)x.resources);
		return 0;
	}

	fresh = stat(db, &sb) < 0;
	if (fresh && store_create(db, &e) < 0)
		return cli_fail(cmd, &e);
	/* the audit trail's signing key next to the database, as serve makes it
	 * (cli_open_store then signs the demo's checkpoints with it) */
	{
		char key[4096];
		if (snprintf(key, sizeof(key), "%s.audit-key", db) < (int)sizeof(key) &&
		    access(key, F_OK) != 0 && store_audit_keygen(key, &e) < 0)
			return cli_fail(cmd, &e);
	}
	if ((rc = cli_open_store(cmd, db, NULL, &s)) != 0)
		return rc;
	if (fresh) {
		struct loader_stats st;
		printf("generating %llu patients (seed %llu) into %s ...\n", (unsigned long long)patients,
		       (unsigned long long)seed, db);
		x.loader = loader_new(s, isatty(STDOUT_FILENO));
		if (!x.loader) {
			store_close(s);
			err_set(&e, ERR_NOMEM, "out of memory");
			return cli_fail(cmd, &e);
		}
		rc = demo_generate(&dopts, emit, &x, &e);
		loader_finish(x.loader, &st);
		if (rc < 0 || st.errors) {
			store_close(s);
			if (rc == 0)
				err_set(&e, ERR_INTERNAL, "%llu generated resources were rejected",
					(unsigned long long)st.errors);
			return cli_fail(cmd, &e);
		}
		printf("loaded %llu resources in %.1f s\n", (unsigned long long)st.resources, st.seconds);
	} else {
		printf("using the existing %s (delete it to generate new data)\n", db);
	}
	if (demo_user(s, pw, sizeof(pw), &e) < 0 ||
	    privacy_token_issue(s, DEMO_USER, DEMO_TOKEN_TTL, NULL, tok, &e) < 0) {
		store_close(s);
		return cli_fail(cmd, &e);
	}
	printf("\n  chartkeep demo: http://%s\n"
	       "  user:     %s (role him_director)\n"
	       "  password: %s\n"
	       "  token:    %s   (valid 12 hours)\n\n"
	       "  try:  curl -H 'Authorization: Bearer %s' http://%s/Patient/%s\n\n",
	       listen, DEMO_USER, pw, tok, tok, listen, x.first_patient[0] ? x.first_patient : "<id>");
	fflush(stdout);
	sodium_memzero(pw, sizeof(pw));
	if (!no_serve) {
		struct server_config cfg;
		server_config_defaults(&cfg);
		cfg.listen = listen;
		rc = server_run(s, &cfg, &e) < 0 ? cli_fail(cmd, &e) : 0;
	}
	store_close(s);
	return rc;
}
