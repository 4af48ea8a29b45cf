/* listener.c - the MLLP listener: frames in, inbox rows, ACKs out.
 *
 * One thread accepts; each connection gets a thread of its own (MLLP
 * connections are few and long-lived: a handful of interfaces per site,
 * each a sender that waits for its ACK).  A frame is checked (parse, MSH
 * fields, version, processing id, type), stored raw in the inbox through
 * the store's group commit - the ACK waits for that commit, so an AA means
 * the message is on disk - and answered in the sender's dialect.  Rejected
 * frames are stored too (state rejected), so an interface analyst can see
 * what a sender sent; only frames past the size limit are not.
 *
 * Signals: serve waits for SIGINT/SIGTERM in server_run, which blocks them
 * in its own threads; these threads are created with them blocked too, so
 * a signal never lands here. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/base.h"
#include "hl7v2/hl7v2.h"
#include "store/store.h"
#include "base/banned.h"

struct hl7_conn {
	struct hl7_listener *l;
	int fd;
	char peer[64];
	pthread_t thread;
	bool done;                  /* the thread has finished (joined by the reaper) */
	struct hl7_conn *next;
};

struct hl7_listener {
	struct store *store;
	struct hl7_feed *feed;
	struct hl7_listener_config cfg;
	char processing_ids[64];
	int fd;
	pthread_t accept_thread;
	atomic_bool stopping;
	pthread_mutex_t mu;
	struct hl7_conn *conns;
	unsigned nconns;
	atomic_uint_fast64_t seq;   /* ACK control ids */
};

void hl7_listener_config_defaults(struct hl7_listener_config *c)
{
	memset(c, 0, sizeof(*c));
	c->max_frame = HL7_DEFAULT_MAX_FRAME;
	c->idle_s = HL7_DEFAULT_IDLE_S;
	c->max_connections = HL7_DEFAULT_MAX_CONNECTIONS;
	c->processing_ids = "P";
}

static int parse_addr(const char *listen, struct sockaddr_in *sa, struct err *e)
{
	char host[64];
	const char *colon = strrchr(listen, ':');
	char *end;
	long port;

	memset(sa, 0, sizeof(*sa));
	if (!colon || (size_t)(colon - listen) >= sizeof(host))
		return err_set(e, ERR_INVALID, "--mllp must be HOST:PORT, e.g. 127.0.0.1:2575");
	snprintf(host, sizeof(host), "%.*s", (int)(colon - listen), listen);
	port = strtol(colon + 1, &end, 10);
	if (*end || port < 0 || port > 65535 || colon[1] == '\0')
		return err_set(e, ERR_INVALID, "--mllp: bad port '%s'", colon + 1);
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)port);
	if (host[0] == '\0' || strcmp(host, "0.0.0.0") == 0)
		sa->sin_addr.s_addr = htonl(INADDR_ANY);
	else if (strcmp(host, "localhost") == 0)
		sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	else if (inet_pton(AF_INET, host, &sa->sin_addr) != 1)
		return err_set(e, ERR_INVALID, "--mllp: '%s' is not an IPv4 address", host);
	return 0;
}

/* ---- checks on receipt ---- */

/* Versions this receiver speaks: 2.1 to 2.8.x. */
static bool version_ok(const char *v)
{
	return strlen(v) >= 3 && v[0] == '2' && v[1] == '.' && v[2] >= '1' && v[2] <= '8' &&
	       (v[3] == '\0' || v[3] == '.');
}

static bool in_list(const char *list, const char *v)
{
	size_t n = strlen(v);

	if (!n)
		return false;
	for (const char *p = list; *p;) {
		const char *c = strchr(p, ',');
		size_t k = c ? (size_t)(c - p) : strlen(p);
		if (k == n && memcmp(p, v, n) == 0)
			return true;
		if (!c)
			break;
		p = c + 1;
	}
	return false;
}

static void set_err(struct hl7_ack_err *ae, const char *code, const char *text, const char *seg,
		    size_t field)
{
	memset(ae, 0, sizeof(*ae));
	ae->code = code;
	ae->text = text;
	snprintf(ae->seg, sizeof(ae->seg), "%s", seg);
	ae->seg_occ = seg[0] ? 1 : 0;
	ae->field = field;
	ae->severity = 'E';
}

