/* cli.c - option tables and the shared helpers of the subcommands. */
#include <errno.h>
#include <stdarg.h>
#include <pwd.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "cli/cli.h"
#include "privacy/audit.h"
#include "privacy/privacy.h"
#include "base/banned.h"

int cli_usage_error(const struct cli_cmd *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "chartkeep %s: ", cmd->name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (see 'chartkeep %s --help')\n", cmd->name);
	return EXIT_USAGE;
}

int cli_fail(const struct cli_cmd *cmd, const struct err *e)
{
	fprintf(stderr, "chartkeep %s: %s\n", cmd->name, e->msg[0] ? e->msg : "failed");
	if (e->detail[0])
		log_debug("event=cli_error detail=\"%s\"", e->detail);
	return 1;
}

static const struct cli_opt *find_opt(const struct cli_opt *opts, const char *name, size_t n)
{
	for (const struct cli_opt *o = opts; o->name; o++)
		if (strlen(o->name) == n && strncmp(o->name, name, n) == 0)
			return o;
	return NULL;
}

int cli_parse(const struct cli_cmd *cmd, int argc, char **argv, const struct cli_opt *opts,
	      int *npos, bool *done)
{
	int pos = 0;
	bool only_pos = false;

	*done = false;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *eq, *val = NULL;
		const struct cli_opt *o;
		size_t n;

		if (only_pos || a[0] != '-' || strcmp(a, "-") == 0) {
			argv[1 + pos++] = argv[i];
			continue;
		}
		if (strcmp(a, "--") == 0) {
			only_pos = true;
			continue;
		}
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			fputs(cmd->usage, stdout);
			*done = true;
			return 0;
		}
		if (a[1] != '-') {
			*done = true;
			return cli_usage_error(cmd, "unknown option '%s'", a);
		}
		a += 2;
		eq = strchr(a, '=');
		n = eq ? (size_t)(eq - a) : strlen(a);
		o = find_opt(opts, a, n);
		if (!o) {
			*done = true;
			return cli_usage_error(cmd, "unknown option '--%.*s'", (int)n, a);
		}
		if (o->kind == CLI_FLAG) {
			if (eq) {
				*done = true;
				return cli_usage_error(cmd, "option '--%s' takes no value", o->name);
			}
			*(bool *)o->target = true;
			continue;
		}
		if (eq) {
			val = eq + 1;
		} else if (i + 1 < argc) {
			val = argv[++i];
		} else {
			*done = true;
			return cli_usage_error(cmd, "option '--%s' needs a value", o->name);
		}
		if (o->kind == CLI_STR) {
			if (!*val) {
				*done = true;
				return cli_usage_error(cmd, "option '--%s' needs a value", o->name);
			}
			*(const char **)o->target = val;
		} else {
			char *end;
			unsigned long long v;
			errno = 0;
			v = strtoull(val, &end, 10);
			if (val[0] < '0' || val[0] > '9' || *end || errno || v < o->min || v > o->max) {
				*done = true;
				return cli_usage_error(cmd, "option '--%s' takes a whole number from %llu to %llu",
						       o->name, (unsigned long long)o->min,
						       (unsigned long long)o->max);
			}
			*(uint64_t *)o->target = v;
		}
	}
	*npos = pos;
	return 0;
}

int cli_options(const struct cli_cmd *cmd, int argc, char **argv, const struct cli_opt *opts,
		int max_pos, int *npos)
{
	bool done;
	int rc = cli_parse(cmd, argc, argv, opts, npos, &done);

	if (done)
		return rc;
	if (max_pos >= 0 && *npos > max_pos)
		return cli_usage_error(cmd, "unexpected argument '%s'", argv[1 + max_pos]);
	return CLI_GO;
}

int cli_action(const struct cli_cmd *cmd, int argc, char **argv, const char *const *actions,
	       int *which)
{
	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		fputs(cmd->usage, stdout);
		return 0;
	}
	for (int i = 0; argc >= 2 && actions[i]; i++) {
		if (strcmp(argv[1], actions[i]) == 0) {
			*which = i;
			return CLI_GO;
		}
	}
	if (argc < 2 || argv[1][0] == '-')
		return cli_usage_error(cmd, "expected '%s' or '%s'", actions[0], actions[1]);
	return cli_usage_error(cmd, "unknown action '%s' (expected %s or %s)", argv[1], actions[0],
			       actions[1]);
}

int cli_open_store(const struct cli_cmd *cmd, const char *db, const struct store_opts *o,
		   struct store **s)
{
	struct err e = ERR_INIT;

	struct store_opts def;
	char key[4096];

	if (!db)
		return cli_usage_error(cmd, "--db PATH is required");
	/* the audit key serve made next to the database, if it is there: the
	 * entries this command writes are signed at its end */
	if (!o && snprintf(key, sizeof(key), "%s.audit-key", db) < (int)sizeof(key) &&
	    access(key, R_OK) == 0) {
		memset(&def, 0, sizeof(def));
		def.audit_key = key;
		o = &def;
	}
	if (store_open(db, o, s, &e) < 0)
		return cli_fail(cmd, &e);
	return 0;
}

int cli_read_secret(char *out, size_t cap, struct err *e)
{
	size_t n;

	if (!fgets(out, (int)cap, stdin))
		return err_set(e, ERR_INVALID, "nothing on standard input");
	n = strlen(out);
	if (n == cap - 1 && out[n - 1] != '\n')
		return err_set(e, ERR_INVALID, "input line too long");
	while (n && (out[n - 1] == '\n' || out[n - 1] == '\r'))
		out[--n] = '\0';
	if (n == 0)
		return err_set(e, ERR_INVALID, "empty line on standard input");
	return 0;
}

const char *cli_actor(void)
{
	static char name[96];

	if (!name[0]) {
		struct passwd *pw = getpwuid(geteuid());
		snprintf(name, sizeof(name), "cli:%s", pw && pw->pw_name ? pw->pw_name : "unknown");
	}
	return name;
}

int cli_audit(struct store *s, const char *what, int action, int status, struct err *e)
{
	struct audit_info ai;
	struct store_txn t;

	memset(&ai, 0, sizeof(ai));
	ai.username = cli_actor();
	ai.action = action;
	ai.interaction = what;
	ai.source = "local";
	ai.status = status;
	memset(&t, 0, sizeof(t));
	t.atomic = true;
	t.audit = audit_txn_entry;
	t.audit_arg = &ai;
	if (store_commit(s, &t) != 0) {
		*e = t.err;
		return -1;
	}
	return 0;
}
