/* id.h - resource ids and random tokens. */
#ifndef CK_ID_H
#define CK_ID_H

#include <stdbool.h>
#include <stddef.h>

#define ID_MAX 64      /* FHIR: [A-Za-z0-9\-\.]{1,64} */
#define ID_UUID_LEN 36

/* A new random (version 4) UUID in lower case, as a server-assigned id. */
void id_new(char out[ID_UUID_LEN + 1]);
/* Does s[0..n) match the FHIR id type? */
bool id_valid(const char *s, size_t n);

#endif
