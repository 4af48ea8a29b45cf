/* cmd_hl7.c - chartkeep hl7: parse a message file for people debugging an
 * interface, send files over MLLP, list and reprocess the error queue. */
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/base.h"
#include "cli/cli.h"
#include "fhir/search.h"
#include "hl7v2/hl7v2.h"
#include "privacy/privacy.h"
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

static int do_parse(const struct cli_cmd *cmd, const char *path, const char *want, bool fhir)
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
		if (fhir) {
			/* the transaction the feed would commit (before conditional
			 * entries are resolved against a database) */
			struct hl7_ack_err ae;
			int ack;
			const char *why = NULL;
			if (hl7_map_check(&m, &ae, &ack) < 0)
				why = ae.text;
			else if (hl7_map_bundle(&m, &out, NULL, &e) < 0)
				why = e.msg;
			if (why) {
				fprintf(stderr, "chartkeep hl7: %s: message %zu: %s\n", path, n, why);
				bad++;
				continue;
			}
		} else {
			hl7_dump_json(&m, &out);
		}
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

/* ---- send ---- */

static int connect_to(const char *to, struct err *e)
{
	char host[256];
	const char *colon = strrchr(to, ':');
	struct addrinfo hints, *res = NULL, *ai;
	int fd = -1, r;

	if (!colon || colon == to || !colon[1] || (size_t)(colon - to) >= sizeof(host))
		return err_set(e, ERR_INVALID, "--to must be HOST:PORT, e.g. 127.0.0.1:2575");
	snprintf(host, sizeof(host), "%.*s", (int)(colon - to), to);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	r = getaddrinfo(host, colon + 1, &hints, &res);
	if (r != 0)
		return err_set(e, ERR_IO, "cannot resolve '%s': %s", to, gai_strerror(r));
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0)
			continue;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		return err_set(e, ERR_IO, "cannot connect to %s: %s", to, strerror(errno));
	return fd;
}

/* Wait for one framed answer (the ACK) into *ack. */
static int read_ack(int fd, struct hl7_mllp *f, unsigned timeout_s, struct buf *ack, struct err *e)
{
	char rb[65536];
	int64_t deadline = time_now_ms() + (int64_t)timeout_s * 1000;

	for (;;) {
		const char *msg;
		size_t len;
		int r = hl7_mllp_next(f, &msg, &len);
		struct pollfd p = { fd, POLLIN, 0 };
		int64_t left = deadline - time_now_ms();
		ssize_t n;

		if (r == 1) {
			buf_reset(ack);
			buf_add(ack, msg, len);
			return 0;
		}
		if (left <= 0)
			return err_set(e, ERR_IO, "no ACK within %u s", timeout_s);
		if (poll(&p, 1, (int)left) <= 0)
			continue;
		n = recv(fd, rb, sizeof(rb), 0);
		if (n <= 0)
			return err_set(e, ERR_IO, "the receiver closed the connection without an ACK");
		hl7_mllp_feed(f, rb, (size_t)n);
	}
}

