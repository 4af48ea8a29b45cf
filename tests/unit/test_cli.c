/* test_cli.c - cli_parse (src/cli/cli.c): one row per argv vector.
 *
 * Each row gives the arguments after the subcommand name, what cli_parse
 * must return (0 or EXIT_USAGE), whether it says "done", and what ends up in
 * the option targets and the positional arguments.  Usage errors print one
 * line on stderr and --help prints the usage on stdout; both are expected
 * in the test output. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "cli/cli.h"
#include "base/banned.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))
#define MAXARGS 8

struct targets {
	const char *db;
	uint64_t count;
	uint64_t big;
	bool verbose, force;
};

struct cli_case {
	const char *name;
	const char *args[MAXARGS];   /* after argv[0]; NULL-terminated */
	int rc;
	bool done;
	/* when rc == 0 and !done: */
	int npos;
	const char *pos[MAXARGS];
	const char *db;              /* NULL: not set */
	uint64_t count, big;         /* 0 / 7: not set */
	bool verbose, force;
};

static const struct cli_case cases[] = {
	{ "nothing", { NULL }, 0, false, 0, { NULL }, NULL, 0, 7, false, false },
	{ "--name value", { "--db", "x.db", NULL }, 0, false, 0, { NULL }, "x.db", 0, 7, false, false },
	{ "--name=value", { "--db=x.db", NULL }, 0, false, 0, { NULL }, "x.db", 0, 7, false, false },
	{ "--name=value with =", { "--db=a=b", NULL }, 0, false, 0, { NULL }, "a=b", 0, 7, false, false },
	{ "a value that looks like an option", { "--db", "--verbose", NULL }, 0, false, 0, { NULL }, "--verbose",
	  0, 7, false, false },
	{ "the last of a repeated option wins", { "--db", "a", "--db=b", NULL }, 0, false, 0, { NULL }, "b", 0, 7,
	  false, false },
	{ "flags", { "--verbose", "--force", NULL }, 0, false, 0, { NULL }, NULL, 0, 7, true, true },
	{ "a flag with a value", { "--verbose=1", NULL }, EXIT_USAGE, true, 0, { NULL }, NULL, 0, 7, false, false },
	{ "a flag with an empty value", { "--verbose=", NULL }, EXIT_USAGE, true, 0, { NULL }, NULL, 0, 7, false,
	  false },
	{ "a missing value", { "--db", NULL }, EXIT_USAGE, true, 0, { NULL }, NULL, 0, 7, false, false },
	{ "an empty value", { "--db=", NULL }, EXIT_USAGE, true, 0, { NULL }, NULL, 0, 7, false, false },
	{ "an empty separate value", { "--db", "", NULL }, EXIT_USAGE, true, 0, { NULL }, NULL, 0, 7, false, false },
	{ "an unknown option", { "--nope", NULL }, EXIT_USAGE, true, 0, { NULL }, NULL, 0, 7, false, false },
	{ "an unknown option with a value", { "--nope=1", NULL }, EXIT_USAGE, true, 0, { NULL }, NULL, 0, 7, false,
	  false },
	{ "no prefix matching", { "--d", "x", NULL }, EXIT_USAGE, true, 0, { NULL }, NULL, 0, 7, false, false },
	{ "names are case-sensitive", { "--DB", "x", NULL }, EXIT_USAGE, true, 0, { NULL }, NULL, 0, 7, false, false },
	{ "a short option", { "-v", NULL }, EXIT_USAGE, true, 0, { NULL }, NULL, 0, 7, false, false },
	{ "three dashes", { "---db", "x", NULL }, EXIT_USAGE, true, 0, { NULL }, NULL, 0, 7, false, false },
	{ "an error after good options", { "--db", "x", "--bogus", NULL }, EXIT_USAGE, true, 0, { NULL }, NULL, 0, 7,
	  false, false },
	/* numbers: --count takes 1..100, --big 0..UINT64_MAX */
	{ "a number", { "--count", "5", NULL }, 0, false, 0, { NULL }, NULL, 5, 7, false, false },
	{ "the lower bound", { "--count=1", NULL }, 0, false, 0, { NULL }, NULL, 1, 7, false, false },
	{ "the upper bound", { "--count=100", NULL }, 0, false, 0, { NULL }, NULL, 100, 7, false, false },
	{ "below the bounds", { "--count=0", NULL }, EXIT_USAGE, true, 0, { NULL }, NULL, 0, 7, false, false },
	{ "above the bounds", { "--count=101", NULL }, EXIT_USAGE, true, 0, { NULL }, NULL, 0, 7, false, false },
	{ "negative", { "--count=-1", NULL }, EXIT_USAGE, true, 0, { NULL }, NULL, 0, 7, false, false },
	{ "trailing garbage", { "--count=5x", NULL }, EXIT_USAGE, true, 0, { NULL }, NULL, 0, 7, false, false },
	{ "not a number", { "--count", "abc", NULL }, EXIT_USAGE, true, 0, { NULL }, NULL, 0, 7, false, false },
	{ "an empty number", { "--count=", NULL }, EXIT_USAGE, true, 0, { NULL }, NULL, 0, 7, false, false },
	{ "a fraction", { "--count=2.5", NULL }, EXIT_USAGE, true, 0, { NULL }, NULL, 0, 7, false, false },
	{ "zero in a range from zero", { "--big=0", NULL }, 0, false, 0, { NULL }, NULL, 0, 0, false, false },
	{ "UINT64_MAX", { "--big=18446744073709551615", NULL }, 0, false, 0, { NULL }, NULL, 0, UINT64_MAX, false,
	  false },
	{ "past UINT64_MAX", { "--big=18446744073709551616", NULL }, EXIT_USAGE, true, 0, { NULL }, NULL, 0, 7, false,
	  false },
	{ "negative number after a space", { "--big", " -1", NULL }, EXIT_USAGE, true, 0, { NULL }, NULL, 0, 7, false,
	  false },
	/* positional arguments keep their order, options may come between */
	{ "positional arguments", { "a", "--db", "x", "b", "--verbose", "c", NULL }, 0, false, 3, { "a", "b", "c" },
	  "x", 0, 7, true, false },
	{ "- is positional", { "-", NULL }, 0, false, 1, { "-" }, NULL, 0, 7, false, false },
	{ "-- ends the options", { "--db", "x", "--", "--verbose", "-", "c", NULL }, 0, false, 3,
	  { "--verbose", "-", "c" }, "x", 0, 7, false, false },
	{ "-- alone", { "--", NULL }, 0, false, 0, { NULL }, NULL, 0, 7, false, false },
	{ "--help after -- is positional", { "--", "--help", NULL }, 0, false, 1, { "--help" }, NULL, 0, 7, false,
	  false },
	/* help */
	{ "--help", { "--help", NULL }, 0, true, 0, { NULL }, NULL, 0, 7, false, false },
	{ "-h", { "-h", NULL }, 0, true, 0, { NULL }, NULL, 0, 7, false, false },
	{ "--help after options", { "--db", "x", "--help", NULL }, 0, true, 0, { NULL }, NULL, 0, 7, false, false },
	{ "--help before an unknown option", { "--help", "--bogus", NULL }, 0, true, 0, { NULL }, NULL, 0, 7, false,
	  false },
};

