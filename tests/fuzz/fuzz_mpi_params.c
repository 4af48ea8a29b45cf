/* fuzz_mpi_params.c - libFuzzer: the Parameters parser of $merge, $unmerge
 * and $match (mpi_params_parse), on arbitrary bytes.
 *
 * Besides crashes, leaks and sanitizer reports, the target traps when an
 * accepted body breaks the parser's promises: a patient id that is not a
 * valid FHIR id, an identifier without its "system|" separator, a count
 * out of range, a result-patient that is not a Patient; and when a refusal
 * is not ERR_INVALID / ERR_NOMEM or its message is empty. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base/base.h"
#include "mpi/mpi.h"
#include "base/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mpi_params p;
	struct err e = ERR_INIT;

	if (mpi_params_parse((const char *)data, size, 0, &p, &e) < 0) {
		if ((e.code != ERR_INVALID && e.code != ERR_NOMEM) || !e.msg[0])
			__builtin_trap();
		return 0;
	}
	if (p.source[0] && !id_valid(p.source, strlen(p.source)))
		__builtin_trap();
	if (p.target[0] && !id_valid(p.target, strlen(p.target)))
		__builtin_trap();
	if (p.source_ident.len && !memchr(p.source_ident.data, '|', p.source_ident.len))
		__builtin_trap();
	if (p.count < 0 || p.count > 1000)
		__builtin_trap();
	if (p.result_json && !strstr(p.result_json, "\"resourceType\":\"Patient\""))
		__builtin_trap();
	mpi_params_release(&p);
	return 0;
}
