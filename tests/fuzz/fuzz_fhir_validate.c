/* fuzz_fhir_validate.c - libFuzzer: JSON parser, FHIR validator, preparation
 * for the store and OperationOutcome output, on arbitrary bytes. */
#include <stddef.h>
#include <stdint.h>

#include "fhir/fhir.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct err e = ERR_INIT;
	struct fhir_issues iss;
	struct buf out = BUF_INIT(0);
	json_object *o = json_parse_buf((const char *)data, size, 0, &e);

	fhir_issues_init(&iss);
	if (!o) {
		fhir_issues_from_err(&iss, &e);
	} else if (fhir_validate(o, NULL, &iss) == 0) {
		struct fhir_prepared p;
		const char *id = json_get_str(o, "id");
		fhir_prepared_init(&p);
		if (fhir_prepare(NULL, o, id ? id : "x", &p, &e) == 0 && p.body.failed)
			__builtin_trap();
		fhir_prepared_release(&p);
	}
	fhir_outcome_write(&iss, &out);
	/* the outcome must itself be valid JSON */
	{
		struct err e2 = ERR_INIT;
		json_object *oo = json_parse_buf(buf_cstr(&out), out.len, 0, &e2);
		if (!oo)
			__builtin_trap();
		json_object_put(oo);
	}
	buf_release(&out);
	json_object_put(o);
	return 0;
}
