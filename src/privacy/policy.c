/* policy.c - the policy decision point and the audit hook (see privacy.h).
 *
 * Foundation behaviour: an authenticated user with a known role may use the
 * FHIR API.  The role x resource type x action table, SMART scopes,
 * sensitivity labels and the tamper-evident audit trail replace these two
 * function bodies; their callers stay as they are. */
#include <stdatomic.h>

#include "base/base.h"
#include "privacy/privacy.h"
#include "base/banned.h"

static atomic_ullong audited;

int privacy_decide(const struct store_principal *who, const struct privacy_request *rq,
		   struct err *e)
{
	(void)rq;
	if (!who || !privacy_role_valid(who->role))
		return err_set(e, ERR_FORBIDDEN, "you are not allowed to do this");
	return 0;
}

void privacy_audit(const struct store_principal *who, const struct privacy_request *rq,
		   int status)
{
	(void)who;
	(void)rq;
	(void)status;
	atomic_fetch_add(&audited, 1);
}
