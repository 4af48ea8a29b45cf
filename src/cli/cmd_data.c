/* cmd_data.c - serve, import, export. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"
#include "cli/cli.h"
#include "fhir/fhir.h"
#include "fhir/search.h"
#include "hl7v2/hl7v2.h"
#include "mpi/mpi.h"
#include "privacy/privacy.h"
#include "privacy/policy.h"
#include "server/server.h"
#include "base/banned.h"

/* --mpi-auto-link on|off (mpi/mpi.h: a setting of the process, on by
 * default).  Returns 0, or a usage error. */
static int auto_link_opt(const struct cli_cmd *cmd, const char *v)
{
	if (!v)
		return 0;
	if (strcmp(v, "on") != 0 && strcmp(v, "off") != 0)
		return cli_usage_error(cmd, "--mpi-auto-link must be on or off");
	mpi_auto_link_set(strcmp(v, "on") == 0);
	return 0;
}

int cmd_serve(const struct cli_cmd *cmd, int argc, char **argv)
{
	const char *db = NULL, *listen = SERVER_DEFAULT_LISTEN, *base = NULL, *level = NULL;
	const char *export_dir = NULL, *audit_key = NULL, *policy = NULL;
	const char *tls_cert = NULL, *tls_key = NULL;
	char key_path[4096];
	struct store_opts so;
	uint64_t max_body = SERVER_DEFAULT_MAX_BODY, depth = JSON_DEFAULT_MAX_DEPTH, threads = 0;
	uint64_t timeout = 60;
	uint64_t lockout_attempts = PRIVACY_LOCKOUT_ATTEMPTS, lockout_minutes = PRIVACY_LOCKOUT_MINUTES;
	uint64_t token_rate = SERVER_DEFAULT_TOKEN_RATE;
	uint64_t max_conn = SERVER_DEFAULT_MAX_CONNECTIONS, per_ip = SERVER_DEFAULT_PER_IP_CONNECTIONS;
	uint64_t max_header = SERVER_DEFAULT_MAX_HEADER_BYTES;
	const char *mllp = NULL, *mllp_client = HL7_FEED_DEFAULT_CLIENT, *mllp_pids = "P";
	uint64_t mllp_max_frame = HL7_DEFAULT_MAX_FRAME, mllp_idle = HL7_DEFAULT_IDLE_S;
	uint64_t mllp_max_conn = HL7_DEFAULT_MAX_CONNECTIONS;
	struct hl7_listener *listener = NULL;
	struct hl7_feed *feed = NULL;
	struct hl7_acker *acker = NULL;
	const char *mllp_ack_to = NULL;
	struct hl7_ack_routes ack_routes;
	struct fhir_params *feed_params = NULL;
	bool no_match = false;
	const char *auto_link = NULL;
	const struct cli_opt opts[] = {
		{ "no-match", CLI_FLAG, &no_match, 0, 0 },
		{ "mpi-auto-link", CLI_STR, &auto_link, 0, 0 },
		{ "db", CLI_STR, &db, 0, 0 },
		{ "listen", CLI_STR, &listen, 0, 0 },
		{ "base-url", CLI_STR, &base, 0, 0 },
		{ "max-body", CLI_UINT, &max_body, 1024, 1ULL << 31 },
		{ "max-depth", CLI_UINT, &depth, 8, 1000 },
		{ "threads", CLI_UINT, &threads, 0, 256 },
		{ "timeout", CLI_UINT, &timeout, 1, 3600 },
		{ "log-level", CLI_STR, &level, 0, 0 },
		{ "export-dir", CLI_STR, &export_dir, 0, 0 },
		{ "lockout-attempts", CLI_UINT, &lockout_attempts, 0, 1000 },
		{ "lockout-minutes", CLI_UINT, &lockout_minutes, 1, 7 * 24 * 60 },
		{ "token-rate", CLI_UINT, &token_rate, 0, 100000 },
		{ "audit-key", CLI_STR, &audit_key, 0, 0 },
		{ "policy", CLI_STR, &policy, 0, 0 },
		{ "tls-cert", CLI_STR, &tls_cert, 0, 0 },
		{ "tls-key", CLI_STR, &tls_key, 0, 0 },
		{ "max-connections", CLI_UINT, &max_conn, 1, 100000 },
		{ "per-ip-connections", CLI_UINT, &per_ip, 0, 100000 },
		/* below 8 KB libmicrohttpd has no room left to answer */
		{ "max-header-bytes", CLI_UINT, &max_header, 8192, 1 << 20 },
		/* HL7 v2 over MLLP (docs/hl7v2.md) */
		{ "mllp", CLI_STR, &mllp, 0, 0 },
		{ "mllp-client", CLI_STR, &mllp_client, 0, 0 },
		{ "mllp-processing-ids", CLI_STR, &mllp_pids, 0, 0 },
		{ "mllp-max-frame", CLI_UINT, &mllp_max_frame, 1024, 1ULL << 30 },
		{ "mllp-idle", CLI_UINT, &mllp_idle, 1, 86400 },
		{ "mllp-max-connections", CLI_UINT, &mllp_max_conn, 1, 10000 },
		{ "mllp-ack-to", CLI_STR, &mllp_ack_to, 0, 0 },
		{ NULL, 0, NULL, 0, 0 },
	};
	struct server_tls tls = { NULL, NULL };
	struct server_config cfg;
	struct err e = ERR_INIT;
	struct store *s;
	int npos, rc;

	if ((rc = cli_options(cmd, argc, argv, opts, 0, &npos)) != CLI_GO)
		return rc;
	if (level) {
		if (log_level_parse(level) < 0)
			return cli_usage_error(cmd, "--log-level must be error, warn, info or debug");
		log_level = log_level_parse(level);
	}
	if (base && strncmp(base, "http://", 7) != 0 && strncmp(base, "https://", 8) != 0)
		return cli_usage_error(cmd, "--base-url must start with http:// or https://");
	if ((rc = auto_link_opt(cmd, auto_link)) != 0)
		return rc;
	server_config_defaults(&cfg);
	cfg.listen = listen;
	cfg.base_url = base;
	cfg.max_body = (size_t)max_body;
	cfg.max_depth = (int)depth;
	cfg.threads = (unsigned)threads;
	cfg.timeout_s = (unsigned)timeout;
	cfg.export_dir = export_dir;
	cfg.lockout_attempts = (unsigned)lockout_attempts;
	cfg.lockout_minutes = (unsigned)lockout_minutes;
	cfg.token_rate = (unsigned)token_rate;
	cfg.max_connections = (unsigned)max_conn;
	cfg.per_ip_connections = (unsigned)per_ip;
	cfg.max_header_bytes = (size_t)max_header;
	cfg.no_match = no_match;
	if (!db)
		return cli_usage_error(cmd, "--db PATH is required");
	if (hl7_ack_routes_parse(mllp_ack_to, &ack_routes, &e) < 0)
		return cli_usage_error(cmd, "%s", e.msg);
	if (mllp_ack_to && !mllp)
		return cli_usage_error(cmd, "--mllp-ack-to goes with --mllp ADDR:PORT");
	if (!tls_cert != !tls_key)
		return cli_usage_error(cmd, "--tls-cert and --tls-key go together");
	/* the site policy is checked whole before anything starts */
	if (policy && privacy_policy_load(policy, &e) < 0)
		return cli_fail(cmd, &e);
	/* so is the certificate and key: a bad file is a usage error (exit 2) */
	if (tls_cert) {
		if (server_tls_load(&tls, tls_cert, tls_key, &e) < 0) {
			server_tls_release(&tls);
			rc = cli_fail(cmd, &e);
			return e.code == ERR_INVALID ? EXIT_USAGE : rc;
		}
		cfg.tls = &tls;
	}
	/* The key that signs audit checkpoints: the one given, or one next to
	 * the database, made on first start (move it away: docs/cli.md). */
	if (!audit_key) {
		if (snprintf(key_path, sizeof(key_path), "%s.audit-key", db) >= (int)sizeof(key_path)) {
			rc = cli_usage_error(cmd, "--db path too long");
			goto out;
		}
		audit_key = key_path;
		if (access(key_path, F_OK) != 0 && access(db, F_OK) == 0) {
			if (store_audit_keygen(key_path, &e) < 0) {
				rc = cli_fail(cmd, &e);
				goto out;
			}
			log_warn("event=audit_key_created path=\"%s\" hint=\"keep it apart from the database; "
				 "serve --audit-key FILE\"", key_path);
		}
	}
	memset(&so, 0, sizeof(so));
	so.audit_key = audit_key;
	if ((rc = cli_open_store(cmd, db, &so, &s)) != 0)
		goto out;
	if (mllp) {
		/* HL7 v2: the feed (inbox -> FHIR) first, then the listener that fills the inbox */
		struct hl7_feed_config fc = { s, NULL, mllp_client, (int)depth, !no_match };
		struct hl7_listener_config lc;
		/* application ACKs (enhanced mode): the sender runs whenever the
		 * feed does, so ACKs queued before a restart still go out */
		if (hl7_acker_start(s, &ack_routes, &acker, &e) < 0) {
			rc = cli_fail(cmd, &e);
			goto mllp_out;
		}
		fc.acker = acker;
		if (fhir_params_load(s, &feed_params, &e) < 0 || (fc.params = feed_params,
		    hl7_feed_new(&fc, &feed, &e)) < 0 || hl7_feed_start(feed, &e) < 0) {
			rc = cli_fail(cmd, &e);
			goto mllp_out;
		}
		hl7_listener_config_defaults(&lc);
		lc.listen = mllp;
		lc.max_frame = (size_t)mllp_max_frame;
		lc.idle_s = (unsigned)mllp_idle;
		lc.max_connections = (unsigned)mllp_max_conn;
		lc.processing_ids = mllp_pids;
		if (hl7_listener_start(s, feed, &lc, &listener, &e) < 0) {
			rc = cli_fail(cmd, &e);
			goto mllp_out;
		}
	}
	rc = server_run(s, &cfg, &e) < 0 ? cli_fail(cmd, &e) : 0;
mllp_out:
	hl7_listener_stop(listener);
	hl7_feed_free(feed);
	hl7_acker_stop(acker);
	if (feed_params)
		fhir_params_free(feed_params);
	store_close(s);
out:
	server_tls_release(&tls);
	return rc;
}

