/* policy.c - the policy decision point (policy.h): the role table, its site
 * file, the decision itself, break-the-glass grants; and the audit hook.
 *
 * The table is compiled from rules (policy_table.c's defaults, then the
 * site file) into one array: perm[role][type] = the allowed actions as a
 * bitmask.  A decision is then two small index lookups (the role among 11
 * names, the type by binary search in the generated FHIR model) and a bit
 * test, plus a scan of the token's scopes when it has any: no allocation,
 * no lock.  A site file is compiled into a scratch table first and copied
 * over the live one only when every line is valid, so a bad file changes
 * nothing.  The live table is written only by privacy_policy_load/reset,
 * which run before the server starts its threads (see policy.h). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "fhir/model.h"
#include "privacy/policy.h"
#include "privacy/policy_int.h"
#include "base/banned.h"

#define ACT(a) ((uint16_t)(1u << (a)))
#define A_VIEW (ACT(PA_READ) | ACT(PA_VREAD) | ACT(PA_SEARCH) | ACT(PA_HISTORY))
#define A_WRITE (ACT(PA_CREATE) | ACT(PA_UPDATE) | ACT(PA_PATCH))
#define A_CHANGE (A_WRITE | ACT(PA_DELETE))
#define A_ALL (A_VIEW | A_CHANGE | ACT(PA_OPERATION))
/* what applies to the system level (type NULL) */
#define A_SYSTEM (ACT(PA_SEARCH) | ACT(PA_HISTORY) | ACT(PA_OPERATION))

#define TYPE_WORDS ((POLICY_TYPES_MAX + 1 + 63) / 64)
#define GROUPS_MAX 32

static const char generic_denial[] = "you are not allowed to do this";

/* ---- types and roles as indexes ---- */

static int cmp_n(const char *name, const char *s, size_t n)
{
	int c = strncmp(name, s, n);

	if (c != 0)
		return c;
	return name[n] != '\0';
}