static int do_send(const struct cli_cmd *cmd, const char *to, char **files, int nfiles, unsigned timeout_s)
{
	struct err e = ERR_INIT;
	struct hl7_mllp f;
	struct buf out = BUF_INIT(0), ack = BUF_INIT(0);
	struct arena a;
	int fd = connect_to(to, &e), rc = 0;
	size_t sent = 0, accepted = 0;

	if (fd < 0)
		return cli_fail(cmd, &e);
	hl7_mllp_init(&f, HL7_DEFAULT_MAX_FRAME);
	arena_init(&a, 0);
	for (int i = 0; i < nfiles; i++) {
		struct buf in = BUF_INIT(HL7_FILE_MAX);
		struct hl7_span sp;
		size_t pos = 0, n = 0;

		if (read_file(files[i], &in, &e) < 0) {
			fprintf(stderr, "chartkeep hl7: %s\n", e.msg);
			rc = 1;
			buf_release(&in);
			continue;
		}
		while (hl7_next_message(in.data ? in.data : "", in.len, &pos, &sp) == 1) {
			struct hl7_msg m, am;
			struct err pe = ERR_INIT;
			bool parsed, want;
			n++;
			arena_reset(&a);
			parsed = hl7_parse(in.data + sp.off, sp.len, &a, &m, &pe) == 0;
			/* enhanced mode with MSH-15 NE: no accept ACK will come */
			want = !parsed || hl7_ack_wanted(&m, HL7_CA) || hl7_ack_wanted(&m, HL7_CR);
			/* segments end in CR on the wire, whatever the file used */
			{
				struct buf seg = BUF_INIT(0);
				const char *t = in.data + sp.off, *end = t + sp.len;
				while (t < end) {
					if (*t == '\r' && t + 1 < end && t[1] == '\n')
						t++;
					buf_addch(&seg, *t == '\n' ? '\r' : *t);
					t++;
				}
				buf_reset(&out);
				hl7_mllp_wrap(buf_cstr(&seg), seg.len, &out);
				buf_release(&seg);
			}
			if (send(fd, out.data, out.len, MSG_NOSIGNAL) != (ssize_t)out.len) {
				err_set(&e, ERR_IO, "sending to %s failed: %s", to, strerror(errno));
				rc = cli_fail(cmd, &e);
				buf_release(&in);
				goto out;
			}
			sent++;
			if (!want) {
				printf("%s: message %zu: sent (no ACK asked for)\n", files[i], n);
				accepted++;
				continue;
			}
			if (read_ack(fd, &f, timeout_s, &ack, &e) < 0) {
				rc = cli_fail(cmd, &e);
				buf_release(&in);
				goto out;
			}
			{
				struct buf code = BUF_INIT(0);
				if (hl7_parse(ack.data, ack.len, &a, &am, &pe) == 0)
					hl7_get_str(&am, "MSA-1", &code, &pe);
				if (strcmp(buf_cstr(&code), "AA") == 0 || strcmp(buf_cstr(&code), "CA") == 0)
					accepted++;
				else
					rc = 1;
				printf("%s: message %zu: %s\n", files[i], n, code.len ? buf_cstr(&code) : "?");
				buf_release(&code);
			}
			for (size_t k = 0; k < ack.len; k++)
				if (ack.data[k] == '\r')
					ack.data[k] = '\n';
			fwrite(ack.data, 1, ack.len, stdout);
			if (ack.len && ack.data[ack.len - 1] != '\n')
				putchar('\n');
		}
		if (n == 0) {
			fprintf(stderr, "chartkeep hl7: %s: no MSH segment: not an HL7 v2 message\n", files[i]);
			rc = 1;
		}
		buf_release(&in);
	}
	fprintf(stderr, "%zu sent, %zu accepted\n", sent, accepted);
out:
	close(fd);
	arena_release(&a);
	hl7_mllp_release(&f);
	buf_release(&out);
	buf_release(&ack);
	return rc;
}

/* ---- errors, reprocess ---- */

static const char *const state_names[] = { "pending", "processed", "error", "rejected" };

struct list_ctx {
	bool json;
	size_t n;
};

static int print_row(void *ctx, const struct store_hl7_msg *m)
{
	struct list_ctx *lc = ctx;
	char when[TIME_INSTANT_MAX];

	time_format_instant(m->received_ms, when);
	if (lc->json) {
		struct buf b = BUF_INIT(0);
		buf_addf(&b, "{\"id\":%" PRId64 ",\"received\":\"%s\",\"state\":\"%s\",\"ack\":\"%s\",\"type\":\"", m->id,
			 when, state_names[m->state & 3], m->ack);
		buf_add_json_str(&b, m->msg_type, strlen(m->msg_type));
		buf_addstr(&b, "\",\"sending_application\":\"");
		buf_add_json_str(&b, m->sending_app, strlen(m->sending_app));
		buf_addstr(&b, "\",\"sending_facility\":\"");
		buf_add_json_str(&b, m->sending_fac, strlen(m->sending_fac));
		buf_addstr(&b, "\",\"control_id\":\"");
		buf_add_json_str(&b, m->control_id, strlen(m->control_id));
		buf_addf(&b, "\",\"attempts\":%d,\"collision_with\":%" PRId64 ",\"reason\":\"", m->attempts,
			 m->collision);
		buf_add_json_str(&b, m->reason, strlen(m->reason));
		buf_addstr(&b, "\"}");
		printf("%s\n", buf_cstr(&b));
		buf_release(&b);
	} else {
		printf("%-8" PRId64 " %s %-9s %-8s %-20.20s %-30.30s %s\n", m->id, when, state_names[m->state & 3],
		       m->msg_type[0] ? m->msg_type : "-", m->control_id[0] ? m->control_id : "-",
		       m->sending_app[0] ? m->sending_app : "-", m->reason);
	}
	lc->n++;
	return 0;
}

