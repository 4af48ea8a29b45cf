/* appack.c - application acknowledgements back to the senders (enhanced
 * mode, MSH-16; HL7 v2.5 chapter 2, "enhanced acknowledgment mode").
 *
 * The feed queues an application ACK in the same transaction as the
 * outcome it reports (store_hl7_mark, migrate_sqlite_0011_hl7_app_ack.sql),
 * so an outcome on disk always has its ACK on record.  This file sends
 * them: one thread takes the ACKs that are due, oldest first, connects to
 * the destination configured for the sending application and facility
 * (serve --mllp-ack-to), sends the ACK in an MLLP frame and waits for the
 * destination's accept ACK.  Only then is the ACK marked sent; so a crash
 * between sending and marking sends it again after the restart (at least
 * once, the HL7 norm), with the same MSH-10, by which the destination
 * recognises the resend.
 *
 * Why a connection of our own rather than the sender's: the sender's
 * connection carries its messages and their accept ACKs, and a sender that
 * sends and waits would take an application ACK arriving there for the
 * accept ACK of its next message; and the connection is often gone by the
 * time the message is processed.  A destination per sender is what
 * interface engines configure for enhanced mode. */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
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

#define ACKER_BATCH 16

struct hl7_acker {
	struct store *store;
	struct hl7_ack_routes routes;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	atomic_bool stop;           /* also read by a round between two ACKs */
	bool kicked;
};

/* ---- routes: APP[@FAC]=HOST:PORT,... ---- */

static int route_parse(const char *p, size_t n, struct hl7_ack_route *rt, struct err *e)
{
	const char *eq = memchr(p, '=', n), *at, *colon;
	size_t an, fn, hn, pn;

	memset(rt, 0, sizeof(*rt));
	if (!eq)
		return err_set(e, ERR_INVALID, "--mllp-ack-to: '%.*s' must be APP[@FAC]=HOST:PORT", (int)n, p);
	at = memchr(p, '@', (size_t)(eq - p));
	an = (size_t)((at ? at : eq) - p);
	fn = at ? (size_t)(eq - at - 1) : 0;
	colon = NULL;
	for (const char *q = eq + 1; q < p + n; q++)
		if (*q == ':')
			colon = q;
	if (!an || (at && !fn) || !colon || colon == eq + 1 || colon + 1 == p + n)
		return err_set(e, ERR_INVALID, "--mllp-ack-to: '%.*s' must be APP[@FAC]=HOST:PORT", (int)n, p);
	hn = (size_t)(colon - eq - 1);
	pn = (size_t)(p + n - colon - 1);
	if (an >= sizeof(rt->app) || fn >= sizeof(rt->fac) || hn >= sizeof(rt->host) || pn >= sizeof(rt->port))
		return err_set(e, ERR_INVALID, "--mllp-ack-to: '%.*s' is too long", (int)n, p);
	for (size_t i = 0; i < pn; i++)
		if (colon[1 + i] < '0' || colon[1 + i] > '9')
			return err_set(e, ERR_INVALID, "--mllp-ack-to: bad port in '%.*s'", (int)n, p);
	if (atoi(colon + 1) < 1 || atoi(colon + 1) > 65535)
		return err_set(e, ERR_INVALID, "--mllp-ack-to: bad port in '%.*s'", (int)n, p);
	memcpy(rt->app, p, an);
	if (at)
		memcpy(rt->fac, at + 1, fn);
	memcpy(rt->host, eq + 1, hn);
	memcpy(rt->port, colon + 1, pn);
	return 0;
}

int hl7_ack_routes_parse(const char *spec, struct hl7_ack_routes *r, struct err *e)
{
	const char *p = spec ? spec : "";

	memset(r, 0, sizeof(*r));
	while (*p) {
		const char *c = strchr(p, ',');
		size_t n = c ? (size_t)(c - p) : strlen(p);
		if (r->n == HL7_ACK_MAX_ROUTES) {
			err_set(e, ERR_INVALID, "--mllp-ack-to: more than %d destinations", HL7_ACK_MAX_ROUTES);
			goto fail;
		}
		if (route_parse(p, n, &r->v[r->n], e) < 0)
			goto fail;
		r->n++;
		if (!c)
			break;
		p = c + 1;
		if (!*p) {
			err_set(e, ERR_INVALID, "--mllp-ack-to: an empty destination after ','");
			goto fail;
		}
	}
	return 0;
fail:
	memset(r, 0, sizeof(*r));
	return -1;
}

