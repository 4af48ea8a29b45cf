/* dump.c - a parsed message as JSON, for people debugging an interface
 * (chartkeep hl7 parse).  Shape in hl7v2.h; values are unescaped. */
#include <string.h>

#include "base/base.h"
#include "hl7v2/hl7v2.h"
#include "base/banned.h"

static void add_str(const struct hl7_msg *m, struct hl7_span s, struct buf *out, struct buf *tmp)
{
	if (hl7_is_null(m, s)) {
		buf_addstr(out, "null");
		return;
	}
	buf_reset(tmp);
	hl7_unescape(m, s, tmp);
	buf_addch(out, '"');
	buf_add_json_str(out, tmp->data ? tmp->data : "", tmp->len);
	buf_addch(out, '"');
}

/* level 0: repetitions, 1: components, 2: subcomponents */
static void add_value(const struct hl7_msg *m, struct hl7_span s, int level, struct buf *out,
		      struct buf *tmp)
{
	char sep = level == 0 ? m->d.rep : level == 1 ? m->d.comp : m->d.sub;
	size_t n = hl7_count(m, s, sep);

	if (n <= 1) {
		if (level < 2)
			add_value(m, s, level + 1, out, tmp);
		else
			add_str(m, s, out, tmp);
		return;
	}
	buf_addch(out, '[');
	for (size_t i = 1; i <= n; i++) {
		struct hl7_span p = hl7_piece(m, s, sep, i);
		if (i > 1)
			buf_addch(out, ',');
		if (level < 2)
			add_value(m, p, level + 1, out, tmp);
		else
			add_str(m, p, out, tmp);
	}
	buf_addch(out, ']');
}

static void add_raw(struct buf *out, const char *s, size_t n)
{
	buf_addch(out, '"');
	buf_add_json_str(out, s, n);
	buf_addch(out, '"');
}

void hl7_dump_json(const struct hl7_msg *m, struct buf *out)
{
	struct buf tmp = BUF_INIT(0);
	char delims[6];
	size_t nd = 0;

	delims[nd++] = m->d.field;
	delims[nd++] = m->d.comp;
	delims[nd++] = m->d.rep;
	delims[nd++] = m->d.esc;
	delims[nd++] = m->d.sub;
	if (m->d.trunc)
		delims[nd++] = m->d.trunc;
	buf_addstr(out, "{\"delimiters\":");
	add_raw(out, delims, nd);
	buf_addstr(out, ",\"type\":");
	add_raw(out, m->type, strlen(m->type));
	buf_addstr(out, ",\"event\":");
	add_raw(out, m->event, strlen(m->event));
	buf_addstr(out, ",\"control_id\":");
	add_raw(out, m->control_id, strlen(m->control_id));
	buf_addstr(out, ",\"version\":");
	add_raw(out, m->version, strlen(m->version));
	buf_addstr(out, ",\"charset\":");
	add_raw(out, m->charset[0] ? m->charset : "", strlen(m->charset));
	buf_addf(out, ",\"converted\":%s,\"segments\":[", m->converted ? "true" : "false");
	for (size_t i = 0; i < m->nsegs; i++) {
		const struct hl7_seg *sg = &m->segs[i];
		bool header = strcmp(sg->id, "MSH") == 0 || strcmp(sg->id, "FHS") == 0 ||
			      strcmp(sg->id, "BHS") == 0;
		bool first = true;

		buf_addf(out, "%s\n{\"id\":\"%s\",\"offset\":%u,\"fields\":{", i ? "," : "", sg->id, sg->off);
		for (size_t f = 1; f < sg->nf; f++) {
			struct hl7_span s = hl7_field(m, i, f);
			if (!s.len)
				continue;
			buf_addf(out, "%s\"%zu\":", first ? "" : ",", f);
			first = false;
			if (header && f <= 2)
				add_raw(out, m->text + s.off, s.len);
			else
				add_value(m, s, 0, out, &tmp);
		}
		buf_addstr(out, "}}");
	}
	buf_addstr(out, "]}");
	buf_release(&tmp);
}
