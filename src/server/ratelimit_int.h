/* ratelimit_int.h - a per-address token bucket with bounded memory.
 *
 * Each key (a client address) has a bucket of `burst` tokens that refills
 * at `rate` tokens a second; a request takes one or is refused.  The table
 * has a fixed number of slots in sets of RATELIMIT_WAYS: a key lives in the
 * set its keyed hash (SipHash, a random key per table, so addresses cannot
 * be chosen to collide) points at, and a new key takes the set's least
 * recently seen slot.  An address pushed out that way comes back with a full
 * bucket: the price of bounded memory, and small, since pushing it out takes
 * RATELIMIT_WAYS busier addresses in the same set.  Thread-safe (one mutex:
 * a take is a few dozen instructions). */
#ifndef CK_RATELIMIT_INT_H
#define CK_RATELIMIT_INT_H

#include <stddef.h>
#include <stdint.h>

#define RATELIMIT_WAYS 8
#define RATELIMIT_KEY_MAX 64

struct ratelimit;

/* rate: tokens a second (> 0); burst: the bucket's size (>= 1); slots:
 * rounded up to a multiple of RATELIMIT_WAYS.  NULL when out of memory. */
struct ratelimit *ratelimit_new(double rate, double burst, size_t slots);
void ratelimit_free(struct ratelimit *rl);
/* Take a token for key at now_ms: 0 when there was one, else the seconds
 * (>= 1) until there will be. */
int ratelimit_take(struct ratelimit *rl, const char *key, int64_t now_ms);

#endif
