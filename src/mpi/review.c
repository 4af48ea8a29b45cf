/* review.c - the review queue: a pair of Patients that may be one person
 * is a Task (code mpi-review) naming both, with the score and each
 * comparison's level.  A registrar decides: the same person (merge, then
 * complete the Task with businessStatus "duplicate"), or not (complete it
 * with businessStatus "not-duplicate": the pair never comes back).
 *
 * Which pairs are queued or decided is read from the Tasks themselves
 * (mpi_skip_load), so there is no second record to keep in step. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "mpi/mpi_int.h"
#include "base/banned.h"

struct mpi_skip {
	char **slot;          /* "a\tb" (a < b), open addressing */
	size_t cap, n;
	struct arena a;
	struct err *e;
	bool queued_too;      /* open Tasks count as well (do not queue twice) */
};

static uint64_t hs(const char *a, const char *b)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *a; a++)
		h = (h ^ (unsigned char)*a) * 1099511628211ULL;
	h = (h ^ '\t') * 1099511628211ULL;
	for (; *b; b++)
		h = (h ^ (unsigned char)*b) * 1099511628211ULL;
	return h;
}

static bool same(const char *s, const char *a, const char *b)
{
	size_t la = strlen(a);

	return strncmp(s, a, la) == 0 && s[la] == '\t' && strcmp(s + la + 1, b) == 0;
}

static int skip_add(struct mpi_skip *k, const char *a, const char *b)
{
	size_t i;

	if (strcmp(a, b) > 0) {
		const char *t = a;
		a = b;
		b = t;
	}
	if ((k->n + 1) * 2 > k->cap) {
		size_t nc = k->cap ? k->cap * 2 : 1024;
		char **ns = calloc(nc, sizeof(*ns));
		if (!ns)
			return -1;
		for (size_t j = 0; j < k->cap; j++) {
			if (!k->slot[j])
				continue;
			{
				char *tab = strchr(k->slot[j], '\t');
				size_t x;
				*tab = '\0';
				x = hs(k->slot[j], tab + 1) & (nc - 1);
				*tab = '\t';
				while (ns[x])
					x = (x + 1) & (nc - 1);
				ns[x] = k->slot[j];
			}
		}
		free(k->slot);
		k->slot = ns;
		k->cap = nc;
	}
	i = hs(a, b) & (k->cap - 1);
	while (k->slot[i]) {
		if (same(k->slot[i], a, b))
			return 0;
		i = (i + 1) & (k->cap - 1);
	}
	k->slot[i] = arena_printf(&k->a, "%s\t%s", a, b);
	if (!k->slot[i])
		return -1;
	k->n++;
	return 0;
}

bool mpi_skip_has(void *ctx, const char *a, const char *b)
{
	struct mpi_skip *k = ctx;
	size_t i;

	if (!k || !k->n)
		return false;
	if (strcmp(a, b) > 0) {
		const char *t = a;
		a = b;
		b = t;
	}
	i = hs(a, b) & (k->cap - 1);
	while (k->slot[i]) {
		if (same(k->slot[i], a, b))
			return true;
		i = (i + 1) & (k->cap - 1);
	}
	return false;
}

/* The two patients of a review Task: focus and input "patient". */
int mpi_review_pair(json_object *task, char *a, char *b, size_t cap)
{
	const char *fa = json_get_str(json_get_obj(task, "focus"), "reference");
	json_object *in = json_get_arr(task, "input");

	a[0] = b[0] = '\0';
	if (!fa || strncmp(fa, "Patient/", 8) != 0)
		return -1;
	snprintf(a, cap, "%s", fa + 8);
	for (size_t i = 0; in && i < json_object_array_length(in); i++) {
		json_object *x = json_object_array_get_idx(in, i);
		const char *r = json_get_str(json_get_obj(x, "valueReference"), "reference");
		if (json_is_str(json_get(json_get_obj(x, "type"), "text"), "patient") && r &&
		    strncmp(r, "Patient/", 8) == 0) {
			snprintf(b, cap, "%s", r + 8);
			return 0;
		}
	}
	return -1;
}

/* Is the Task a review decided "not a duplicate"? */
bool mpi_review_not_duplicate(json_object *task)
{
	json_object *codings = json_get_arr(json_get_obj(task, "businessStatus"), "coding");

	for (size_t i = 0; codings && i < json_object_array_length(codings); i++)
		if (json_is_str(json_get(json_object_array_get_idx(codings, i), "code"), "not-duplicate"))
			return true;
	return false;
}

bool mpi_is_review_task(const char *json, size_t len)
{
	return memmem(json, len, "\"code\":\"" MPI_REVIEW_CODE "\"", sizeof(MPI_REVIEW_CODE) + 8) != NULL;
}

