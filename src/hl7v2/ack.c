/* ack.c - acknowledgements (HL7 v2 chapter 2: MSA, ERR; original and
 * enhanced modes).
 *
 * The ACK speaks the sender's dialect: its delimiters, its version, and
 * the sender's own values echoed as they were written (still escaped with
 * those delimiters), so nothing is decoded and encoded again on the way. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "base/base.h"
#include "hl7v2/hl7v2.h"
#include "base/banned.h"

static const char *const ack_names[] = { "AA", "AE", "AR", "CA", "CE", "CR" };

const char *hl7_ack_name(int code)
{
	return code >= 0 && code < (int)ARRAY_SIZE(ack_names) ? ack_names[code] : "AR";
}

/* "2.5.1" -> 251, "2.3" -> 230; 0 if unreadable. */
static int version_num(const char *v)
{
	int a = 0, b = 0, c = 0;

	if (sscanf(v, "%2d.%2d.%2d", &a, &b, &c) < 2 || a < 0 || b < 0 || c < 0)
		return 0;
	return a * 100 + b * 10 + c;
}

static void raw(const struct hl7_msg *m, size_t f, struct buf *out)
{
	struct hl7_span s = hl7_field(m, 0, f);
	buf_add(out, m->text + s.off, s.len);
}

static struct hl7_span msh(const struct hl7_msg *m, size_t f)
{
	return hl7_field(m, 0, f);
}

bool hl7_ack_enhanced(const struct hl7_msg *m)
{
	return msh(m, 15).len > 0 || msh(m, 16).len > 0;
}

static bool wants(const struct hl7_msg *m, struct hl7_span s, bool ok)
{
	const char *t = m->text + s.off;

	if (s.len != 2 || memcmp(t, "AL", 2) == 0)
		return true;
	if (memcmp(t, "NE", 2) == 0)
		return false;
	if (memcmp(t, "ER", 2) == 0)
		return !ok;
	if (memcmp(t, "SU", 2) == 0)
		return ok;
	return true;
}

bool hl7_ack_wanted(const struct hl7_msg *m, int code)
{
	if (!m || !m->nsegs || !hl7_ack_enhanced(m))
		return true;
	if (code >= HL7_CA)
		return msh(m, 15).len ? wants(m, msh(m, 15), code == HL7_CA) : true;
	return msh(m, 16).len ? wants(m, msh(m, 16), code == HL7_AA) : false;
}

/* The text of an error for a field: escaped with the ACK's delimiters. */
static void text(const struct hl7_delims *d, const char *s, struct buf *out)
{
	if (s)
		hl7_escape(d, s, strlen(s), out);
}