/* Does a configured name match a value as written: the whole value, or its
 * first component (MSH-3 "LAB^1.2.3^ISO" is matched by "LAB"). */
static bool name_match(const char *want, const char *value)
{
	size_t n = strlen(want);

	if (strcmp(want, "*") == 0 || strcmp(want, value) == 0)
		return true;
	return strncmp(want, value, n) == 0 && value[n] == '^';
}

const struct hl7_ack_route *hl7_ack_route_find(const struct hl7_ack_routes *r, const char *app,
					       const char *fac)
{
	for (size_t i = 0; i < r->n; i++)
		if (name_match(r->v[i].app, app) && (!r->v[i].fac[0] || name_match(r->v[i].fac, fac)))
			return &r->v[i];
	return NULL;
}

/* ---- one delivery ---- */

static int dial(const struct hl7_ack_route *rt, int64_t deadline, struct err *e)
{
	struct addrinfo hints, *res = NULL, *ai;
	int fd = -1, r;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	r = getaddrinfo(rt->host, rt->port, &hints, &res);
	if (r != 0)
		return err_set(e, ERR_IO, "cannot resolve %s: %s", rt->host, gai_strerror(r));
	for (ai = res; ai && fd < 0; ai = ai->ai_next) {
		struct pollfd p;
		int soerr = 0;
		socklen_t sl = sizeof(soerr);
		int64_t left;
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
		if (fd < 0)
			continue;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		if (errno == EINPROGRESS) {
			p.fd = fd;
			p.events = POLLOUT;
			p.revents = 0;
			left = deadline - time_now_ms();
			if (left > 0 && poll(&p, 1, (int)left) == 1 &&
			    getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0)
				break;
			errno = soerr ? soerr : ETIMEDOUT;
		}
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		return err_set(e, ERR_IO, "cannot connect to %s:%s: %s", rt->host, rt->port, strerror(errno));
	return fd;
}

static int send_all(int fd, const char *p, size_t n, int64_t deadline, struct err *e)
{
	while (n) {
		struct pollfd pf = { fd, POLLOUT, 0 };
		int64_t left = deadline - time_now_ms();
		ssize_t w;
		if (left <= 0 || poll(&pf, 1, (int)left) <= 0)
			return err_set(e, ERR_IO, "timed out sending");
		w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (w <= 0)
			return err_set(e, ERR_IO, "the connection failed while sending: %s", strerror(errno));
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* The destination's answer, one frame.  -1 (timed out, closed). */
static int read_answer(int fd, int64_t deadline, struct buf *ans, struct err *e)
{
	struct hl7_mllp f;
	char rb[4096];
	int rc = -1;

	hl7_mllp_init(&f, 1u << 20);
	for (;;) {
		const char *msg;
		size_t len;
		int r = hl7_mllp_next(&f, &msg, &len);
		struct pollfd p = { fd, POLLIN, 0 };
		int64_t left = deadline - time_now_ms();
		ssize_t n;
		if (r == 1) {
			buf_add(ans, msg, len);
			rc = 0;
			break;
		}
		if (r == 2) {
			err_set(e, ERR_IO, "the destination's answer is too large");
			break;
		}
		if (left <= 0 || poll(&p, 1, (int)left) <= 0) {
			err_set(e, ERR_IO, "no accept ACK within %d s", HL7_ACK_TIMEOUT_MS / 1000);
			break;
		}
		n = recv(fd, rb, sizeof(rb), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			err_set(e, ERR_IO, "the destination closed the connection without an accept ACK");
			break;
		}
		if (hl7_mllp_feed(&f, rb, (size_t)n) < 0) {
			err_set(e, ERR_NOMEM, "out of memory");
			break;
		}
	}
	hl7_mllp_release(&f);
	return rc;
}

enum outcome { SENT, RETRY, REFUSED };

/* Read the destination's MSA: CA/AA sent, CR/AR refused, anything else
 * (CE/AE, another control id, unreadable) tried again. */
static enum outcome judge(const struct store_hl7_ack *a, const struct buf *ans, char *why, size_t cap)
{
	struct arena ar;
	struct hl7_msg m;
	struct err e = ERR_INIT;
	struct buf code = BUF_INIT(0), ref = BUF_INIT(0);
	enum outcome o = RETRY;

	arena_init(&ar, 0);
	if (hl7_parse(ans->data, ans->len, &ar, &m, &e) < 0) {
		snprintf(why, cap, "the destination's answer is not a readable HL7 message: %.120s", e.msg);
		goto out;
	}
	if (hl7_get_str(&m, "MSA-1", &code, &e) != 0 || hl7_get_str(&m, "MSA-2", &ref, &e) != 0) {
		snprintf(why, cap, "the destination's answer has no MSA segment");
		goto out;
	}
	if (strcmp(buf_cstr(&ref), a->control_id) != 0) {
		snprintf(why, cap, "the destination's answer acknowledges control id '%.40s', not '%s'",
			 buf_cstr(&ref), a->control_id);
		goto out;
	}
	if (strcmp(buf_cstr(&code), "CA") == 0 || strcmp(buf_cstr(&code), "AA") == 0) {
		o = SENT;
		why[0] = '\0';
	} else if (strcmp(buf_cstr(&code), "CR") == 0 || strcmp(buf_cstr(&code), "AR") == 0) {
		o = REFUSED;
		snprintf(why, cap, "the destination refused it (MSA-1 %s)", buf_cstr(&code));
	} else {
		snprintf(why, cap, "the destination answered MSA-1 '%.10s'", buf_cstr(&code));
	}
out:
	buf_release(&code);
	buf_release(&ref);
	arena_release(&ar);
	return o;
}

static enum outcome deliver(const struct store_hl7_ack *a, const struct hl7_ack_route *rt, char *why,
			    size_t cap)
{
	int64_t deadline = time_now_ms() + HL7_ACK_TIMEOUT_MS;
	struct buf frame = BUF_INIT(0), ans = BUF_INIT(0);
	struct err e = ERR_INIT;
	enum outcome o = RETRY;
	int fd = dial(rt, deadline, &e);

	if (fd < 0) {
		snprintf(why, cap, "%.190s", e.msg);
		goto out;
	}
	hl7_mllp_wrap(a->text, a->text_len, &frame);
	if (frame.failed) {
		snprintf(why, cap, "out of memory");
		goto out;
	}
	if (send_all(fd, frame.data, frame.len, deadline, &e) < 0 || read_answer(fd, deadline, &ans, &e) < 0) {
		snprintf(why, cap, "%.190s", e.msg);
		goto out;
	}
	o = judge(a, &ans, why, cap);
out:
	if (fd >= 0)
		close(fd);
	buf_release(&frame);
	buf_release(&ans);
	return o;
}

/* The due ACKs of one round, copied out of the reader's rows. */
struct due {
	struct store_hl7_ack v[ACKER_BATCH];
	size_t n;
};

static int collect(void *ctx, const struct store_hl7_ack *a)
{
	struct due *d = ctx;
	struct store_hl7_ack *c = &d->v[d->n];

	*c = *a;
	c->text = malloc(a->text_len + 1);
	if (!c->text)
		return -1;
	memcpy(c->text, a->text, a->text_len);
	c->text[a->text_len] = '\0';
	d->n++;
	return 0;
}

static int64_t backoff_ms(int attempts)
{
	int64_t d = HL7_ACK_RETRY_MIN_MS;

	for (int i = 1; i < attempts && d < HL7_ACK_RETRY_MAX_MS; i++)
		d *= 2;
	return d < HL7_ACK_RETRY_MAX_MS ? d : HL7_ACK_RETRY_MAX_MS;
}

/* One round; stops early (between ACKs) when *stop turns true. */
static int run_round(struct store *s, const struct hl7_ack_routes *routes, const atomic_bool *stop,
		     struct err *e)
{
	struct due d;
	int rc;

	d.n = 0;
	rc = store_hl7_ack_due(s, time_now_ms(), ACKER_BATCH, collect, &d, e);
	if (rc < 0 && !e->code)
		err_set(e, ERR_NOMEM, "out of memory");
	for (size_t i = 0; rc == 0 && i < d.n && !(stop && atomic_load(stop)); i++) {
		struct store_hl7_ack *a = &d.v[i];
		const struct hl7_ack_route *rt = hl7_ack_route_find(routes, a->sending_app, a->sending_fac);
		struct err ue = ERR_INIT;
		enum outcome o = RETRY;

		a->attempts++;
		if (!rt) {
			a->destination[0] = '\0';
			snprintf(a->last_error, sizeof(a->last_error),
				 "no --mllp-ack-to destination for sending application '%.60s' facility '%.60s'",
				 a->sending_app, a->sending_fac);
		} else {
			snprintf(a->destination, sizeof(a->destination), "%s:%s", rt->host, rt->port);
			o = deliver(a, rt, a->last_error, sizeof(a->last_error));
		}
		a->state = o == SENT ? STORE_HL7_ACK_SENT : o == REFUSED ? STORE_HL7_ACK_FAILED : STORE_HL7_ACK_WAITING;
		a->next_try_ms = o == RETRY ? time_now_ms() + backoff_ms(a->attempts) : a->next_try_ms;
		if (o == SENT)
			log_info("event=hl7_app_ack_sent id=%lld inbox=%lld code=%s to=%s attempts=%d", (long long)a->id,
				 (long long)a->inbox_id, a->code, a->destination, a->attempts);
		else
			log_warn("event=hl7_app_ack_%s id=%lld inbox=%lld code=%s to=%s attempts=%d reason=\"%s\"",
				 o == REFUSED ? "refused" : "retry", (long long)a->id, (long long)a->inbox_id, a->code,
				 a->destination[0] ? a->destination : "-", a->attempts, a->last_error);
		if (store_hl7_ack_update(s, a, &ue) < 0)
			log_error("event=hl7_app_ack_update_failed id=%lld detail=\"%s\"", (long long)a->id, ue.detail);
	}
	for (size_t i = 0; i < d.n; i++)
		store_hl7_ack_release(&d.v[i]);
	return rc < 0 ? -1 : (int)d.n;
}

int hl7_acker_run_once(struct store *s, const struct hl7_ack_routes *routes, struct err *e)
{
	return run_round(s, routes, NULL, e);
}

/* ---- the thread ---- */

static void *acker_main(void *arg)
{
	struct hl7_acker *k = arg;

	for (;;) {
		struct err e = ERR_INIT;
		int n;

		pthread_mutex_lock(&k->mu);
		k->kicked = false;
		if (atomic_load(&k->stop)) {
			pthread_mutex_unlock(&k->mu);
			break;
		}
		pthread_mutex_unlock(&k->mu);
		n = run_round(k->store, &k->routes, &k->stop, &e);
		if (n < 0)
			log_error("event=hl7_app_ack_list_failed detail=\"%s\"", e.detail);
		if (n == ACKER_BATCH)
			continue;
		pthread_mutex_lock(&k->mu);
		if (!k->kicked && !atomic_load(&k->stop)) {
			/* a retry comes due, or an ACK queued by another process
			 * (hl7 reprocess): looked for every second */
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += 1;
			pthread_cond_timedwait(&k->cv, &k->mu, &ts);
		}
		pthread_mutex_unlock(&k->mu);
	}
	return NULL;
}

int hl7_acker_start(struct store *s, const struct hl7_ack_routes *routes, struct hl7_acker **out,
		    struct err *e)
{
	struct hl7_acker *k = calloc(1, sizeof(*k));
	sigset_t block, old;
	int r;

	*out = NULL;
	if (!k)
		return err_set(e, ERR_NOMEM, "out of memory");
	k->store = s;
	k->routes = *routes;
	atomic_init(&k->stop, false);
	pthread_mutex_init(&k->mu, NULL);
	pthread_cond_init(&k->cv, NULL);
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	r = pthread_create(&k->thread, NULL, acker_main, k);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r != 0) {
		pthread_mutex_destroy(&k->mu);
		pthread_cond_destroy(&k->cv);
		free(k);
		return err_set(e, ERR_INTERNAL, "cannot start the HL7 application ACK sender");
	}
	log_info("event=hl7_app_ack_start destinations=%zu", k->routes.n);
	*out = k;
	return 0;
}

void hl7_acker_wake(struct hl7_acker *k)
{
	if (!k)
		return;
	pthread_mutex_lock(&k->mu);
	k->kicked = true;
	pthread_cond_signal(&k->cv);
	pthread_mutex_unlock(&k->mu);
}

void hl7_acker_stop(struct hl7_acker *k)
{
	if (!k)
		return;
	pthread_mutex_lock(&k->mu);
	atomic_store(&k->stop, true);
	pthread_cond_signal(&k->cv);
	pthread_mutex_unlock(&k->mu);
	pthread_join(k->thread, NULL);
	pthread_mutex_destroy(&k->mu);
	pthread_cond_destroy(&k->cv);
	free(k);
}
