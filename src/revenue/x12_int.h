/* x12_int.h - the implementation-guide tables (private to src/revenue).
 *
 * tools/gen_x12.c writes these tables into $(BUILD)/gen/x12_maps.c at build
 * time from the pyx12-format XML maps in data/x12/ (the guides' loops,
 * segments, elements, code lists and syntax notes): nothing here is written
 * by hand.  One map per implementation guide; its nodes are one flat array
 * in document order, linked as a tree by indices (parent, first child, next
 * sibling), so a walker moves with integer arithmetic and no allocation. */
#ifndef CK_X12_INT_H
#define CK_X12_INT_H

#include <stddef.h>
#include <stdint.h>

enum x12_node_kind {
	X12_N_LOOP = 1,  /* a loop of the guide (1000A, 2300, ...) */
	X12_N_WRAP,      /* a table wrapper (HEADER, DETAIL): no segment of its own */
	X12_N_SEG,
	X12_N_ELE,       /* a simple element, or a component of a composite */
	X12_N_COMP       /* a composite element */
};

enum x12_type {
	X12_T_AN = 1, X12_T_ID, X12_T_N, X12_T_R, X12_T_DT, X12_T_TM, X12_T_B
};

/* A data element of the dictionary (dataele.xml). */
struct x12_dele {
	const char *num;      /* "1035", "I12" */
	uint8_t type;         /* enum x12_type */
	uint8_t decimals;     /* Nn: n */
	uint16_t min, max;    /* lengths */
};

/* A syntax note of a segment: P (paired), R (at least one), E (exclusion:
 * at most one), C (if the first, all the others), L (if the first, at
 * least one of the others).  Elements are 1-based positions. */
struct x12_syntax {
	char kind;
	uint8_t n;
	uint8_t ele[8];
};

struct x12_node {
	const char *xid;      /* "2000B", "NM1", "NM101", "SV101-01" */
	const char *name;     /* the guide's name */
	uint8_t kind;         /* enum x12_node_kind */
	char usage;           /* 'R' required, 'S' situational, 'N' not used */
	uint16_t pos;         /* loops, segments: position; elements: sequence */
	uint32_t repeat;      /* loops: instances; segments: uses; elements:
			       * repetitions; 0: unbounded (">1") */
	int32_t parent, child, next;  /* node indices, -1 for none */
	uint16_t ord;         /* index among the parent's children */
	uint16_t nkids;
	char seg[4];          /* segment id; for loops that of the first segment */
	int32_t dele;         /* index into x12_deles, -1 for none */
	uint32_t codes, ncodes;       /* range of x12_codes (sorted), ncodes 0: any */
	uint32_t syn, nsyn;           /* range of x12_syntaxes */
	/* Segments: the element whose code list tells this segment from others
	 * with the same id (NM101, HL03, ...), 1-based, 0 for none; comp: 1 when
	 * it is the first component of a composite. */
	uint8_t match, match_comp;
	int32_t match_node;
	uint32_t req, nreq;           /* loops: range of x12_reqs, the required children */
	uint32_t kids;                /* loops: start of its nkids children in x12_kids, and
				       * of their segment ids (as the 4 bytes of seg) in
				       * x12_kid_ids: the walker scans those, not the nodes */
};

struct x12_map {
	const char *st;       /* transaction set id: "837" */
	const char *fic;      /* functional identifier (GS01): "HC" */
	const char *guide;    /* GS08 without the addenda suffix: "005010X222" */
	const char *name;
	const struct x12_node *nodes;
	uint32_t n_nodes;     /* node 0 is the ST_LOOP (the transaction) */
	uint16_t max_kids;
	uint8_t depth;        /* deepest loop nesting */
};

extern const char *const x12_codes[];
extern const uint16_t x12_code_lens[];
extern const struct x12_dele x12_deles[];
extern const size_t x12_n_deles;
extern const struct x12_syntax x12_syntaxes[];
extern const int32_t x12_reqs[];
extern const int32_t x12_kids[];
extern const uint32_t x12_kid_ids[];
extern const struct x12_map x12_maps[];
extern const size_t x12_n_maps;
/* The envelope (ISA, GS, GE, TA1, IEA) from x12.control.00501.xml. */
extern const struct x12_map x12_control;

#endif
