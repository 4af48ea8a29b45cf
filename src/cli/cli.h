/* cli.h - the command line: subcommands, option tables, the bulk loader.
 *
 * Every subcommand is one row of the table in main.c and one cmd_*.c file.
 * Options are tables too (struct cli_opt), parsed by cli_parse, which
 * handles --help, "--name value" and "--name=value", and rejects unknown or
 * malformed options with a one-line reason (exit status 2).  Runtime
 * failures print one line and exit 1. */
#ifndef CK_CLI_H
#define CK_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "store/store.h"

#define EXIT_USAGE 2

enum cli_opt_kind { CLI_STR, CLI_UINT, CLI_FLAG };

struct cli_opt {
	const char *name;       /* without the dashes */
	int kind;               /* enum cli_opt_kind */
	void *target;           /* const char **, uint64_t *, bool * */
	uint64_t min, max;      /* bounds for CLI_UINT */
};

struct cli_cmd {
	const char *name;
	int (*run)(const struct cli_cmd *cmd, int argc, char **argv);
	const char *summary;
	const char *usage;      /* shown by --help */
};

/* Parse argv[1..] by opts; positional arguments are moved to the front of
 * argv+1 and their count is returned through *npos.  Returns 0, or an exit
 * status to return right away (0 after --help, EXIT_USAGE on an error). */
int cli_parse(const struct cli_cmd *cmd, int argc, char **argv, const struct cli_opt *opts,
	      int *npos, bool *done);
#define CLI_GO (-1)
/* cli_parse for a command taking at most max_pos positional arguments (no
 * limit if negative): CLI_GO to go on, or the exit status to return. */
int cli_options(const struct cli_cmd *cmd, int argc, char **argv, const struct cli_opt *opts,
		int max_pos, int *npos);
/* argv[1] names one of actions (a NULL-terminated list): CLI_GO with
 * *which set, or the exit status to return (--help prints the usage). */
int cli_action(const struct cli_cmd *cmd, int argc, char **argv, const char *const *actions,
	       int *which);
int cli_usage_error(const struct cli_cmd *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
int cli_fail(const struct cli_cmd *cmd, const struct err *e);
/* Open the database named by --db (required); o may be NULL for defaults. */
int cli_open_store(const struct cli_cmd *cmd, const char *db, const struct store_opts *o,
		   struct store **s);
/* Read one line of stdin (a password or token), without the newline. */
int cli_read_secret(char *out, size_t cap, struct err *e);
/* Who is running this command, for the audit trail: "cli:<login name>". */
const char *cli_actor(void);
/* Audit one command that read or wrote patient data outside a request
 * (export): an entry, durable before the command goes on.  -1 with e set if
 * it could not be written (the command must then stop). */
int cli_audit(struct store *s, const char *what, int action, int status, struct err *e);

int cmd_init(const struct cli_cmd *cmd, int argc, char **argv);
int cmd_reindex(const struct cli_cmd *cmd, int argc, char **argv);
int cmd_audit(const struct cli_cmd *cmd, int argc, char **argv);
int cmd_user(const struct cli_cmd *cmd, int argc, char **argv);
int cmd_token(const struct cli_cmd *cmd, int argc, char **argv);
int cmd_client(const struct cli_cmd *cmd, int argc, char **argv);
int cmd_serve(const struct cli_cmd *cmd, int argc, char **argv);
int cmd_import(const struct cli_cmd *cmd, int argc, char **argv);
int cmd_export(const struct cli_cmd *cmd, int argc, char **argv);
int cmd_demo(const struct cli_cmd *cmd, int argc, char **argv);
int cmd_check(const struct cli_cmd *cmd, int argc, char **argv);
int cmd_policy(const struct cli_cmd *cmd, int argc, char **argv);
int cmd_codes(const struct cli_cmd *cmd, int argc, char **argv);
int cmd_hl7(const struct cli_cmd *cmd, int argc, char **argv);
int cmd_mpi(const struct cli_cmd *cmd, int argc, char **argv);
int cmd_x12(const struct cli_cmd *cmd, int argc, char **argv);

/* ---- the bulk loader (import, demo) ----
 *
 * Resources are parsed, validated and prepared on the calling thread while
 * the store's writer commits the previous batch: two batches in flight, so
 * both cores work.  NDJSON and collection Bundles keep their ids (an update
 * that creates); transaction Bundles are one all-or-nothing store
 * transaction with the transaction rules; batch Bundles stand per entry. */
struct loader;

struct loader_stats {
	uint64_t resources;    /* written (created, updated or unchanged) */
	uint64_t errors;       /* rejected resources or entries */
	uint64_t bytes;        /* input read */
	double seconds;
};

struct loader *loader_new(struct store *s, bool progress);
/* Load one file (Bundle, single resource, or NDJSON).  Problems are reported
 * on stderr as FILE:LINE or FILE: entry N, and counted; returns -1 only when
 * the file cannot be read at all. */
int loader_file(struct loader *l, const char *path);
/* Load one resource given as JSON text; origin names it in messages. */
int loader_json(struct loader *l, const char *json, size_t len, const char *origin);
/* Wait for everything queued, then free the loader. */
void loader_finish(struct loader *l, struct loader_stats *out);
/* No incremental patient matching for this load (mpi/mpi.h): for bulk
 * migrations, followed by `chartkeep mpi scan`. */
void loader_no_match(struct loader *l);

#endif