/* The required MSH fields, as a table: field, what it is. */
static const struct {
	size_t field;
	const char *text;
} msh_required[] = {
	{ 9, "MSH-9 (message type) is required" },
	{ 10, "MSH-10 (message control id) is required" },
	{ 11, "MSH-11 (processing id) is required" },
	{ 12, "MSH-12 (version id) is required" },
};

/* Decide the answer to a parsed message: 0 (AA) or -1 with *ack and ae. */
static int check_msg(const struct hl7_listener *l, const struct hl7_msg *m, struct hl7_ack_err *ae,
		     int *ack, char *text, size_t cap)
{
	for (size_t i = 0; i < ARRAY_SIZE(msh_required); i++) {
		if (hl7_field(m, 0, msh_required[i].field).len == 0) {
			set_err(ae, "101", msh_required[i].text, "MSH", msh_required[i].field);
			*ack = HL7_AR;
			return -1;
		}
	}
	if (!version_ok(m->version)) {
		snprintf(text, cap, "version '%.20s' is not supported (2.1 to 2.8)", m->version);
		set_err(ae, "203", text, "MSH", 12);
		*ack = HL7_AR;
		return -1;
	}
	if (!in_list(l->processing_ids, m->processing_id)) {
		snprintf(text, cap, "processing id '%.10s' is not accepted here (accepted: %s)",
			 m->processing_id, l->processing_ids);
		set_err(ae, "202", text, "MSH", 11);
		*ack = HL7_AR;
		return -1;
	}
	return hl7_map_check(m, ae, ack);
}

static void copy_raw(const struct hl7_msg *m, size_t f, char *dst, size_t cap)
{
	struct hl7_span s = hl7_field(m, 0, f);
	size_t n = s.len < cap - 1 ? s.len : cap - 1;

	memcpy(dst, m->text + s.off, n);
	dst[n] = '\0';
}

static int send_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int enhanced_code(int code)
{
	return code == HL7_AA ? HL7_CA : code == HL7_AE ? HL7_CE : HL7_CR;
}

/* Store one frame (or, when text is NULL, answer an oversized one) and
 * send its ACK.  -1 if the connection is gone. */
static int handle_frame(struct hl7_conn *c, const char *text, size_t len, struct arena *a,
			struct buf *out)
{
	struct hl7_listener *l = c->l;
	struct hl7_msg m;
	struct hl7_ack_err ae, *aep = NULL;
	struct store_hl7_msg im;
	struct store_txn t;
	struct err e = ERR_INIT;
	char why[ERR_MSG_MAX], ackid[32];
	int ack = HL7_AA, parsed = -1, rc = 0;
	bool have_msg;

