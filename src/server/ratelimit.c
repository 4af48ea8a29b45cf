/* ratelimit.c - per-address token buckets in a fixed table (see
 * ratelimit_int.h). */
#include <math.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/ratelimit_int.h"
#include "base/banned.h"

struct rl_slot {
	char key[RATELIMIT_KEY_MAX];   /* "" when free */
	double tokens;
	int64_t last_ms;               /* last refill, and last seen */
};

struct ratelimit {
	double rate, burst;
	size_t sets;
	unsigned char hkey[crypto_shorthash_KEYBYTES];
	pthread_mutex_t mu;
	struct rl_slot *slot;          /* sets * RATELIMIT_WAYS */
};

struct ratelimit *ratelimit_new(double rate, double burst, size_t slots)
{
	struct ratelimit *rl = calloc(1, sizeof(*rl));

	if (!rl)
		return NULL;
	rl->rate = rate > 0 ? rate : 1;
	rl->burst = burst >= 1 ? burst : 1;
	rl->sets = (slots + RATELIMIT_WAYS - 1) / RATELIMIT_WAYS;
	if (rl->sets == 0)
		rl->sets = 1;
	rl->slot = calloc(rl->sets * RATELIMIT_WAYS, sizeof(*rl->slot));
	if (!rl->slot) {
		free(rl);
		return NULL;
	}
	crypto_shorthash_keygen(rl->hkey);
	pthread_mutex_init(&rl->mu, NULL);
	return rl;
}

void ratelimit_free(struct ratelimit *rl)
{
	if (!rl)
		return;
	pthread_mutex_destroy(&rl->mu);
	free(rl->slot);
	free(rl);
}

int ratelimit_take(struct ratelimit *rl, const char *key, int64_t now_ms)
{
	unsigned char h[crypto_shorthash_BYTES];
	uint64_t hv;
	struct rl_slot *set, *s = NULL, *oldest;
	char k[RATELIMIT_KEY_MAX];
	int wait = 0;

	snprintf(k, sizeof(k), "%s", key && *key ? key : "-");
	crypto_shorthash(h, (const unsigned char *)k, strlen(k), rl->hkey);
	memcpy(&hv, h, sizeof(hv));
	pthread_mutex_lock(&rl->mu);
	set = &rl->slot[(hv % rl->sets) * RATELIMIT_WAYS];
	oldest = &set[0];
	for (size_t i = 0; i < RATELIMIT_WAYS; i++) {
		if (set[i].key[0] && strcmp(set[i].key, k) == 0) {
			s = &set[i];
			break;
		}
		if (!set[i].key[0] || (oldest->key[0] && set[i].last_ms < oldest->last_ms))
			oldest = &set[i];
	}
	if (!s) {
		s = oldest;
		memcpy(s->key, k, sizeof(s->key));
		s->tokens = rl->burst;
		s->last_ms = now_ms;
	}
	if (now_ms > s->last_ms) {
		s->tokens += (double)(now_ms - s->last_ms) * rl->rate / 1000.0;
		if (s->tokens > rl->burst)
			s->tokens = rl->burst;
		s->last_ms = now_ms;
	}
	if (s->tokens >= 1.0) {
		s->tokens -= 1.0;
	} else {
		wait = (int)ceil((1.0 - s->tokens) / rl->rate);
		if (wait < 1)
			wait = 1;
	}
	pthread_mutex_unlock(&rl->mu);
	return wait;
}
