/* cmd_x12.c - chartkeep x12: parse, validate and encode X12 5010 files.
 *
 * No database: these read a file and write to standard output.  Findings
 * about the data (what a 999 or TA1 reports) go to standard error one a
 * line, naming the interchange, group, transaction set, segment position,
 * loop and element, never the data; they are not failures of the command.
 * Exit status: 0 clean, 1 findings (a transaction set rejected, a bad
 * envelope) or a runtime failure, 2 when the input cannot be read or is
 * not X12 at all (and for usage errors). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"
#include "cli/cli.h"
#include "revenue/x12.h"
#include "base/banned.h"

static int open_input(const struct cli_cmd *cmd, const char *path, int *fd)
{
	if (strcmp(path, "-") == 0) {
		*fd = 0;
		return 0;
	}
	*fd = open(path, O_RDONLY | O_CLOEXEC);
	if (*fd < 0) {
		fprintf(stderr, "chartkeep %s: cannot open '%s': %s\n", cmd->name, path,
			strerror(errno));
		return EXIT_USAGE;
	}
	return 0;
}

/* parse (json != NULL) or validate one file. */
static int run(const struct cli_cmd *cmd, const char *path, bool parse, const char *now,
	       uint64_t control)
{
	struct x12_reader r;
	struct x12_opts o = { 0 };
	struct x12_stats st;
	struct x12_sink sink = { 0 };
	struct x12_json *j = NULL;
	struct err e = ERR_INIT;
	int fd = -1, rc;

	if ((rc = open_input(cmd, path, &fd)) != 0)
		return rc;
	/* a bad batch can have a finding per segment: buffer them (stderr is
	 * unbuffered, a write per fprintf); flushed on the way out */
	setvbuf(stderr, NULL, _IOFBF, 1 << 16);
	if (x12_reader_init_fd(&r, fd, 0, &e) < 0) {
		rc = cli_fail(cmd, &e);
		goto out;
	}
	o.now = now;
	o.ack_control = (uint32_t)control;
	if (parse) {
		j = x12_json_new(stdout);
		if (!j) {
			err_set(&e, ERR_NOMEM, "out of memory");
			rc = cli_fail(cmd, &e);
			goto out_reader;
		}
		x12_json_sink(j, &sink);
		o.no_validate = true;
	} else {
		o.ack_out = stdout;
	}
	if (x12_process(&r, parse ? &sink : NULL, &o, &st, stderr, &e) < 0) {
		fprintf(stderr, "chartkeep %s: %s: %s\n", cmd->name, path, e.msg);
		rc = e.code == ERR_IO || st.interchanges == 0 ? EXIT_USAGE : 1;
		goto out_reader;
	}
	if (j && x12_json_finish(j, &e) < 0) {
		rc = cli_fail(cmd, &e);
		goto out_reader;
	}
	if (fflush(stdout) != 0) {
		err_set(&e, ERR_IO, "cannot write the output");
		rc = cli_fail(cmd, &e);
		goto out_reader;
	}
	/* parse: 1 only when the envelope is broken (cut short, garbage) */
	if (parse)
		rc = st.ta1_errors ? 1 : 0;
	else
		rc = st.rejected || st.groups_rejected || st.ta1_errors ? 1 : 0;
out_reader:
	x12_reader_release(&r);
out:
	x12_json_free(j);
	if (fd > 0)
		close(fd);
	fflush(stderr);
	return rc;
}

static int read_all(int fd, struct buf *b, struct err *e)
{
	for (;;) {
		ssize_t n;

		if (buf_grow(b, 65536) < 0)
			return err_set(e, ERR_TOO_LARGE, "the input is too large");
		n = read(fd, b->data + b->len, b->cap - b->len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return err_set(e, ERR_IO, "cannot read the input: %s", strerror(errno));
		if (n == 0)
			return 0;
		b->len += (size_t)n;
	}
}

static int encode(const struct cli_cmd *cmd, const char *path, bool ours)
{
	struct buf in = BUF_INIT(0), out = BUF_INIT(0);
	struct err e = ERR_INIT;
	int fd = -1, rc;

	if ((rc = open_input(cmd, path, &fd)) != 0)
		return rc;
	if (read_all(fd, &in, &e) < 0) {
		rc = e.code == ERR_IO ? (fprintf(stderr, "chartkeep %s: %s\n", cmd->name, e.msg),
					 EXIT_USAGE) :
					cli_fail(cmd, &e);
		goto out;
	}
	if (x12_encode_json(in.data ? in.data : "", in.len, ours, &out, &e) < 0) {
		fprintf(stderr, "chartkeep %s: %s: %s\n", cmd->name, path, e.msg);
		rc = 1;
		goto out;
	}
	if ((out.len && fwrite(out.data, 1, out.len, stdout) != out.len) || fflush(stdout) != 0) {
		err_set(&e, ERR_IO, "cannot write the output");
		rc = cli_fail(cmd, &e);
		goto out;
	}
	rc = 0;
out:
	buf_release(&in);
	buf_release(&out);
	if (fd > 0)
		close(fd);
	return rc;
}

int cmd_x12(const struct cli_cmd *cmd, int argc, char **argv)
{
	static const char *const actions[] = { "parse", "validate", "encode", NULL };
	const char *now = NULL;
	uint64_t control = 1;
	bool ours = false;
	const struct cli_opt opts[] = {
		{ "now", CLI_STR, &now, 0, 0 },
		{ "control", CLI_UINT, &control, 1, 999999999 },
		{ "our-delimiters", CLI_FLAG, &ours, 0, 0 },
		{ NULL, 0, NULL, 0, 0 },
	};
	int which, rc, npos;

	/* cli_action names two actions in its message; there are three */
	if (argc < 2 || (strcmp(argv[1], "--help") != 0 && strcmp(argv[1], "-h") != 0 &&
			 strcmp(argv[1], "parse") != 0 && strcmp(argv[1], "validate") != 0 &&
			 strcmp(argv[1], "encode") != 0))
		return cli_usage_error(cmd, "expected parse, validate or encode");
	if ((rc = cli_action(cmd, argc, argv, actions, &which)) != CLI_GO)
		return rc;
	if ((rc = cli_options(cmd, argc - 1, argv + 1, opts, 1, &npos)) != CLI_GO)
		return rc;
	if (npos != 1)
		return cli_usage_error(cmd, "%s needs one FILE", actions[which]);
	if (now && (strlen(now) != 12 || strspn(now, "0123456789") != 12))
		return cli_usage_error(cmd, "--now takes CCYYMMDDHHMM");
	if (which == 2)
		return encode(cmd, argv[2], ours);
	return run(cmd, argv[2], which == 0, now, control);
}
