/* cmd_codes.c - chartkeep codes: load code sets and edit tables, list what
 * is loaded.  CPT is the AMA's: chartkeep ships none; a site loads its own
 * licensed file with --system cpt. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "base/base.h"
#include "cli/cli.h"
#include "coding/coding.h"
#include "base/banned.h"

static int load(const struct cli_cmd *cmd, int argc, char **argv)
{
	const char *db = NULL;
	struct coding_load_opts o = { NULL, NULL, NULL, NULL };
	const struct cli_opt opts[] = {
		{ "db", CLI_STR, &db, 0, 0 },
		{ "system", CLI_STR, &o.system, 0, 0 },
		{ "version", CLI_STR, &o.version, 0, 0 },
		{ "effective-from", CLI_STR, &o.eff_from, 0, 0 },
		{ "effective-to", CLI_STR, &o.eff_to, 0, 0 },
		{ NULL, 0, NULL, 0, 0 },
	};
	struct coding_load_report r;
	struct err e = ERR_INIT;
	struct store *s = NULL;
	int npos, rc;

	if ((rc = cli_options(cmd, argc, argv, opts, 1, &npos)) != CLI_GO)
		return rc;
	if (!o.system)
		return cli_usage_error(cmd, "--system SYSTEM is required");
	if (!o.version)
		return cli_usage_error(cmd, "--version V is required");
	if (npos != 1)
		return cli_usage_error(cmd, "one FILE to load is required");
	if ((rc = cli_open_store(cmd, db, NULL, &s)) != 0)
		return rc;
	if (coding_load_file(s, &o, argv[1], &r, &e) < 0) {
		rc = cli_fail(cmd, &e);
		goto out;
	}
	if (r.unchanged)
		printf("%s %s: already loaded from this file (%s); nothing changed\n", r.v.system,
		       r.v.version, r.v.source);
	else if (coding_system_by_name(r.v.system)->kind == CK_EDITS)
		printf("%s %s: %" PRId64 " edit rows from %s, effective %s to %s, %.2f s\n", r.v.system,
		       r.v.version, r.v.n_codes, r.v.source, r.v.eff_from, r.v.eff_to, r.seconds);
	else
		printf("%s %s: %" PRId64 " codes (%" PRId64 " billable) from %s (%s), effective %s to %s, "
		       "%.2f s\n", r.v.system, r.v.version, r.v.n_codes, r.v.n_billable, r.v.source,
		       r.format, r.v.eff_from, r.v.eff_to, r.seconds);
	if (!r.unchanged && r.modifiers)
		printf("  %zu of the codes are modifiers (for Claim.item.modifier)\n", r.modifiers);
	if (!r.unchanged && r.skipped)
		printf("  %zu lines were not codes (preamble, header) and were skipped\n", r.skipped);
	rc = 0;
out:
	store_close(s);
	return rc;
}

static int list_row(void *ctx, const struct store_code_version *v)
{
	char when[TIME_INSTANT_MAX];

	(void)ctx;
	time_format_instant(v->loaded_ms, when);
	printf("%-11s %-8s %s..%s %8" PRId64 " %8" PRId64 "  %.19s  %s\n", v->system, v->version,
	       v->eff_from, v->eff_to, v->n_codes, v->n_billable, when, v->source);
	return 0;
}

static int list(const struct cli_cmd *cmd, int argc, char **argv)
{
	const char *db = NULL, *system = NULL;
	const struct cli_opt opts[] = {
		{ "db", CLI_STR, &db, 0, 0 },
		{ "system", CLI_STR, &system, 0, 0 },
		{ NULL, 0, NULL, 0, 0 },
	};
	struct err e = ERR_INIT;
	struct store *s = NULL;
	int npos, rc;

	if ((rc = cli_options(cmd, argc, argv, opts, 0, &npos)) != CLI_GO)
		return rc;
	if (system && !coding_system_by_name(system))
		return cli_usage_error(cmd, "--system: unknown code system '%s'", system);
	if ((rc = cli_open_store(cmd, db, NULL, &s)) != 0)
		return rc;
	printf("%-11s %-8s %-22s %8s %8s  %-19s  %s\n", "system", "version", "effective", "codes",
	       "billable", "loaded (UTC)", "file");
	if (store_code_versions(s, system, list_row, NULL, &e) < 0)
		rc = cli_fail(cmd, &e);
	store_close(s);
	return rc;
}

struct show {
	const struct coding_system *sys;
	const struct store_code_version *v;
};

static int show_row(void *ctx, const struct store_concept *c)
{
	struct show *sh = ctx;
	char code[STORE_CODE_MAX + 2], parent[STORE_CODE_MAX + 2];

	coding_code_show(sh->sys, c->code, code);
	coding_code_show(sh->sys, c->parent, parent);
	printf("%s %s (%s %s): %s\n", code, c->billable ? "billable" : "header, not billable",
	       sh->sys->title, sh->v->version, c->display);
	if (c->parent[0])
		printf("  parent %s\n", parent);
	if (c->terminated)
		printf("  terminated %d\n", (int)c->terminated);
	return 0;
}

struct pick {
	const char *date;
	struct store_code_version v;
	bool found;
};

static int pick_row(void *ctx, const struct store_code_version *v)
{
	struct pick *p = ctx;

	if (p->date && (strcmp(p->date, v->eff_from) < 0 || strcmp(p->date, v->eff_to) > 0))
		return 0;
	p->v = *v;
	p->found = true;
	return 1;
}

static int lookup(const struct cli_cmd *cmd, int argc, char **argv)
{
	const char *db = NULL, *system = NULL, *code = NULL, *date = NULL;
	const struct cli_opt opts[] = {
		{ "db", CLI_STR, &db, 0, 0 },
		{ "system", CLI_STR, &system, 0, 0 },
		{ "code", CLI_STR, &code, 0, 0 },
		{ "date", CLI_STR, &date, 0, 0 },
		{ NULL, 0, NULL, 0, 0 },
	};
	const struct coding_system *sys;
	struct pick p;
	struct show sh;
	char norm[STORE_CODE_MAX];
	struct err e = ERR_INIT;
	struct store *s = NULL;
	bool found = false;
	int npos, rc;

	if ((rc = cli_options(cmd, argc, argv, opts, 0, &npos)) != CLI_GO)
		return rc;
	sys = coding_system_by_name(system);
	if (!sys || sys->kind != CK_CODES)
		return cli_usage_error(cmd, "--system: a code system (icd10cm, icd10pcs, hcpcs, cpt, pos)");
	if (!code)
		return cli_usage_error(cmd, "--code CODE is required");
	if (coding_code_norm(sys, code, strlen(code), norm, &e) < 0)
		return cli_usage_error(cmd, "--code: %s", e.msg);
	if ((rc = cli_open_store(cmd, db, NULL, &s)) != 0)
		return rc;
	memset(&p, 0, sizeof(p));
	p.date = date;
	if (store_code_versions(s, sys->name, pick_row, &p, &e) < 0) {
		rc = cli_fail(cmd, &e);
		goto out;
	}
	if (!p.found) {
		fprintf(stderr, "chartkeep codes: no %s version loaded%s%s\n", sys->title,
			date ? " covers " : "", date ? date : "");
		rc = 1;
		goto out;
	}
	sh.sys = sys;
	sh.v = &p.v;
	if (store_code_get(s, p.v.vkey, norm, show_row, &sh, &found, &e) < 0) {
		rc = cli_fail(cmd, &e);
		goto out;
	}
	if (!found) {
		fprintf(stderr, "chartkeep codes: %s is not a %s %s code\n", code, sys->title, p.v.version);
		rc = 1;
	}
out:
	store_close(s);
	return rc;
}

int cmd_codes(const struct cli_cmd *cmd, int argc, char **argv)
{
	static const char *const actions[] = { "load", "list", "lookup", NULL };
	int which, rc;

	if ((rc = cli_action(cmd, argc, argv, actions, &which)) != CLI_GO)
		return rc;
	if (which == 0)
		return load(cmd, argc - 1, argv + 1);
	if (which == 1)
		return list(cmd, argc - 1, argv + 1);
	return lookup(cmd, argc - 1, argv + 1);
}
