/* test_policy.c - the policy decision point (src/privacy/policy*.c,
 * scopes.c, labels.c; store: sqlite_btg.c): the default table (the issue's
 * examples, then every role against a written-out matrix), site files good
 * and bad, SMART scopes, sensitivity labels and clearance, break-the-glass
 * through a real store, consent to disclosure.  Two micro-benchmarks print
 * (never assert) what a decision and a label scan cost.
 *
 * Tests that touch disk work in their own mkdtemp() directory. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/base.h"
#include "privacy/policy.h"
#include "privacy/policy_int.h"
#include "privacy/privacy.h"
#include "store/store.h"
#include "base/banned.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* The actions of the matrix, in the order of its strings. */
static const int matrix_actions[] = {
	PA_READ, PA_VREAD, PA_SEARCH, PA_HISTORY, PA_CREATE, PA_UPDATE, PA_PATCH, PA_DELETE,
	PA_OPERATION,
};
static const char matrix_letters[] = "rvshcupdo";

static struct store_principal principal(const char *role, const char *scopes, const char *patient)
{
	struct store_principal p;

	memset(&p, 0, sizeof(p));
	p.uid = 7;
	snprintf(p.username, sizeof(p.username), "user7");
	snprintf(p.role, sizeof(p.role), "%s", role);
	snprintf(p.scopes, sizeof(p.scopes), "%s", scopes ? scopes : "");
	snprintf(p.patient, sizeof(p.patient), "%s", patient ? patient : "");
	return p;
}

/* Through the whole decision (role table and scopes), not just the table. */
static bool may(const char *role, int action, const char *type)
{
	struct store_principal who = principal(role, NULL, NULL);
	struct privacy_request rq = { action, type, NULL, "127.0.0.1", NULL, NULL };
	struct privacy_decision d;
	struct err e = ERR_INIT;
	int rc = privacy_decide_ex(&who, &rq, &d, &e);

	if (rc == 0) {
		assert_null(d.patient);
		return true;
	}
	assert_int_equal(e.code, ERR_FORBIDDEN);
	return false;
}

static int reset_policy(void **state)
{
	(void)state;
	privacy_policy_reset();
	return 0;
}

/* ------------------------------------------------------------------ */
/* the default table                                                   */

static void test_defaults_shape(void **state)
{
	static const char *const writes_on_audit[] = { "AuditEvent" };
	size_t nroles = 0;

	(void)state;
	assert_string_equal(privacy_policy_source(), "");
	while (privacy_roles[nroles])
		nroles++;
	/* nobody writes AuditEvent; everybody may batch and read the capabilities */
	for (size_t r = 0; r < nroles; r++) {
		unsigned m = privacy_policy_actions(privacy_roles[r], writes_on_audit[0]);
		assert_int_equal(m & ((1u << PA_CREATE) | (1u << PA_UPDATE) | (1u << PA_PATCH) |
				      (1u << PA_DELETE)), 0);
		assert_true(may(privacy_roles[r], PA_BATCH, NULL));
		assert_true(may(privacy_roles[r], PA_CAPABILITIES, NULL));
		/* look-ups with no patient data are open to every role */
		assert_true(may(privacy_roles[r], PA_READ, "Practitioner"));
		assert_true(may(privacy_roles[r], PA_SEARCH, "ValueSet"));
		assert_true(may(privacy_roles[r], PA_READ, "Medication"));
	}
	/* unknown role or type: nothing */
	assert_int_equal(privacy_policy_actions("wizard", "Patient"), 0);
	assert_int_equal(privacy_policy_actions("coder", "Patientx"), 0);
	assert_false(may("coder", PA_READ, "NotAType"));
	/* the btg defaults */
	assert_true(privacy_btg_role("clinician"));
	assert_false(privacy_btg_role("him_director"));
	assert_false(privacy_btg_role("privacy_officer"));
	assert_false(privacy_btg_role("nobody"));
	assert_int_equal(privacy_btg_minutes(), 60);
}

/* The examples issue 3 names, one by one. */
static void test_issue_examples(void **state)
{
	static const char *const clinical_and_notes[] = {
		"Observation", "Condition", "Procedure", "Encounter", "DiagnosticReport",
		"MedicationRequest", "AllergyIntolerance", "Immunization", "CarePlan",
		"DocumentReference", "Composition", "ClinicalImpression", "Binary",
	};
	static const char *const notes[] = {
		"DocumentReference", "Composition", "ClinicalImpression", "DocumentManifest", "Binary",
	};
	static const int writes[] = { PA_CREATE, PA_UPDATE, PA_PATCH, PA_DELETE };
	static const int views[] = { PA_READ, PA_VREAD, PA_SEARCH, PA_HISTORY };

	(void)state;
	/* coders read clinical data and write Claim and coding */
	for (size_t i = 0; i < N_OF(clinical_and_notes); i++)
		for (size_t k = 0; k < N_OF(views); k++)
			assert_true(may("coder", views[k], clinical_and_notes[i]));
	assert_true(may("coder", PA_CREATE, "Claim"));
	assert_true(may("coder", PA_UPDATE, "Claim"));
	assert_true(may("coder", PA_UPDATE, "Condition"));
	assert_true(may("coder", PA_PATCH, "Procedure"));
	assert_false(may("coder", PA_CREATE, "Condition"));
	assert_false(may("coder", PA_UPDATE, "Observation"));
	assert_false(may("coder", PA_DELETE, "Condition"));
	assert_false(may("coder", PA_UPDATE, "DocumentReference"));

	/* registration clerks write Patient and Coverage, do not read notes */
	assert_true(may("registration_clerk", PA_CREATE, "Patient"));
	assert_true(may("registration_clerk", PA_UPDATE, "Patient"));
	assert_true(may("registration_clerk", PA_CREATE, "Coverage"));
	assert_true(may("registration_clerk", PA_UPDATE, "Coverage"));
	for (size_t i = 0; i < N_OF(notes); i++)
		for (size_t k = 0; k < N_OF(views); k++)
			assert_false(may("registration_clerk", views[k], notes[i]));
	assert_false(may("registration_clerk", PA_READ, "Observation"));

	/* ROI specialists read for disclosure and write nothing clinical */
	for (size_t i = 0; i < N_OF(clinical_and_notes); i++) {
		assert_true(may("roi_specialist", PA_READ, clinical_and_notes[i]));
		assert_true(may("roi_specialist", PA_SEARCH, clinical_and_notes[i]));
		for (size_t k = 0; k < N_OF(writes); k++)
			assert_false(may("roi_specialist", writes[k], clinical_and_notes[i]));
	}
	assert_true(may("roi_specialist", PA_OPERATION, "Patient"));   /* $everything */
	assert_true(may("roi_specialist", PA_READ, "Consent"));

	/* billing reads Claim, Coverage, Account, not notes */
	assert_true(may("billing", PA_READ, "Claim"));
	assert_true(may("billing", PA_SEARCH, "Coverage"));
	assert_true(may("billing", PA_READ, "Account"));
	for (size_t i = 0; i < N_OF(notes); i++)
		assert_false(may("billing", PA_READ, notes[i]));
	assert_false(may("billing", PA_READ, "Observation"));

	/* clinicians read and write clinical data */
	for (size_t i = 0; i < N_OF(clinical_and_notes); i++) {
		assert_true(may("clinician", PA_READ, clinical_and_notes[i]));
		assert_true(may("clinician", PA_CREATE, clinical_and_notes[i]));
		assert_true(may("clinician", PA_UPDATE, clinical_and_notes[i]));
	}

	/* the privacy officer reads the audit trail and everything else, writes
	 * nothing clinical */
	assert_true(may("privacy_officer", PA_READ, "AuditEvent"));
	assert_true(may("privacy_officer", PA_SEARCH, "AuditEvent"));
	assert_true(may("privacy_officer", PA_SEARCH, NULL));
	for (size_t i = 0; i < N_OF(clinical_and_notes); i++) {
		assert_true(may("privacy_officer", PA_READ, clinical_and_notes[i]));
		for (size_t k = 0; k < N_OF(writes); k++)
			assert_false(may("privacy_officer", writes[k], clinical_and_notes[i]));
	}
	assert_false(may("privacy_officer", PA_UPDATE, "Patient"));

	/* admin manages conformance and the organisation, is no clinical reader */
	assert_true(may("admin", PA_CREATE, "SearchParameter"));
	assert_true(may("admin", PA_UPDATE, "StructureDefinition"));
	assert_true(may("admin", PA_DELETE, "ValueSet"));
	assert_true(may("admin", PA_UPDATE, "Practitioner"));
	assert_true(may("admin", PA_CREATE, "Organization"));
	assert_false(may("admin", PA_READ, "Patient"));
	assert_false(may("admin", PA_SEARCH, "Observation"));
	assert_false(may("admin", PA_READ, "DocumentReference"));
	assert_false(may("admin", PA_READ, "AuditEvent"));

	/* HIM director and supervisor read broadly */
	for (size_t i = 0; i < N_OF(clinical_and_notes); i++) {
		assert_true(may("him_director", PA_READ, clinical_and_notes[i]));
		assert_true(may("him_supervisor", PA_SEARCH, clinical_and_notes[i]));
	}
	assert_true(may("him_director", PA_READ, "Claim"));
	assert_true(may("him_supervisor", PA_READ, "Coverage"));

	/* technicians read and update documents */
	assert_true(may("him_technician", PA_READ, "DocumentReference"));
	assert_true(may("him_technician", PA_UPDATE, "DocumentReference"));
	assert_true(may("him_technician", PA_CREATE, "DocumentReference"));
	assert_false(may("him_technician", PA_UPDATE, "Observation"));

	/* nobody changes AuditEvent through the API */
	for (size_t r = 0; privacy_roles[r]; r++)
		for (size_t k = 0; k < N_OF(writes); k++)
			assert_false(may(privacy_roles[r], writes[k], "AuditEvent"));
}