	arena_reset(a);
	memset(&m, 0, sizeof(m));
	memset(&im, 0, sizeof(im));
	why[0] = '\0';
	if (!text) {
		snprintf(why, sizeof(why), "the message is larger than %zu bytes", l->cfg.max_frame);
		set_err(&ae, "100", why, "", 0);
		aep = &ae;
		ack = HL7_AR;
		log_warn("event=hl7_rejected peer=%s reason=\"oversized\" max_frame=%zu", c->peer,
			 l->cfg.max_frame);
		goto answer;
	}
	parsed = hl7_parse(text, len, a, &m, &e);
	if (parsed < 0) {
		snprintf(why, sizeof(why), "%s", e.msg);
		set_err(&ae, "100", why, "", 0);
		aep = &ae;
		ack = HL7_AR;
	} else if (check_msg(l, &m, &ae, &ack, why, sizeof(why)) < 0) {
		if (ae.text != why)
			snprintf(why, sizeof(why), "%s", ae.text);
		ae.text = why;
		aep = &ae;
	}
	/* stored, accepted or not: nothing a sender sent is lost */
	im.received_ms = time_now_ms();
	snprintf(im.peer, sizeof(im.peer), "%s", c->peer);
	if (m.nsegs) {
		copy_raw(&m, 3, im.sending_app, sizeof(im.sending_app));
		copy_raw(&m, 4, im.sending_fac, sizeof(im.sending_fac));
		copy_raw(&m, 10, im.control_id, sizeof(im.control_id));
		snprintf(im.msg_type, sizeof(im.msg_type), "%.12s%s%.12s", m.type, m.event[0] ? "^" : "",
			 m.event);
	}
	crypto_generichash(im.hash, sizeof(im.hash), (const unsigned char *)text, len, NULL, 0);
	im.raw = (char *)text;
	im.raw_len = len;
	im.state = ack == HL7_AA ? STORE_HL7_PENDING : STORE_HL7_REJECTED;
	snprintf(im.ack, sizeof(im.ack), "%s", hl7_ack_name(ack));
	snprintf(im.reason, sizeof(im.reason), "%s", why);
	store_hl7_receive_txn(&t, &im);
	if (store_commit(l->store, &t) < 0) {
		log_error("event=hl7_store_failed peer=%s detail=\"%s\"", c->peer, t.err.detail);
		set_err(&ae, "207", "the message could not be stored: send it again", "", 0);
		aep = &ae;
		ack = HL7_AE;
	} else if (im.duplicate) {
		/* a resend: answered as the first was, processed once */
		ack = strcmp(im.ack, "AA") == 0 ? HL7_AA : ack;
		log_info("event=hl7_duplicate id=%lld peer=%s type=%s", (long long)im.id, c->peer, im.msg_type);
	} else {
		log_info("event=hl7_received id=%lld peer=%s type=%s ack=%s%s", (long long)im.id, c->peer,
			 im.msg_type, hl7_ack_name(ack), im.collision ? " control_id_collision=1" : "");
		if (ack == HL7_AA && l->feed)
			hl7_feed_wake(l->feed);
	}
answer:
	have_msg = parsed == 0 || m.nsegs > 0;
	if (have_msg && hl7_ack_enhanced(&m))
		ack = enhanced_code(ack);
	if (have_msg && !hl7_ack_wanted(&m, ack))
		return 0;
	snprintf(ackid, sizeof(ackid), "CK%llu", (unsigned long long)atomic_fetch_add(&l->seq, 1));
	buf_reset(out);
	{
		struct buf ackt = BUF_INIT(0);
		hl7_ack_build(have_msg ? &m : NULL, ack, aep, ackid, time_now_ms(), &ackt);
		hl7_mllp_wrap(buf_cstr(&ackt), ackt.len, out);
		buf_release(&ackt);
	}
	if (out->failed || send_all(c->fd, out->data, out->len) < 0)
		rc = -1;
	return rc;
}

