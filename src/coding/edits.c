/* edits.c - claim coding edits (coding_code_edits). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coding/coding_int.h"
#include "base/banned.h"

/* The edit lists chartkeep loads, with the MCE's numbering of the edits
 * (CMS "Definition of Medicare Code Edits", v37). */
const struct coding_edit_def coding_edit_defs[] = {
	{ "Newborn_Only", 'D', "MCE-4A", NULL },
	{ "Pediatric_Only", 'D', "MCE-4B", NULL },
	{ "Maternity_Only", 'D', "MCE-4C", NULL },
	{ "Adult_Only", 'D', "MCE-4D", NULL },
	{ "Female_Only", 0, "MCE-5A", "MCE-5B" },
	{ "Male_Only", 0, "MCE-5C", "MCE-5D" },
	{ "Principal_Manifestation", 'D', "MCE-6", NULL },
	{ "Principal_Questionable_Admit", 'D', "MCE-8A", NULL },
	{ "Principal_Unacceptable", 'D', "MCE-9", NULL },
	{ "Noncovered_Always", 'P', NULL, "MCE-11A" },
	{ "Noncovered_Over60", 'P', NULL, "MCE-11F" },
	{ "Limited_Coverage", 'P', NULL, "MCE-17A" },
	{ "Wrong_Performed", 'D', "MCE-18", NULL },
	{ "Noncovered_LOS_96hr", 'P', NULL, "MCE-19" },
	{ "POA_Exempt", 'D', NULL, NULL },
};
const size_t coding_n_edit_defs = ARRAY_SIZE(coding_edit_defs);

const struct coding_edit_def *coding_edit_def_find(const char *kind, size_t n)
{
	for (size_t i = 0; i < coding_n_edit_defs; i++)
		if (strlen(coding_edit_defs[i].kind) == n && memcmp(coding_edit_defs[i].kind, kind, n) == 0)
			return &coding_edit_defs[i];
	return NULL;
}