int policy_type_index_n(const char *name, size_t n)
{
	size_t lo = 0, hi = fhir_n_resource_types;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = cmp_n(fhir_types[fhir_resource_types[mid]].name, name, n);

		if (c == 0)
			return (int)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

int policy_type_index(const char *name)
{
	return policy_type_index_n(name, strlen(name));
}

const char *policy_type_name(int idx)
{
	return fhir_types[fhir_resource_types[idx]].name;
}

size_t policy_n_types(void)
{
	return fhir_n_resource_types;
}

int policy_role_index(const char *role)
{
	for (int i = 0; privacy_roles[i]; i++)
		if (strcmp(privacy_roles[i], role) == 0)
			return i;
	return -1;
}

static int role_index_n(const char *role, size_t n)
{
	for (int i = 0; privacy_roles[i]; i++)
		if (strlen(privacy_roles[i]) == n && strncmp(privacy_roles[i], role, n) == 0)
			return i;
	return -1;
}

size_t policy_n_roles(void)
{
	size_t n = 0;

	while (privacy_roles[n])
		n++;
	return n;
}

/* ---- actions ---- */

static const char *const action_names[] = {
	[PA_READ] = "read", [PA_VREAD] = "vread", [PA_SEARCH] = "search",
	[PA_HISTORY] = "history", [PA_CREATE] = "create", [PA_UPDATE] = "update",
	[PA_PATCH] = "patch", [PA_DELETE] = "delete", [PA_BATCH] = "batch",
	[PA_OPERATION] = "operation", [PA_CAPABILITIES] = "capabilities",
};

const char *privacy_action_name(int action)
{
	if (action < PA_READ || action > PA_CAPABILITIES)
		return "?";
	return action_names[action];
}

/* The words an ACTIONS list takes. */
static const struct {
	const char *name;
	uint16_t mask;
} action_words[] = {
	{ "read", ACT(PA_READ) }, { "vread", ACT(PA_VREAD) }, { "search", ACT(PA_SEARCH) },
	{ "history", ACT(PA_HISTORY) }, { "create", ACT(PA_CREATE) }, { "update", ACT(PA_UPDATE) },
	{ "patch", ACT(PA_PATCH) }, { "delete", ACT(PA_DELETE) },
	{ "operation", ACT(PA_OPERATION) }, { "view", A_VIEW }, { "write", A_WRITE },
	{ "all", A_ALL },
};

/* ---- the compiler: rules -> table ---- */

struct compiler {
	const char *name;       /* file name for messages */
	int line;
	struct err *e;
	size_t ntypes, nroles;
	size_t system;          /* column of the system level */
	int audit_event;        /* type index of AuditEvent */
	uint64_t groups[GROUPS_MAX][TYPE_WORDS];
	uint16_t allow[POLICY_ROLES_MAX][POLICY_TYPES_MAX + 1];
	uint16_t deny[POLICY_ROLES_MAX][POLICY_TYPES_MAX + 1];
	uint8_t conf[POLICY_ROLES_MAX];
	uint16_t cats[POLICY_ROLES_MAX];
	uint32_t btg_roles;
	int btg_minutes;
	bool defaults_seen, defaults_off;
};

/* A comma-separated list, one item at a time: *p moves past the item. */
static bool next_item(const char **p, const char **item, size_t *n)
{
	const char *s = *p, *c;

	if (!*s)
		return false;
	c = strchr(s, ',');
	*item = s;
	*n = c ? (size_t)(c - s) : strlen(s);
	*p = c ? c + 1 : s + *n;
	return true;
}

static bool span_is(const char *s, size_t n, const char *lit)
{
	return strlen(lit) == n && strncmp(s, lit, n) == 0;
}

static int fail(struct compiler *c, const char *fmt, const char *item, size_t n)
{
	char what[160];

	snprintf(what, sizeof(what), fmt, (int)(n > 80 ? 80 : n), item);
	return err_set(c->e, ERR_INVALID, "%s:%d: %s", c->name, c->line, what);
}

/* An empty item (",," or a trailing comma) is a mistake worth naming. */
static int check_list(struct compiler *c, const char *list, const char *what)
{
	size_t n = strlen(list);

	if (n == 0 || list[0] == ',' || list[n - 1] == ',' || strstr(list, ",,"))
		return fail(c, what, list, n);
	return 0;
}

static int parse_roles(struct compiler *c, const char *list, uint32_t *out)
{
	const char *item;
	size_t n;

	*out = 0;
	if (check_list(c, list, "empty item in the role list '%.*s'") < 0)
		return -1;
	while (next_item(&list, &item, &n)) {
		int r;

		if (span_is(item, n, "*")) {
			*out |= (1u << c->nroles) - 1;
			continue;
		}
		r = role_index_n(item, n);
		if (r < 0)
			return fail(c, "unknown role '%.*s'", item, n);
		*out |= 1u << r;
	}
	return 0;
}

static int parse_actions(struct compiler *c, const char *list, uint16_t *out)
{
	const char *item;
	size_t n;

	*out = 0;
	if (check_list(c, list, "empty item in the action list '%.*s'") < 0)
		return -1;
	while (next_item(&list, &item, &n)) {
		size_t i;

		for (i = 0; i < ARRAY_SIZE(action_words); i++)
			if (span_is(item, n, action_words[i].name))
				break;
		if (i < ARRAY_SIZE(action_words)) {
			*out |= action_words[i].mask;
			continue;
		}
		if (span_is(item, n, "batch") || span_is(item, n, "capabilities"))
			return fail(c, "'%.*s' is always allowed (each entry of a batch is decided on "
				       "its own) and cannot be named", item, n);
		return fail(c, "unknown action '%.*s' (read, vread, search, history, create, update, "
			       "patch, delete, operation, view, write, all)", item, n);
	}
	return 0;
}

static int group_index_n(const char *s, size_t n)
{
	for (size_t g = 0; g < policy_n_groups; g++)
		if (span_is(s, n, policy_groups[g].name))
			return (int)g;
	return -1;
}

static void set_bit(uint64_t *m, size_t i)
{
	m[i / 64] |= (uint64_t)1 << (i % 64);
}

static bool has_bit(const uint64_t *m, size_t i)
{
	return (m[i / 64] >> (i % 64)) & 1;
}

/* targets -> a set of columns; *audit_named: AuditEvent was named itself. */
static int parse_targets(struct compiler *c, const char *list, uint64_t out[TYPE_WORDS],
			 bool *audit_named)
{
	const char *item;
	size_t n;

	memset(out, 0, TYPE_WORDS * sizeof(out[0]));
	*audit_named = false;
	if (check_list(c, list, "empty item in the target list '%.*s'") < 0)
		return -1;
	while (next_item(&list, &item, &n)) {
		int g, t;

		if (span_is(item, n, "*")) {
			for (size_t i = 0; i < c->ntypes; i++)
				set_bit(out, i);
			continue;
		}
		if (span_is(item, n, "system")) {
			set_bit(out, c->system);
			continue;
		}
		g = group_index_n(item, n);
		if (g >= 0) {
			for (size_t w = 0; w < TYPE_WORDS; w++)
				out[w] |= c->groups[g][w];
			continue;
		}
		t = policy_type_index_n(item, n);
		if (t < 0)
			return fail(c, "unknown resource type or group '%.*s'", item, n);
		if (t == c->audit_event)
			*audit_named = true;
		set_bit(out, (size_t)t);
	}
	return 0;
}

static int apply_rule(struct compiler *c, bool allow, const char *roles, const char *actions,
		      const char *targets)
{
	uint64_t cols[TYPE_WORDS];
	uint32_t rmask;
	uint16_t amask;
	bool audit_named;

	if (parse_roles(c, roles, &rmask) < 0 || parse_actions(c, actions, &amask) < 0 ||
	    parse_targets(c, targets, cols, &audit_named) < 0)
		return -1;
	/* a wildcard or the "audit" group may include AuditEvent (its writes are
	 * masked when the table is finished); naming it to grant a write is a
	 * mistake the site should hear about */
	if (allow && audit_named && (amask & A_CHANGE))
		return err_set(c->e, ERR_INVALID,
			       "%s:%d: AuditEvent is written by the server only: create, update, "
			       "patch and delete cannot be allowed on it", c->name, c->line);
	for (size_t r = 0; r < c->nroles; r++) {
		if (!(rmask & (1u << r)))
			continue;
		for (size_t t = 0; t <= c->system; t++) {
			if (!has_bit(cols, t))
				continue;
			if (allow)
				c->allow[r][t] |= amask;
			else
				c->deny[r][t] |= amask;
		}
	}
	return 0;
}

static int apply_clearance(struct compiler *c, const char *roles, const char *level,
			   const char *cats)
{
	uint32_t rmask;
	uint16_t cmask = 0;
	int conf;

	if (parse_roles(c, roles, &rmask) < 0)
		return -1;
	conf = policy_conf_parse(level, strlen(level));
	if (!conf)
		return fail(c, "unknown confidentiality level '%.*s' (U, L, M, N, R or V)", level,
			    strlen(level));
	if (!cats || strcmp(cats, "none") == 0) {
		cmask = 0;
	} else if (strcmp(cats, "all") == 0) {
		cmask = PCAT__ALL;
	} else {
		const char *item;
		size_t n;

		if (check_list(c, cats, "empty item in the category list '%.*s'") < 0)
			return -1;
		while (next_item(&cats, &item, &n)) {
			unsigned bit = policy_category_parse(item, n);
			if (!bit)
				return fail(c, "unknown sensitivity category '%.*s' (sud, psynote, bh, "
					       "hiv, std, sex, sdv, gdis, all, none)", item, n);
			cmask |= (uint16_t)bit;
		}
	}
	for (size_t r = 0; r < c->nroles; r++) {
		if (rmask & (1u << r)) {
			c->conf[r] = (uint8_t)conf;
			c->cats[r] = cmask;
		}
	}
	return 0;
}

/* Groups -> column sets; "other" is every type that no group names. */
static int compile_groups(struct compiler *c)
{
	uint64_t named[TYPE_WORDS];
	int other = -1;

	memset(named, 0, sizeof(named));
	if (policy_n_groups > GROUPS_MAX)
		return err_set(c->e, ERR_INTERNAL, "built-in policy: too many groups");
	for (size_t g = 0; g < policy_n_groups; g++) {
		const char *list = policy_groups[g].types, *item;
		size_t n;

		memset(c->groups[g], 0, sizeof(c->groups[g]));
		if (strcmp(policy_groups[g].name, POLICY_OTHER) == 0) {
			other = (int)g;
			continue;
		}
		while (next_item(&list, &item, &n)) {
			int t = policy_type_index_n(item, n);
			if (t < 0)
				return err_set(c->e, ERR_INTERNAL,
					       "built-in policy: group %s names unknown type '%.*s'",
					       policy_groups[g].name, (int)n, item);
			set_bit(c->groups[g], (size_t)t);
			set_bit(named, (size_t)t);
		}
	}
	if (other >= 0)
		for (size_t t = 0; t < c->ntypes; t++)
			if (!has_bit(named, t))
				set_bit(c->groups[other], t);
	return 0;
}

static struct compiler *compiler_new(struct err *e)
{
	struct compiler *c = calloc(1, sizeof(*c));

	if (!c) {
		err_set(e, ERR_NOMEM, "out of memory");
		return NULL;
	}
	c->e = e;
	c->ntypes = policy_n_types();
	c->nroles = policy_n_roles();
	c->system = c->ntypes;
	c->audit_event = policy_type_index("AuditEvent");
	c->btg_minutes = PRIVACY_BTG_DEFAULT_MINUTES;
	for (size_t r = 0; r < POLICY_ROLES_MAX; r++)
		c->conf[r] = PCONF_N;   /* a role without a clearance line */
	if (c->ntypes > POLICY_TYPES_MAX || c->nroles > POLICY_ROLES_MAX) {
		err_set(e, ERR_INTERNAL, "policy table too small for the model");
		free(c);
		return NULL;
	}
	c->name = "built-in policy";
	if (compile_groups(c) < 0) {
		free(c);
		return NULL;
	}
	/* the built-in clearances and break-the-glass roles; a site file's
	 * lines replace them role by role */
	for (size_t i = 0; i < policy_n_default_clearances; i++) {
		const struct policy_clearance *k = &policy_default_clearances[i];
		c->line = (int)i + 1;
		if (apply_clearance(c, k->roles, k->level, k->categories) < 0) {
			free(c);
			return NULL;
		}
	}
	if (parse_roles(c, policy_default_btg_roles, &c->btg_roles) < 0) {
		free(c);
		return NULL;
	}
	return c;
}

/* The built-in rules, unless the site said "defaults off". */
static int compile_defaults(struct compiler *c)
{
	const char *name = c->name;
	int line = c->line, rc = 0;

	c->name = "built-in policy";
	for (size_t i = 0; i < policy_n_default_rules && !c->defaults_off; i++) {
		const struct policy_rule *r = &policy_default_rules[i];
		c->line = (int)i + 1;
		if (apply_rule(c, true, r->roles, r->actions, r->targets) < 0) {
			c->e->code = ERR_INTERNAL;
			rc = -1;
			break;
		}
	}
	c->name = name;
	c->line = line;
	return rc;
}

/* allow minus deny, with what no rule can grant taken out. */
static void finish(const struct compiler *c, struct policy_table *t, const char *source)
{
	memset(t, 0, sizeof(*t));
	for (size_t r = 0; r < c->nroles; r++) {
		for (size_t ty = 0; ty <= c->system; ty++)
			t->perm[r][ty] = (uint16_t)(c->allow[r][ty] & ~c->deny[r][ty] & A_ALL);
		t->perm[r][c->system] &= A_SYSTEM;
		if (c->audit_event >= 0)
			t->perm[r][c->audit_event] &= (uint16_t)~A_CHANGE;
		t->conf[r] = c->conf[r];
		t->cats[r] = c->cats[r];
	}
	t->btg_roles = c->btg_roles;
	t->btg_minutes = c->btg_minutes;
	snprintf(t->source, sizeof(t->source), "%s", source ? source : "");
}

/* ---- the site file ---- */

/* Split a line into words in place; spaces around commas are dropped so that
 * "read, search" is one list.  Returns the number of words (at most max). */
static int split_words(char *s, char **w, int max)
{
	char *o = s;
	int n = 0;

	/* compact: drop blanks next to a comma */
	for (char *p = s; *p; p++) {
		if (*p == ' ' || *p == '\t') {
			char *q = p;
			while (*q == ' ' || *q == '\t')
				q++;
			if (*q == ',' || (o > s && o[-1] == ',')) {
				p = q - 1;
				continue;
			}
		}
		*o++ = *p;
	}
	*o = '\0';
	for (char *p = s; *p;) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p)
			break;
		if (n == max)
			return max + 1;
		w[n++] = p;
		while (*p && *p != ' ' && *p != '\t')
			p++;
		if (*p)
			*p++ = '\0';
	}
	return n;
}