static int skip_task(void *ctx, const struct store_version *v)
{
	struct mpi_skip *k = ctx;
	json_object *o;
	char a[ID_MAX + 1], b[ID_MAX + 1];
	int rc = 0;

	if (!mpi_is_review_task(v->json, v->len))
		return 0;
	o = json_parse_buf(v->json, v->len, 0, k->e);
	if (!o)
		return 0; /* not ours after all */
	if (mpi_review_pair(o, a, b, sizeof(a)) == 0 &&
	    (mpi_review_not_duplicate(o) || (k->queued_too && !json_is_str(json_get(o, "status"), "completed") &&
				  !json_is_str(json_get(o, "status"), "cancelled"))))
		rc = skip_add(k, a, b) < 0 ? err_set(k->e, ERR_NOMEM, "out of memory") : 0;
	json_object_put(o);
	return rc;
}

static int skip_load(struct store *s, bool queued_too, struct mpi_skip **out, struct err *e)
{
	struct mpi_skip *k = calloc(1, sizeof(*k));

	*out = NULL;
	if (!k)
		return err_set(e, ERR_NOMEM, "out of memory");
	arena_init(&k->a, 0);
	k->e = e;
	k->queued_too = queued_too;
	if (store_scan_current(s, "Task", skip_task, k, e) < 0) {
		mpi_skip_free(k);
		return -1;
	}
	*out = k;
	return 0;
}

int mpi_skip_load(struct store *s, struct mpi_skip **out, struct err *e)
{
	return skip_load(s, false, out, e);
}

int mpi_skip_load_queued(struct store *s, struct mpi_skip **out, struct err *e)
{
	return skip_load(s, true, out, e);
}

void mpi_skip_free(struct mpi_skip *k)
{
	if (!k)
		return;
	free(k->slot);
	arena_release(&k->a);
	free(k);
}

/* The input that marks a pair linked automatically: it stays on the Task
 * whatever the registrar decides, so the report can count the auto-links
 * confirmed (merged) and undone (not a duplicate). */
#define AUTO_LINK_INPUT "auto-link"

bool mpi_review_auto_linked(json_object *task)
{
	json_object *in = json_get_arr(task, "input");

	for (size_t i = 0; in && i < json_object_array_length(in); i++)
		if (json_is_str(json_get(json_get_obj(json_object_array_get_idx(in, i), "type"), "text"),
				AUTO_LINK_INPUT))
			return true;
	return false;
}

void mpi_review_task_json(const char *a, const char *b, double prob, const uint8_t lv[MPI_NCMP],
			  int kind, struct buf *out)
{
	char now[TIME_INSTANT_MAX];
	bool linked = kind == MPI_TASK_LINKED;

	time_format_instant(time_now_ms(), now);
	buf_addf(out, "{\"resourceType\":\"Task\",\"status\":\"requested\",\"intent\":\"proposal\","
		      "\"priority\":\"%s\",\"code\":{\"coding\":[{\"system\":\"" MPI_CODE_SYSTEM
		      "\",\"code\":\"" MPI_REVIEW_CODE "\",\"display\":\"Possible duplicate patient\"}]},",
		 kind == MPI_TASK_REVIEW ? "routine" : "urgent");
	if (linked)
		buf_addstr(out, "\"businessStatus\":{\"coding\":[{\"system\":\"" MPI_CODE_SYSTEM "\","
				"\"code\":\"auto-linked\",\"display\":\"Linked automatically (Patient.link "
				"seealso); not merged\"}]},");
	buf_addf(out, "\"description\":\"Are Patient/%s and Patient/%s one person?%s Merge them, or mark "
		      "the pair not a duplicate%s.\",\"focus\":{\"reference\":\"Patient/%s\"},"
		      "\"for\":{\"reference\":\"Patient/%s\"},\"authoredOn\":\"%s\","
		      "\"input\":[{\"type\":{\"text\":\"patient\"},\"valueReference\":{\"reference\":"
		      "\"Patient/%s\"}},{\"type\":{\"text\":\"score\"},\"valueDecimal\":%.4f}",
		 a, b, linked ? " They were linked automatically (seealso), so either record finds the chart." : "",
		 linked ? " (which removes the links)" : "", a, a, now, b, prob);
	if (linked)
		buf_addstr(out, ",{\"type\":{\"text\":\"" AUTO_LINK_INPUT "\"},\"valueBoolean\":true}");
	for (size_t k = 0; k < MPI_NCMP; k++)
		buf_addf(out, ",{\"type\":{\"text\":\"%s\"},\"valueString\":\"%s\"}", mpi_cmps[k].name,
			 lv[k] == MPI_MISSING ? "missing" : mpi_cmps[k].levels[lv[k]]);
	buf_addstr(out, "]}");
}