static void *conn_main(void *arg)
{
	struct hl7_conn *c = arg;
	struct hl7_listener *l = c->l;
	struct hl7_mllp f;
	struct arena a;
	struct buf out = BUF_INIT(0);
	char *rb = malloc(65536);

	hl7_mllp_init(&f, l->cfg.max_frame);
	arena_init(&a, 0);
	log_info("event=mllp_connect peer=%s", c->peer);
	while (rb && !atomic_load(&l->stopping)) {
		struct pollfd p = { c->fd, POLLIN, 0 };
		const char *msg;
		size_t len;
		ssize_t n;
		int r, pr = poll(&p, 1, (int)l->cfg.idle_s * 1000);

		if (pr == 0) {
			log_info("event=mllp_idle_close peer=%s idle_s=%u", c->peer, l->cfg.idle_s);
			break;
		}
		if (pr < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		n = recv(c->fd, rb, 65536, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (hl7_mllp_feed(&f, rb, (size_t)n) < 0)
			break;
		while ((r = hl7_mllp_next(&f, &msg, &len)) != 0) {
			if (handle_frame(c, r == 1 ? msg : NULL, r == 1 ? len : 0, &a, &out) < 0)
				goto out;
		}
	}
out:
	if (f.junk)
		log_info("event=mllp_junk peer=%s bytes=%zu", c->peer, f.junk);
	log_info("event=mllp_close peer=%s", c->peer);
	free(rb);
	buf_release(&out);
	arena_release(&a);
	hl7_mllp_release(&f);
	/* closed under the lock: stop() never shuts down a reused descriptor */
	pthread_mutex_lock(&l->mu);
	close(c->fd);
	c->done = true;
	pthread_mutex_unlock(&l->mu);
	return NULL;
}

/* Join and free finished connections. */
static void reap(struct hl7_listener *l, bool all)
{
	struct hl7_conn **pp;

	pthread_mutex_lock(&l->mu);
	pp = &l->conns;
	while (*pp) {
		struct hl7_conn *c = *pp;
		if (c->done || all) {
			*pp = c->next;
			l->nconns--;
			pthread_mutex_unlock(&l->mu);
			pthread_join(c->thread, NULL);
			free(c);
			pthread_mutex_lock(&l->mu);
			continue;
		}
		pp = &c->next;
	}
	pthread_mutex_unlock(&l->mu);
}

static void *accept_main(void *arg)
{
	struct hl7_listener *l = arg;

	while (!atomic_load(&l->stopping)) {
		struct sockaddr_in sa;
		socklen_t sl = sizeof(sa);
		struct hl7_conn *c;
		char ip[INET_ADDRSTRLEN];
		int one = 1, fd = accept(l->fd, (struct sockaddr *)&sa, &sl);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (atomic_load(&l->stopping))
				break;
			if (errno == EMFILE || errno == ENFILE) {
				log_warn("event=mllp_accept_failed reason=\"out of file descriptors\"");
				usleep(100000);
				continue;
			}
			break;
		}
		reap(l, false);
		inet_ntop(AF_INET, &sa.sin_addr, ip, sizeof(ip));
		if (l->nconns >= l->cfg.max_connections) {
			log_warn("event=mllp_refused peer=%s:%u reason=\"max connections\" max=%u", ip,
				 ntohs(sa.sin_port), l->cfg.max_connections);
			close(fd);
			continue;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->l = l;
		c->fd = fd;
		snprintf(c->peer, sizeof(c->peer), "%s:%u", ip, ntohs(sa.sin_port));
		pthread_mutex_lock(&l->mu);
		if (pthread_create(&c->thread, NULL, conn_main, c) != 0) {
			pthread_mutex_unlock(&l->mu);
			close(fd);
			free(c);
			continue;
		}
		c->next = l->conns;
		l->conns = c;
		l->nconns++;
		pthread_mutex_unlock(&l->mu);
	}
	return NULL;
}

int hl7_listener_start(struct store *s, struct hl7_feed *feed, const struct hl7_listener_config *cfg,
		       struct hl7_listener **out, struct err *e)
{
	struct hl7_listener *l;
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	sigset_t block, old;
	char ip[INET_ADDRSTRLEN];
	int one = 1;

	*out = NULL;
	if (parse_addr(cfg->listen, &sa, e) < 0)
		return -1;
	l = calloc(1, sizeof(*l));
	if (!l)
		return err_set(e, ERR_NOMEM, "out of memory");
	l->store = s;
	l->feed = feed;
	l->cfg = *cfg;
	snprintf(l->processing_ids, sizeof(l->processing_ids), "%s",
		 cfg->processing_ids ? cfg->processing_ids : "P");
	l->cfg.processing_ids = l->processing_ids;
	pthread_mutex_init(&l->mu, NULL);
	atomic_init(&l->stopping, false);
	atomic_init(&l->seq, (uint64_t)time_now_ms() * 1000);
	l->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l->fd < 0) {
		err_set(e, ERR_IO, "cannot make a socket for --mllp");
		goto fail;
	}
	setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(l->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(l->fd, 128) < 0) {
		err_set(e, ERR_IO, "cannot listen on %s for MLLP (address in use?)", cfg->listen);
		goto fail;
	}
	getsockname(l->fd, (struct sockaddr *)&sa, &sl);
	inet_ntop(AF_INET, &sa.sin_addr, ip, sizeof(ip));
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	if (pthread_create(&l->accept_thread, NULL, accept_main, l) != 0) {
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		err_set(e, ERR_INTERNAL, "cannot start the MLLP listener");
		goto fail;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	log_info("event=mllp_listening addr=%s:%u max_frame=%zu idle_s=%u max_connections=%u "
		 "processing_ids=%s", ip, ntohs(sa.sin_port), l->cfg.max_frame, l->cfg.idle_s,
		 l->cfg.max_connections, l->processing_ids);
	*out = l;
	return 0;
fail:
	if (l->fd >= 0)
		close(l->fd);
	pthread_mutex_destroy(&l->mu);
	free(l);
	return -1;
}

void hl7_listener_stop(struct hl7_listener *l)
{
	if (!l)
		return;
	atomic_store(&l->stopping, true);
	shutdown(l->fd, SHUT_RDWR);
	pthread_join(l->accept_thread, NULL);
	close(l->fd);
	/* wake every connection from its poll: a frame being handled is
	 * stored and answered before its thread sees the flag */
	pthread_mutex_lock(&l->mu);
	for (struct hl7_conn *c = l->conns; c; c = c->next)
		if (!c->done)
			shutdown(c->fd, SHUT_RD);
	pthread_mutex_unlock(&l->mu);
	reap(l, true);
	pthread_mutex_destroy(&l->mu);
	free(l);
}