static int parse_line(struct compiler *c, char *line)
{
	char *w[8];
	int n;

	for (char *p = line; *p; p++) {
		unsigned char ch = (unsigned char)*p;
		if (ch == '#') {
			*p = '\0';
			break;
		}
		if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
			return err_set(c->e, ERR_INVALID, "%s:%d: control character in the line",
				       c->name, c->line);
		if (ch >= 0x80)
			return err_set(c->e, ERR_INVALID, "%s:%d: non-ASCII character in the line",
				       c->name, c->line);
	}
	n = split_words(line, w, 6);
	if (n == 0)
		return 0;
	if (strcmp(w[0], "allow") == 0 || strcmp(w[0], "deny") == 0) {
		if (n != 4)
			return err_set(c->e, ERR_INVALID, "%s:%d: expected '%s ROLES ACTIONS TARGETS'",
				       c->name, c->line, w[0]);
		return apply_rule(c, w[0][0] == 'a', w[1], w[2], w[3]);
	}
	if (strcmp(w[0], "clearance") == 0) {
		if (n != 3 && n != 4)
			return err_set(c->e, ERR_INVALID,
				       "%s:%d: expected 'clearance ROLES LEVEL [CATEGORIES]'", c->name,
				       c->line);
		return apply_clearance(c, w[1], w[2], n == 4 ? w[3] : NULL);
	}
	if (strcmp(w[0], "break-glass-minutes") == 0) {
		char *end;
		long v;

		if (n != 2)
			return err_set(c->e, ERR_INVALID, "%s:%d: expected 'break-glass-minutes N'",
				       c->name, c->line);
		errno = 0;
		v = strtol(w[1], &end, 10);
		if (w[1][0] < '0' || w[1][0] > '9' || *end || errno || v < 1 ||
		    v > PRIVACY_BTG_MAX_MINUTES)
			return err_set(c->e, ERR_INVALID,
				       "%s:%d: break-glass-minutes takes a whole number from 1 to %d",
				       c->name, c->line, PRIVACY_BTG_MAX_MINUTES);
		c->btg_minutes = (int)v;
		return 0;
	}
	if (strcmp(w[0], "break-glass-roles") == 0) {
		if (n != 2)
			return err_set(c->e, ERR_INVALID,
				       "%s:%d: expected 'break-glass-roles ROLES' (or 'none')", c->name,
				       c->line);
		if (strcmp(w[1], "none") == 0) {
			c->btg_roles = 0;
			return 0;
		}
		return parse_roles(c, w[1], &c->btg_roles);
	}
	if (strcmp(w[0], "defaults") == 0) {
		if (n != 2 || (strcmp(w[1], "on") != 0 && strcmp(w[1], "off") != 0))
			return err_set(c->e, ERR_INVALID, "%s:%d: expected 'defaults on' or 'defaults off'",
				       c->name, c->line);
		if (c->defaults_seen)
			return err_set(c->e, ERR_INVALID, "%s:%d: 'defaults' is given twice", c->name,
				       c->line);
		c->defaults_seen = true;
		c->defaults_off = strcmp(w[1], "off") == 0;
		return 0;
	}
	return fail(c, "unknown directive '%.*s' (allow, deny, clearance, break-glass-minutes, "
		       "break-glass-roles, defaults)", w[0], strlen(w[0]));
}

