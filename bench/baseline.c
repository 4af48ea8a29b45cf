/* baseline.c - the floor that bench/read measures chartkeep against.
 *
 * A minimal HTTP server that answers GET /Patient/{id} with the JSON that a
 * chartkeep database stores for that Patient, and 404 to everything else.
 * It does only what a read cannot avoid: parse the request line, one indexed
 * SQLite lookup, one copy of the JSON into the response.  No authentication,
 * no audit, no FHIR processing, no logging per request.
 *
 * To keep the comparison honest it uses the same libmicrohttpd threading
 * model as chartkeep's server (an internal epoll thread pool, one thread per
 * CPU) and the same connection limits, and each pool thread has its own
 * read-only SQLite connection with the statement prepared once.
 *
 *   baseline --db PATH [--listen 127.0.0.1:PORT] [--threads N]
 *
 * Port 0 picks a free port; the address is logged on stderr as
 * "event=listening url=http://127.0.0.1:NNNN".  SIGINT or SIGTERM stops it. */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define PATIENT_PREFIX "/Patient/"
#define MAX_ID 64 /* FHIR ids are at most 64 characters */
#define CONTENT_TYPE "application/fhir+json; charset=utf-8"

static const char read_sql[] =
	"SELECT v.json FROM resource r JOIN version v ON v.rkey = r.rkey AND v.vid = r.vid "
	"WHERE r.type = 'Patient' AND r.id = ?1 AND r.deleted = 0";

static const char not_found[] = "{\"error\":\"not found\"}";

/* One SQLite connection per pool thread.  libmicrohttpd owns the threads, so
 * a thread opens its reader on first use and the key's destructor closes it
 * when the thread exits (MHD_stop_daemon joins the pool). */
struct reader {
	sqlite3 *db;
	sqlite3_stmt *st;
};

static pthread_key_t reader_key;
static const char *db_path;

static void reader_free(void *p)
{
	struct reader *r = p;

	if (!r)
		return;
	sqlite3_finalize(r->st);
	sqlite3_close(r->db);
	free(r);
}

/* The calling thread's reader, opened on first use; NULL if it cannot be. */
static struct reader *reader_get(void)
{
	struct reader *r = pthread_getspecific(reader_key);

	if (r)
		return r;
	r = calloc(1, sizeof(*r));
	if (!r)
		goto fail;
	if (sqlite3_open_v2(db_path, &r->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) !=
	    SQLITE_OK)
		goto fail;
	sqlite3_busy_timeout(r->db, 10000);
	if (sqlite3_prepare_v3(r->db, read_sql, -1, SQLITE_PREPARE_PERSISTENT, &r->st, NULL) !=
	    SQLITE_OK)
		goto fail;
	if (pthread_setspecific(reader_key, r) != 0)
		goto fail;
	return r;
fail:
	fprintf(stderr, "baseline: cannot open reader on %s: %s\n", db_path,
		r && r->db ? sqlite3_errmsg(r->db) : "out of memory");
	reader_free(r);
	return NULL;
}

static enum MHD_Result queue(struct MHD_Connection *conn, unsigned status, const void *body,
			     size_t len, enum MHD_ResponseMemoryMode mode)
{
	struct MHD_Response *resp;
	enum MHD_Result ok;

	/* The API takes a non-const pointer; with PERSISTENT and MUST_COPY it
	 * never writes through it. */
	resp = MHD_create_response_from_buffer(len, (void *)body, mode);
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, CONTENT_TYPE);
	ok = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ok;
}

