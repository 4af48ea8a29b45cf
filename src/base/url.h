/* url.h - percent-encoding for building links. */
#ifndef CK_URL_H
#define CK_URL_H

#include <stddef.h>

#include "buf.h"

/* The value of one hexadecimal digit, or -1. */
int url_hexval(char c);
/* Append s percent-encoded as a query component (RFC 3986 unreserved kept). */
void url_encode(struct buf *out, const char *s);
/* Decode %XX (and '+' as space when plus is true) of s[0..n) into out.
 * Returns -1 on a malformed escape. */
int url_decode(struct buf *out, const char *s, size_t n, int plus);

#endif