/* ---- the table in force ---- */

static struct policy_table live;
static pthread_once_t live_once = PTHREAD_ONCE_INIT;

/* Compile text (NULL: none) over the defaults into *out. */
static int compile(const char *text, size_t len, const char *name, struct policy_table *out,
		   struct err *e)
{
	struct compiler *c = compiler_new(e);
	char *line = NULL;
	int rc = -1;

	if (!c)
		return -1;
	if (text) {
		line = malloc(PRIVACY_POLICY_LINE_MAX + 1);
		if (!line) {
			err_set(e, ERR_NOMEM, "out of memory");
			goto out;
		}
		c->name = name;
		c->line = 0;
		for (size_t i = 0; i < len;) {
			const char *nl = memchr(text + i, '\n', len - i);
			size_t full = nl ? (size_t)(nl - (text + i)) : len - i, n = full;

			c->line++;
			if (n && text[i + n - 1] == '\r')
				n--;
			if (n > PRIVACY_POLICY_LINE_MAX) {
				err_set(e, ERR_INVALID, "%s:%d: line too long (at most %d bytes)", name,
					c->line, PRIVACY_POLICY_LINE_MAX);
				goto out;
			}
			if (memchr(text + i, '\0', n)) {
				err_set(e, ERR_INVALID, "%s:%d: control character in the line", name,
					c->line);
				goto out;
			}
			memcpy(line, text + i, n);
			line[n] = '\0';
			if (parse_line(c, line) < 0)
				goto out;
			i += full + (nl ? 1 : 0);
		}
	}
	if (compile_defaults(c) < 0)
		goto out;
	finish(c, out, text ? name : "");
	rc = 0;
out:
	free(line);
	free(c);
	return rc;
}

