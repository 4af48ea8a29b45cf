/* hl7v2.h - HL7 version 2 messages: parser, accessor, escapes, character
 * sets, JSON dump, acknowledgements, MLLP framing.
 *
 * A parsed message is a set of spans over the message buffer: nothing is
 * copied or unescaped until asked for (hl7_unescape).  The parser makes one
 * pass that finds the segments and their fields; repetitions, components
 * and subcomponents are found on demand inside a field's span.  The spans
 * and, for input in another character set than UTF-8, the converted text
 * live in the arena given to hl7_parse (one per message): reset it and the
 * message is gone.
 *
 * Positions are numbered as HL7 numbers them: MSH-1 is the field separator
 * itself, MSH-2 the encoding characters; PID-5 is the fifth field after the
 * segment name; repetitions, components and subcomponents count from 1. */
#ifndef CK_HL7V2_H
#define CK_HL7V2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/err.h"

#define HL7_MAX_SEGMENTS 100000
#define HL7_MAX_FIELDS 1000      /* in one segment */

/* A piece of the message text: msg->text[off .. off + len). */
struct hl7_span {
	uint32_t off, len;
};

struct hl7_delims {
	char field, comp, rep, esc, sub;
	char trunc;                    /* 2.7+: the truncation character, or 0 */
};

struct hl7_seg {
	char id[4];                    /* "PID", NUL-terminated */
	uint32_t off, len;             /* the segment's text, without its terminator */
	uint32_t f0;                   /* index of its field 0 (the name) in msg->fields */
	uint32_t nf;                   /* fields including field 0 */
};

struct hl7_msg {
	const char *text;              /* UTF-8 (converted if need be), not NUL-terminated */
	size_t len;
	struct hl7_delims d;
	struct hl7_seg *segs;
	size_t nsegs;
	struct hl7_span *fields;
	size_t nfields;
	/* from MSH, for convenience (NUL-terminated copies in the arena, "" when absent) */
	const char *type;              /* MSH-9.1: "ADT" */
	const char *event;             /* MSH-9.2: "A01" */
	const char *structure;         /* MSH-9.3: "ADT_A01" */
	const char *control_id;        /* MSH-10 */
	const char *processing_id;     /* MSH-11.1: P, T, D */
	const char *version;           /* MSH-12.1: "2.5.1" */
	const char *charset;           /* MSH-18 (first repetition) as given */
	bool converted;                /* text was converted from charset to UTF-8 */
};

/* Parse one message (MSH first; a batch or file header before it is
 * skipped, see hl7_next_message for batches).  Segments end at CR, LF or
 * CRLF; empty lines are skipped.  The delimiters come from MSH-1 and MSH-2.
 * Text in the character set MSH-18 names is converted to UTF-8 (into a); no
 * MSH-18 takes UTF-8 when the bytes are valid UTF-8 and ISO 8859-1
 * otherwise.  -1 with e (ERR_INVALID) naming the segment, field and byte
 * offset when the message is malformed; ERR_NOT_SUPPORTED for a character
 * set this build cannot convert.  text must outlive msg. */
int hl7_parse(const char *text, size_t len, struct arena *a, struct hl7_msg *msg, struct err *e);

/* The next message of a batch or file (FHS, BHS, MSH..., BTS, FTS), or of a
 * plain sequence of messages: *span is set to the text from an MSH segment
 * to the next MSH, BHS, BTS, FHS or FTS.  Starts at *pos and moves it on.
 * Returns 1 with a message, 0 at the end; the header segments are skipped. */
int hl7_next_message(const char *text, size_t len, size_t *pos, struct hl7_span *span);

/* ---- access ---- */

/* Segment i's field f (0: the name) or an empty span past the last field. */
struct hl7_span hl7_field(const struct hl7_msg *m, size_t seg, size_t f);
/* The n-th (1-based) piece of s split at sep (a repetition, component or
 * subcomponent); empty past the last. */
struct hl7_span hl7_piece(const struct hl7_msg *m, struct hl7_span s, char sep, size_t n);
/* Number of pieces of s split at sep (0 for an empty span). */
size_t hl7_count(const struct hl7_msg *m, struct hl7_span s, char sep);
/* Index of the k-th (1-based) segment named id at or after segment from, or
 * -1. */
long hl7_find_seg(const struct hl7_msg *m, const char *id, size_t from, size_t k);