/* Every role against a sample of types: the expected actions written out.
 * Letters: r read, v vread, s search, h history, c create, u update,
 * p patch, d delete, o operation; '.' denied.  Type NULL: system level. */
static const struct {
	const char *type;
	const char *clerk, *tech, *coder, *registrar, *roi, *billing, *superv, *director,
		*clinician, *privacy, *admin;
} matrix[] = {
	/* type               clerk        tech         coder        registrar    roi          billing      supervisor   director     clinician    privacy      admin */
	{ "Patient",          "rvshcup..", "rvsh....o", "rvsh....o", "rvsh....o", "rvsh....o", "rvsh.....", "rvsh....o", "rvshcup.o", "rvsh....o", "rvsh....o", "........." },
	{ "Observation",      ".........", "rvsh.....", "rvsh.....", "rvsh.....", "rvsh.....", ".........", "rvsh.....", "rvsh.....", "rvshcup..", "rvsh.....", "........." },
	{ "Condition",        ".........", "rvsh.....", "rvsh.up..", "rvsh.....", "rvsh.....", ".........", "rvsh.....", "rvsh.....", "rvshcup..", "rvsh.....", "........." },
	{ "Procedure",        ".........", "rvsh.....", "rvsh.up..", "rvsh.....", "rvsh.....", ".........", "rvsh.....", "rvsh.....", "rvshcup..", "rvsh.....", "........." },
	{ "Encounter",        "rvshcup..", "rvsh.....", "rvsh.....", "rvsh.....", "rvsh.....", "rvsh.....", "rvsh.....", "rvsh.....", "rvshcup..", "rvsh.....", "........." },
	{ "DocumentReference",".........", "rvshcup..", "rvsh.....", "rvsh.....", "rvsh.....", ".........", "rvshcup..", "rvshcup..", "rvshcup..", "rvsh.....", "........." },
	{ "Claim",            ".........", ".........", "rvshcup..", ".........", ".........", "rvshcup..", "rvsh.....", "rvsh.....", ".........", "rvsh.....", "........." },
	{ "ChargeItem",       ".........", ".........", "rvshcup..", ".........", ".........", "rvshcup..", "rvsh.....", "rvsh.....", ".........", "rvsh.....", "........." },
	{ "Coverage",         "rvshcup..", "rvsh.....", "rvsh.....", "rvsh.....", "rvsh.....", "rvshcup..", "rvsh.....", "rvshcup..", "rvsh.....", "rvsh.....", "........." },
	{ "Account",          "rvshcup..", "rvsh.....", "rvsh.....", "rvsh.....", "rvsh.....", "rvshcup..", "rvsh.....", "rvshcup..", "rvsh.....", "rvsh.....", "........." },
	{ "AuditEvent",       ".........", ".........", ".........", ".........", ".........", ".........", ".........", ".........", ".........", "rvsh.....", "........." },
	{ "Provenance",       ".........", ".........", ".........", ".........", ".........", ".........", ".........", ".........", ".........", "rvsh.....", "........." },
	{ "SearchParameter",  "rvsh.....", "rvsh.....", "rvsh.....", "rvsh.....", "rvsh.....", "rvsh.....", "rvsh.....", "rvsh.....", "rvsh.....", "rvsh.....", "rvshcupdo" },
	{ "Practitioner",     "rvsh.....", "rvsh.....", "rvsh.....", "rvsh.....", "rvsh.....", "rvsh.....", "rvsh.....", "rvsh.....", "rvsh.....", "rvsh.....", "rvshcupdo" },
	{ "Medication",       "rvsh.....", "rvsh.....", "rvsh.....", "rvsh.....", "rvsh.....", "rvsh.....", "rvsh.....", "rvsh.....", "rvsh.....", "rvsh.....", "rvshcupdo" },
	{ "Task",             ".........", "rvshcup..", "rvshcup..", "rvshcup..", "rvshcup..", ".........", "rvshcup..", "rvshcupd.", "rvshcup..", "rvshcup..", "........." },
	{ "Consent",          "rvshcup..", "rvsh.....", ".........", ".........", "rvsh.....", ".........", "rvsh.....", "rvshcup..", "rvshcup..", "rvshcup..", "........." },
	{ "Appointment",      "rvshcup..", "rvsh.....", ".........", ".........", ".........", ".........", "rvsh.....", "rvsh.....", "rvshcup..", "rvsh.....", "........." },
	{ "Bundle",           ".........", ".........", ".........", ".........", ".........", ".........", "rvsh.....", "rvsh.....", "rvshcup..", "rvsh.....", "........." },
	{ "Group",            "rvshcup..", "rvsh.....", "rvsh.....", "rvsh.....", "rvsh.....", "rvsh.....", "rvsh.....", "rvshcup.o", "rvsh.....", "rvsh.....", "........." },
	{ NULL,               ".........", ".........", ".........", ".........", ".........", ".........", ".........", "..sh....o", ".........", "..sh.....", "........." },
};

static void test_matrix(void **state)
{
	size_t failures = 0;

	(void)state;
	for (size_t i = 0; i < N_OF(matrix); i++) {
		const char *const row[] = {
			matrix[i].clerk, matrix[i].tech, matrix[i].coder, matrix[i].registrar,
			matrix[i].roi, matrix[i].billing, matrix[i].superv, matrix[i].director,
			matrix[i].clinician, matrix[i].privacy, matrix[i].admin,
		};
		for (size_t r = 0; r < N_OF(row); r++) {
			assert_int_equal(strlen(row[r]), N_OF(matrix_actions));
			for (size_t a = 0; a < N_OF(matrix_actions); a++) {
				bool want = row[r][a] == matrix_letters[a];
				bool got = may(privacy_roles[r], matrix_actions[a], matrix[i].type);
				if (row[r][a] != '.' && row[r][a] != matrix_letters[a])
					fail_msg("matrix typo at %s/%s", matrix[i].type, privacy_roles[r]);
				if (want != got) {
					print_error("%s %s %s: expected %s, got %s\n", privacy_roles[r],
						    privacy_action_name(matrix_actions[a]),
						    matrix[i].type ? matrix[i].type : "(system)",
						    want ? "allow" : "deny", got ? "allow" : "deny");
					failures++;
				}
			}
		}
	}
	assert_int_equal(failures, 0);
}

/* Every resource type of the model is in some group (the groups' member
 * lists close policy show), and the listing says what the docs say. */
static void test_every_type(void **state)
{
	struct buf b = BUF_INIT(0);
	const char *text, *groups;

	(void)state;
	privacy_policy_describe(&b);
	text = buf_cstr(&b);
	assert_false(b.failed);
	groups = strstr(text, "\ngroups:\n");
	assert_non_null(groups);
	for (size_t t = 0; t < policy_n_types(); t++) {
		char a[80], z[80];
		snprintf(a, sizeof(a), " %s ", policy_type_name((int)t));
		snprintf(z, sizeof(z), " %s\n", policy_type_name((int)t));
		if (!strstr(groups, a) && !strstr(groups, z))
			fail_msg("%s is in no group", policy_type_name((int)t));
	}
	assert_true(policy_n_types() > 140);
	/* every group is listed with its members, and "other" is not empty */
	assert_non_null(strstr(text, "  other: "));
	assert_non_null(strstr(text, " Bundle"));
	assert_non_null(strstr(text, "  clinical: "));
	/* the coder's block names the group and the two coding types */
	assert_non_null(strstr(text, "\ncoder  (clearance N"));
	assert_non_null(strstr(text, "    Condition"));
	assert_non_null(strstr(text, "\nadmin  (clearance N; categories none)\n  admin"));
	buf_release(&b);
}

/* ------------------------------------------------------------------ */
/* site files                                                          */

static void test_site_file_good(void **state)
{
	struct err e = ERR_INIT;
	const char *text =
		"# a site\n"
		"\n"
		"allow coder read, search   notes  # spaces after commas are fine\n"
		"deny registration_clerk view Encounter\n"
		"allow billing read DocumentReference\n"
		"deny billing read DocumentReference\n"      /* deny wins, whatever the order */
		"deny * delete *\n"
		"allow him_director delete Task\n"            /* ... deny still wins */
		"allow * view conformance\r\n"                /* CRLF */
		"clearance coder R sud,bh\n"
		"clearance registration_clerk,billing N none\n"
		"break-glass-minutes 15\n"
		"break-glass-roles clinician,him_director\n"
		"\t  \n";

	(void)state;
	if (privacy_policy_load_text(text, strlen(text), "site.policy", &e) < 0)
		fail_msg("%s", e.msg);
	assert_string_equal(privacy_policy_source(), "site.policy");
	assert_false(may("registration_clerk", PA_READ, "Encounter"));
	assert_true(may("registration_clerk", PA_READ, "Patient"));
	assert_false(may("billing", PA_READ, "DocumentReference"));
	assert_false(may("him_director", PA_DELETE, "Task"));
	assert_false(may("admin", PA_DELETE, "ValueSet"));
	assert_true(may("admin", PA_CREATE, "ValueSet"));
	assert_true(may("coder", PA_READ, "DocumentReference"));
	assert_int_equal(privacy_btg_minutes(), 15);
	assert_true(privacy_btg_role("him_director"));

	/* defaults off: only what the file says */
	err_clear(&e);
	text = "defaults off\nallow clinician view Observation\n";
	assert_int_equal(privacy_policy_load_text(text, strlen(text), "min.policy", &e), 0);
	assert_true(may("clinician", PA_READ, "Observation"));
	assert_false(may("clinician", PA_CREATE, "Observation"));
	assert_false(may("clinician", PA_READ, "Practitioner"));
	assert_false(may("admin", PA_CREATE, "SearchParameter"));
	assert_true(may("admin", PA_CAPABILITIES, NULL));
	/* clearances and break-the-glass keep their defaults */
	assert_true(privacy_btg_role("clinician"));

	/* a file without rules is the defaults */
	err_clear(&e);
	assert_int_equal(privacy_policy_load_text("", 0, "empty.policy", &e), 0);
	assert_true(may("coder", PA_UPDATE, "Condition"));
	/* the wildcard or the audit group may include AuditEvent: masked */
	text = "allow * all *\nallow clinician write audit\n";
	assert_int_equal(privacy_policy_load_text(text, strlen(text), "wide.policy", &e), 0);
	assert_true(may("admin", PA_READ, "Patient"));
	assert_true(may("clinician", PA_CREATE, "Provenance"));
	for (size_t r = 0; privacy_roles[r]; r++) {
		assert_false(may(privacy_roles[r], PA_CREATE, "AuditEvent"));
		assert_false(may(privacy_roles[r], PA_DELETE, "AuditEvent"));
		assert_true(may(privacy_roles[r], PA_READ, "AuditEvent"));
	}

	/* the example that ships is valid */
	privacy_policy_reset();
	err_clear(&e);
	if (privacy_policy_load("data/policy.example", &e) < 0)
		fail_msg("data/policy.example: %s", e.msg);
	assert_string_equal(privacy_policy_source(), "data/policy.example");
	privacy_policy_reset();
	assert_string_equal(privacy_policy_source(), "");
}