static void live_init(void)
{
	struct err e = ERR_INIT;

	if (compile(NULL, 0, NULL, &live, &e) < 0) {
		/* a bug in policy_table.c (test_policy catches it): deny everything */
		memset(&live, 0, sizeof(live));
		log_error("event=policy_defaults_failed detail=\"%s\"", e.msg);
	}
}

const struct policy_table *policy_current(void)
{
	pthread_once(&live_once, live_init);
	return &live;
}

int privacy_policy_load_text(const char *text, size_t len, const char *name, struct err *e)
{
	struct policy_table *t;
	int rc = -1;

	pthread_once(&live_once, live_init);
	t = malloc(sizeof(*t));
	if (!t)
		return err_set(e, ERR_NOMEM, "out of memory");
	if (compile(text ? text : "", text ? len : 0, name ? name : "policy", t, e) == 0) {
		memcpy(&live, t, sizeof(live));
		rc = 0;
	}
	free(t);
	return rc;
}

int privacy_policy_load(const char *path, struct err *e)
{
	FILE *f = fopen(path, "rb");
	char *text = NULL;
	size_t n;
	int rc = -1;

	if (!f)
		return err_set(e, ERR_IO, "cannot open policy file '%s': %s", path, strerror(errno));
	text = malloc(PRIVACY_POLICY_FILE_MAX + 1);
	if (!text) {
		err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	n = fread(text, 1, PRIVACY_POLICY_FILE_MAX + 1, f);
	if (ferror(f)) {
		err_set(e, ERR_IO, "cannot read policy file '%s': %s", path, strerror(errno));
		goto out;
	}
	if (n > PRIVACY_POLICY_FILE_MAX) {
		err_set(e, ERR_INVALID, "%s: larger than %d bytes", path, PRIVACY_POLICY_FILE_MAX);
		goto out;
	}
	rc = privacy_policy_load_text(text, n, path, e);
out:
	free(text);
	fclose(f);
	return rc;
}

void privacy_policy_reset(void)
{
	pthread_once(&live_once, live_init);
	live_init();
}

const char *privacy_policy_source(void)
{
	return policy_current()->source;
}

unsigned privacy_policy_actions(const char *role, const char *type)
{
	const struct policy_table *t = policy_current();
	int r = role ? policy_role_index(role) : -1;
	int ti = type ? policy_type_index(type) : (int)policy_n_types();

	if (r < 0 || ti < 0)
		return 0;
	return t->perm[r][ti];
}

/* ---- the decision ---- */

static int deny(struct err *e, const char *role, int action, const char *type)
{
	static const char *const verbs[] = {
		[PA_READ] = "read", [PA_VREAD] = "read versions of", [PA_SEARCH] = "search",
		[PA_HISTORY] = "read the history of", [PA_CREATE] = "create", [PA_UPDATE] = "update",
		[PA_PATCH] = "patch", [PA_DELETE] = "delete", [PA_BATCH] = "send batches of",
		[PA_OPERATION] = "run operations on", [PA_CAPABILITIES] = "read the capabilities of",
	};
	const char *verb = verbs[action];

	if (type)
		return err_set(e, ERR_FORBIDDEN, "role %s may not %s %s", role, verb, type);
	return err_set(e, ERR_FORBIDDEN, "role %s may not %s the whole system", role, verb);
}

int privacy_decide_ex(const struct store_principal *who, const struct privacy_request *rq,
		      struct privacy_decision *d, struct err *e)
{
	const struct policy_table *t = policy_current();
	struct privacy_decision dd = { NULL, false };
	int r, ti, action, ctx;

	if (d)
		*d = dd;
	if (!who || !rq)
		return err_set(e, ERR_FORBIDDEN, "%s", generic_denial);
	r = policy_role_index(who->role);
	action = rq->action;
	if (r < 0 || action < PA_READ || action > PA_CAPABILITIES)
		return err_set(e, ERR_FORBIDDEN, "%s", generic_denial);
	if (rq->btg_reason) {
		if (!(t->btg_roles & (1u << r)))
			return err_set(e, ERR_FORBIDDEN, "role %s may not break the glass", who->role);
		if (privacy_btg_reason_check(rq->btg_reason, e) < 0)
			return -1;
		dd.btg = true;
	}
	/* the capability statement is public; a batch is decided per entry */
	if (action == PA_CAPABILITIES || action == PA_BATCH)
		goto allowed;
	ti = rq->type ? policy_type_index(rq->type) : (int)policy_n_types();
	if (ti < 0 || !(t->perm[r][ti] & (1u << action)))
		return deny(e, who->role, action, ti < 0 ? "this type" : rq->type);
	if (!privacy_scopes_narrow(who->scopes))
		goto allowed;
	ctx = policy_scopes_allow_text(who->scopes, action, ti, who->patient[0] != '\0');
	if (ctx <= 0) {
		if (rq->type)
			return err_set(e, ERR_FORBIDDEN, "the token's scopes do not allow %s on %s",
				       privacy_action_name(action), rq->type);
		return err_set(e, ERR_FORBIDDEN, "the token's scopes do not allow %s at the system level",
			       privacy_action_name(action));
	}
	if (ctx == PSC_PATIENT) {
		dd.patient = who->patient;
		if (!d) {
			/* no caller to keep the request in the compartment: only
			 * what provably stays in it */
			bool own = rq->type && rq->id && strcmp(rq->type, "Patient") == 0 &&
				   strcmp(rq->id, who->patient) == 0;
			if (!own || (action != PA_READ && action != PA_VREAD && action != PA_HISTORY))
				return err_set(e, ERR_FORBIDDEN,
					       "the token's patient/ scopes do not allow this request");
		}
	}
allowed:
	if (d)
		*d = dd;
	return 0;
}

int privacy_decide(const struct store_principal *who, const struct privacy_request *rq,
		   struct err *e)
{
	return privacy_decide_ex(who, rq, NULL, e);
}

bool privacy_in_patient_context(const struct privacy_decision *d, const char *type,
				const char *id, const char *const *patients, size_t n)
{
	if (!d || !d->patient)
		return true;
	if (!d->patient[0])
		return false;
	if (type && id && strcmp(type, "Patient") == 0 && strcmp(id, d->patient) == 0)
		return true;
	for (size_t i = 0; i < n; i++) {
		const char *p = patients[i];
		if (!p)
			continue;
		if (strncmp(p, "Patient/", 8) == 0)
			p += 8;
		if (strcmp(p, d->patient) == 0)
			return true;
	}
	return false;
}

/* ---- policy show ---- */

/* "view,update,patch": aliases where a whole alias is there. */
static void add_actions(struct buf *out, unsigned m)
{
	static const struct {
		const char *name;
		unsigned mask;
	} words[] = {
		{ "view", A_VIEW }, { "read", ACT(PA_READ) }, { "vread", ACT(PA_VREAD) },
		{ "search", ACT(PA_SEARCH) }, { "history", ACT(PA_HISTORY) }, { "write", A_WRITE },
		{ "create", ACT(PA_CREATE) }, { "update", ACT(PA_UPDATE) }, { "patch", ACT(PA_PATCH) },
		{ "delete", ACT(PA_DELETE) }, { "operation", ACT(PA_OPERATION) },
	};
	bool first = true;

	if (!m) {
		buf_addstr(out, "-");
		return;
	}
	if (m == A_ALL) {
		buf_addstr(out, "all");
		return;
	}
	for (size_t i = 0; i < ARRAY_SIZE(words); i++) {
		if ((m & words[i].mask) != words[i].mask)
			continue;
		buf_addf(out, "%s%s", first ? "" : ",", words[i].name);
		first = false;
		m &= ~words[i].mask;
	}
}

static void add_categories(struct buf *out, unsigned cats)
{
	bool first = true;

	if (!cats) {
		buf_addstr(out, "none");
		return;
	}
	for (unsigned bit = 1; bit <= PCAT__ALL; bit <<= 1) {
		if (!(cats & bit))
			continue;
		buf_addf(out, "%s%s", first ? "" : ",", privacy_category_name(bit));
		first = false;
	}
}

void privacy_policy_describe(struct buf *out)
{
	const struct policy_table *t = policy_current();
	struct err e = ERR_INIT;
	struct compiler *c = compiler_new(&e);   /* for the group sets */
	size_t nroles = policy_n_roles(), ntypes = policy_n_types();

	if (!c) {
		buf_addf(out, "cannot describe the policy: %s\n", e.msg);
		return;
	}
	buf_addf(out, "# effective policy: %s\n",
		 t->source[0] ? "built-in defaults and the site file" : "built-in defaults");
	if (t->source[0])
		buf_addf(out, "# site file: %s\n", t->source);
	buf_addstr(out, "# view = read,vread,search,history; write = create,update,patch\n"
			"# anything not listed is denied; batch and capabilities are always allowed;\n"
			"# nobody writes AuditEvent through the API\n");
	buf_addf(out, "break-glass: %d minutes, roles: ", t->btg_minutes);
	{
		bool any = false;
		for (size_t r = 0; r < nroles; r++)
			if (t->btg_roles & (1u << r)) {
				buf_addf(out, "%s%s", any ? "," : "", privacy_roles[r]);
				any = true;
			}
		if (!any)
			buf_addstr(out, "none");
	}
	buf_addch(out, '\n');
	for (size_t r = 0; r < nroles; r++) {
		bool any = false;

		buf_addf(out, "\n%s  (clearance %s; categories ", privacy_roles[r],
			 policy_conf_name(t->conf[r]));
		add_categories(out, t->cats[r]);
		buf_addstr(out, ")\n");
		for (size_t g = 0; g < policy_n_groups; g++) {
			unsigned common = A_ALL, some = 0;
			bool members = false;

			for (size_t ty = 0; ty < ntypes; ty++) {
				if (!has_bit(c->groups[g], ty))
					continue;
				members = true;
				common &= t->perm[r][ty];
				some |= t->perm[r][ty];
			}
			if (!members || !some)
				continue;
			any = true;
			buf_addf(out, "  %-30s ", policy_groups[g].name);
			add_actions(out, common);
			buf_addch(out, '\n');
			for (size_t ty = 0; ty < ntypes; ty++) {
				if (!has_bit(c->groups[g], ty) || t->perm[r][ty] == common)
					continue;
				buf_addf(out, "    %-28s ", policy_type_name((int)ty));
				add_actions(out, t->perm[r][ty]);
				buf_addch(out, '\n');
			}
		}
		if (t->perm[r][ntypes]) {
			any = true;
			buf_addf(out, "  %-30s ", "system");
			add_actions(out, t->perm[r][ntypes]);
			buf_addch(out, '\n');
		}
		if (!any)
			buf_addstr(out, "  (nothing)\n");
	}
	buf_addstr(out, "\ngroups:\n");
	for (size_t g = 0; g < policy_n_groups; g++) {
		size_t col = 0;

		buf_addf(out, "  %s: %s\n   ", policy_groups[g].name, policy_groups[g].about);
		for (size_t ty = 0; ty < ntypes; ty++) {
			const char *name;
			if (!has_bit(c->groups[g], ty))
				continue;
			name = policy_type_name((int)ty);
			if (col + strlen(name) + 1 > 76) {
				buf_addstr(out, "\n   ");
				col = 0;
			}
			buf_addf(out, " %s", name);
			col += strlen(name) + 1;
		}
		buf_addch(out, '\n');
	}
	free(c);
}

/* ---- break-the-glass ---- */

bool privacy_btg_role(const char *role)
{
	int r = role ? policy_role_index(role) : -1;

	return r >= 0 && (policy_current()->btg_roles & (1u << r));
}

int privacy_btg_minutes(void)
{
	return policy_current()->btg_minutes;
}

/* Length of the UTF-8 sequence at s (a valid, shortest one), or 0. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	unsigned cp;
	size_t len;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	/* C1 controls */
	if (cp >= 0x80 && cp <= 0x9f)
		return 0;
	return len;
}

