/* coding_int.h - shared by the files of src/coding/. */
#ifndef CK_CODING_INT_H
#define CK_CODING_INT_H

#include "coding/coding.h"

/* One kind of row of an edit table (MCE list, POA-exempt list) and the edit
 * it drives (edits.c). */
struct coding_edit_def {
	const char *kind;       /* as in the file: "Female_Only" */
	char code_type;         /* 'D', 'P', or 0 for either */
	const char *id_d, *id_p;/* the edit's id for a diagnosis / a procedure */
};

extern const struct coding_edit_def coding_edit_defs[];
extern const size_t coding_n_edit_defs;
const struct coding_edit_def *coding_edit_def_find(const char *kind, size_t n);

#endif
