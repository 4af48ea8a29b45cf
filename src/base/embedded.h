/* embedded.h - files compiled into the binary (SQL schema, web UI).
 *
 * The table is generated at build time by tools/embed.c from the files the
 * Makefile lists in EMBED; names are the repository paths ("src/store/...").  */
#ifndef CK_EMBEDDED_H
#define CK_EMBEDDED_H

#include <stddef.h>

struct embedded_file {
	const char *name;
	const unsigned char *data; /* NUL-terminated, len excludes the NUL */
	size_t len;
};

extern const struct embedded_file embedded_files[];
extern const size_t embedded_count;

/* The file named `name`, or NULL. */
const struct embedded_file *embedded_find(const char *name);

#endif