/* A location in a message: PID-5[2].1.1, OBX(3)-5. */
struct hl7_path {
	char seg[4];
	size_t occ;                    /* segment occurrence, 1-based */
	size_t field, rep, comp, sub;  /* 0: the whole of that level */
};

/* Parse "SEG[(occ)]-F[[rep]][.C[.S]]".  ERR_INVALID saying what is wrong. */
int hl7_path_parse(const char *path, struct hl7_path *p, struct err *e);
/* The value at p (raw, still escaped); 0 with *out set (empty when absent),
 * 1 when the segment is absent. */
int hl7_get(const struct hl7_msg *m, const struct hl7_path *p, struct hl7_span *out);
/* hl7_path_parse + hl7_get + hl7_unescape into out (appended).  0 found
 * (possibly empty), 1 no such segment, -1 bad path. */
int hl7_get_str(const struct hl7_msg *m, const char *path, struct buf *out, struct err *e);
/* Is the span the HL7 null, "" (delete the value in the receiver)? */
bool hl7_is_null(const struct hl7_msg *m, struct hl7_span s);

/* ---- escapes ---- */

/* Append s with its escape sequences resolved (UTF-8): \F\ \S\ \T\ \R\ \E\
 * \P\ give the delimiters, \Xhh..\ the bytes (invalid UTF-8 becomes U+FFFD),
 * \.br\ and \.sp\ a line break, \H\ \N\ and the other formatting and
 * character-set escapes are dropped; an unterminated or unknown sequence is
 * kept as written. */
void hl7_unescape(const struct hl7_msg *m, struct hl7_span s, struct buf *out);
/* Append text (UTF-8) escaped for a field with delimiters d. */
void hl7_escape(const struct hl7_delims *d, const char *text, size_t n, struct buf *out);

/* ---- JSON for people debugging an interface ---- */

/* {"delimiters":"|^~\\&","version":..,"type":..,"segments":[{"id":"PID",
 * "offset":123,"fields":{"3":...}}]}: each non-empty field by its number; a
 * value is a string (unescaped), null for "", or an array of repetitions /
 * components / subcomponents when there are several. */
void hl7_dump_json(const struct hl7_msg *m, struct buf *out);

/* ---- acknowledgements ---- */

enum hl7_ack_code { HL7_AA = 0, HL7_AE, HL7_AR, HL7_CA, HL7_CE, HL7_CR };

/* When a sender wants an acknowledgement (MSH-15 accept, MSH-16
 * application; enhanced mode when either is present). */
enum hl7_ack_when { HL7_ACK_ALWAYS = 0, HL7_ACK_NEVER, HL7_ACK_ERROR, HL7_ACK_SUCCESS };

struct hl7_ack_err {
	const char *code;              /* HL7 table 0357: "100" segment sequence error, "101"
					  required field missing, "102" data type error, "103"
					  table value not found, "200" unsupported message type,
					  "201" unsupported event code, "202" unsupported
					  processing id, "203" unsupported version id, "204"
					  unknown key identifier, "205" duplicate key, "206"
					  application record locked, "207" application internal
					  error */
	const char *text;              /* for people: never patient data */
	char seg[4];                   /* where: segment id, or "" */
	size_t seg_occ, field;         /* 0: unknown */
	char severity;                 /* 'E' error, 'W' warning, 'I' information */
};

/* The ACK for a message: MSH with the sender's delimiters and version,
 * sending and receiving sides swapped, MSA-1 code, MSA-2 the control id,
 * MSA-3 text (versions before 2.5 only), and an ERR segment (ERR-1 for
 * versions before 2.5, ERR-2/3/4/8 after) when err is not NULL.  m may be
 * NULL (a message too broken to read): a 2.5.1 ACK with no echo.
 * control_id: MSH-10 of the ACK itself.  Segments end with CR. */
void hl7_ack_build(const struct hl7_msg *m, int code, const struct hl7_ack_err *err,
		   const char *control_id, int64_t now_ms, struct buf *out);
/* The application ACK of enhanced mode (a message of its own, sent back to
 * the sender once the message was processed): as hl7_ack_build, with
 * MSH-15 AL (the destination answers with an accept ACK, so delivery is
 * known) and MSH-16 NE (an ACK is never acknowledged at application level). */
void hl7_app_ack_build(const struct hl7_msg *m, int code, const struct hl7_ack_err *err,
		       const char *control_id, int64_t now_ms, struct buf *out);
