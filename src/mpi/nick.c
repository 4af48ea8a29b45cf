/* nick.c - given-name variants (data/mpi/nicknames.csv, embedded): one
 * line per name, "canonical,variant,...".  Loaded once into a table of
 * (name, group) sorted by name; a name may belong to several groups
 * ("chris": christian, christina, christopher). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "base/embedded.h"
#include "mpi/mpi_int.h"
#include "base/banned.h"

#define NICK_FILE "data/mpi/nicknames.csv"

struct nick {
	char name[24];
	uint16_t group;
};

static struct nick *nicks;
static size_t nnicks;
static char (*canon)[24];      /* the group's canonical name */
static pthread_once_t once = PTHREAD_ONCE_INIT;

static int nick_cmp(const void *a, const void *b)
{
	const struct nick *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c ? c : (int)x->group - (int)y->group;
}

static void load(void)
{
	const struct embedded_file *f = embedded_find(NICK_FILE);
	const char *p, *end;
	size_t cap = 0, ngroups = 0, gcap = 0;
	uint16_t group = 0;

	if (!f)
		return;
	p = (const char *)f->data;
	end = p + f->len;
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *q;
		bool first = true;
		if (!eol)
			eol = end;
		if (*p == '#' || eol == p) {
			p = eol + 1;
			continue;
		}
		group = (uint16_t)ngroups++;
		for (q = p; q < eol;) {
			const char *c = memchr(q, ',', (size_t)(eol - q));
			size_t n;
			if (!c)
				c = eol;
			n = (size_t)(c - q);
			if (n && n < sizeof(nicks[0].name)) {
				if (nnicks == cap) {
					size_t nc = cap ? cap * 2 : 512;
					struct nick *nv = realloc(nicks, nc * sizeof(*nv));
					if (!nv)
						return;
					nicks = nv;
					cap = nc;
				}
				memcpy(nicks[nnicks].name, q, n);
				nicks[nnicks].name[n] = '\0';
				nicks[nnicks].group = group;
				nnicks++;
				if (first) {
					if (group >= gcap) {
						size_t nc = gcap ? gcap * 2 : 256;
						char (*ng)[24] = realloc(canon, nc * sizeof(*ng));
						if (!ng)
							return;
						canon = ng;
						gcap = nc;
					}
					memcpy(canon[group], q, n);
					canon[group][n] = '\0';
				}
			}
			first = false;
			q = c + 1;
		}
		p = eol + 1;
	}
	qsort(nicks, nnicks, sizeof(*nicks), nick_cmp);
}

/* The first entry for name, and how many there are. */
static const struct nick *find(const char *name, size_t *count)
{
	size_t lo = 0, hi, n = 0;

	pthread_once(&once, load);
	hi = nnicks;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (strcmp(nicks[mid].name, name) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	while (lo + n < nnicks && strcmp(nicks[lo + n].name, name) == 0)
		n++;
	*count = n;
	return n ? &nicks[lo] : NULL;
}

const char *mpi_nick_canon(const char *name)
{
	size_t n;
	const struct nick *k = find(name, &n);

	return k ? canon[k->group] : name;
}

bool mpi_nick_same(const char *a, const char *b)
{
	size_t na, nb;
	const struct nick *ka, *kb;

	if (strcmp(a, b) == 0)
		return true;
	ka = find(a, &na);
	kb = find(b, &nb);
	for (size_t i = 0; i < na; i++)
		for (size_t j = 0; j < nb; j++)
			if (ka[i].group == kb[j].group)
				return true;
	return false;
}
