/* cmd_audit.c - chartkeep audit: the key that signs checkpoints, and the
 * check of the whole chain.  There is no command that changes an entry. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "base/base.h"
#include "cli/cli.h"
#include "base/banned.h"

int cmd_audit(const struct cli_cmd *cmd, int argc, char **argv)
{
	const char *db = NULL, *key = NULL;
	const struct cli_opt opts[] = {
		{ "db", CLI_STR, &db, 0, 0 },
		{ "key", CLI_STR, &key, 0, 0 },
		{ NULL, 0, NULL, 0, 0 },
	};
	static const char *const actions[] = { "keygen", "verify", NULL };
	struct err e = ERR_INIT;
	struct store *s = NULL;
	struct store_audit_report r;
	unsigned char pk[STORE_AUDIT_PUB_BYTES];
	int which, npos, rc;

	if ((rc = cli_action(cmd, argc, argv, actions, &which)) != CLI_GO)
		return rc;
	if ((rc = cli_options(cmd, argc - 1, argv + 1, opts, 0, &npos)) != CLI_GO)
		return rc;
	if (which == 0) {
		if (!key)
			return cli_usage_error(cmd, "--key FILE is required");
		if (store_audit_keygen(key, &e) < 0)
			return cli_fail(cmd, &e);
		printf("wrote %s (secret: keep it away from the database and its backups) and %s.pub\n",
		       key, key);
		return 0;
	}
	if (key && store_audit_pubkey(key, pk, &e) < 0)
		return cli_fail(cmd, &e);
	if ((rc = cli_open_store(cmd, db, NULL, &s)) != 0)
		return rc;
	if (store_audit_verify(s, key ? pk : NULL, &r, &e) < 0) {
		rc = cli_fail(cmd, &e);
	} else if (r.bad_seq) {
		printf("FAILED at entry %" PRId64 ": %s\n", r.bad_seq, r.why);
		rc = 1;
	} else {
		printf("OK: %" PRId64 " entries, %" PRId64 " checkpoints %s", r.entries, r.checkpoints,
		       key ? "signed by this key" : "(signatures not checked: no --key)");
		if (r.unsigned_tail)
			printf("; entries after %s are not yet covered by a signature",
			       r.checkpoints ? "the last checkpoint" : "the first");
		printf("\n");
		rc = 0;
	}
	store_close(s);
	return rc;
}