int privacy_btg_reason_check(const char *reason, struct err *e)
{
	const unsigned char *s = (const unsigned char *)reason;
	size_t n = reason ? strlen(reason) : 0;
	bool blank = true;

	if (n > PRIVACY_BTG_REASON_MAX)
		return err_set(e, ERR_INVALID, "break-the-glass reason too long: at most %d bytes",
			       PRIVACY_BTG_REASON_MAX);
	for (size_t i = 0; i < n;) {
		size_t k = utf8_len(s + i, n - i);

		if (k == 0 || (k == 1 && (s[i] < 0x20 || s[i] == 0x7f)))
			return err_set(e, ERR_INVALID,
				       "break-the-glass reason must be printable text (UTF-8)");
		if (s[i] != ' ')
			blank = false;
		i += k;
	}
	if (blank)
		return err_set(e, ERR_INVALID, "break-the-glass needs a reason");
	return 0;
}

int privacy_btg_grant(struct store *s, const struct store_principal *who, const char *patient_id,
		      const char *reason, const char *source, int64_t now_ms, int64_t *until_ms,
		      struct err *e)
{
	struct store_btg g;

	if (!who || !privacy_btg_role(who->role))
		return err_set(e, ERR_FORBIDDEN, "role %s may not break the glass",
			       who ? who->role : "(none)");
	if (privacy_btg_reason_check(reason, e) < 0)
		return -1;
	if (!patient_id || !id_valid(patient_id, strlen(patient_id)))
		return err_set(e, ERR_INVALID, "break-the-glass needs a valid patient id");
	memset(&g, 0, sizeof(g));
	g.uid = who->uid;
	snprintf(g.username, sizeof(g.username), "%s", who->username);
	snprintf(g.role, sizeof(g.role), "%s", who->role);
	snprintf(g.patient, sizeof(g.patient), "%s", patient_id);
	snprintf(g.reason, sizeof(g.reason), "%s", reason);
	snprintf(g.source, sizeof(g.source), "%s", source ? source : "");
	g.granted_ms = now_ms;
	g.until_ms = now_ms + (int64_t)privacy_btg_minutes() * 60000;
	if (store_btg_add(s, &g, e) < 0)
		return -1;
	/* the reason stays out of the log: it may describe the patient */
	log_info("event=break_glass uid=%lld role=%s patient=%s until=%lld grant=%lld",
		 (long long)g.uid, g.role, g.patient, (long long)g.until_ms, (long long)g.id);
	if (until_ms)
		*until_ms = g.until_ms;
	return 0;
}

bool privacy_btg_active(struct store *s, int64_t uid, const char *patient_id, int64_t now_ms)
{
	struct err e = ERR_INIT;
	int64_t until = 0;

	if (!s || !patient_id || !id_valid(patient_id, strlen(patient_id)))
		return false;
	if (store_btg_until(s, uid, patient_id, now_ms, &until, &e) < 0) {
		log_error("event=break_glass_lookup_failed detail=\"%s\"", e.detail);
		return false;
	}
	return until > now_ms;
}

int privacy_btg_list(struct store *s, int64_t since_ms, privacy_btg_fn fn, void *ctx,
		     struct err *e)
{
	return store_btg_list(s, since_ms, fn, ctx, e);
}