/* Does the sender want an ACK with this code?  Original mode (no MSH-15/16):
 * always.  Enhanced mode: MSH-15 for the accept codes (CA, CE, CR), MSH-16
 * for the application codes. */
bool hl7_ack_wanted(const struct hl7_msg *m, int code);
/* Is the message in enhanced acknowledgement mode? */
bool hl7_ack_enhanced(const struct hl7_msg *m);
const char *hl7_ack_name(int code);

/* ---- MLLP framing: VT message FS CR ---- */

#define HL7_MLLP_SB 0x0b
#define HL7_MLLP_EB 0x1c
#define HL7_MLLP_CR 0x0d

struct hl7_mllp {
	struct buf in;                 /* bytes received, not yet framed */
	size_t pos;                    /* in.data[0..pos) has been handed out */
	size_t max_frame;              /* most bytes of one message */
	size_t junk;                   /* bytes dropped outside frames (counted) */
	bool in_frame;
	bool oversized;                /* the current frame passed max_frame: it is
					  dropped up to its end */
};

void hl7_mllp_init(struct hl7_mllp *f, size_t max_frame);
void hl7_mllp_release(struct hl7_mllp *f);
/* Feed received bytes. */
int hl7_mllp_feed(struct hl7_mllp *f, const void *p, size_t n);
/* The next complete frame: 1 with *msg and *len pointing into f (valid until the
 * next feed or next), 2 when a frame was too large (dropped, nothing to
 * return: answer it with an AR), 0 when more bytes are needed.  Bytes
 * outside frames are skipped and counted in f->junk. */
int hl7_mllp_next(struct hl7_mllp *f, const char **msg, size_t *len);
/* Append VT text FS CR to out. */
void hl7_mllp_wrap(const char *text, size_t n, struct buf *out);


/* ---- the feed: inbox to FHIR (feed.c, map.c) ----
 *
 * Messages are processed from the inbox in arrival order by one thread, so
 * the messages of a patient are applied in the order they came.  Each
 * becomes one transaction Bundle, planned and committed exactly as a
 * transaction POSTed to the REST API is (fhir_bundle_plan_req: validation,
 * conditional references, search index rows), with the policy decided per
 * entry for the feed's principal, an audit entry naming the sending
 * application and facility, and the inbox row marked processed, all in one
 * database transaction.  A failure marks the row as an error with the
 * reason (the error queue). */

struct store;
struct fhir_params;
struct hl7_feed;
struct hl7_acker;

#define HL7_FEED_DEFAULT_CLIENT "hl7-feed"

struct hl7_feed_config {
	struct store *store;
	struct fhir_params *params;    /* search parameters (fhir_params_load) */
	const char *client_id;         /* the registered client the feed acts as */
	int max_depth;
	bool match;                    /* the feed's thread queues the Patients it writes for
					  incremental matching (mpi/mpi.h), as the server does */
	struct hl7_acker *acker;       /* woken when an application ACK was queued; NULL:
					  none (a running server's acker finds it by polling) */
};

/* The feed acting as the registered OAuth client cfg->client_id (its role
 * decides what the feed may write; docs/hl7v2.md).  ERR_NOT_FOUND when no
 * such client is registered, ERR_FORBIDDEN when it is disabled. */
int hl7_feed_new(const struct hl7_feed_config *cfg, struct hl7_feed **out, struct err *e);
void hl7_feed_free(struct hl7_feed *f);
/* Process inbox message id now (pending or in the error queue): 0 when its
 * resources were committed and the row marked processed; -1 with e (the
 * reason, also kept on the row, which is then in the error queue). */
int hl7_feed_process(struct hl7_feed *f, int64_t id, struct err *e);
/* A thread that processes pending messages as they arrive (hl7_feed_wake
 * after each one stored) until hl7_feed_stop. */
int hl7_feed_start(struct hl7_feed *f, struct err *e);
void hl7_feed_wake(struct hl7_feed *f);
void hl7_feed_stop(struct hl7_feed *f);

/* Can the feed take this message?  0; or -1 with a filled ack error
 * (code 200/201 unsupported type or event, 100 a required segment missing)
 * and *ack the code to answer with (AR or AE). */
int hl7_map_check(const struct hl7_msg *m, struct hl7_ack_err *err, int *ack);
/* The FHIR transaction Bundle (JSON, appended to out) for a message; keys
 * (may be NULL) gets every identifier its resources carry, "system|value"
 * a line: what its conditional entries can match, and what it writes. */
