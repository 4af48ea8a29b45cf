/* fuzz_form.c - libFuzzer: the token endpoint's form parser
 * (privacy_form_parse), on arbitrary bytes.
 *
 * Besides crashes, leaks and sanitizer reports, the target traps when an
 * accepted form breaks the parser's promises: more fields than the limit, a
 * name that is empty or given twice, a decoded string longer than the input
 * (decoding never lengthens), strings outside the text it reports (what
 * privacy_form_wipe overwrites), a lookup that does not find a parsed name;
 * and when a refused form's message holds a byte that may not go into an
 * OAuth error_description (a quote, a backslash, a control character). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base/base.h"
#include "privacy/privacy.h"
#include "base/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct arena a;
	struct privacy_form f;
	struct err e = ERR_INIT;
	size_t total = 0;

	arena_init(&a, 1 << 20);
	if (privacy_form_parse((const char *)data, size, &a, &f, &e) < 0) {
		for (const char *m = e.msg; *m; m++)
			if ((unsigned char)*m < 0x20 || *m == '"' || *m == '\\')
				__builtin_trap();
		if (e.code != ERR_INVALID && e.code != ERR_TOO_LARGE)
			__builtin_trap();
		goto out;
	}
	if (f.n > PRIVACY_FORM_MAX_FIELDS)
		__builtin_trap();
	for (size_t i = 0; i < f.n; i++) {
		const char *n = f.f[i].name, *v = f.f[i].value;
		if (!n[0] || n < f.text || v + strlen(v) >= f.text + f.text_len)
			__builtin_trap();
		total += strlen(n) + strlen(v);
		for (size_t k = 0; k < i; k++)
			if (strcmp(f.f[k].name, n) == 0)
				__builtin_trap();
		if (privacy_form_get(&f, n) != v)
			__builtin_trap();
	}
	if (total > size || f.text_len > size + 2 * f.n)
		__builtin_trap();
	privacy_form_wipe(&f);
	for (size_t i = 0; i < f.text_len; i++)
		if (f.text[i])
			__builtin_trap();
out:
	arena_release(&a);
	return 0;
}
