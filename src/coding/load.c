/* load.c - a code-set file into the store as one version (coding_load_file).
 *
 * The whole file is read and parsed before anything is written: a malformed
 * line stops the load with nothing committed, and the store then replaces
 * the version's rows in one transaction.  The file's SHA-256 is kept with
 * the version, so loading the same file again changes nothing. */
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "coding/coding_int.h"
#include "base/banned.h"

#define CODE_FILE_MAX ((size_t)256 << 20)

static int read_file(const char *path, char **out, size_t *len, struct err *e)
{
	FILE *f = fopen(path, "rb");
	struct stat st;
	char *data = NULL;
	int rc = -1;

	*out = NULL;
	if (!f)
		return err_set(e, ERR_IO, "cannot open %s: %s", path, strerror(errno));
	if (fstat(fileno(f), &st) < 0 || !S_ISREG(st.st_mode)) {
		err_set(e, ERR_IO, "%s is not a regular file", path);
		goto out;
	}
	if ((size_t)st.st_size > CODE_FILE_MAX) {
		err_set(e, ERR_TOO_LARGE, "%s is larger than %zu MB", path, CODE_FILE_MAX >> 20);
		goto out;
	}
	data = malloc((size_t)st.st_size + 1);
	if (!data) {
		err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	if (fread(data, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
		err_set(e, ERR_IO, "cannot read %s", path);
		goto out;
	}
	data[st.st_size] = '\0';
	*out = data;
	*len = (size_t)st.st_size;
	data = NULL;
	rc = 0;
out:
	free(data);
	fclose(f);
	return rc;
}

static bool date_ok(const char *s)
{
	struct time_val tv;

	return s && strlen(s) == 10 && time_parse(s, 10, TIME_DATE, &tv) == 0;
}

int coding_load_file(struct store *s, const struct coding_load_opts *o, const char *path,
		     struct coding_load_report *r, struct err *e)
{
	const struct coding_system *sys = coding_system_by_name(o->system);
	struct coding_set cs;
	struct timespec t0, t1;
	unsigned char h[crypto_hash_sha256_BYTES];
	char *data = NULL;
	const char *base;
	size_t len = 0;
	int rc = -1;

	memset(r, 0, sizeof(*r));
	coding_set_init(&cs);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (!sys) {
		struct buf names = BUF_INIT(0);
		for (size_t i = 0; i < coding_n_systems; i++)
			buf_addf(&names, "%s%s", i ? ", " : "", coding_systems[i].name);
		err_set(e, ERR_INVALID, "--system: one of %s", buf_cstr(&names));
		buf_release(&names);
		goto out;
	}
	if (!o->version)
		return err_set(e, ERR_INVALID, "--version is required");
	if (coding_version_dates(sys, o->version, r->v.eff_from, r->v.eff_to, e) < 0)
		goto out;
	if (o->eff_from) {
		if (!date_ok(o->eff_from)) {
			err_set(e, ERR_INVALID, "--effective-from: a date, YYYY-MM-DD");
			goto out;
		}
		snprintf(r->v.eff_from, sizeof(r->v.eff_from), "%s", o->eff_from);
	}
	if (o->eff_to) {
		if (!date_ok(o->eff_to)) {
			err_set(e, ERR_INVALID, "--effective-to: a date, YYYY-MM-DD");
			goto out;
		}
		snprintf(r->v.eff_to, sizeof(r->v.eff_to), "%s", o->eff_to);
	}
	if (strcmp(r->v.eff_from, r->v.eff_to) > 0) {
		err_set(e, ERR_INVALID, "the version's effective dates end (%s) before they begin (%s)",
			r->v.eff_to, r->v.eff_from);
		goto out;
	}
	if (read_file(path, &data, &len, e) < 0)
		goto out;
	if (coding_parse(sys, o->version, data, len, &cs, e) < 0) {
		/* the file's name goes in front of "line N: ..." */
		char msg[ERR_MSG_MAX];
		base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
		snprintf(msg, sizeof(msg), "%.64s: ", base);
		snprintf(msg + strlen(msg), sizeof(msg) - strlen(msg), "%.180s", e->msg);
		snprintf(e->msg, sizeof(e->msg), "%s", msg);
		goto out;
	}
	crypto_hash_sha256(h, (const unsigned char *)data, len);
	sodium_bin2hex(r->v.sha256, sizeof(r->v.sha256), h, sizeof(h));
	base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	snprintf(r->v.source, sizeof(r->v.source), "%s", base);
	snprintf(r->v.system, sizeof(r->v.system), "%s", sys->name);
	snprintf(r->v.version, sizeof(r->v.version), "%s", o->version);
	r->v.n_codes = (int64_t)(sys->kind == CK_EDITS ? cs.m : cs.n);
	r->v.n_billable = (int64_t)(sys->kind == CK_EDITS ? cs.m : cs.billable);
	r->format = cs.format;
	r->skipped = cs.skipped;
	r->modifiers = cs.modifiers;
	if (store_codes_load(s, &r->v, cs.c, cs.n, cs.ed, cs.m, &r->unchanged, e) < 0)
		goto out;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	r->seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	rc = 0;
out:
	free(data);
	coding_set_release(&cs);
	return rc;
}
