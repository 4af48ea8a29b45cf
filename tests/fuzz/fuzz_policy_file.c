/* fuzz_policy_file.c - libFuzzer: site policy files (privacy_policy_load_text).
 *
 * Whatever the text, loading either fails with a "NAME:LINE: ..." message
 * and leaves the policy in force unchanged, or succeeds; either way no role
 * may then write AuditEvent, and batch and capabilities stay allowed.  The
 * policy is reset after every input. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "base/base.h"
#include "privacy/policy.h"
#include "base/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int writes[] = { PA_CREATE, PA_UPDATE, PA_PATCH, PA_DELETE };
	struct err e = ERR_INIT;
	unsigned before = privacy_policy_actions("coder", "Condition");
	int rc = privacy_policy_load_text((const char *)data, size, "f", &e);

	if (rc < 0) {
		if (e.code == ERR_INVALID && strncmp(e.msg, "f:", 2) != 0)
			__builtin_trap();   /* an error names the line */
		if (privacy_policy_actions("coder", "Condition") != before ||
		    privacy_policy_source()[0])
			__builtin_trap();   /* nothing half-loaded */
	}
	for (size_t r = 0; privacy_roles[r]; r++) {
		struct store_principal who;
		struct privacy_request rq = { PA_BATCH, NULL, NULL, NULL, NULL, NULL };

		memset(&who, 0, sizeof(who));
		snprintf(who.role, sizeof(who.role), "%s", privacy_roles[r]);
		if (privacy_decide(&who, &rq, &e) != 0)
			__builtin_trap();
		rq.action = PA_CAPABILITIES;
		if (privacy_decide(&who, &rq, &e) != 0)
			__builtin_trap();
		for (size_t k = 0; k < sizeof(writes) / sizeof(writes[0]); k++)
			if (privacy_policy_actions(privacy_roles[r], "AuditEvent") & (1u << writes[k]))
				__builtin_trap();
	}
	privacy_policy_reset();
	return 0;
}