static const struct cli_cmd cmd = {
	"testcmd", NULL, "a command for the tests", "usage: chartkeep testcmd [--db PATH] ...\n",
};

static void test_cli_parse(void **state)
{
	const struct cli_case *c = *state;
	struct targets t = { NULL, 0, 7, false, false };
	const struct cli_opt opts[] = {
		{ "db", CLI_STR, &t.db, 0, 0 },
		{ "count", CLI_UINT, &t.count, 1, 100 },
		{ "big", CLI_UINT, &t.big, 0, UINT64_MAX },
		{ "verbose", CLI_FLAG, &t.verbose, 0, 0 },
		{ "force", CLI_FLAG, &t.force, 0, 0 },
		{ NULL, 0, NULL, 0, 0 },
	};
	char *argv[MAXARGS + 2];
	char storage[MAXARGS][64]; /* on the stack: nothing to free when an assert fails */
	int argc = 0, npos = -1, rc;
	bool done = !c->done;

	argv[argc++] = (char *)"testcmd";
	for (int i = 0; c->args[i]; i++) {
		snprintf(storage[i], sizeof(storage[i]), "%s", c->args[i]);
		argv[argc++] = storage[i];
	}
	argv[argc] = NULL;

	rc = cli_parse(&cmd, argc, argv, opts, &npos, &done);
	assert_int_equal(rc, c->rc);
	assert_int_equal(done, c->done);
	if (rc == 0 && !done) {
		assert_int_equal(npos, c->npos);
		for (int i = 0; i < c->npos; i++)
			assert_string_equal(argv[1 + i], c->pos[i]);
		if (c->db)
			assert_string_equal(t.db, c->db);
		else
			assert_null(t.db);
		assert_int_equal(t.count, c->count);
		assert_true(t.big == c->big);
		assert_int_equal(t.verbose, c->verbose);
		assert_int_equal(t.force, c->force);
	}
}

static void test_cli_errors_exit_status(void **state)
{
	struct err e = ERR_INIT;

	(void)state;
	assert_int_equal(cli_usage_error(&cmd, "something %s", "wrong"), EXIT_USAGE);
	err_set(&e, ERR_IO, "cannot read it");
	assert_int_equal(cli_fail(&cmd, &e), 1);
	err_clear(&e);
	assert_int_equal(cli_fail(&cmd, &e), 1);
	/* --db is required where a store is opened */
	{
		struct store *s = NULL;
		assert_int_equal(cli_open_store(&cmd, NULL, NULL, &s), EXIT_USAGE);
		assert_null(s);
		assert_int_equal(cli_open_store(&cmd, "/nonexistent/dir/chartkeep.db", NULL, &s), 1);
		assert_null(s);
	}
}

int main(void)
{
	/* One group, so that the binary reports one total. */
	struct CMUnitTest tests[N_OF(cases) + 1];
	char names[N_OF(cases)][96];
	int failed;

	log_level = LOG_ERROR;
	for (size_t i = 0; i < N_OF(cases); i++) {
		snprintf(names[i], sizeof(names[i]), "cli_parse: %s", cases[i].name);
		tests[i] = (struct CMUnitTest){ names[i], test_cli_parse, NULL, NULL, (void *)&cases[i] };
	}
	tests[N_OF(cases)] = (struct CMUnitTest)cmocka_unit_test(test_cli_errors_exit_status);
	failed = _cmocka_run_group_tests("cli", tests, N_OF(tests), NULL, NULL);
	return failed ? 1 : 0;
}