static void test_site_file_bad(void **state)
{
	static const struct {
		const char *text;
		const char *msg;
	} cases[] = {
		{ "allow coderr read notes\n", "t.policy:1: unknown role 'coderr'" },
		{ "# ok\nallow coder reed notes\n", "t.policy:2: unknown action 'reed' (read, vread, "
		  "search, history, create, update, patch, delete, operation, view, write, all)" },
		{ "\n\nallow coder read Observations\n",
		  "t.policy:3: unknown resource type or group 'Observations'" },
		{ "allow coder read clinical,Nope\n", "t.policy:1: unknown resource type or group 'Nope'" },
		{ "allow coder read\n", "t.policy:1: expected 'allow ROLES ACTIONS TARGETS'" },
		{ "deny coder read notes extra\n", "t.policy:1: expected 'deny ROLES ACTIONS TARGETS'" },
		{ "permit coder read notes\n", "t.policy:1: unknown directive 'permit' (allow, deny, "
		  "clearance, break-glass-minutes, break-glass-roles, defaults)" },
		{ "allow coder,,billing read notes\n",
		  "t.policy:1: empty item in the role list 'coder,,billing'" },
		{ "allow coder read notes,\n", "t.policy:1: empty item in the target list 'notes,'" },
		{ "allow coder batch notes\n", "t.policy:1: 'batch' is always allowed (each entry of a "
		  "batch is decided on its own) and cannot be named" },
		{ "allow admin create AuditEvent\n", "t.policy:1: AuditEvent is written by the server "
		  "only: create, update, patch and delete cannot be allowed on it" },
		{ "allow admin all clinical,AuditEvent\n", "t.policy:1: AuditEvent is written by the "
		  "server only: create, update, patch and delete cannot be allowed on it" },
		{ "clearance coder X\n", "t.policy:1: unknown confidentiality level 'X' (U, L, M, N, R or V)" },
		{ "clearance coder R hiv,cancer\n", "t.policy:1: unknown sensitivity category 'cancer' "
		  "(sud, psynote, bh, hiv, std, sex, sdv, gdis, all, none)" },
		{ "clearance coder\n", "t.policy:1: expected 'clearance ROLES LEVEL [CATEGORIES]'" },
		{ "break-glass-minutes 0\n", "t.policy:1: break-glass-minutes takes a whole number from 1 to 1440" },
		{ "break-glass-minutes 1441\n", "t.policy:1: break-glass-minutes takes a whole number from 1 to 1440" },
		{ "break-glass-minutes 10m\n", "t.policy:1: break-glass-minutes takes a whole number from 1 to 1440" },
		{ "break-glass-roles root\n", "t.policy:1: unknown role 'root'" },
		{ "defaults maybe\n", "t.policy:1: expected 'defaults on' or 'defaults off'" },
		{ "defaults off\ndefaults on\n", "t.policy:2: 'defaults' is given twice" },
		{ "allow coder read notes\x01\n", "t.policy:1: control character in the line" },
		{ "allow coder read not\xc3\xa9s\n", "t.policy:1: non-ASCII character in the line" },
	};
	struct err e = ERR_INIT;
	char *big;
	const char *before = "allow registration_clerk read DocumentReference\n";

	(void)state;
	/* a first good file, whose effect must survive every bad one */
	assert_int_equal(privacy_policy_load_text(before, strlen(before), "good.policy", &e), 0);
	assert_true(may("registration_clerk", PA_READ, "DocumentReference"));
	for (size_t i = 0; i < N_OF(cases); i++) {
		err_clear(&e);
		if (privacy_policy_load_text(cases[i].text, strlen(cases[i].text), "t.policy", &e) != -1)
			fail_msg("case %zu loaded", i);
		assert_int_equal(e.code, ERR_INVALID);
		if (strcmp(e.msg, cases[i].msg) != 0)
			fail_msg("case %zu: '%s', want '%s'", i, e.msg, cases[i].msg);
		/* nothing half-loaded */
		assert_string_equal(privacy_policy_source(), "good.policy");
		assert_true(may("registration_clerk", PA_READ, "DocumentReference"));
	}
	/* a good line before the bad one changes nothing either */
	err_clear(&e);
	before = "deny * view *\nallow x read y\n";
	assert_int_equal(privacy_policy_load_text(before, strlen(before), "t.policy", &e), -1);
	assert_string_equal(e.msg, "t.policy:2: unknown role 'x'");
	assert_true(may("coder", PA_READ, "Observation"));
	/* a NUL inside a line */
	err_clear(&e);
	assert_int_equal(privacy_policy_load_text("allow coder\0read notes\n", 23, "t.policy", &e), -1);
	assert_string_equal(e.msg, "t.policy:1: control character in the line");
	/* a line too long */
	big = malloc(PRIVACY_POLICY_LINE_MAX + 2);
	assert_non_null(big);
	memset(big, '#', PRIVACY_POLICY_LINE_MAX + 1);
	big[PRIVACY_POLICY_LINE_MAX + 1] = '\0';
	err_clear(&e);
	assert_int_equal(privacy_policy_load_text(big, strlen(big), "t.policy", &e), -1);
	assert_string_equal(e.msg, "t.policy:1: line too long (at most 4096 bytes)");
	free(big);
	/* a file that is not there */
	err_clear(&e);
	assert_int_equal(privacy_policy_load("/nonexistent/site.policy", &e), -1);
	assert_int_equal(e.code, ERR_IO);
	assert_non_null(strstr(e.msg, "/nonexistent/site.policy"));
	assert_string_equal(privacy_policy_source(), "good.policy");
}

static void test_site_file_on_disk(void **state)
{
	char dir[] = "/tmp/ck-policy-XXXXXX", path[64];
	struct err e = ERR_INIT;
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/site.policy", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("allow billing view notes\n\ndeny billing read Claim\n", f);
	fclose(f);
	if (privacy_policy_load(path, &e) < 0)
		fail_msg("%s", e.msg);
	assert_true(may("billing", PA_READ, "DocumentReference"));
	assert_false(may("billing", PA_READ, "Claim"));
	assert_true(may("billing", PA_SEARCH, "Claim"));
	/* an error names the file and the line */
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("allow billing view notes\n\ndeny billing raed Claim\n", f);
	fclose(f);
	assert_int_equal(privacy_policy_load(path, &e), -1);
	assert_int_equal(strncmp(e.msg, path, strlen(path)), 0);
	assert_non_null(strstr(e.msg, ":3: unknown action 'raed'"));
	/* too large */
	f = fopen(path, "w");
	assert_non_null(f);
	for (int i = 0; i <= PRIVACY_POLICY_FILE_MAX / 32; i++)
		fputs("# ............................................................\n", f);
	fclose(f);
	err_clear(&e);
	assert_int_equal(privacy_policy_load(path, &e), -1);
	assert_non_null(strstr(e.msg, "larger than"));
	assert_int_equal(unlink(path), 0);
	assert_int_equal(rmdir(dir), 0);
}

/* ------------------------------------------------------------------ */
/* SMART scopes                                                        */