/* The id of "/Patient/{id}", or NULL if url is anything else. */
static const char *patient_id(const char *url, size_t *len)
{
	const char *id;

	if (strncmp(url, PATIENT_PREFIX, sizeof(PATIENT_PREFIX) - 1) != 0)
		return NULL;
	id = url + sizeof(PATIENT_PREFIX) - 1;
	*len = strlen(id);
	if (*len == 0 || *len > MAX_ID || strchr(id, '/'))
		return NULL;
	return id;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version,
				  const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	static int first_call;
	struct reader *r;
	const char *id;
	size_t id_len = 0;
	enum MHD_Result ok;

	(void)cls;
	(void)version;
	(void)upload_data;
	/* The usual libmicrohttpd pattern (chartkeep does the same): the first
	 * call only sees the headers; answer on the second. */
	if (!*con_cls) {
		*con_cls = &first_call;
		return MHD_YES;
	}
	*upload_data_size = 0;
	id = patient_id(url, &id_len);
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 || !id)
		return queue(conn, MHD_HTTP_NOT_FOUND, not_found, sizeof(not_found) - 1,
			     MHD_RESPMEM_PERSISTENT);
	r = reader_get();
	if (!r)
		return MHD_NO;
	sqlite3_bind_text(r->st, 1, id, (int)id_len, SQLITE_STATIC);
	if (sqlite3_step(r->st) == SQLITE_ROW && sqlite3_column_type(r->st, 0) == SQLITE_TEXT) {
		const void *json = sqlite3_column_text(r->st, 0);
		size_t len = (size_t)sqlite3_column_bytes(r->st, 0);
		/* MUST_COPY: the row is only valid until the reset below. */
		ok = queue(conn, MHD_HTTP_OK, json, len, MHD_RESPMEM_MUST_COPY);
	} else {
		ok = queue(conn, MHD_HTTP_NOT_FOUND, not_found, sizeof(not_found) - 1,
			   MHD_RESPMEM_PERSISTENT);
	}
	sqlite3_reset(r->st);
	sqlite3_clear_bindings(r->st);
	return ok;
}

static int parse_listen(const char *listen, struct sockaddr_in *sa)
{
	char host[64];
	const char *colon = strrchr(listen, ':');
	char *end;
	long port;

	memset(sa, 0, sizeof(*sa));
	if (!colon || (size_t)(colon - listen) >= sizeof(host) || colon[1] == '\0')
		return -1;
	snprintf(host, sizeof(host), "%.*s", (int)(colon - listen), listen);
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (*end || errno || port < 0 || port > 65535)
		return -1;
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &sa->sin_addr) != 1)
		return -1;
	return 0;
}

static int usage(FILE *f)
{
	fprintf(f, "usage: baseline --db PATH [--listen 127.0.0.1:PORT] [--threads N]\n");
	return f == stdout ? 0 : 2;
}

int main(int argc, char **argv)
{
	const char *listen = "127.0.0.1:0";
	struct sockaddr_in sa;
	struct MHD_Daemon *d = NULL;
	const union MHD_DaemonInfo *info;
	sigset_t sigs;
	unsigned threads = 0;
	int sig = 0, rc = 1;
	char addr[INET_ADDRSTRLEN];

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0)
			return usage(stdout);
		if (i + 1 == argc)
			return usage(stderr);
		if (strcmp(argv[i], "--db") == 0)
			db_path = argv[++i];
		else if (strcmp(argv[i], "--listen") == 0)
			listen = argv[++i];
		else if (strcmp(argv[i], "--threads") == 0)
			threads = (unsigned)strtoul(argv[++i], NULL, 10);
		else
			return usage(stderr);
	}
	if (!db_path || access(db_path, R_OK) != 0) {
		fprintf(stderr, "baseline: --db must name a readable chartkeep database\n");
		return 2;
	}
	if (parse_listen(listen, &sa) < 0) {
		fprintf(stderr, "baseline: --listen must be IPV4:PORT, e.g. 127.0.0.1:0\n");
		return 2;
	}
	/* Same pool size rule as chartkeep: one thread per CPU, at least two. */
	if (threads == 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		threads = n > 0 ? (unsigned)n : 2;
	}
	if (threads < 2)
		threads = 2;
	if (pthread_key_create(&reader_key, reader_free) != 0) {
		fprintf(stderr, "baseline: pthread_key_create failed\n");
		return 1;
	}

	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG, 0,
			     NULL, NULL, on_request, NULL,
			     MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
			     MHD_OPTION_THREAD_POOL_SIZE, threads,
			     MHD_OPTION_CONNECTION_TIMEOUT, 60u,
			     MHD_OPTION_CONNECTION_LIMIT, 1000u,
			     MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)32 * 1024,
			     MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u,
			     MHD_OPTION_END);
	if (!d) {
		fprintf(stderr, "baseline: cannot listen on %s\n", listen);
		goto out;
	}
	info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	inet_ntop(AF_INET, &sa.sin_addr, addr, sizeof(addr));
	fprintf(stderr, "event=listening url=http://%s:%u threads=%u\n", addr,
		info ? info->port : ntohs(sa.sin_port), threads);

	while (sigwait(&sigs, &sig) != 0)
		;
	fprintf(stderr, "event=stopped signal=%d\n", sig);
	rc = 0;
out:
	if (d)
		MHD_stop_daemon(d);
	pthread_key_delete(reader_key);
	return rc;
}