static void build(const struct hl7_msg *m, int code, const struct hl7_ack_err *err,
		  const char *control_id, int64_t now_ms, bool app, struct buf *out)
{
	struct hl7_delims dflt = { '|', '^', '~', '\\', '&', 0 };
	const struct hl7_delims *d = m && m->nsegs ? &m->d : &dflt;
	const char *version = m && m->nsegs && m->version[0] ? m->version : "2.5.1";
	int vn = version_num(version);
	char ts[32], F = d->field, C = d->comp;
	time_t secs = (time_t)(now_ms / 1000);
	struct tm tm;
	bool echo = m && m->nsegs;

	gmtime_r(&secs, &tm);
	strftime(ts, sizeof(ts), "%Y%m%d%H%M%S+0000", &tm);
	/* MSH: sending and receiving sides swapped */
	buf_addstr(out, "MSH");
	buf_addch(out, F);
	if (echo)
		raw(m, 2, out);
	else
		buf_addstr(out, "^~\\&");
	buf_addch(out, F);
	if (echo) {
		raw(m, 5, out);
		buf_addch(out, F);
		raw(m, 6, out);
		buf_addch(out, F);
		raw(m, 3, out);
		buf_addch(out, F);
		raw(m, 4, out);
	} else {
		buf_addstr(out, "chartkeep");
		buf_addch(out, F);
		buf_addch(out, F);
		buf_addch(out, F);
	}
	buf_addch(out, F);
	buf_addstr(out, ts);
	buf_addch(out, F);
	buf_addch(out, F);
	buf_addstr(out, "ACK");
	if (echo && m->event[0] && (vn == 0 || vn >= 230)) {
		struct hl7_span ev = hl7_piece(m, hl7_piece(m, msh(m, 9), d->rep, 1), d->comp, 2);
		buf_addch(out, C);
		buf_add(out, m->text + ev.off, ev.len);
		if (vn == 0 || vn >= 240) {
			buf_addch(out, C);
			buf_addstr(out, "ACK");
		}
	}
	buf_addch(out, F);
	text(d, control_id, out);
	buf_addch(out, F);
	if (echo && m->processing_id[0])
		raw(m, 11, out);
	else
		buf_addch(out, 'P');
	buf_addch(out, F);
	buf_addstr(out, version);
	if (app) {
		/* MSH-13, 14 empty; MSH-15 AL: the destination answers with an
		 * accept ACK (so delivery is known); MSH-16 NE: an ACK is never
		 * acknowledged at application level (that would never end) */
		buf_addch(out, F);
		buf_addch(out, F);
		buf_addch(out, F);
		buf_addstr(out, "AL");
		buf_addch(out, F);
		buf_addstr(out, "NE");
	}
	buf_addch(out, '\r');
	/* MSA-1 code, MSA-2 the sender's control id, MSA-3 text before 2.5 */
	buf_addstr(out, "MSA");
	buf_addch(out, F);
	buf_addstr(out, hl7_ack_name(code));
	buf_addch(out, F);
	if (echo)
		raw(m, 10, out);
	if (err && vn < 250 && vn != 0) {
		buf_addch(out, F);
		text(d, err->text, out);
	}
	buf_addch(out, '\r');
	if (!err)
		return;
	buf_addstr(out, "ERR");
	buf_addch(out, F);
	if (vn < 250 && vn != 0) {
		/* ERR-1 (ELD): segment^sequence^field^code&text&HL70357 */
		buf_addstr(out, err->seg);
		buf_addch(out, C);
		if (err->seg_occ)
			buf_addf(out, "%zu", err->seg_occ);
		buf_addch(out, C);
		if (err->field)
			buf_addf(out, "%zu", err->field);
		buf_addch(out, C);
		buf_addstr(out, err->code);
		buf_addch(out, d->sub);
		text(d, err->text, out);
		buf_addch(out, d->sub);
		buf_addstr(out, "HL70357");
	} else {
		/* ERR-2 location (ERL), ERR-3 code (CWE), ERR-4 severity, ERR-8 user message */
		buf_addch(out, F);
		if (err->seg[0]) {
			buf_addstr(out, err->seg);
			buf_addch(out, C);
			buf_addf(out, "%zu", err->seg_occ ? err->seg_occ : 1);
			if (err->field) {
				buf_addch(out, C);
				buf_addf(out, "%zu", err->field);
			}
		}
		buf_addch(out, F);
		buf_addstr(out, err->code);
		buf_addch(out, C);
		text(d, err->text, out);
		buf_addch(out, C);
		buf_addstr(out, "HL70357");
		buf_addch(out, F);
		buf_addch(out, err->severity ? err->severity : 'E');
		buf_addch(out, F);
		buf_addch(out, F);
		buf_addch(out, F);
		buf_addch(out, F);
		text(d, err->text, out);
	}
	buf_addch(out, '\r');
}

void hl7_ack_build(const struct hl7_msg *m, int code, const struct hl7_ack_err *err,
		   const char *control_id, int64_t now_ms, struct buf *out)
{
	build(m, code, err, control_id, now_ms, false, out);
}

void hl7_app_ack_build(const struct hl7_msg *m, int code, const struct hl7_ack_err *err,
		       const char *control_id, int64_t now_ms, struct buf *out)
{
	build(m, code, err, control_id, now_ms, true, out);
}