int hl7_map_bundle(const struct hl7_msg *m, struct buf *out, struct buf *keys, struct err *e);

/* A merge event (ADT A40, A34, A35, A39)?  1 with the search queries
 * ("identifier=system|value") of the prior patient (MRG-1, the source) and
 * the surviving one (PID-3, the target) appended; 0 for other events; -1
 * with e when MRG-1 holds no identifier. */
int hl7_map_merge(const struct hl7_msg *m, struct buf *source_q, struct buf *target_q, struct err *e);

/* ---- application ACKs to the senders (appack.c) ----
 *
 * In enhanced mode (MSH-15/16) the accept ACK (CA/CE/CR) answers a message
 * on its connection once it is stored; the application ACK (AA/AE/AR),
 * when MSH-16 asks for one for the outcome, is a message of its own sent
 * once the feed processed it.  It is queued in the database with the
 * outcome (store_hl7_mark, 0011) and sent by the acker: a thread that
 * connects to the destination configured for the sending application
 * (MSH-3, and facility MSH-4), sends the ACK over MLLP and waits for the
 * destination's accept ACK; unreachable or no answer: tried again later,
 * waiting twice as long each time (HL7_ACK_RETRY_MIN_MS up to
 * HL7_ACK_RETRY_MAX_MS); CR/AR back: failed, not retried. */

#define HL7_ACK_MAX_ROUTES 32
#define HL7_ACK_RETRY_MIN_MS 1000
#define HL7_ACK_RETRY_MAX_MS (5 * 60 * 1000)
#define HL7_ACK_TIMEOUT_MS 10000

struct hl7_ack_route {
	char app[64];                  /* MSH-3 (as written, or its first component); "*": any */
	char fac[64];                  /* MSH-4 likewise; "": any */
	char host[64];
	char port[8];
};

struct hl7_ack_routes {
	struct hl7_ack_route v[HL7_ACK_MAX_ROUTES];
	size_t n;
};

/* Parse "APP[@FAC]=HOST:PORT[,...]" (serve --mllp-ack-to) into r.
 * ERR_INVALID naming the entry that is wrong. */
int hl7_ack_routes_parse(const char *spec, struct hl7_ack_routes *r, struct err *e);
/* The route for a sender (MSH-3 and MSH-4 as written): the first entry
 * whose application and facility match, or NULL. */
const struct hl7_ack_route *hl7_ack_route_find(const struct hl7_ack_routes *r, const char *app,
					       const char *fac);
/* Start the thread that sends queued application ACKs.  routes is copied. */
int hl7_acker_start(struct store *s, const struct hl7_ack_routes *routes, struct hl7_acker **out,
		    struct err *e);
void hl7_acker_wake(struct hl7_acker *k);
/* Stop (an ACK being sent is finished first) and free; NULL is fine. */
void hl7_acker_stop(struct hl7_acker *k);
/* Try every ACK due now once (what the thread does each round); the
 * number tried, or -1 with e when the queue cannot be read. */
int hl7_acker_run_once(struct store *s, const struct hl7_ack_routes *routes, struct err *e);

/* ---- the MLLP listener (listener.c) ---- */

struct hl7_listener;

struct hl7_listener_config {
	const char *listen;            /* "127.0.0.1:2575"; port 0 picks one (logged) */
	size_t max_frame;              /* bytes of one message */
	unsigned idle_s;               /* an idle connection is closed after this */
	unsigned max_connections;
	const char *processing_ids;    /* MSH-11 values accepted, e.g. "P" or "P,T" */
};

#define HL7_DEFAULT_MAX_FRAME (16u << 20)
#define HL7_DEFAULT_IDLE_S 600
#define HL7_DEFAULT_MAX_CONNECTIONS 256

void hl7_listener_config_defaults(struct hl7_listener_config *c);
/* Listen and serve in threads of its own; feed (may be NULL) is woken for
 * every message stored.  -1 with e if the address cannot be used. */
int hl7_listener_start(struct store *s, struct hl7_feed *feed, const struct hl7_listener_config *cfg,
		       struct hl7_listener **out, struct err *e);
/* Stop accepting, close every connection (a message being stored is stored
 * and answered first), free. */
void hl7_listener_stop(struct hl7_listener *l);
#endif
