/* cmd_hl7.c - chartkeep hl7: parse a message file for people debugging an
 * interface, send files over MLLP, list and reprocess the error queue. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "cli/cli.h"
#include "hl7v2/hl7v2.h"
#include "base/banned.h"

#define HL7_FILE_MAX ((size_t)256 << 20)

/* Read a whole file (or stdin for "-") into b. */
static int read_file(const char *path, struct buf *b, struct err *e)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	char chunk[65536];
	size_t n;
	int rc = 0;

	if (!f)
		return err_set(e, ERR_IO, "cannot open '%s': %s", path, strerror(errno));
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_add(b, chunk, n);
	if (ferror(f))
		rc = err_set(e, ERR_IO, "cannot read '%s': %s", path, strerror(errno));
	else if (b->failed)
		rc = err_set(e, ERR_TOO_LARGE, "'%s' is larger than %zu bytes", path, b->max);
	if (f != stdin)
		fclose(f);
	return rc;
}

static int do_parse(const struct cli_cmd *cmd, const char *path, const char *want)
{
	struct buf in = BUF_INIT(HL7_FILE_MAX), out = BUF_INIT(0);
	struct arena a;
	struct err e = ERR_INIT;
	struct hl7_span sp;
	size_t pos = 0, n = 0, bad = 0;
	int rc = 0;

	arena_init(&a, 0);
	if (read_file(path, &in, &e) < 0) {
		rc = cli_fail(cmd, &e);
		goto out;
	}
	if (!want)
		fputs("[", stdout);
	while (hl7_next_message(in.data ? in.data : "", in.len, &pos, &sp) == 1) {
		struct hl7_msg m;
		arena_reset(&a);
		n++;
		buf_reset(&out);
		if (hl7_parse(in.data + sp.off, sp.len, &a, &m, &e) < 0) {
			fprintf(stderr, "chartkeep hl7: %s: message %zu (byte %u of the file): %s\n", path, n,
				sp.off, e.msg);
			bad++;
			continue;
		}
		if (want) {
			int r = hl7_get_str(&m, want, &out, &e);
			if (r < 0) {
				rc = cli_usage_error(cmd, "%s", e.msg);
				goto out;
			}
			printf("%s\n", buf_cstr(&out));
			continue;
		}
		hl7_dump_json(&m, &out);
		printf("%s%s\n", n > 1 ? "," : "", buf_cstr(&out));
	}
	if (!want)
		fputs("]\n", stdout);
	if (n == 0) {
		fprintf(stderr, "chartkeep hl7: %s: no MSH segment: not an HL7 v2 message\n", path);
		rc = 1;
	} else if (bad) {
		rc = 1;
	}
out:
	arena_release(&a);
	buf_release(&in);
	buf_release(&out);
	return rc;
}

int cmd_hl7(const struct cli_cmd *cmd, int argc, char **argv)
{
	const char *path = NULL;
	const struct cli_opt parse_opts[] = {
		{ "path", CLI_STR, &path, 0, 0 },
		{ NULL, 0, NULL, 0, 0 },
	};
	static const char *const actions[] = { "parse", NULL };
	int which, npos, rc;

	if ((rc = cli_action(cmd, argc, argv, actions, &which)) != CLI_GO)
		return rc;
	switch (which) {
	default:
		if ((rc = cli_options(cmd, argc - 1, argv + 1, parse_opts, 1, &npos)) != CLI_GO)
			return rc;
		if (npos != 1)
			return cli_usage_error(cmd, "parse takes one FILE (- for standard input)");
		return do_parse(cmd, argv[2], path);
	}
}