static void test_scopes_parse(void **state)
{
	static const struct {
		const char *text;
		const char *msg;    /* NULL: valid */
	} cases[] = {
		{ "", NULL },
		{ "   ", NULL },
		{ "user/Patient.rs", NULL },
		{ "system/*.cruds", NULL },
		{ "patient/Observation.rs launch/patient openid fhirUser offline_access", NULL },
		{ "user/*.read user/Observation.write patient/*.*", NULL },
		{ "user/Patient.c user/Patient.d user/Patient.crud", NULL },
		{ "launch launch/encounter profile online_access", NULL },
		{ "user/Patient.sr", "malformed scope 'user/Patient.sr'" },
		{ "user/Patient.rr", "malformed scope 'user/Patient.rr'" },
		{ "user/Patient.x", "malformed scope 'user/Patient.x'" },
		{ "user/Patient.", "malformed scope 'user/Patient.'" },
		{ "user/Patient", "malformed scope 'user/Patient'" },
		{ "user/.rs", "malformed scope 'user/.rs'" },
		{ "admin/Patient.rs", "malformed scope 'admin/Patient.rs'" },
		{ "user/Patients.rs", "unknown resource type in scope 'user/Patients.rs'" },
		{ "user/patient.rs", "unknown resource type in scope 'user/patient.rs'" },
		{ "openid email", "unknown scope 'email'" },
		{ "patient/Observation.rs?category=laboratory",
		  "scope 'patient/Observation.rs?category=laboratory': query-restricted scopes are not "
		  "supported" },
		{ "user/Patient.rs\tuser/Observation.rs", "malformed scope 'user/Patient.rs\tuser/Observation.rs'" },
	};
	struct privacy_scopes sc;
	struct err e = ERR_INIT;
	char many[STORE_SCOPES_MAX * 2];
	struct buf b = BUF_INIT(0);

	(void)state;
	for (size_t i = 0; i < N_OF(cases); i++) {
		err_clear(&e);
		int rc = privacy_scopes_parse(cases[i].text, &sc, &e);
		if (!cases[i].msg) {
			if (rc != 0)
				fail_msg("'%s': %s", cases[i].text, e.msg);
			continue;
		}
		if (rc != -1)
			fail_msg("'%s' accepted", cases[i].text);
		assert_int_equal(e.code, ERR_INVALID);
		if (strcmp(e.msg, cases[i].msg) != 0)
			fail_msg("'%s': '%s'", cases[i].text, e.msg);
	}
	assert_int_equal(privacy_scopes_parse(NULL, &sc, &e), 0);
	assert_int_equal(sc.n, 0);

	assert_int_equal(privacy_scopes_parse("patient/Observation.rs launch/patient openid "
					      "fhirUser user/*.read", &sc, &e), 0);
	assert_int_equal(sc.n, 2);
	assert_int_equal(sc.v[0].ctx, PSC_PATIENT);
	assert_int_equal(sc.v[0].perms, PSP_R | PSP_S);
	assert_true(sc.v[0].type >= 0);
	assert_int_equal(sc.v[1].ctx, PSC_USER);
	assert_int_equal(sc.v[1].type, -1);
	assert_int_equal(sc.v[1].perms, PSP_R | PSP_S);
	assert_int_equal(sc.flags, PSF_LAUNCH_PATIENT | PSF_OPENID | PSF_FHIRUSER);

	/* what each scope allows */
	assert_int_equal(privacy_scopes_parse("patient/Observation.rs user/Patient.r system/Claim.cu "
					      "user/Task.write", &sc, &e), 0);
	assert_int_equal(privacy_scopes_allow(&sc, PA_READ, "Observation"), PSC_PATIENT);
	assert_int_equal(privacy_scopes_allow(&sc, PA_SEARCH, "Observation"), PSC_PATIENT);
	assert_int_equal(privacy_scopes_allow(&sc, PA_CREATE, "Observation"), 0);
	assert_int_equal(privacy_scopes_allow(&sc, PA_READ, "Patient"), PSC_USER);
	assert_int_equal(privacy_scopes_allow(&sc, PA_VREAD, "Patient"), PSC_USER);
	assert_int_equal(privacy_scopes_allow(&sc, PA_HISTORY, "Patient"), PSC_USER);
	assert_int_equal(privacy_scopes_allow(&sc, PA_OPERATION, "Patient"), PSC_USER);
	assert_int_equal(privacy_scopes_allow(&sc, PA_SEARCH, "Patient"), 0);
	assert_int_equal(privacy_scopes_allow(&sc, PA_CREATE, "Claim"), PSC_SYSTEM);
	assert_int_equal(privacy_scopes_allow(&sc, PA_PATCH, "Claim"), PSC_SYSTEM);
	assert_int_equal(privacy_scopes_allow(&sc, PA_DELETE, "Claim"), 0);
	assert_int_equal(privacy_scopes_allow(&sc, PA_DELETE, "Task"), PSC_USER);  /* v1 write */
	assert_int_equal(privacy_scopes_allow(&sc, PA_READ, "Task"), 0);
	assert_int_equal(privacy_scopes_allow(&sc, PA_BATCH, NULL), PSC_SYSTEM);
	assert_int_equal(privacy_scopes_allow(&sc, PA_CAPABILITIES, NULL), PSC_SYSTEM);
	assert_int_equal(privacy_scopes_allow(&sc, PA_SEARCH, NULL), 0);  /* needs a "*" scope */
	assert_int_equal(privacy_scopes_allow(&sc, PA_READ, "Nope"), 0);
	/* a user scope wins over a patient one for the same type */
	assert_int_equal(privacy_scopes_parse("patient/*.rs user/Observation.rs", &sc, &e), 0);
	assert_int_equal(privacy_scopes_allow(&sc, PA_READ, "Observation"), PSC_USER);
	assert_int_equal(privacy_scopes_allow(&sc, PA_READ, "Condition"), PSC_PATIENT);
	assert_int_equal(privacy_scopes_allow(&sc, PA_SEARCH, NULL), PSC_PATIENT);

	/* too many */
	for (int i = 0; i <= PRIVACY_SCOPES_MAX; i++)
		buf_addstr(&b, "user/Patient.r ");
	err_clear(&e);
	assert_int_equal(privacy_scopes_parse(buf_cstr(&b), &sc, &e), -1);
	assert_string_equal(e.msg, "too many scopes (at most 128)");
	buf_release(&b);
	/* one too long is named, shortened */
	memset(many, 'a', 300);
	memcpy(many, "user/", 5);
	many[300] = '\0';
	err_clear(&e);
	assert_int_equal(privacy_scopes_parse(many, &sc, &e), -1);
	assert_non_null(strstr(e.msg, "scope too long: 'user/aaa"));
	assert_true(strlen(e.msg) < 140);

	assert_false(privacy_scopes_narrow(NULL));
	assert_false(privacy_scopes_narrow(""));
	assert_false(privacy_scopes_narrow("   "));
	assert_true(privacy_scopes_narrow("openid"));
	assert_true(privacy_scopes_narrow("user/*.cruds"));
}

static int decide(const char *role, const char *scopes, const char *patient, int action,
		  const char *type, const char *id, struct privacy_decision *d, struct err *e)
{
	/* static: d->patient points into it */
	static struct store_principal who;
	struct privacy_request rq = { action, type, id, "127.0.0.1", NULL, NULL };

	who = principal(role, scopes, patient);
	err_clear(e);
	return privacy_decide_ex(&who, &rq, d, e);
}

static void test_scopes_narrow(void **state)
{
	struct privacy_decision d;
	struct err e = ERR_INIT;
	struct store_principal who;
	struct privacy_request rq = { PA_READ, "Patient", "p1", "127.0.0.1", NULL, NULL };

	(void)state;
	/* no scopes: the role alone */
	assert_int_equal(decide("coder", "", "", PA_READ, "Condition", NULL, &d, &e), 0);
	/* a scope narrows: coder may read Condition, this token may not */
	assert_int_equal(decide("coder", "user/Observation.rs", "", PA_READ, "Observation", NULL,
				&d, &e), 0);
	assert_null(d.patient);
	assert_int_equal(decide("coder", "user/Observation.rs", "", PA_READ, "Condition", NULL, &d,
				&e), -1);
	assert_int_equal(e.code, ERR_FORBIDDEN);
	assert_string_equal(e.msg, "the token's scopes do not allow read on Condition");
	/* a scope never widens: coder may not create Observation */
	assert_int_equal(decide("coder", "user/*.cruds", "", PA_CREATE, "Observation", NULL, &d, &e),
			 -1);
	assert_string_equal(e.msg, "role coder may not create Observation");
	assert_int_equal(decide("coder", "user/*.cruds", "", PA_UPDATE, "Condition", NULL, &d, &e), 0);
	/* v1 */
	assert_int_equal(decide("clinician", "user/*.read", "", PA_SEARCH, "Observation", NULL, &d,
				&e), 0);
	assert_int_equal(decide("clinician", "user/*.read", "", PA_UPDATE, "Observation", NULL, &d,
				&e), -1);
	/* only non-resource scopes: no data */
	assert_int_equal(decide("clinician", "openid fhirUser", "", PA_READ, "Observation", NULL,
				&d, &e), -1);
	/* capabilities and batch need no scope */
	assert_int_equal(decide("clinician", "openid", "", PA_CAPABILITIES, NULL, NULL, &d, &e), 0);
	assert_int_equal(decide("clinician", "openid", "", PA_BATCH, NULL, NULL, &d, &e), 0);
	/* the system level needs a "*" scope */
	assert_int_equal(decide("him_director", "user/*.rs", "", PA_SEARCH, NULL, NULL, &d, &e), 0);
	assert_int_equal(decide("him_director", "user/Patient.rs", "", PA_SEARCH, NULL, NULL, &d, &e),
			 -1);
	assert_string_equal(e.msg, "the token's scopes do not allow search at the system level");
	/* a damaged stored scope string denies */
	assert_int_equal(decide("clinician", "user/*.rs bogus", "", PA_READ, "Observation", NULL,
				&d, &e), -1);
	assert_int_equal(decide("clinician", "bogus user/*.rs", "", PA_READ, "Observation", NULL,
				&d, &e), -1);

	/* patient/ scopes: allowed, restricted to the launch context */
	assert_int_equal(decide("clinician", "patient/Observation.rs", "p1", PA_SEARCH, "Observation",
				NULL, &d, &e), 0);
	assert_non_null(d.patient);
	assert_string_equal(d.patient, "p1");
	/* without a patient context a patient/ scope gives nothing */
	assert_int_equal(decide("clinician", "patient/Observation.rs", "", PA_SEARCH, "Observation",
				NULL, &d, &e), -1);
	/* user/ scope for the same type: no restriction */
	assert_int_equal(decide("clinician", "patient/*.rs user/Observation.rs", "p1", PA_READ,
				"Observation", "o1", &d, &e), 0);
	assert_null(d.patient);
	/* the role still decides first */
	assert_int_equal(decide("billing", "patient/*.rs", "p1", PA_READ, "Observation", NULL, &d,
				&e), -1);
	assert_string_equal(e.msg, "role billing may not read Observation");

	/* privacy_decide (no decision out): only what stays in the context */
	who = principal("clinician", "patient/*.rs", "p1");
	err_clear(&e);
	assert_int_equal(privacy_decide(&who, &rq, &e), 0);
	rq.id = "p2";
	assert_int_equal(privacy_decide(&who, &rq, &e), -1);
	assert_int_equal(e.code, ERR_FORBIDDEN);
	rq.id = "p1";
	rq.action = PA_SEARCH;
	assert_int_equal(privacy_decide(&who, &rq, &e), -1);
	rq.action = PA_READ;
	rq.type = "Observation";
	rq.id = "o1";
	assert_int_equal(privacy_decide(&who, &rq, &e), -1);
	/* ... and the same with user/ scopes is fine */
	who = principal("clinician", "user/*.rs", "");
	assert_int_equal(privacy_decide(&who, &rq, &e), 0);
}