int cmd_import(const struct cli_cmd *cmd, int argc, char **argv)
{
	const char *db = NULL;
	bool no_match = false;
	const char *auto_link = NULL;
	const struct cli_opt opts[] = { { "db", CLI_STR, &db, 0, 0 },
					{ "no-match", CLI_FLAG, &no_match, 0, 0 },
					{ "mpi-auto-link", CLI_STR, &auto_link, 0, 0 },
					{ NULL, 0, NULL, 0, 0 } };
	struct loader_stats st;
	struct loader *l;
	struct store *s;
	int npos, rc, files = 0;

	if ((rc = cli_options(cmd, argc, argv, opts, -1, &npos)) != CLI_GO)
		return rc;
	if (npos == 0)
		return cli_usage_error(cmd, "no files to import");
	if ((rc = auto_link_opt(cmd, auto_link)) != 0)
		return rc;
	/* A bigger writer cache keeps the index b-trees of a bulk load in
	 * memory between group commits. */
	if ((rc = cli_open_store(cmd, db, &(struct store_opts){ .writer_cache_kb = 131072 }, &s)) != 0)
		return rc;
	l = loader_new(s, isatty(STDOUT_FILENO));
	if (!l) {
		store_close(s);
		fprintf(stderr, "chartkeep import: cannot start the loader\n");
		return 1;
	}
	if (no_match)
		loader_no_match(l);
	for (int i = 1; i <= npos; i++) {
		if (loader_file(l, argv[i]) == 0)
			files++;
	}
	loader_finish(l, &st);
	store_close(s);
	printf("imported %llu resources from %d file%s in %.2f s (%.0f resources/s, %.1f MB/s); "
	       "%llu error%s\n",
	       (unsigned long long)st.resources, files, files == 1 ? "" : "s", st.seconds,
	       st.seconds > 0 ? (double)st.resources / st.seconds : 0.0,
	       st.seconds > 0 ? (double)st.bytes / 1e6 / st.seconds : 0.0,
	       (unsigned long long)st.errors, st.errors == 1 ? "" : "s");
	return st.errors ? 1 : 0;
}

