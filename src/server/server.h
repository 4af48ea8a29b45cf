/* server.h - HTTP on libmicrohttpd: routing, authentication, limits.
 *
 * The server parses and authenticates; every routed request then passes the
 * policy decision point and the audit hook (src/privacy/) in one place, and
 * the FHIR module does the work.  Reads are answered on the HTTP threads;
 * writes are handed to the store's group-commit writer and the connection
 * is suspended until its commit is durable, so no thread waits on fsync. */
#ifndef CK_SERVER_H
#define CK_SERVER_H

#include <stddef.h>

#include "base/err.h"
#include "store/store.h"

struct server_config {
	const char *listen;        /* "127.0.0.1:8080" */
	const char *base_url;      /* public base, e.g. "https://him.example.org/fhir"; NULL: from Host */
	size_t max_body;           /* bytes; larger bodies get 413 */
	int max_depth;             /* JSON nesting */
	size_t max_bundle_entries;
	unsigned threads;          /* HTTP worker threads; 0: one per CPU */
	unsigned timeout_s;        /* idle connection timeout; also the most a request's
				      headers may take to arrive (slowloris) */
	unsigned max_connections;
	unsigned per_ip_connections; /* open connections per client address; 0: no limit */
	size_t max_header_bytes;   /* per-connection memory for the request line and headers */
	const struct server_tls *tls; /* HTTPS with this certificate and key; NULL: HTTP */
	const char *export_dir;    /* bulk $export files; NULL: <database>.exports */
	unsigned lockout_attempts; /* wrong passwords in a row that lock a user; 0: never */
	unsigned lockout_minutes;  /* for how long */
	unsigned token_rate;       /* /auth/ requests a second per address (bursts of twice
				      that); 0: no limit */
	bool no_match;             /* no incremental patient matching (mpi/mpi.h) */
};

#define SERVER_DEFAULT_LISTEN "127.0.0.1:8080"
#define SERVER_DEFAULT_MAX_BODY (16u * 1024 * 1024)
#define SERVER_DEFAULT_TOKEN_RATE 10
#define SERVER_AUTH_LIMIT_SLOTS 4096  /* addresses the rate limit remembers */
#define SERVER_DEFAULT_MAX_CONNECTIONS 1000
#define SERVER_DEFAULT_PER_IP_CONNECTIONS 64
#define SERVER_DEFAULT_MAX_HEADER_BYTES (32u * 1024)
#define SERVER_MIN_BODY_RATE 1024     /* bytes/s a body must average after --timeout s */

/* A certificate chain and private key for HTTPS, as PEM text read from files.
 * The key is wiped when released. */
struct server_tls {
	char *cert_pem;
	char *key_pem;
};

/* Read cert_file and key_file and check that libmicrohttpd (GnuTLS) accepts
 * them as a pair.  0, or -1 with e set (ERR_NOT_SUPPORTED: no TLS in this
 * libmicrohttpd; ERR_INVALID: a file unreadable or not PEM, naming the file;
 * or the pair refused, naming both).  Nothing of the key ever reaches a
 * message.  Release t with server_tls_release() in either case. */
int server_tls_load(struct server_tls *t, const char *cert_file, const char *key_file,
		    struct err *e);
void server_tls_release(struct server_tls *t);

void server_config_defaults(struct server_config *c);

/* Serve until SIGINT or SIGTERM, then stop accepting, answer new requests on
 * open connections with 503, let the requests in flight finish (a write
 * only after its commit), and return 0.  -1 with e set if the server cannot
 * start (address in use, bad --listen). */
int server_run(struct store *s, const struct server_config *cfg, struct err *e);

#endif