static void test_patient_context(void **state)
{
	struct privacy_decision none = { NULL, false }, p1 = { "p1", false }, empty = { "", false };
	const char *refs[] = { "p9", "Patient/p1" };
	const char *other[] = { "p9", "Patient/p10", "Patient/p" };
	const char *plain[] = { "p1" };

	(void)state;
	assert_true(privacy_in_patient_context(NULL, "Observation", "o1", NULL, 0));
	assert_true(privacy_in_patient_context(&none, "Observation", "o1", NULL, 0));
	assert_true(privacy_in_patient_context(&p1, "Patient", "p1", NULL, 0));
	assert_false(privacy_in_patient_context(&p1, "Patient", "p2", NULL, 0));
	assert_true(privacy_in_patient_context(&p1, "Observation", "o1", refs, 2));
	assert_true(privacy_in_patient_context(&p1, "Observation", "o1", plain, 1));
	assert_false(privacy_in_patient_context(&p1, "Observation", "o1", other, 3));
	/* a resource that refers to no patient (outside the compartment) */
	assert_false(privacy_in_patient_context(&p1, "Practitioner", "x", NULL, 0));
	assert_false(privacy_in_patient_context(&empty, "Patient", "", NULL, 0));
}

static void test_decide_edges(void **state)
{
	struct store_principal who = principal("coder", NULL, NULL);
	struct privacy_request rq = { PA_DELETE, "Condition", "c-secret-id", "127.0.0.1", NULL, NULL };
	struct privacy_decision d;
	struct err e = ERR_INIT;
	char reason[PRIVACY_BTG_REASON_MAX + 2];

	(void)state;
	assert_int_equal(privacy_decide_ex(&who, &rq, &d, &e), -1);
	assert_int_equal(e.code, ERR_FORBIDDEN);
	assert_string_equal(e.msg, "role coder may not delete Condition");
	assert_null(strstr(e.msg, "c-secret-id"));
	err_clear(&e);
	assert_int_equal(privacy_decide_ex(NULL, &rq, &d, &e), -1);
	assert_string_equal(e.msg, "you are not allowed to do this");
	who = principal("wizard", NULL, NULL);
	rq.action = PA_READ;
	assert_int_equal(privacy_decide_ex(&who, &rq, &d, &e), -1);
	assert_string_equal(e.msg, "you are not allowed to do this");
	who = principal("coder", NULL, NULL);
	rq.action = 0;
	assert_int_equal(privacy_decide_ex(&who, &rq, &d, &e), -1);
	rq.action = PA_CAPABILITIES + 1;
	assert_int_equal(privacy_decide_ex(&who, &rq, &d, &e), -1);
	rq.action = PA_READ;
	rq.type = "Bogus";
	assert_int_equal(privacy_decide_ex(&who, &rq, &d, &e), -1);
	assert_string_equal(e.msg, "role coder may not read this type");
	rq.type = "Claim";
	rq.action = PA_HISTORY;
	who = principal("registration_clerk", NULL, NULL);
	assert_int_equal(privacy_decide_ex(&who, &rq, &d, &e), -1);
	assert_string_equal(e.msg, "role registration_clerk may not read the history of Claim");
	rq.type = NULL;
	rq.action = PA_SEARCH;
	assert_int_equal(privacy_decide_ex(&who, &rq, &d, &e), -1);
	assert_string_equal(e.msg, "role registration_clerk may not search the whole system");
	who = principal("coder", NULL, NULL);
	rq.action = PA_READ;

	/* break-the-glass on the request */
	rq.type = "Observation";
	rq.btg_reason = "unconscious patient in the ED";
	err_clear(&e);
	assert_int_equal(privacy_decide_ex(&who, &rq, &d, &e), -1);
	assert_int_equal(e.code, ERR_FORBIDDEN);
	assert_string_equal(e.msg, "role coder may not break the glass");
	who = principal("clinician", NULL, NULL);
	assert_int_equal(privacy_decide_ex(&who, &rq, &d, &e), 0);
	assert_true(d.btg);
	rq.btg_reason = "   ";
	assert_int_equal(privacy_decide_ex(&who, &rq, &d, &e), -1);
	assert_int_equal(e.code, ERR_INVALID);
	memset(reason, 'x', sizeof(reason) - 1);
	reason[sizeof(reason) - 1] = '\0';
	rq.btg_reason = reason;
	assert_int_equal(privacy_decide_ex(&who, &rq, &d, &e), -1);
	assert_int_equal(e.code, ERR_INVALID);
	rq.btg_reason = NULL;
	assert_int_equal(privacy_decide_ex(&who, &rq, &d, &e), 0);
	assert_false(d.btg);
}

/* ------------------------------------------------------------------ */
/* labels and clearance                                                */

#define CONF "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
#define ACTC "http://terminology.hl7.org/CodeSystem/v3-ActCode"

static void test_labels(void **state)
{
	static const struct {
		const char *json;
		int rc;
		int conf;
		unsigned cats;
	} cases[] = {
		{ "{\"resourceType\":\"Observation\",\"id\":\"1\",\"meta\":{\"versionId\":\"1\","
		  "\"lastUpdated\":\"2024-01-01T00:00:00.000Z\"},\"status\":\"final\"}", 0, 0, 0 },
		{ "{\"resourceType\":\"Observation\",\"id\":\"1\",\"status\":\"final\"}", 0, 0, 0 },
		{ "{\"resourceType\":\"Observation\",\"id\":\"1\",\"meta\":{\"versionId\":\"1\","
		  "\"security\":[{\"system\":\"" CONF "\",\"code\":\"R\"}]}}", 0, PCONF_R, 0 },
		{ "{\"meta\":{\"security\":[{\"code\":\"V\",\"system\":\"" CONF "\",\"display\":"
		  "\"very restricted\"}]},\"resourceType\":\"Patient\"}", 0, PCONF_V, 0 },
		{ "{\"resourceType\":\"Condition\",\"meta\":{\"security\":[{\"system\":\"" ACTC "\","
		  "\"code\":\"ETH\"},{\"system\":\"" CONF "\",\"code\":\"N\"},{\"system\":\"" ACTC
		  "\",\"code\":\"HIV\"}]}}", 0, PCONF_N, PCAT_SUD | PCAT_HIV },
		{ "{\"resourceType\":\"Condition\",\"meta\":{\"security\":[{\"system\":\"" ACTC "\","
		  "\"code\":\"PSYTHPN\"},{\"system\":\"" ACTC "\",\"code\":\"42CFRPart2\"},{\"system\":\""
		  ACTC "\",\"code\":\"MST\"},{\"system\":\"" ACTC "\",\"code\":\"PSY\"}]}}", 0, 0,
		  PCAT_PSYNOTE | PCAT_SUD | PCAT_SDV | PCAT_BH },
		/* other systems and unknown ActCodes (a purpose of use) are not labels */
		{ "{\"meta\":{\"security\":[{\"system\":\"http://example.org\",\"code\":\"R\"},"
		  "{\"system\":\"" ACTC "\",\"code\":\"TREAT\"}]}}", 0, 0, 0 },
		/* a typo in the confidentiality system's code fails closed */
		{ "{\"meta\":{\"security\":[{\"system\":\"" CONF "\",\"code\":\"restricted\"}]}}", 0,
		  PCONF_V, 0 },
		{ "{\"meta\":{\"security\":[{\"system\":\"" CONF "\",\"code\":\"r\"}]}}", 0, PCONF_V, 0 },
		{ "{\"meta\":{\"security\":[{\"system\":\"" CONF "\"}]}}", 0, PCONF_V, 0 },
		/* escapes are resolved */
		{ "{\"meta\":{\"security\":[{\"system\":\"http:\\/\\/terminology.hl7.org\\/CodeSystem"
		  "\\/v3-Confidentiality\",\"code\":\"\\u0052\"}]}}", 0, PCONF_R, 0 },
		{ "{\"me\\u0074a\":{\"security\":[{\"system\":\"" CONF "\",\"code\":\"R\"}]}}", 0,
		  PCONF_R, 0 },
		/* nested objects and arrays before meta are skipped */
		{ "{\"a\":{\"b\":[1,{\"meta\":{\"security\":[]}}],\"c\":\"}]\\\"\"},\"n\":-1.5e3,"
		  "\"t\":true,\"meta\":{\"tag\":[{\"code\":\"x\"}],\"security\":[{\"system\":\"" CONF
		  "\",\"code\":\"M\"}]}}", 0, PCONF_M, 0 },
		{ " { \"meta\" : { \"security\" : [ ] } } ", 0, 0, 0 },
		/* damaged: fail closed */
		{ "", -1, PCONF_V, PCAT__ALL },
		{ "[]", -1, PCONF_V, PCAT__ALL },
		{ "{\"meta\":{\"security\":{}}}", -1, PCONF_V, PCAT__ALL },
		{ "{\"meta\":{\"security\":[\"R\"]}}", -1, PCONF_V, PCAT__ALL },
		{ "{\"meta\":{\"security\":[{\"system\":\"" CONF "\",\"code\":\"R\"}", -1, PCONF_V,
		  PCAT__ALL },
		{ "{\"id\":\"1\",\"meta\":", -1, PCONF_V, PCAT__ALL },
		{ "{\"id\":\"1", -1, PCONF_V, PCAT__ALL },
		{ "{\"meta\":[]}", -1, PCONF_V, PCAT__ALL },
	};
	struct privacy_labels l, t;
	struct err e = ERR_INIT;

	(void)state;
	for (size_t i = 0; i < N_OF(cases); i++) {
		json_object *o;
		int rc = privacy_labels_of_json(cases[i].json, strlen(cases[i].json), &l);

		if (rc != cases[i].rc || l.conf != cases[i].conf || l.cats != cases[i].cats)
			fail_msg("case %zu: rc %d conf %d cats %#x", i, rc, l.conf, l.cats);
		/* the tree version agrees wherever the text parses */
		o = json_parse_buf(cases[i].json, strlen(cases[i].json), 0, &e);
		if (o && json_object_is_type(o, json_type_object) && json_get(o, "resourceType")) {
			rc = privacy_labels_of(o, &t);
			if (rc != cases[i].rc || t.conf != l.conf || t.cats != l.cats)
				fail_msg("case %zu (tree): rc %d conf %d cats %#x", i, rc, t.conf, t.cats);
		}
		json_object_put(o);
		err_clear(&e);
	}
	/* the tree version also takes meta or the array */
	{
		const char *meta = "{\"security\":[{\"system\":\"" ACTC "\",\"code\":\"BH\"}]}";
		json_object *o = json_parse_buf(meta, strlen(meta), 0, &e);
		assert_int_equal(privacy_labels_of(o, &t), 0);
		assert_int_equal(t.cats, PCAT_BH);
		assert_int_equal(privacy_labels_of(json_get(o, "security"), &t), 0);
		assert_int_equal(t.cats, PCAT_BH);
		json_object_put(o);
		assert_int_equal(privacy_labels_of(NULL, &t), -1);
		assert_int_equal(t.conf, PCONF_V);
	}
	assert_false(privacy_labels_sensitive(&(struct privacy_labels){ 0, 0 }));
	assert_false(privacy_labels_sensitive(&(struct privacy_labels){ PCONF_N, 0 }));
	assert_true(privacy_labels_sensitive(&(struct privacy_labels){ PCONF_R, 0 }));
	assert_true(privacy_labels_sensitive(&(struct privacy_labels){ 0, PCAT_HIV }));
	assert_string_equal(privacy_category_name(PCAT_SUD), "sud");
	assert_null(privacy_category_name(3));
}

