/* hl7_mllp.c - the load of bench/hl7-mllp: N senders over loopback, each
 * sending an ADT message and waiting for its ACK before the next (as MLLP
 * senders do), for SECONDS.  Prints messages/s acknowledged AA (each one
 * durably in the inbox when its ACK left) and the ACK latency percentiles.
 *
 *   hl7_mllp PORT SENDERS SECONDS */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int port;
static double seconds;
static volatile int stop_flag;

struct sender {
	int n;
	pthread_t t;
	double *lat;
	size_t nlat, cap, bad;
};

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *run(void *arg)
{
	struct sender *s = arg;
	struct sockaddr_in sa;
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	char msg[1024], rb[4096];
	size_t i = 0;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror("connect");
		return NULL;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	while (!stop_flag) {
		int n = snprintf(msg, sizeof(msg),
				 "\x0bMSH|^~\\&|BENCH|GENHOSP|CK|GENHOSP|20240301083000||ADT^A08^ADT_A01|B%d-%zu|P|2.5.1\r"
				 "EVN|A08|20240301083000\r"
				 "PID|1||BM%d-%zu^^^GENHOSP^MR||BENCH^PATIENT^Q||19700101|M|||1 MAIN ST^^TOWN^ST^12345||"
				 "^PRN^PH^^1^555^5551234\r"
				 "PV1|1|I|4W^401^B||||1234^WELBY^MARCUS|||MED|||||||||V%d-%zu^^^GENHOSP^VN\r\x1c\r",
				 s->n, i, s->n, i, s->n, i);
		double t0 = now();
		size_t got = 0;
		if (send(fd, msg, (size_t)n, MSG_NOSIGNAL) != n)
			break;
		for (;;) {
			ssize_t r = recv(fd, rb + got, sizeof(rb) - got, 0);
			if (r <= 0)
				goto out;
			got += (size_t)r;
			if (memchr(rb, 0x1c, got))
				break;
		}
		if (!memmem(rb, got, "MSA|AA|", 7))
			s->bad++;
		if (s->nlat == s->cap) {
			s->cap = s->cap ? s->cap * 2 : 4096;
			s->lat = realloc(s->lat, s->cap * sizeof(double));
		}
		s->lat[s->nlat++] = now() - t0;
		i++;
	}
out:
	close(fd);
	return NULL;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	int n;
	struct sender *s;
	double t0, t;
	size_t total = 0, bad = 0, k = 0;
	double *all;

	if (argc != 4) {
		fprintf(stderr, "usage: hl7_mllp PORT SENDERS SECONDS\n");
		return 2;
	}
	port = atoi(argv[1]);
	n = atoi(argv[2]);
	seconds = atof(argv[3]);
	s = calloc((size_t)n, sizeof(*s));
	t0 = now();
	for (int i = 0; i < n; i++) {
		s[i].n = i;
		pthread_create(&s[i].t, NULL, run, &s[i]);
	}
	usleep((useconds_t)(seconds * 1e6));
	stop_flag = 1;
	for (int i = 0; i < n; i++)
		pthread_join(s[i].t, NULL);
	t = now() - t0;
	for (int i = 0; i < n; i++) {
		total += s[i].nlat;
		bad += s[i].bad;
	}
	all = malloc((total ? total : 1) * sizeof(double));
	for (int i = 0; i < n; i++) {
		memcpy(all + k, s[i].lat, s[i].nlat * sizeof(double));
		k += s[i].nlat;
		free(s[i].lat);
	}
	qsort(all, total, sizeof(double), cmp);
	printf("senders %d: %.0f messages/s stored and ACKed (%zu in %.1f s, %zu not AA); ACK latency p50 %.2f ms, "
	       "p99 %.2f ms, max %.2f ms\n",
	       n, (double)total / t, total, t, bad, total ? all[total / 2] * 1e3 : 0,
	       total ? all[(size_t)((double)total * 0.99)] * 1e3 : 0, total ? all[total - 1] * 1e3 : 0);
	free(all);
	free(s);
	return 0;
}