static int do_errors(const struct cli_cmd *cmd, const char *db, bool json)
{
	struct store *s;
	struct err e = ERR_INIT;
	struct list_ctx lc = { json, 0 };
	int64_t counts[4];
	int rc;

	if ((rc = cli_open_store(cmd, db, NULL, &s)) != 0)
		return rc;
	if (!json)
		printf("%-8s %-24s %-9s %-8s %-20s %-30s %s\n", "ID", "RECEIVED", "STATE", "TYPE", "CONTROL-ID",
		       "SENDER", "REASON");
	if (store_hl7_list(s, STORE_HL7_ERROR, 0, 0, false, print_row, &lc, &e) < 0 ||
	    store_hl7_list(s, STORE_HL7_REJECTED, 0, 0, false, print_row, &lc, &e) < 0 ||
	    store_hl7_counts(s, counts, &e) < 0) {
		rc = cli_fail(cmd, &e);
	} else {
		fprintf(stderr, "%zu in the error queue; inbox: %" PRId64 " pending, %" PRId64 " processed, %" PRId64
				" error, %" PRId64 " rejected\n",
			lc.n, counts[0], counts[1], counts[2], counts[3]);
		rc = 0;
	}
	store_close(s);
	return rc;
}

/* ---- acks: the application ACKs owed to senders ---- */

static const char *const ack_state_names[] = { "waiting", "sent", "failed" };

static int print_ack(void *ctx, const struct store_hl7_ack *a)
{
	struct list_ctx *lc = ctx;
	char created[TIME_INSTANT_MAX], next[TIME_INSTANT_MAX], sent[TIME_INSTANT_MAX];
	const char *state = a->state >= 0 && a->state < 3 ? ack_state_names[a->state] : "?";

	time_format_instant(a->created_ms, created);
	time_format_instant(a->next_try_ms, next);
	time_format_instant(a->sent_ms, sent);
	if (lc->json) {
		struct buf b = BUF_INIT(0);
		buf_addf(&b, "{\"id\":%" PRId64 ",\"inbox_id\":%" PRId64 ",\"code\":\"%s\",\"state\":\"%s\","
			     "\"created\":\"%s\",\"attempts\":%d,", a->id, a->inbox_id, a->code, state, created,
			 a->attempts);
		if (a->state == STORE_HL7_ACK_WAITING)
			buf_addf(&b, "\"next_try\":\"%s\",", next);
		else
			buf_addf(&b, "\"done\":\"%s\",", sent);
		buf_addstr(&b, "\"control_id\":\"");
		buf_add_json_str(&b, a->control_id, strlen(a->control_id));
		buf_addstr(&b, "\",\"sending_application\":\"");
		buf_add_json_str(&b, a->sending_app, strlen(a->sending_app));
		buf_addstr(&b, "\",\"sending_facility\":\"");
		buf_add_json_str(&b, a->sending_fac, strlen(a->sending_fac));
		buf_addstr(&b, "\",\"destination\":\"");
		buf_add_json_str(&b, a->destination, strlen(a->destination));
		buf_addstr(&b, "\",\"last_error\":\"");
		buf_add_json_str(&b, a->last_error, strlen(a->last_error));
		buf_addstr(&b, "\"}");
		printf("%s\n", buf_cstr(&b));
		buf_release(&b);
	} else {
		printf("%-8" PRId64 " %-8" PRId64 " %-4s %-7s %-8d %-24s %-30.30s %-21s %s\n", a->id, a->inbox_id,
		       a->code, state, a->attempts, a->state == STORE_HL7_ACK_WAITING ? next : sent,
		       a->sending_app[0] ? a->sending_app : "-", a->destination[0] ? a->destination : "-",
		       a->last_error);
	}
	lc->n++;
	return 0;
}

static int do_acks(const struct cli_cmd *cmd, const char *db, bool json, bool all)
{
	struct store *s;
	struct err e = ERR_INIT;
	struct list_ctx lc = { json, 0 };
	int rc;

	if ((rc = cli_open_store(cmd, db, NULL, &s)) != 0)
		return rc;
	if (!json)
		printf("%-8s %-8s %-4s %-7s %-8s %-24s %-30s %-21s %s\n", "ID", "INBOX", "CODE", "STATE", "ATTEMPTS",
		       "NEXT-TRY/DONE", "SENDER", "DESTINATION", "LAST-ERROR");
	if (store_hl7_ack_list(s, all, print_ack, &lc, &e) < 0) {
		rc = cli_fail(cmd, &e);
	} else {
		fprintf(stderr, "%zu application ACK%s%s\n", lc.n, lc.n == 1 ? "" : "s",
			all ? "" : " waiting or failed");
		rc = 0;
	}
	store_close(s);
	return rc;
}