static void test_clearance(void **state)
{
	static const struct privacy_labels none = { 0, 0 }, normal = { PCONF_N, 0 },
		low = { PCONF_L, 0 }, restricted = { PCONF_R, 0 }, very = { PCONF_V, 0 },
		sud = { 0, PCAT_SUD }, hiv = { 0, PCAT_HIV }, psynote = { 0, PCAT_PSYNOTE },
		r_bh = { PCONF_R, PCAT_BH };
	struct store_principal clerk = principal("registration_clerk", NULL, NULL),
			       clin = principal("clinician", NULL, NULL),
			       coder = principal("coder", NULL, NULL),
			       dir = principal("him_director", NULL, NULL),
			       po = principal("privacy_officer", NULL, NULL),
			       bad = principal("wizard", NULL, NULL);
	struct err e = ERR_INIT;
	const char *site = "clearance registration_clerk R hiv\n";

	(void)state;
	assert_true(privacy_may_see(&clerk, NULL, NULL, false));
	assert_true(privacy_may_see(&clerk, &none, &normal, false));
	assert_true(privacy_may_see(&clerk, &low, NULL, false));
	assert_false(privacy_may_see(&clerk, &restricted, NULL, false));
	assert_false(privacy_may_see(&clerk, &hiv, NULL, false));
	/* the patient's labels cover the whole record */
	assert_false(privacy_may_see(&clerk, &none, &restricted, false));
	assert_true(privacy_may_see(&clin, &restricted, NULL, false));
	assert_true(privacy_may_see(&clin, &r_bh, &hiv, false));
	assert_false(privacy_may_see(&clin, &very, NULL, false));
	assert_false(privacy_may_see(&clin, &sud, NULL, false));
	assert_false(privacy_may_see(&clin, &psynote, NULL, false));
	/* break-the-glass lifts the labels, for roles that may break it */
	assert_true(privacy_may_see(&clin, &very, &sud, true));
	assert_true(privacy_may_see(&clin, &psynote, NULL, true));
	assert_false(privacy_may_see(&coder, &very, NULL, true));
	assert_true(privacy_may_see(&coder, &sud, NULL, false));
	assert_false(privacy_may_see(&coder, &restricted, NULL, false));
	assert_true(privacy_may_see(&dir, &r_bh, &sud, false));
	assert_false(privacy_may_see(&dir, &psynote, NULL, false));
	assert_true(privacy_may_see(&po, &very, &(struct privacy_labels){ PCONF_V, PCAT__ALL }, false));
	assert_false(privacy_may_see(&bad, NULL, NULL, true));
	assert_false(privacy_may_see(NULL, NULL, NULL, true));
	/* a site changes a clearance */
	assert_int_equal(privacy_policy_load_text(site, strlen(site), "c.policy", &e), 0);
	assert_true(privacy_may_see(&clerk, &restricted, &hiv, false));
	assert_false(privacy_may_see(&clerk, &very, NULL, false));
	assert_false(privacy_may_see(&clerk, &sud, NULL, false));
}

/* ------------------------------------------------------------------ */
/* micro-benchmarks (printed, never asserted)                          */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_bench(void **state)
{
	const char *plain =
		"{\"resourceType\":\"Observation\",\"id\":\"3f1c2b7e-8a90-4d3c-b1e2-0a9c8d7e6f5a\","
		"\"meta\":{\"versionId\":\"3\",\"lastUpdated\":\"2024-03-01T10:20:30.123Z\"},"
		"\"status\":\"final\",\"category\":[{\"coding\":[{\"system\":\"http://terminology.hl7.org"
		"/CodeSystem/observation-category\",\"code\":\"laboratory\"}]}],\"code\":{\"coding\":"
		"[{\"system\":\"http://loinc.org\",\"code\":\"2339-0\",\"display\":\"Glucose\"}]},"
		"\"subject\":{\"reference\":\"Patient/p1\"},\"effectiveDateTime\":\"2024-03-01T09:00:00Z\","
		"\"valueQuantity\":{\"value\":95,\"unit\":\"mg/dL\",\"system\":\"http://unitsofmeasure.org\","
		"\"code\":\"mg/dL\"}}";
	const char *labelled =
		"{\"resourceType\":\"Observation\",\"id\":\"3f1c2b7e-8a90-4d3c-b1e2-0a9c8d7e6f5a\","
		"\"meta\":{\"versionId\":\"3\",\"lastUpdated\":\"2024-03-01T10:20:30.123Z\","
		"\"security\":[{\"system\":\"" CONF "\",\"code\":\"R\"},{\"system\":\"" ACTC "\","
		"\"code\":\"HIV\"}]},\"status\":\"final\",\"subject\":{\"reference\":\"Patient/p1\"}}";
	struct store_principal who = principal("clinician", "", NULL),
			       scoped = principal("clinician", "openid fhirUser patient/Observation.rs "
						  "user/Condition.rs user/Observation.rs", "p1");
	struct privacy_request rq = { PA_READ, "Observation", "o1", "127.0.0.1", NULL, NULL };
	struct privacy_decision d;
	struct privacy_labels l;
	struct err e = ERR_INIT;
	const int n = 300000;
	volatile unsigned sink = 0;
	double t0, t1;

	(void)state;
	t0 = now_s();
	for (int i = 0; i < n; i++) {
		privacy_labels_of_json(plain, strlen(plain), &l);
		sink += l.conf;
	}
	t1 = now_s();
	print_message("bench: labels of an unlabelled stored Observation: %.0f ns\n",
		      (t1 - t0) / n * 1e9);
	t0 = now_s();
	for (int i = 0; i < n; i++) {
		privacy_labels_of_json(labelled, strlen(labelled), &l);
		sink += l.cats;
	}
	t1 = now_s();
	print_message("bench: labels of a labelled stored Observation:   %.0f ns\n",
		      (t1 - t0) / n * 1e9);
	t0 = now_s();
	for (int i = 0; i < n; i++)
		sink += (unsigned)privacy_decide_ex(&who, &rq, &d, &e);
	t1 = now_s();
	print_message("bench: privacy_decide_ex, token without scopes:    %.0f ns\n",
		      (t1 - t0) / n * 1e9);
	t0 = now_s();
	for (int i = 0; i < n; i++)
		sink += (unsigned)privacy_decide_ex(&scoped, &rq, &d, &e);
	t1 = now_s();
	print_message("bench: privacy_decide_ex, token with five scopes:  %.0f ns\n",
		      (t1 - t0) / n * 1e9);
	(void)sink;
}

/* ------------------------------------------------------------------ */
/* break-the-glass through a real store                                */

struct fx {
	char dir[64];
	char path[128];
	struct store *s;
};