struct export_ctx {
	FILE *out;
	uint64_t n;
};

static int export_one(void *arg, const struct store_version *v)
{
	struct export_ctx *x = arg;

	if (fwrite(v->json, 1, v->len, x->out) != v->len || fputc('\n', x->out) == EOF)
		return -1;
	x->n++;
	return 0;
}

int cmd_export(const struct cli_cmd *cmd, int argc, char **argv)
{
	const char *db = NULL, *types = NULL;
	const struct cli_opt opts[] = {
		{ "db", CLI_STR, &db, 0, 0 },
		{ "type", CLI_STR, &types, 0, 0 },
		{ NULL, 0, NULL, 0, 0 },
	};
	struct export_ctx x = { stdout, 0 };
	struct err e = ERR_INIT;
	struct store *s;
	static char obuf[1 << 20];
	int npos, rc;

	if ((rc = cli_options(cmd, argc, argv, opts, 0, &npos)) != CLI_GO)
		return rc;
	if (types) {
		/* Check every type before writing anything. */
		char *list = strdup(types), *p, *save = NULL;
		if (!list)
			return 1;
		for (p = strtok_r(list, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
			if (!fhir_resource_type(p)) {
				rc = cli_usage_error(cmd, "unknown resource type '%s'", p);
				free(list);
				return rc;
			}
		}
		free(list);
	}
	if ((rc = cli_open_store(cmd, db, NULL, &s)) != 0)
		return rc;
	/* the whole record leaves the database: audited before the first byte */
	if (cli_audit(s, "export", PA_READ, 200, &e) < 0) {
		store_close(s);
		return cli_fail(cmd, &e);
	}
	setvbuf(stdout, obuf, _IOFBF, sizeof(obuf));
	if (!types) {
		rc = store_scan_current(s, NULL, export_one, &x, &e);
	} else {
		char *list = strdup(types), *p, *save = NULL;
		rc = list ? 0 : -1;
		for (p = list ? strtok_r(list, ",", &save) : NULL; p && rc == 0;
		     p = strtok_r(NULL, ",", &save))
			rc = store_scan_current(s, p, export_one, &x, &e);
		free(list);
	}
	if (fflush(stdout) != 0 && rc == 0) {
		err_set(&e, ERR_IO, "cannot write the output");
		rc = -1;
	}
	store_close(s);
	if (rc < 0) {
		if (!e.code)
			err_set(&e, ERR_IO, "cannot write the output");
		return cli_fail(cmd, &e);
	}
	fprintf(stderr, "exported %llu resources\n", (unsigned long long)x.n);
	return 0;
}