static int do_reprocess(const struct cli_cmd *cmd, const char *db, const char *idtext, const char *client)
{
	struct store *s;
	struct fhir_params *params = NULL;
	struct hl7_feed *feed = NULL;
	struct hl7_feed_config fc;
	struct err e = ERR_INIT, ae = ERR_INIT;
	char *end, what[64];
	long long id = strtoll(idtext, &end, 10);
	int rc;

	if (*end || id <= 0)
		return cli_usage_error(cmd, "ID must be an inbox message id (see chartkeep hl7 errors)");
	if ((rc = cli_open_store(cmd, db, NULL, &s)) != 0)
		return rc;
	memset(&fc, 0, sizeof(fc));
	fc.store = s;
	fc.client_id = client;
	if (fhir_params_load(s, &params, &e) < 0 || (fc.params = params, hl7_feed_new(&fc, &feed, &e)) < 0) {
		rc = cli_fail(cmd, &e);
		goto out;
	}
	rc = hl7_feed_process(feed, id, &e);
	/* who asked, beside the feed's own entry for the writes */
	snprintf(what, sizeof(what), "hl7-reprocess");
	if (cli_audit(s, what, PA_OPERATION, rc == 0 ? 200 : 422, &ae) < 0) {
		rc = cli_fail(cmd, &ae);
		goto out;
	}
	if (rc == 0) {
		printf("inbox message %lld processed\n", id);
	} else {
		fprintf(stderr, "chartkeep hl7: inbox message %lld: %s\n", id, e.msg);
		rc = 1;
	}
out:
	hl7_feed_free(feed);
	if (params)
		fhir_params_free(params);
	store_close(s);
	return rc;
}

int cmd_hl7(const struct cli_cmd *cmd, int argc, char **argv)
{
	const char *path = NULL, *to = NULL, *db = NULL, *client = HL7_FEED_DEFAULT_CLIENT;
	uint64_t timeout = 30;
	bool json = false;
	bool fhir = false;
	const struct cli_opt parse_opts[] = {
		{ "path", CLI_STR, &path, 0, 0 },
		{ "fhir", CLI_FLAG, &fhir, 0, 0 },
		{ NULL, 0, NULL, 0, 0 },
	};
	const struct cli_opt send_opts[] = {
		{ "to", CLI_STR, &to, 0, 0 },
		{ "timeout", CLI_UINT, &timeout, 1, 3600 },
		{ NULL, 0, NULL, 0, 0 },
	};
	const struct cli_opt errors_opts[] = {
		{ "db", CLI_STR, &db, 0, 0 },
		{ "json", CLI_FLAG, &json, 0, 0 },
		{ NULL, 0, NULL, 0, 0 },
	};
	bool all = false;
	const struct cli_opt acks_opts[] = {
		{ "db", CLI_STR, &db, 0, 0 },
		{ "json", CLI_FLAG, &json, 0, 0 },
		{ "all", CLI_FLAG, &all, 0, 0 },
		{ NULL, 0, NULL, 0, 0 },
	};
	const struct cli_opt reprocess_opts[] = {
		{ "db", CLI_STR, &db, 0, 0 },
		{ "client", CLI_STR, &client, 0, 0 },
		{ NULL, 0, NULL, 0, 0 },
	};
	static const char *const actions[] = { "parse", "send", "errors", "reprocess", "acks", NULL };
	int which, npos, rc;

	if ((rc = cli_action(cmd, argc, argv, actions, &which)) != CLI_GO)
		return rc;
	switch (which) {
	case 0:
		if ((rc = cli_options(cmd, argc - 1, argv + 1, parse_opts, 1, &npos)) != CLI_GO)
			return rc;
		if (npos != 1)
			return cli_usage_error(cmd, "parse takes one FILE (- for standard input)");
		if (path && fhir)
			return cli_usage_error(cmd, "--path and --fhir do not go together");
		return do_parse(cmd, argv[2], path, fhir);
	case 1:
		if ((rc = cli_options(cmd, argc - 1, argv + 1, send_opts, -1, &npos)) != CLI_GO)
			return rc;
		if (!to)
			return cli_usage_error(cmd, "--to HOST:PORT is required");
		if (npos < 1)
			return cli_usage_error(cmd, "send takes one or more FILEs");
		return do_send(cmd, to, argv + 2, npos, (unsigned)timeout);
	case 2:
		if ((rc = cli_options(cmd, argc - 1, argv + 1, errors_opts, 0, &npos)) != CLI_GO)
			return rc;
		return do_errors(cmd, db, json);
	case 4:
		if ((rc = cli_options(cmd, argc - 1, argv + 1, acks_opts, 0, &npos)) != CLI_GO)
			return rc;
		return do_acks(cmd, db, json, all);
	default:
		if ((rc = cli_options(cmd, argc - 1, argv + 1, reprocess_opts, 1, &npos)) != CLI_GO)
			return rc;
		if (npos != 1)
			return cli_usage_error(cmd, "reprocess takes one inbox message ID");
		return do_reprocess(cmd, db, argv[2], client);
	}
}
