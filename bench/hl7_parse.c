/* hl7_parse.c - the parse side of bench/hl7-parse: chartkeep's HL7 v2
 * parser on a mix of messages, on one core.
 *
 *   hl7_parse SECONDS OUT.json FILE...
 *
 * Loads every message of the files (those that parse), writes them to
 * OUT.json (a JSON array of strings, for the npm parser's run), then for
 * SECONDS each measures:
 *   parse  hl7_parse alone: delimiters, segments, field spans (what the
 *          MLLP listener does before it stores a message)
 *   full   hl7_parse and then every field, repetition, component and
 *          subcomponent cut out and unescaped (a complete tree, as an npm
 *          parser builds one)
 * and prints MB/s and messages/s for each. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/base.h"
#include "hl7v2/hl7v2.h"

struct msgs {
	char **p;
	size_t *n;
	size_t count, bytes;
};

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Every piece of s, level by level, each cut once (one pass per level). */
static void walk(const struct hl7_msg *m, struct hl7_span s, int level, struct buf *b)
{
	char sep = level == 0 ? m->d.rep : level == 1 ? m->d.comp : m->d.sub;
	const char *t = m->text + s.off, *end = t + s.len;

	for (;;) {
		const char *q = memchr(t, sep, (size_t)(end - t));
		struct hl7_span p = { (uint32_t)(t - m->text), (uint32_t)((q ? q : end) - t) };
		if (level < 2) {
			walk(m, p, level + 1, b);
		} else {
			buf_reset(b);
			hl7_unescape(m, p, b);
		}
		if (!q)
			break;
		t = q + 1;
	}
}

static void run(const struct msgs *ms, double secs, int full, const char *label)
{
	struct arena a;
	struct buf b = BUF_INIT(0);
	size_t done = 0, bytes = 0;
	double t0 = now(), t;

	arena_init(&a, 0);
	do {
		for (size_t i = 0; i < ms->count; i++) {
			struct hl7_msg m;
			struct err e = ERR_INIT;
			arena_reset(&a);
			if (hl7_parse(ms->p[i], ms->n[i], &a, &m, &e) < 0)
				abort();
			if (full)
				for (size_t sg = 0; sg < m.nsegs; sg++)
					for (size_t f = 1; f < m.segs[sg].nf; f++)
						walk(&m, hl7_field(&m, sg, f), 0, &b);
			bytes += ms->n[i];
		}
		done += ms->count;
		t = now() - t0;
	} while (t < secs);
	printf("%s: %.1f MB/s, %.0f messages/s (%zu messages, %.1f MB in %.2f s, one core)\n", label,
	       (double)bytes / 1e6 / t, (double)done / t, done, (double)bytes / 1e6, t);
	arena_release(&a);
	buf_release(&b);
}

int main(int argc, char **argv)
{
	struct msgs ms = { NULL, NULL, 0, 0 };
	struct arena a;
	FILE *out;
	double secs;

	if (argc < 4) {
		fprintf(stderr, "usage: hl7_parse SECONDS OUT.json FILE...\n");
		return 2;
	}
	secs = atof(argv[1]);
	arena_init(&a, 0);
	for (int i = 3; i < argc; i++) {
		FILE *f = fopen(argv[i], "rb");
		struct buf t = BUF_INIT(0);
		char chunk[65536];
		size_t n, pos = 0;
		struct hl7_span sp;
		if (!f)
			continue;
		while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
			buf_add(&t, chunk, n);
		fclose(f);
		while (t.len && hl7_next_message(t.data, t.len, &pos, &sp) == 1) {
			struct hl7_msg m;
			struct err e = ERR_INIT;
			arena_reset(&a);
			if (hl7_parse(t.data + sp.off, sp.len, &a, &m, &e) < 0 || m.converted)
				continue;
			ms.p = realloc(ms.p, (ms.count + 1) * sizeof(*ms.p));
			ms.n = realloc(ms.n, (ms.count + 1) * sizeof(*ms.n));
			ms.p[ms.count] = malloc(sp.len);
			memcpy(ms.p[ms.count], t.data + sp.off, sp.len);
			ms.n[ms.count] = sp.len;
			ms.bytes += sp.len;
			ms.count++;
		}
		buf_release(&t);
	}
	out = fopen(argv[2], "w");
	if (!out)
		return 1;
	fputc('[', out);
	for (size_t i = 0; i < ms.count; i++) {
		struct buf j = BUF_INIT(0);
		buf_add_json_str(&j, ms.p[i], ms.n[i]);
		fprintf(out, "%s\"%s\"\n", i ? "," : "", buf_cstr(&j));
		buf_release(&j);
	}
	fputs("]\n", out);
	fclose(out);
	printf("mix: %zu messages, %zu bytes, %.0f bytes on average\n", ms.count, ms.bytes,
	       (double)ms.bytes / (double)ms.count);
	run(&ms, secs, 0, "chartkeep parse");
	run(&ms, secs, 1, "chartkeep parse + full tree");
	arena_release(&a);
	return 0;
}
