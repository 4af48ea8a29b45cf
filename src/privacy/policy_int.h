/* policy_int.h - shared by the files of the policy decision point
 * (policy.c, policy_table.c, scopes.c, labels.c); not for other modules. */
#ifndef CK_POLICY_INT_H
#define CK_POLICY_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define POLICY_ROLES_MAX 16
#define POLICY_TYPES_MAX 192   /* R4 has 146 resource types; checked at start */

/* ---- resource types and roles as dense indexes ---- */

/* Position of a resource type in fhir_resource_types (sorted by name), or
 * -1.  A binary search over the generated model: no allocation. */
int policy_type_index_n(const char *name, size_t n);
int policy_type_index(const char *name);
const char *policy_type_name(int idx);
size_t policy_n_types(void);
/* Position of role in privacy_roles[], or -1. */
int policy_role_index(const char *role);
size_t policy_n_roles(void);

/* ---- the built-in defaults (policy_table.c) ---- */

/* A named set of resource types.  Every type that no group names is in the
 * group "other" (POLICY_OTHER), whose members are computed. */
struct policy_group {
	const char *name;
	const char *types;   /* comma-separated; "" for "other" */
	const char *about;   /* one line, for policy show and the docs */
};
#define POLICY_OTHER "other"
extern const struct policy_group policy_groups[];
extern const size_t policy_n_groups;

/* One allow line of the default table, in the site file's own words:
 * roles, actions and targets are the comma-separated lists an
 * "allow ROLES ACTIONS TARGETS" line takes. */
struct policy_rule {
	const char *roles;
	const char *actions;
	const char *targets;
};
extern const struct policy_rule policy_default_rules[];
extern const size_t policy_n_default_rules;

/* One clearance line: "clearance ROLES LEVEL CATEGORIES". */
struct policy_clearance {
	const char *roles;
	const char *level;
	const char *categories;
};
extern const struct policy_clearance policy_default_clearances[];
extern const size_t policy_n_default_clearances;

extern const char policy_default_btg_roles[];

/* ---- the compiled table (policy.c) ---- */

struct policy_table {
	/* actions (1u << PA_*) per role and type; column policy_n_types() is
	 * the system level (type NULL) */
	uint16_t perm[POLICY_ROLES_MAX][POLICY_TYPES_MAX + 1];
	uint8_t conf[POLICY_ROLES_MAX];   /* highest confidentiality (PCONF_*) */
	uint16_t cats[POLICY_ROLES_MAX];  /* PCAT_* cleared */
	uint32_t btg_roles;               /* 1u << role index */
	int btg_minutes;
	char source[256];                 /* the site file, or "" */
};

/* The table in force (built from the defaults on first use). */
const struct policy_table *policy_current(void);

/* ---- scopes.c ---- */

/* The widest scope context (PSC_*) in the space-separated scope text that
 * allows action on the type at index ti (policy_n_types(): the system level,
 * which only "*" scopes reach); patient/ scopes count only when has_patient.
 * 0: none allows; -1: the text is malformed (deny).  No allocation. */
int policy_scopes_allow_text(const char *text, int action, int ti, bool has_patient);

/* ---- labels.c: names the site file uses ---- */

/* "U".."V" (any case) -> PCONF_*, or 0. */
int policy_conf_parse(const char *s, size_t n);
const char *policy_conf_name(int conf);
/* "sud", "bh", ... (any case) -> PCAT_* bit, or 0. */
unsigned policy_category_parse(const char *s, size_t n);

#endif