static int setup_store(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct err e = ERR_INIT;

	privacy_policy_reset();
	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/ck-policy-XXXXXX");
	if (!mkdtemp(f->dir)) {
		free(f);
		return -1;
	}
	snprintf(f->path, sizeof(f->path), "%s/db", f->dir);
	if (store_create(f->path, &e) < 0 || store_open(f->path, NULL, &f->s, &e) < 0) {
		fprintf(stderr, "setup: %s\n", e.msg);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown_store(void **state)
{
	struct fx *f = *state;
	static const char *const names[] = { "db", "db-wal", "db-shm", "db-journal" };
	char p[192];

	store_close(f->s);
	for (size_t i = 0; i < N_OF(names); i++) {
		snprintf(p, sizeof(p), "%s/%s", f->dir, names[i]);
		unlink(p);
	}
	assert_int_equal(rmdir(f->dir), 0);
	free(f);
	privacy_policy_reset();
	return 0;
}

struct collected {
	struct store_btg g[8];
	size_t n;
	int stop_after;
};

static int collect(void *ctx, const struct store_btg *g)
{
	struct collected *c = ctx;

	if (c->n < N_OF(c->g))
		c->g[c->n++] = *g;
	return c->stop_after && (int)c->n >= c->stop_after ? 1 : 0;
}

static void test_btg(void **state)
{
	struct fx *f = *state;
	struct store_principal clin = principal("clinician", NULL, NULL),
			       coder = principal("coder", NULL, NULL);
	struct err e = ERR_INIT;
	struct collected c;
	const int64_t t0 = 1700000000000LL, hour = 3600 * 1000;
	int64_t until = 0;
	char long_reason[PRIVACY_BTG_REASON_MAX + 2];
	static const char *const bad_reasons[] = {
		"", "   ", "line\nbreak", "tab\there", "bell\a", "del\x7f", "bad utf-8 \xc3",
		"overlong \xc0\xaf", "surrogate \xed\xa0\x80", "c1 control \xc2\x85",
	};

	clin.uid = 11;
	snprintf(clin.username, sizeof(clin.username), "dr.who");
	/* refused */
	assert_int_equal(privacy_btg_grant(f->s, &coder, "p1", "coding review", NULL, t0, &until, &e),
			 -1);
	assert_int_equal(e.code, ERR_FORBIDDEN);
	assert_int_equal(privacy_btg_grant(f->s, NULL, "p1", "why", NULL, t0, &until, &e), -1);
	for (size_t i = 0; i < N_OF(bad_reasons); i++) {
		err_clear(&e);
		if (privacy_btg_grant(f->s, &clin, "p1", bad_reasons[i], NULL, t0, &until, &e) != -1)
			fail_msg("reason %zu accepted", i);
		assert_int_equal(e.code, ERR_INVALID);
	}
	err_clear(&e);
	assert_int_equal(privacy_btg_grant(f->s, &clin, "p1", NULL, NULL, t0, &until, &e), -1);
	assert_int_equal(e.code, ERR_INVALID);
	memset(long_reason, 'a', sizeof(long_reason) - 1);
	long_reason[sizeof(long_reason) - 1] = '\0';
	err_clear(&e);
	assert_int_equal(privacy_btg_grant(f->s, &clin, "p1", long_reason, NULL, t0, &until, &e), -1);
	assert_string_equal(e.msg, "break-the-glass reason too long: at most 500 bytes");
	long_reason[PRIVACY_BTG_REASON_MAX] = '\0';   /* exactly 500 is fine */
	assert_int_equal(privacy_btg_reason_check(long_reason, &e), 0);
	assert_int_equal(privacy_btg_reason_check("Bewusstlos, Notaufnahme \xc3\xa9\xe2\x82\xac", &e),
			 0);
	err_clear(&e);
	assert_int_equal(privacy_btg_grant(f->s, &clin, "bad/id", "emergency", NULL, t0, &until, &e),
			 -1);
	assert_int_equal(e.code, ERR_INVALID);
	assert_int_equal(privacy_btg_grant(f->s, &clin, "", "emergency", NULL, t0, &until, &e), -1);
	/* nothing was recorded */
	memset(&c, 0, sizeof(c));
	assert_int_equal(privacy_btg_list(f->s, 0, collect, &c, &e), 0);
	assert_int_equal(c.n, 0);
	assert_false(privacy_btg_active(f->s, 11, "p1", t0));

	/* granted for an hour */
	err_clear(&e);
	assert_int_equal(privacy_btg_grant(f->s, &clin, "p1", "unconscious patient in the ED",
					   "10.0.0.5", t0, &until, &e), 0);
	assert_int_equal(until, t0 + hour);
	assert_true(privacy_btg_active(f->s, 11, "p1", t0));
	assert_true(privacy_btg_active(f->s, 11, "p1", t0 + hour - 1));
	assert_false(privacy_btg_active(f->s, 11, "p1", t0 + hour));
	assert_false(privacy_btg_active(f->s, 11, "p1", t0 - 1));
	assert_false(privacy_btg_active(f->s, 11, "p2", t0));
	assert_false(privacy_btg_active(f->s, 12, "p1", t0));
	assert_false(privacy_btg_active(f->s, 11, NULL, t0));
	assert_false(privacy_btg_active(f->s, 11, "bad/id", t0));
	assert_false(privacy_btg_active(NULL, 11, "p1", t0));

	/* a site's duration, and a second grant that outlives the first */
	{
		const char *site = "break-glass-minutes 240\n";
		assert_int_equal(privacy_policy_load_text(site, strlen(site), "b.policy", &e), 0);
	}
	assert_int_equal(privacy_btg_grant(f->s, &clin, "p1", "still in surgery", NULL,
					   t0 + 30 * 60000, &until, &e), 0);
	assert_int_equal(until, t0 + 30 * 60000 + 4 * hour);
	assert_true(privacy_btg_active(f->s, 11, "p1", t0 + 2 * hour));
	assert_false(privacy_btg_active(f->s, 11, "p1", t0 + 30 * 60000 + 4 * hour));
	clin.uid = 12;
	snprintf(clin.username, sizeof(clin.username), "dr.no");
	assert_int_equal(privacy_btg_grant(f->s, &clin, "p2", "transfer from outside hospital",
					   "::1", t0 + 3 * hour, &until, &e), 0);

	/* the report: oldest first, from a time */
	memset(&c, 0, sizeof(c));
	assert_int_equal(privacy_btg_list(f->s, 0, collect, &c, &e), 0);
	assert_int_equal(c.n, 3);
	assert_int_equal(c.g[0].uid, 11);
	assert_string_equal(c.g[0].username, "dr.who");
	assert_string_equal(c.g[0].role, "clinician");
	assert_string_equal(c.g[0].patient, "p1");
	assert_string_equal(c.g[0].reason, "unconscious patient in the ED");
	assert_string_equal(c.g[0].source, "10.0.0.5");
	assert_int_equal(c.g[0].granted_ms, t0);
	assert_int_equal(c.g[0].until_ms, t0 + hour);
	assert_true(c.g[0].id > 0);
	assert_string_equal(c.g[1].reason, "still in surgery");
	assert_string_equal(c.g[1].source, "");
	assert_string_equal(c.g[2].username, "dr.no");
	assert_string_equal(c.g[2].patient, "p2");
	memset(&c, 0, sizeof(c));
	assert_int_equal(privacy_btg_list(f->s, t0 + 1, collect, &c, &e), 0);
	assert_int_equal(c.n, 2);
	assert_string_equal(c.g[0].reason, "still in surgery");
	memset(&c, 0, sizeof(c));
	c.stop_after = 1;
	assert_int_equal(privacy_btg_list(f->s, 0, collect, &c, &e), 0);
	assert_int_equal(c.n, 1);
	memset(&c, 0, sizeof(c));
	assert_int_equal(privacy_btg_list(f->s, t0 + 10 * hour, collect, &c, &e), 0);
	assert_int_equal(c.n, 0);
	/* the schema is at least at the migration that made the table */
	assert_true(store_schema_version(f->s, &e) >= 5);

	/* a site that takes break-the-glass away: grants stop counting */
	{
		const char *site = "break-glass-roles none\n";
		struct privacy_labels v = { PCONF_V, 0 };
		struct store_principal who = principal("clinician", NULL, NULL);
		assert_true(privacy_may_see(&who, &v, NULL, true));
		assert_int_equal(privacy_policy_load_text(site, strlen(site), "n.policy", &e), 0);
		assert_false(privacy_may_see(&who, &v, NULL, true));
		err_clear(&e);
		assert_int_equal(privacy_btg_grant(f->s, &who, "p1", "emergency", NULL, t0, &until, &e),
				 -1);
		assert_int_equal(e.code, ERR_FORBIDDEN);
	}
}

/* ------------------------------------------------------------------ */
/* consent to disclosure                                               */

static json_object *parse(const char *s)
{
	struct err e = ERR_INIT;
	json_object *o = json_parse_buf(s, strlen(s), 0, &e);

	if (!o)
		fail_msg("test JSON: %s", e.msg);
	return o;
}

#define CONSENT_HEAD \
	"{\"resourceType\":\"Consent\",\"status\":\"active\",\"scope\":{\"coding\":[{\"system\":" \
	"\"http://terminology.hl7.org/CodeSystem/consentscope\",\"code\":\"patient-privacy\"}]}," \
	"\"patient\":{\"reference\":\"Patient/p1\"}"

static void test_consent(void **state)
{
	static const struct {
		const char *json;
		const char *purpose, *recipient, *type;
		int labels;       /* 0: NULL (whole record), 1: none, 2: ETH */
		bool denies;
	} cases[] = {
		/* a plain opt-out */
		{ CONSENT_HEAD ",\"provision\":{\"type\":\"deny\"}}", "HPAYMT", NULL, NULL, 0, true },
		{ CONSENT_HEAD ",\"provision\":{\"type\":\"permit\"}}", "HPAYMT", NULL, NULL, 0, false },
		/* not active, or not a privacy consent */
		{ "{\"resourceType\":\"Consent\",\"status\":\"inactive\",\"provision\":{\"type\":"
		  "\"deny\"}}", NULL, NULL, NULL, 0, false },
		{ "{\"resourceType\":\"Consent\",\"status\":\"active\",\"scope\":{\"coding\":[{\"system\":"
		  "\"http://terminology.hl7.org/CodeSystem/consentscope\",\"code\":\"research\"}]},"
		  "\"provision\":{\"type\":\"deny\"}}", NULL, NULL, NULL, 0, false },
		{ "{\"resourceType\":\"Patient\",\"status\":\"active\",\"provision\":{\"type\":\"deny\"}}",
		  NULL, NULL, NULL, 0, false },
		/* a purpose */
		{ CONSENT_HEAD ",\"provision\":{\"type\":\"deny\",\"purpose\":[{\"system\":\"http://"
		  "terminology.hl7.org/CodeSystem/v3-ActReason\",\"code\":\"HMARKT\"}]}}", "HMARKT", NULL,
		  NULL, 0, true },
		{ CONSENT_HEAD ",\"provision\":{\"type\":\"deny\",\"purpose\":[{\"code\":\"HMARKT\"}]}}",
		  "TREAT", NULL, NULL, 0, false },
		{ CONSENT_HEAD ",\"provision\":{\"type\":\"deny\",\"purpose\":[{\"code\":\"HMARKT\"}]}}",
		  NULL, NULL, NULL, 0, true },    /* unknown purpose: the deny applies */
		/* a period */
		{ CONSENT_HEAD ",\"provision\":{\"type\":\"deny\",\"period\":{\"end\":\"2020-01-01\"}}}",
		  NULL, NULL, NULL, 0, false },
		{ CONSENT_HEAD ",\"provision\":{\"type\":\"deny\",\"period\":{\"start\":\"2020-01-01\","
		  "\"end\":\"2099\"}}}", NULL, NULL, NULL, 0, true },
		{ CONSENT_HEAD ",\"provision\":{\"type\":\"deny\",\"period\":{\"start\":\"2090-01-01\"}}}",
		  NULL, NULL, NULL, 0, false },
		{ CONSENT_HEAD ",\"provision\":{\"type\":\"deny\",\"period\":{\"start\":\"soon\"}}}",
		  NULL, NULL, NULL, 0, true },
		/* permit with an exception for one recipient */
		{ CONSENT_HEAD ",\"provision\":{\"type\":\"permit\",\"provision\":[{\"type\":\"deny\","
		  "\"actor\":[{\"role\":{\"text\":\"recipient\"},\"reference\":{\"reference\":"
		  "\"Organization/ins1\"}}]}]}}", "HPAYMT", "Organization/ins1", NULL, 0, true },
		{ CONSENT_HEAD ",\"provision\":{\"type\":\"permit\",\"provision\":[{\"type\":\"deny\","
		  "\"actor\":[{\"reference\":{\"reference\":\"Organization/ins1\"}}]}]}}", "HPAYMT",
		  "Organization/ins2", NULL, 0, false },
		{ CONSENT_HEAD ",\"provision\":{\"type\":\"permit\",\"provision\":[{\"type\":\"deny\","
		  "\"actor\":[{\"reference\":{\"reference\":\"Organization/ins1\"}}]}]}}", "HPAYMT", NULL,
		  NULL, 0, true },
		/* deny with an exception for treatment */
		{ CONSENT_HEAD ",\"provision\":{\"type\":\"deny\",\"provision\":[{\"type\":\"permit\","
		  "\"purpose\":[{\"code\":\"TREAT\"}]}]}}", "TREAT", NULL, NULL, 0, false },
		{ CONSENT_HEAD ",\"provision\":{\"type\":\"deny\",\"provision\":[{\"type\":\"permit\","
		  "\"purpose\":[{\"code\":\"TREAT\"}]}]}}", "HPAYMT", NULL, NULL, 0, true },
		{ CONSENT_HEAD ",\"provision\":{\"type\":\"deny\",\"provision\":[{\"type\":\"permit\","
		  "\"purpose\":[{\"code\":\"TREAT\"}]}]}}", NULL, NULL, NULL, 0, true },
		/* segmentation: deny what is labelled ETH */
		{ CONSENT_HEAD ",\"provision\":{\"type\":\"permit\",\"provision\":[{\"type\":\"deny\","
		  "\"securityLabel\":[{\"system\":\"" ACTC "\",\"code\":\"ETH\"}]}]}}", "TREAT", NULL,
		  "Condition", 2, true },
		{ CONSENT_HEAD ",\"provision\":{\"type\":\"permit\",\"provision\":[{\"type\":\"deny\","
		  "\"securityLabel\":[{\"system\":\"" ACTC "\",\"code\":\"ETH\"}]}]}}", "TREAT", NULL,
		  "Condition", 1, false },
		{ CONSENT_HEAD ",\"provision\":{\"type\":\"permit\",\"provision\":[{\"type\":\"deny\","
		  "\"securityLabel\":[{\"system\":\"" ACTC "\",\"code\":\"ETH\"}]}]}}", "TREAT", NULL,
		  NULL, 0, true },
		/* class: resource types */
		{ CONSENT_HEAD ",\"provision\":{\"type\":\"permit\",\"provision\":[{\"type\":\"deny\","
		  "\"class\":[{\"system\":\"http://hl7.org/fhir/resource-types\",\"code\":"
		  "\"Observation\"}]}]}}", "TREAT", NULL, "Observation", 1, true },
		{ CONSENT_HEAD ",\"provision\":{\"type\":\"permit\",\"provision\":[{\"type\":\"deny\","
		  "\"class\":[{\"code\":\"Observation\"}]}]}}", "TREAT", NULL, "Patient", 1, false },
		/* action: only disclose is about disclosures */
		{ CONSENT_HEAD ",\"provision\":{\"type\":\"deny\",\"action\":[{\"coding\":[{\"system\":"
		  "\"http://terminology.hl7.org/CodeSystem/consentaction\",\"code\":\"collect\"}]}]}}",
		  NULL, NULL, NULL, 0, false },
		{ CONSENT_HEAD ",\"provision\":{\"type\":\"deny\",\"action\":[{\"coding\":[{\"code\":"
		  "\"disclose\"}]}]}}", NULL, NULL, NULL, 0, true },
		/* restrictions not evaluated: a deny applies, a permit does not */
		{ CONSENT_HEAD ",\"provision\":{\"type\":\"deny\",\"code\":[{\"text\":\"x\"}]}}", "TREAT",
		  NULL, NULL, 0, true },
		{ CONSENT_HEAD ",\"provision\":{\"type\":\"deny\",\"provision\":[{\"type\":\"permit\","
		  "\"data\":[{\"meaning\":\"instance\",\"reference\":{\"reference\":\"Observation/1\"}}]}"
		  "]}}", "TREAT", NULL, "Observation", 1, true },
		/* the policy rule alone */
		{ CONSENT_HEAD ",\"policyRule\":{\"coding\":[{\"system\":\"" ACTC "\",\"code\":"
		  "\"OPTOUT\"}]}}", "HPAYMT", NULL, NULL, 0, true },
		{ CONSENT_HEAD ",\"policyRule\":{\"coding\":[{\"system\":\"" ACTC "\",\"code\":"
		  "\"OPTIN\"}]}}", "HPAYMT", NULL, NULL, 0, false },
		{ CONSENT_HEAD "}", "HPAYMT", NULL, NULL, 0, false },
	};
	static const struct privacy_labels none = { 0, 0 }, eth = { 0, PCAT_SUD };

	(void)state;
	for (size_t i = 0; i < N_OF(cases); i++) {
		json_object *o = parse(cases[i].json);
		struct privacy_disclosure d = {
			cases[i].purpose, cases[i].recipient, cases[i].type,
			cases[i].labels == 0 ? NULL : cases[i].labels == 1 ? &none : &eth,
			1735689600000LL,   /* 2025-01-01 */
		};
		bool got = privacy_consent_denies_disclosure(o, &d);
		if (got != cases[i].denies)
			fail_msg("consent case %zu: %s", i, got ? "denies" : "allows");
		json_object_put(o);
	}
	assert_false(privacy_consent_denies_disclosure(NULL, NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_defaults_shape, reset_policy),
		cmocka_unit_test_setup(test_issue_examples, reset_policy),
		cmocka_unit_test_setup(test_matrix, reset_policy),
		cmocka_unit_test_setup(test_every_type, reset_policy),
		cmocka_unit_test_setup_teardown(test_site_file_good, reset_policy, reset_policy),
		cmocka_unit_test_setup_teardown(test_site_file_bad, reset_policy, reset_policy),
		cmocka_unit_test_setup_teardown(test_site_file_on_disk, reset_policy, reset_policy),
		cmocka_unit_test_setup(test_scopes_parse, reset_policy),
		cmocka_unit_test_setup(test_scopes_narrow, reset_policy),
		cmocka_unit_test(test_patient_context),
		cmocka_unit_test_setup(test_decide_edges, reset_policy),
		cmocka_unit_test(test_labels),
		cmocka_unit_test_setup_teardown(test_clearance, reset_policy, reset_policy),
		cmocka_unit_test_setup(test_bench, reset_policy),
		cmocka_unit_test_setup_teardown(test_btg, setup_store, teardown_store),
		cmocka_unit_test(test_consent),
	};

	log_level = LOG_ERROR;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
