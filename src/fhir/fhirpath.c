/* fhirpath.c - a FHIRPath subset for search-parameter index extraction.
 *
 * What the 1,375 R4 SearchParameters use, plus what custom parameters
 * commonly add (extension('url'), exists(), =, and/or), and nothing else:
 * see fhirpath.h for the list.  Anything outside it fails at compile time
 * with ERR_NOT_SUPPORTED naming the construct, so an index is never built
 * from a half-understood expression.
 *
 * Compiling.  A recursive-descent parser with FHIRPath's precedence table
 * (binops[]) builds an array of nodes (struct fp_ast); identifiers and
 * string literals are decoded into one pool allocated up front, so nothing
 * moves while parsing.  A second pass (chk) walks the tree once: with a
 * context type it drops union branches rooted at other resource types and,
 * where the static type of a path is known, checks each element name against
 * the model (a type set per node, as a bit set over fhir_types).  Literals
 * become json-c values owned by the expression.
 *
 * Evaluating.  FHIRPath is defined on collections.  Every intermediate
 * collection lives on one stack: the caller's fp_result.  An operator is
 * given its focus as a range [lo, hi) of that stack, appends its results
 * above, then removes the inputs it evaluated itself (drop), sliding the
 * results down.  So an evaluation allocates nothing once the caller's array
 * has grown to the largest intermediate collection, and an error only has to
 * cut the stack back to where it started.  Booleans the evaluator produces are
 * two json-c values held by the expression, not new allocations; the few
 * that end up among the results are copied out (own_results).
 *
 * Deliberate differences from full FHIRPath, all harmless for indexing:
 *   - `as` filters a collection of any size (the R4 parameters rely on
 *     Observation.component.value as Quantity) instead of failing on more
 *     than one item; it is then the same as ofType().
 *   - `|` removes duplicates by identity (the same JSON value reached twice),
 *     not by value; the indexer removes duplicate index entries anyway.
 *   - resolve() looks at the reference text only (fp_reference_type): it
 *     exists here only as `resolve() is Type`.
 *   - System type names (String, Boolean, DateTime, ...) match the FHIR
 *     primitives whose values are of that System type (DateTime: dateTime
 *     and instant), so R4's `value.as(DateTime)` finds valueDateTime.
 *   - Quantity also matches Age, Count, Distance and Duration (the model
 *     folds SimpleQuantity and MoneyQuantity into Quantity).
 *   - A primitive with only an extension (null in an array, or "_x" without
 *     "x") yields no node. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fhir/fhirpath.h"
#include "base/id.h"
#include "base/json_patch.h"
#include "base/banned.h"

/* ------------------------------------------------------------------ */
/* the compiled form                                                   */

enum op {
	OP_NONE = 0, /* a resolve() consumed by `resolve() is T` */
	OP_STEP,     /* src.name: a child element (or the alternatives of name[x]) */
	OP_ROOT,     /* a type name starting a path: the focus items of that type */
	OP_THIS,     /* $this */
	OP_RESOURCE, /* %resource, %rootResource */
	OP_CONTEXT,  /* %context */
	OP_LIT,      /* a literal: lit */
	OP_EMPTY,    /* {} */
	OP_UNION,    /* children: src, then the chain of next */
	OP_AND,
	OP_OR,
	OP_EQ,
	OP_NE,
	OP_INDEX,    /* src[index] */
	OP_CALL,     /* src.fn(arg) */
};

enum fn {
	FN_WHERE = 1, FN_EXISTS, FN_EMPTY, FN_NOT, FN_FIRST, FN_LAST,
	FN_AS, FN_OFTYPE, FN_IS, FN_EXTENSION, FN_RESOLVE,
	FN_REF_IS,   /* resolve() is T, from the reference text */
};

enum ts_kind {
	TS_EXACT = 1,  /* the FHIR type t */
	TS_QUANTITY,   /* Quantity and its specialisations */
	TS_RESOURCE,   /* any resource */
	TS_DOMAIN,     /* any DomainResource (has text) */
	TS_SYSTEM,     /* primitives whose value has System type sys */
};

enum sys_type {
	SYS_NONE = 0, SYS_BOOLEAN, SYS_STRING, SYS_INTEGER, SYS_DECIMAL, SYS_DATE,
	SYS_DATETIME, SYS_TIME,
};

struct tspec {
	uint8_t kind;                /* enum ts_kind */
	uint8_t sys;                 /* enum sys_type, for TS_SYSTEM */
	const struct fhir_type *t;   /* TS_EXACT, TS_QUANTITY */
};

struct fp_ast {
	uint8_t op;          /* enum op */
	uint8_t fn;          /* enum fn, for OP_CALL */
	uint16_t height;     /* of the subtree, bounded by FP_MAX_DEPTH */
	uint32_t pos;        /* offset in the source, for messages */
	int32_t src;         /* input (path so far, left operand); -1: the focus */
	int32_t arg;         /* argument, right operand; -1: none */
	int32_t next;        /* next child of a union; -1: none */
	const char *name;    /* element name (pool, NUL-terminated) */
	size_t index;        /* OP_INDEX */
	struct tspec ts;     /* OP_ROOT, FN_AS, FN_OFTYPE, FN_IS, FN_REF_IS */
	json_object *lit;    /* OP_LIT, FN_EXTENSION (the url); owned */
	const struct fhir_type *lit_type;
};

/* A string or number literal, for copying it out of the expression. */
struct lit_ref {
	json_object *v;
	const char *text;  /* a number's source text (keeps 2.50 as written) */
};

struct fp_expr {
	struct fp_ast *n;
	size_t count, cap;
	int32_t root;
	char *pool;
	struct lit_ref *lits;          /* sorted by v, for own_results() */
	size_t nlits;
	json_object *b_true, *b_false; /* every boolean made while evaluating is one of these */
	const struct fhir_type *t_boolean, *t_string, *t_integer, *t_decimal, *t_extension;
};

/* ------------------------------------------------------------------ */
/* types                                                               */

/* Quantity's specialisations in R4; the model folds the profiles
 * SimpleQuantity and MoneyQuantity into Quantity itself, but should a model
 * ever keep them they still match. */
static const char *const quantity_family[] = {
	"Quantity", "Age", "Count", "Distance", "Duration", "MoneyQuantity", "SimpleQuantity",
};

static const struct {
	const char *name;
	uint8_t sys;
} system_types[] = {
	{ "Boolean", SYS_BOOLEAN }, { "String", SYS_STRING }, { "Integer", SYS_INTEGER },
	{ "Decimal", SYS_DECIMAL }, { "Date", SYS_DATE }, { "DateTime", SYS_DATETIME },
	{ "Time", SYS_TIME },
};

/* The System type of a FHIR primitive's value. */
static int sys_of_prim(int prim)
{
	switch (prim) {
	case FP_BOOLEAN: return SYS_BOOLEAN;
	case FP_INTEGER:
	case FP_UNSIGNEDINT:
	case FP_POSITIVEINT: return SYS_INTEGER;
	case FP_DECIMAL: return SYS_DECIMAL;
	case FP_DATE: return SYS_DATE;
	case FP_DATETIME:
	case FP_INSTANT: return SYS_DATETIME;
	case FP_TIME: return SYS_TIME;
	default: return SYS_STRING;
	}
}

static bool is_quantity(const struct fhir_type *t)
{
	if (t->kind != FK_COMPLEX)
		return false;
	for (size_t i = 0; i < sizeof(quantity_family) / sizeof(quantity_family[0]); i++)
		if (strcmp(t->name, quantity_family[i]) == 0)
			return true;
	return false;
}

static bool is_domain_resource(const struct fhir_type *t)
{
	return t->kind == FK_RESOURCE && fhir_elem_find(t, "text") != NULL;
}

static bool type_match(const struct fhir_type *t, const struct tspec *ts)
{
	switch (ts->kind) {
	case TS_EXACT: return t == ts->t;
	case TS_QUANTITY: return is_quantity(t);
	case TS_RESOURCE: return t->kind == FK_RESOURCE;
	case TS_DOMAIN: return is_domain_resource(t);
	case TS_SYSTEM: return t->kind == FK_PRIMITIVE && sys_of_prim(t->prim) == ts->sys;
	}
	return false;
}

/* A type specifier: ns is "FHIR", "System" or NULL (FHIR first, then
 * System).  Returns 0, or -1 if there is no such type. */
static int tspec_parse(const char *ns, const char *name, struct tspec *ts)
{
	bool fhir = !ns || strcmp(ns, "FHIR") == 0;
	bool sys = !ns || strcmp(ns, "System") == 0;

	memset(ts, 0, sizeof(*ts));
	if (fhir) {
		const struct fhir_type *t;

		if (strcmp(name, "Resource") == 0) {
			ts->kind = TS_RESOURCE;
			return 0;
		}
		if (strcmp(name, "DomainResource") == 0) {
			ts->kind = TS_DOMAIN;
			return 0;
		}
		t = fhir_type_by_name(name);
		if (!t && (strcmp(name, "SimpleQuantity") == 0 || strcmp(name, "MoneyQuantity") == 0))
			t = fhir_type_by_name("Quantity");
		if (t) {
			ts->t = t;
			ts->kind = strcmp(name, "Quantity") == 0 ? TS_QUANTITY : TS_EXACT;
			return 0;
		}
	}
	if (sys) {
		if (strcmp(name, "Quantity") == 0) {
			ts->t = fhir_type_by_name("Quantity");
			ts->kind = TS_QUANTITY;
			return ts->t ? 0 : -1;
		}
		for (size_t i = 0; i < sizeof(system_types) / sizeof(system_types[0]); i++) {
			if (strcmp(name, system_types[i].name) == 0) {
				ts->kind = TS_SYSTEM;
				ts->sys = system_types[i].sys;
				return 0;
			}
		}
	}
	return -1;
}

/* The elements FHIRPath's `name` denotes on type t: the element itself, or
 * every alternative of the choice name[x] (valueQuantity, valueString, ...).
 * A choice alternative's JSON name is not a FHIRPath name: `valueQuantity`
 * finds nothing.  Fills out[0..max) and returns the count. */
#define MAX_ALTERNATIVES 64

static size_t elems_named(const struct fhir_type *t, const char *name, const struct fhir_elem **out,
			  size_t max)
{
	const struct fhir_elem *els = &fhir_elems[t->first_elem];
	size_t len = strlen(name), lo = 0, hi = t->n_elems, n = 0;

	/* lower bound of name: the exact element, then the names it prefixes */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(els[mid].name, name) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < t->n_elems && strcmp(els[lo].name, name) == 0 && !els[lo].choice_group) {
		out[0] = &els[lo];
		return 1;
	}
	for (size_t i = lo; i < t->n_elems && strncmp(els[i].name, name, len) == 0; i++) {
		const struct fhir_elem *el = &els[i];

		if (el->choice_group && strncmp(el->base, name, len) == 0 &&
		    strcmp(el->base + len, "[x]") == 0 && n < max)
			out[n++] = el;
	}
	return n;
}

/* ------------------------------------------------------------------ */
/* lexer                                                               */

enum tok {
	T_END, T_IDENT, T_QIDENT, T_STRING, T_NUMBER, T_DATE, T_PERCENT, T_DOLLAR,
	T_DOT, T_LPAREN, T_RPAREN, T_LBRACK, T_RBRACK, T_LBRACE, T_RBRACE, T_COMMA,
	T_PIPE, T_EQ, T_NE, T_OP,
};

struct token {
	int kind;        /* enum tok */
	uint32_t pos;    /* offset of its first byte */
	const char *s;   /* identifier, decoded string, number text, operator (NUL-terminated) */
	size_t len;
};

struct parser {
	const char *src;
	size_t len, at;
	struct token t;     /* the current token */
	struct fp_expr *x;
	size_t pool_used;
	int depth;
	size_t open_comment;  /* offset of an unterminated comment + 1, or 0 */
	struct err *e;
};

static bool is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static int syntax(struct parser *p, size_t pos, const char *what)
{
	return err_set(p->e, ERR_INVALID, "fhirpath: syntax error at offset %zu: %s", pos, what);
}

static int unsupported(struct parser *p, size_t pos, const char *what, const char *name)
{
	return err_set(p->e, ERR_NOT_SUPPORTED, "fhirpath: %s '%.64s' is not supported (offset %zu)",
		       what, name, pos);
}

static int unsupported_form(struct parser *p, size_t pos, const char *what)
{
	return err_set(p->e, ERR_NOT_SUPPORTED, "fhirpath: %s is not supported (offset %zu)", what,
		       pos);
}

/* Room for n more bytes and a NUL in the pool: never fails, the pool is
 * sized for the worst case (see fp_compile). */
static char *pool_take(struct parser *p, size_t n)
{
	char *s = p->x->pool + p->pool_used;

	p->pool_used += n + 1;
	s[n] = '\0';
	return s;
}

static void skip_space(struct parser *p)
{
	for (;;) {
		char c = p->at < p->len ? p->src[p->at] : '\0';

		if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
			p->at++;
		} else if (c == '/' && p->at + 1 < p->len && p->src[p->at + 1] == '/') {
			while (p->at < p->len && p->src[p->at] != '\n')
				p->at++;
		} else if (c == '/' && p->at + 1 < p->len && p->src[p->at + 1] == '*') {
			const char *end = NULL;
			size_t from = p->at + 2;

			for (size_t i = from; i + 1 < p->len; i++) {
				if (p->src[i] == '*' && p->src[i + 1] == '/') {
					end = p->src + i;
					break;
				}
			}
			if (!end) {
				p->open_comment = p->at + 1;  /* reported by next() */
				p->at = p->len;
				return;
			}
			p->at = (size_t)(end - p->src) + 2;
		} else {
			return;
		}
	}
}

static int hex4(const char *s, unsigned *out)
{
	unsigned v = 0;

	for (int i = 0; i < 4; i++) {
		char c = s[i];
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (unsigned)(c - 'A' + 10);
		else
			return -1;
	}
	*out = v;
	return 0;
}

/* A quoted string or identifier from the quote at p->at, decoded into the
 * pool.  The decoded text is never longer than the quoted one. */
static int lex_quoted(struct parser *p, char quote, int kind)
{
	size_t start = p->at, i = p->at + 1;
	char *out = p->x->pool + p->pool_used;
	size_t n = 0;

	for (;;) {
		char c;

		if (i >= p->len)
			return syntax(p, start, quote == '\'' ? "unterminated string" :
							      "unterminated quoted identifier");
		c = p->src[i];
		if (c == quote)
			break;
		if (c != '\\') {
			out[n++] = c;
			i++;
			continue;
		}
		if (i + 1 >= p->len)
			return syntax(p, i, "unterminated escape");
		c = p->src[i + 1];
		i += 2;
		switch (c) {
		case '\'': case '"': case '`': case '\\': case '/': out[n++] = c; break;
		case 'f': out[n++] = '\f'; break;
		case 'n': out[n++] = '\n'; break;
		case 'r': out[n++] = '\r'; break;
		case 't': out[n++] = '\t'; break;
		case 'u': {
			unsigned cp, lo;

			if (i + 4 > p->len || hex4(p->src + i, &cp) < 0)
				return syntax(p, i - 2, "bad \\u escape");
			i += 4;
			if (cp >= 0xDC00 && cp <= 0xDFFF)
				return syntax(p, i - 6, "lone surrogate in \\u escape");
			if (cp >= 0xD800 && cp <= 0xDBFF) {
				if (i + 6 > p->len || p->src[i] != '\\' || p->src[i + 1] != 'u' ||
				    hex4(p->src + i + 2, &lo) < 0 || lo < 0xDC00 || lo > 0xDFFF)
					return syntax(p, i - 6, "lone surrogate in \\u escape");
				i += 6;
				cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
			}
			if (cp == 0)
				return syntax(p, i - 6, "NUL in a string");
			if (cp < 0x80) {
				out[n++] = (char)cp;
			} else if (cp < 0x800) {
				out[n++] = (char)(0xC0 | (cp >> 6));
				out[n++] = (char)(0x80 | (cp & 0x3F));
			} else if (cp < 0x10000) {
				out[n++] = (char)(0xE0 | (cp >> 12));
				out[n++] = (char)(0x80 | ((cp >> 6) & 0x3F));
				out[n++] = (char)(0x80 | (cp & 0x3F));
			} else {
				out[n++] = (char)(0xF0 | (cp >> 18));
				out[n++] = (char)(0x80 | ((cp >> 12) & 0x3F));
				out[n++] = (char)(0x80 | ((cp >> 6) & 0x3F));
				out[n++] = (char)(0x80 | (cp & 0x3F));
			}
			break;
		}
		default:
			return syntax(p, i - 2, "unknown escape");
		}
	}
	if (memchr(out, '\0', n))
		return syntax(p, start, "NUL in a string");
	p->t.kind = kind;
	p->t.s = pool_take(p, n);
	p->t.len = n;
	p->at = i + 1;
	return 0;
}

static void lex_word(struct parser *p, size_t from, int kind)
{
	size_t i = from;
	char *s;

	while (i < p->len && (is_alpha(p->src[i]) || is_digit(p->src[i])))
		i++;
	s = pool_take(p, i - from);
	memcpy(s, p->src + from, i - from);
	p->t.kind = kind;
	p->t.s = s;
	p->t.len = i - from;
	p->at = i;
}

/* Read the next token into p->t. */
static int next(struct parser *p)
{
	static const char *const ops2[] = { "<=", ">=", "!=", "!~" };
	static const char ops1[] = "<>~+-*/&=|.()[]{},";
	char c;

	skip_space(p);
	if (p->open_comment)
		return syntax(p, p->open_comment - 1, "unterminated comment");
	p->t.pos = (uint32_t)p->at;
	p->t.s = "";
	p->t.len = 0;
	if (p->at >= p->len) {
		p->t.kind = T_END;
		return 0;
	}
	c = p->src[p->at];
	if (is_alpha(c)) {
		lex_word(p, p->at, T_IDENT);
		return 0;
	}
	if (c == '`')
		return lex_quoted(p, '`', T_QIDENT);
	if (c == '\'')
		return lex_quoted(p, '\'', T_STRING);
	if (is_digit(c)) {
		size_t i = p->at;
		char *s;

		while (i < p->len && is_digit(p->src[i]))
			i++;
		if (i + 1 < p->len && p->src[i] == '.' && is_digit(p->src[i + 1])) {
			i++;
			while (i < p->len && is_digit(p->src[i]))
				i++;
		}
		s = pool_take(p, i - p->at);
		memcpy(s, p->src + p->at, i - p->at);
		p->t.kind = T_NUMBER;
		p->t.s = s;
		p->t.len = i - p->at;
		p->at = i;
		return 0;
	}
	if (c == '@') {
		p->t.kind = T_DATE;
		p->at++;
		return 0;
	}
	if (c == '%' || c == '$') {
		int kind = c == '%' ? T_PERCENT : T_DOLLAR;
		size_t from = p->at + 1;

		if (c == '%' && from < p->len && (p->src[from] == '`' || p->src[from] == '\'')) {
			p->at = from;
			if (lex_quoted(p, p->src[from], T_PERCENT) < 0)
				return -1;
			return 0;
		}
		if (from >= p->len || !is_alpha(p->src[from]))
			return syntax(p, p->at, c == '%' ? "expected a name after '%'" :
							  "expected a name after '$'");
		lex_word(p, from, kind);
		return 0;
	}
	for (size_t i = 0; i < sizeof(ops2) / sizeof(ops2[0]); i++) {
		if (p->at + 1 < p->len && c == ops2[i][0] && p->src[p->at + 1] == ops2[i][1]) {
			p->t.kind = i == 2 ? T_NE : T_OP;
			p->t.s = ops2[i];
			p->t.len = 2;
			p->at += 2;
			return 0;
		}
	}
	if (c != '\0' && strchr(ops1, c)) {
		static const struct {
			char c;
			int kind;
		} punct[] = {
			{ '=', T_EQ }, { '|', T_PIPE }, { '.', T_DOT }, { '(', T_LPAREN },
			{ ')', T_RPAREN }, { '[', T_LBRACK }, { ']', T_RBRACK }, { '{', T_LBRACE },
			{ '}', T_RBRACE }, { ',', T_COMMA },
		};
		static const char *const one[] = { "<", ">", "~", "+", "-", "*", "/", "&" };

		p->t.kind = T_OP;
		for (size_t i = 0; i < sizeof(punct) / sizeof(punct[0]); i++)
			if (punct[i].c == c)
				p->t.kind = punct[i].kind;
		if (p->t.kind == T_OP) {
			for (size_t i = 0; i < sizeof(one) / sizeof(one[0]); i++)
				if (one[i][0] == c)
					p->t.s = one[i];
			p->t.len = 1;
		}
		p->at++;
		return 0;
	}
	return syntax(p, p->at, "unexpected character");
}

/* Is the next non-blank character c?  (Function calls: name '(' .) */
static bool followed_by(struct parser *p, char c)
{
	size_t save = p->at;
	bool yes;

	skip_space(p);
	yes = p->at < p->len && p->src[p->at] == c;
	p->at = save;
	return yes;
}

static int expect(struct parser *p, int kind, const char *what)
{
	if (p->t.kind != kind)
		return syntax(p, p->t.pos, what);
	return next(p);
}

/* ------------------------------------------------------------------ */
/* parser                                                              */

/* Binary operators by precedence (higher binds tighter), FHIRPath 2.0 s. 6.
 * op 0: valid FHIRPath this subset does not evaluate. */
enum binop_kind { B_UNION = 100, B_IS, B_AS };

static const struct binop {
	int tok;            /* T_IDENT (word), T_OP (text), or the token kind */
	const char *text;
	int prec;
	int op;             /* enum op, B_*, or 0 */
} binops[] = {
	{ T_IDENT, "implies", 0, 0 },
	{ T_IDENT, "or", 1, OP_OR },
	{ T_IDENT, "xor", 1, 0 },
	{ T_IDENT, "and", 2, OP_AND },
	{ T_IDENT, "in", 3, 0 },
	{ T_IDENT, "contains", 3, 0 },
	{ T_EQ, "=", 4, OP_EQ },
	{ T_NE, "!=", 4, OP_NE },
	{ T_OP, "~", 4, 0 },
	{ T_OP, "!~", 4, 0 },
	{ T_OP, "<", 5, 0 },
	{ T_OP, "<=", 5, 0 },
	{ T_OP, ">", 5, 0 },
	{ T_OP, ">=", 5, 0 },
	{ T_PIPE, "|", 6, B_UNION },
	{ T_IDENT, "is", 7, B_IS },
	{ T_IDENT, "as", 7, B_AS },
	{ T_OP, "+", 8, 0 },
	{ T_OP, "-", 8, 0 },
	{ T_OP, "&", 8, 0 },
	{ T_OP, "*", 9, 0 },
	{ T_OP, "/", 9, 0 },
	{ T_IDENT, "div", 9, 0 },
	{ T_IDENT, "mod", 9, 0 },
};

enum arg_kind { ARG_NONE, ARG_EXPR, ARG_OPT_EXPR, ARG_TYPE, ARG_STRING };

static const struct fndef {
	const char *name;
	uint8_t fn;
	uint8_t arg;   /* enum arg_kind */
} fns[] = {
	{ "where", FN_WHERE, ARG_EXPR },
	{ "exists", FN_EXISTS, ARG_OPT_EXPR },
	{ "empty", FN_EMPTY, ARG_NONE },
	{ "not", FN_NOT, ARG_NONE },
	{ "first", FN_FIRST, ARG_NONE },
	{ "last", FN_LAST, ARG_NONE },
	{ "as", FN_AS, ARG_TYPE },
	{ "ofType", FN_OFTYPE, ARG_TYPE },
	{ "is", FN_IS, ARG_TYPE },
	{ "extension", FN_EXTENSION, ARG_STRING },
	{ "resolve", FN_RESOLVE, ARG_NONE },
};

static const struct binop *binop_of(const struct token *t)
{
	for (size_t i = 0; i < sizeof(binops) / sizeof(binops[0]); i++) {
		const struct binop *b = &binops[i];

		if (b->tok != t->kind)
			continue;
		if ((t->kind == T_IDENT || t->kind == T_OP) && strcmp(b->text, t->s) != 0)
			continue;
		return b;
	}
	return NULL;
}

static int32_t node_new(struct parser *p, int op, uint32_t pos, int32_t src, int32_t arg)
{
	struct fp_expr *x = p->x;
	struct fp_ast *a;
	unsigned h = 0;

	if (x->count == x->cap) {
		size_t cap = x->cap ? x->cap * 2 : 16;
		struct fp_ast *n = realloc(x->n, cap * sizeof(*n));

		if (!n) {
			err_set(p->e, ERR_NOMEM, "out of memory");
			return -1;
		}
		x->n = n;
		x->cap = cap;
	}
	if (src >= 0)
		h = x->n[src].height;
	if (arg >= 0 && x->n[arg].height > h)
		h = x->n[arg].height;
	if (h + 1 > FP_MAX_DEPTH) {
		err_set(p->e, ERR_INVALID, "fhirpath: expression nested too deeply (offset %u)", pos);
		return -1;
	}
	a = &x->n[x->count];
	memset(a, 0, sizeof(*a));
	a->op = (uint8_t)op;
	a->height = (uint16_t)(h + 1);
	a->pos = pos;
	a->src = src;
	a->arg = arg;
	a->next = -1;
	return (int32_t)x->count++;
}

/* A literal node; takes lit. */
static int32_t lit_new(struct parser *p, uint32_t pos, json_object *lit, const struct fhir_type *t)
{
	int32_t k;

	if (!lit) {
		err_set(p->e, ERR_NOMEM, "out of memory");
		return -1;
	}
	k = node_new(p, OP_LIT, pos, -1, -1);
	if (k < 0) {
		json_object_put(lit);
		return -1;
	}
	p->x->n[k].lit = lit;
	p->x->n[k].lit_type = t;
	return k;
}

static bool is_name(const struct token *t)
{
	return t->kind == T_IDENT || t->kind == T_QIDENT;
}

/* typeSpecifier: Name, FHIR.Name or System.Name. */
static int parse_type(struct parser *p, struct tspec *ts)
{
	const char *ns = NULL, *name;
	uint32_t pos = p->t.pos;

	if (!is_name(&p->t))
		return syntax(p, p->t.pos, "expected a type name");
	name = p->t.s;
	if (next(p) < 0)
		return -1;
	if (p->t.kind == T_DOT && (strcmp(name, "FHIR") == 0 || strcmp(name, "System") == 0)) {
		ns = name;
		if (next(p) < 0)
			return -1;
		if (!is_name(&p->t))
			return syntax(p, p->t.pos, "expected a type name");
		name = p->t.s;
		if (next(p) < 0)
			return -1;
	}
	if (tspec_parse(ns, name, ts) < 0)
		return err_set(p->e, ERR_INVALID, "fhirpath: unknown type '%s%s%.64s' (offset %u)",
			       ns ? ns : "", ns ? "." : "", name, pos);
	if (p->t.kind == T_DOT)
		return syntax(p, p->t.pos, "a type name cannot be followed by '.': use (x as T).y");
	return 0;
}

static int32_t parse_expr(struct parser *p, int min_prec);

/* `name(` has been seen (name is the current token); src is the input, -1
 * for the focus. */
static int32_t parse_call(struct parser *p, int32_t src)
{
	const struct fndef *f = NULL;
	uint32_t pos = p->t.pos;
	const char *name = p->t.s;
	int32_t k, arg = -1;
	struct tspec ts = { 0, 0, NULL };
	json_object *url = NULL;

	for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]); i++)
		if (p->t.kind == T_IDENT && strcmp(fns[i].name, name) == 0)
			f = &fns[i];
	if (!f) {
		unsupported(p, pos, "function", name);
		return -1;
	}
	if (next(p) < 0 || expect(p, T_LPAREN, "expected '('") < 0)
		return -1;
	switch (f->arg) {
	case ARG_NONE:
		break;
	case ARG_OPT_EXPR:
		if (p->t.kind == T_RPAREN)
			break;
		/* fall through */
	case ARG_EXPR:
		arg = parse_expr(p, 0);
		if (arg < 0)
			return -1;
		break;
	case ARG_TYPE:
		if (parse_type(p, &ts) < 0)
			return -1;
		break;
	case ARG_STRING:
		if (p->t.kind != T_STRING || !followed_by(p, ')')) {
			unsupported_form(p, p->t.pos, "extension() with an argument other than a string literal");
			return -1;
		}
		url = json_object_new_string_len(p->t.s, (int)p->t.len);
		if (!url) {
			err_set(p->e, ERR_NOMEM, "out of memory");
			return -1;
		}
		if (next(p) < 0) {
			json_object_put(url);
			return -1;
		}
		break;
	}
	if (expect(p, T_RPAREN, f->arg == ARG_NONE ? "expected ')': this function takes no argument"
						   : "expected ')'") < 0) {
		json_object_put(url);
		return -1;
	}
	/* resolve() is T: decided from the reference text, see fp_reference_type */
	if (f->fn == FN_IS && src >= 0 && p->x->n[src].op == OP_CALL &&
	    p->x->n[src].fn == FN_RESOLVE) {
		p->x->n[src].op = OP_NONE;
		k = node_new(p, OP_CALL, pos, p->x->n[src].src, -1);
		if (k >= 0) {
			p->x->n[k].fn = FN_REF_IS;
			p->x->n[k].ts = ts;
		}
		return k;
	}
	k = node_new(p, OP_CALL, pos, src, arg);
	if (k < 0) {
		json_object_put(url);
		return -1;
	}
	p->x->n[k].fn = f->fn;
	p->x->n[k].lit = url;
	if (f->arg == ARG_TYPE)
		p->x->n[k].ts = ts;
	return k;
}

static bool is_upper(char c)
{
	return c >= 'A' && c <= 'Z';
}

/* A name in term position: a type name starting a path, or an element of
 * the focus. */
static int32_t parse_name(struct parser *p)
{
	const char *name = p->t.s;
	uint32_t pos = p->t.pos;
	bool quoted = p->t.kind == T_QIDENT;
	struct tspec ts;
	int32_t k;

	if (!quoted && followed_by(p, '('))
		return parse_call(p, -1);
	if (next(p) < 0)
		return -1;
	/* FHIR element names start in lower case, type names in upper case */
	if (!quoted && is_upper(name[0]) && tspec_parse(NULL, name, &ts) == 0) {
		k = node_new(p, OP_ROOT, pos, -1, -1);
		if (k >= 0) {
			p->x->n[k].ts = ts;
			p->x->n[k].name = name;
		}
		return k;
	}
	k = node_new(p, OP_STEP, pos, -1, -1);
	if (k >= 0)
		p->x->n[k].name = name;
	return k;
}

static const char *const calendar_units[] = {
	"year", "years", "month", "months", "week", "weeks", "day", "days", "hour", "hours",
	"minute", "minutes", "second", "seconds", "millisecond", "milliseconds",
};

static int32_t parse_number(struct parser *p)
{
	uint32_t pos = p->t.pos;
	const char *s = p->t.s;
	json_object *lit;
	const struct fhir_type *t;

	if (!strchr(s, '.')) {
		long long v;

		errno = 0;
		v = strtoll(s, NULL, 10);
		if (errno != 0 || v > INT32_MAX) {
			syntax(p, pos, "integer out of range");
			return -1;
		}
		lit = json_object_new_int64(v);
		t = p->x->t_integer;
	} else {
		lit = json_object_new_double_s(strtod(s, NULL), s);
		t = p->x->t_decimal;
	}
	if (next(p) < 0) {
		json_object_put(lit);
		return -1;
	}
	if (p->t.kind == T_STRING) {
		json_object_put(lit);
		unsupported_form(p, pos, "a quantity literal");
		return -1;
	}
	for (size_t i = 0; p->t.kind == T_IDENT && i < sizeof(calendar_units) / sizeof(calendar_units[0]); i++) {
		if (strcmp(p->t.s, calendar_units[i]) == 0) {
			json_object_put(lit);
			unsupported_form(p, pos, "a quantity literal");
			return -1;
		}
	}
	{
		int32_t k = lit_new(p, pos, lit, t);

		if (k >= 0)
			p->x->n[k].name = s;
		return k;
	}
}

static int32_t parse_term(struct parser *p)
{
	uint32_t pos = p->t.pos;
	int32_t k;

	switch (p->t.kind) {
	case T_LPAREN:
		if (next(p) < 0)
			return -1;
		k = parse_expr(p, 0);
		if (k < 0 || expect(p, T_RPAREN, "expected ')'") < 0)
			return -1;
		return k;
	case T_STRING: {
		json_object *s = json_object_new_string_len(p->t.s, (int)p->t.len);

		if (next(p) < 0) {
			json_object_put(s);
			return -1;
		}
		return lit_new(p, pos, s, p->x->t_string);
	}
	case T_NUMBER:
		return parse_number(p);
	case T_DATE:
		unsupported_form(p, pos, "a date/time literal (@...)");
		return -1;
	case T_LBRACE:
		if (next(p) < 0 || expect(p, T_RBRACE, "expected '}' (only {} is a collection literal)") < 0)
			return -1;
		return node_new(p, OP_EMPTY, pos, -1, -1);
	case T_PERCENT: {
		static const struct {
			const char *name;
			const char *value;  /* NULL: not a string */
			int op;
		} vars[] = {
			{ "resource", NULL, OP_RESOURCE },
			{ "rootResource", NULL, OP_RESOURCE },
			{ "context", NULL, OP_CONTEXT },
			{ "ucum", "http://unitsofmeasure.org", OP_LIT },
			{ "sct", "http://snomed.info/sct", OP_LIT },
			{ "loinc", "http://loinc.org", OP_LIT },
		};
		const char *name = p->t.s;

		for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
			if (strcmp(vars[i].name, name) != 0)
				continue;
			if (next(p) < 0)
				return -1;
			if (vars[i].op == OP_LIT)
				return lit_new(p, pos, json_object_new_string(vars[i].value),
					       p->x->t_string);
			return node_new(p, vars[i].op, pos, -1, -1);
		}
		unsupported(p, pos, "environment variable", name);
		return -1;
	}
	case T_DOLLAR:
		if (strcmp(p->t.s, "this") != 0) {
			unsupported(p, pos, "variable", p->t.s);
			return -1;
		}
		if (next(p) < 0)
			return -1;
		return node_new(p, OP_THIS, pos, -1, -1);
	case T_IDENT:
		if (strcmp(p->t.s, "true") == 0 || strcmp(p->t.s, "false") == 0) {
			bool v = p->t.s[0] == 't';

			if (next(p) < 0)
				return -1;
			return lit_new(p, pos, json_object_get(v ? p->x->b_true : p->x->b_false),
				       p->x->t_boolean);
		}
		return parse_name(p);
	case T_QIDENT:
		return parse_name(p);
	case T_OP:
		if (strcmp(p->t.s, "+") == 0 || strcmp(p->t.s, "-") == 0) {
			unsupported(p, pos, "unary operator", p->t.s);
			return -1;
		}
		break;
	case T_END:
		syntax(p, pos, "unexpected end of expression");
		return -1;
	default:
		break;
	}
	syntax(p, pos, "expected a name, literal or '('");
	return -1;
}

/* A term followed by .name, .fn(...) and [n]. */
static int32_t parse_postfix(struct parser *p)
{
	int32_t k = parse_term(p);

	while (k >= 0) {
		if (p->t.kind == T_DOT) {
			if (next(p) < 0)
				return -1;
			if (!is_name(&p->t)) {
				syntax(p, p->t.pos, "expected a name after '.'");
				return -1;
			}
			if (p->t.kind == T_IDENT && followed_by(p, '(')) {
				k = parse_call(p, k);
			} else {
				const char *name = p->t.s;
				uint32_t pos = p->t.pos;

				if (next(p) < 0)
					return -1;
				k = node_new(p, OP_STEP, pos, k, -1);
				if (k >= 0)
					p->x->n[k].name = name;
			}
		} else if (p->t.kind == T_LBRACK) {
			uint32_t pos = p->t.pos;
			size_t index;

			if (next(p) < 0)
				return -1;
			if (p->t.kind == T_END) {
				syntax(p, p->t.pos, "unexpected end of expression");
				return -1;
			}
			if (p->t.kind == T_NUMBER && !strchr(p->t.s, '.') && !followed_by(p, ']')) {
				size_t save = p->at;
				bool end;

				skip_space(p);
				end = p->at >= p->len;
				p->at = save;
				if (end) {
					syntax(p, (size_t)p->len, "expected ']'");
					return -1;
				}
			}
			if (p->t.kind != T_NUMBER || strchr(p->t.s, '.') || !followed_by(p, ']')) {
				/* the grammar allows any expression: x[%n], x[1 + 1] */
				unsupported_form(p, p->t.pos, "an index other than a whole number literal");
				return -1;
			}
			errno = 0;
			index = (size_t)strtoull(p->t.s, NULL, 10);
			if (errno != 0)
				index = SIZE_MAX;
			if (next(p) < 0 || expect(p, T_RBRACK, "expected ']'") < 0)
				return -1;
			k = node_new(p, OP_INDEX, pos, k, -1);
			if (k >= 0)
				p->x->n[k].index = index;
		} else {
			break;
		}
	}
	return k;
}

/* Add child to the union u (flattened: a | b | c is one node). */
static int union_add(struct parser *p, int32_t u, int32_t child)
{
	struct fp_ast *n = p->x->n;
	int32_t last = n[u].src;

	while (n[last].next >= 0)
		last = n[last].next;
	n[last].next = child;
	if (n[child].height + 1 > n[u].height)
		n[u].height = (uint16_t)(n[child].height + 1);
	if (n[u].height > FP_MAX_DEPTH)
		return err_set(p->e, ERR_INVALID, "fhirpath: expression nested too deeply (offset %u)",
			       n[u].pos);
	return 0;
}

static int32_t parse_expr(struct parser *p, int min_prec)
{
	int32_t left;

	if (++p->depth > FP_MAX_DEPTH) {
		err_set(p->e, ERR_INVALID, "fhirpath: expression nested too deeply (offset %u)", p->t.pos);
		return -1;
	}
	left = parse_postfix(p);
	while (left >= 0) {
		const struct binop *b = binop_of(&p->t);
		uint32_t pos = p->t.pos;
		int32_t right;

		if (!b || b->prec < min_prec)
			break;
		if (b->op == 0) {
			unsupported(p, pos, "operator", b->text);
			return -1;
		}
		if (next(p) < 0)
			return -1;
		if (b->op == B_IS || b->op == B_AS) {
			struct tspec ts;
			struct fp_ast *l;
			int32_t k;

			if (parse_type(p, &ts) < 0)
				return -1;
			l = &p->x->n[left];
			if (b->op == B_IS && l->op == OP_CALL && l->fn == FN_RESOLVE) {
				l->op = OP_NONE;
				k = node_new(p, OP_CALL, pos, l->src, -1);
				if (k >= 0)
					p->x->n[k].fn = FN_REF_IS;
			} else {
				k = node_new(p, OP_CALL, pos, left, -1);
				if (k >= 0)
					p->x->n[k].fn = b->op == B_IS ? FN_IS : FN_AS;
			}
			if (k < 0)
				return -1;
			p->x->n[k].ts = ts;
			left = k;
			continue;
		}
		right = parse_expr(p, b->prec + 1);
		if (right < 0)
			return -1;
		if (b->op == B_UNION) {
			if (p->x->n[left].op != OP_UNION) {
				int32_t u = node_new(p, OP_UNION, pos, left, -1);

				if (u < 0)
					return -1;
				left = u;
			}
			if (union_add(p, left, right) < 0)
				return -1;
			continue;
		}
		left = node_new(p, b->op, pos, left, right);
	}
	p->depth--;
	return left;
}

/* ------------------------------------------------------------------ */
/* the static pass: dead branches, element names                       */

#define TSET_WORDS 16 /* types in the model: checked against fhir_n_types */

struct tset {
	bool any;  /* not known statically */
	uint64_t w[TSET_WORDS];
};

struct cctx {
	struct fp_expr *x;
	struct err *e;
	bool checks;               /* the model fits a tset */
	const struct fhir_type *ctx;  /* the context resource type, or NULL */
	uint8_t ctx_pseudo;        /* TS_RESOURCE / TS_DOMAIN for "Resource" / "DomainResource" */
	bool have_ctx;
	struct tset top;           /* the type of the input (and of %resource) */
	size_t live_reads;         /* places that read the input or the resource */
	size_t foreign_roots;      /* paths rooted at another type (dropped) */
};

static void ts_clear(struct tset *s, bool any)
{
	memset(s, 0, sizeof(*s));
	s->any = any;
}

static void ts_add(struct tset *s, const struct fhir_type *t)
{
	size_t i = (size_t)(t - fhir_types);

	if (i < TSET_WORDS * 64)
		s->w[i / 64] |= (uint64_t)1 << (i % 64);
}

static bool ts_empty(const struct tset *s)
{
	if (s->any)
		return false;
	for (size_t i = 0; i < TSET_WORDS; i++)
		if (s->w[i])
			return false;
	return true;
}

static void ts_union(struct tset *d, const struct tset *s)
{
	d->any = d->any || s->any;
	for (size_t i = 0; i < TSET_WORDS; i++)
		d->w[i] |= s->w[i];
}

static void ts_resources(struct tset *s, uint8_t which)
{
	for (size_t i = 0; i < fhir_n_resource_types; i++) {
		const struct fhir_type *t = &fhir_types[fhir_resource_types[i]];

		if (which == TS_RESOURCE || is_domain_resource(t))
			ts_add(s, t);
	}
}

/* Each type in s (call with s not `any`). */
#define TS_FOREACH(s, t)                                                              \
	for (size_t ts_i_ = 0; ts_i_ < fhir_n_types && ts_i_ < TSET_WORDS * 64; ts_i_++) \
		if (((s)->w[ts_i_ / 64] >> (ts_i_ % 64)) & 1 &&                         \
		    ((t) = &fhir_types[ts_i_]) != NULL)

/* The types a type specifier can keep out of s. */
static void ts_filter(struct tset *out, const struct tset *in, const struct tspec *ts)
{
	const struct fhir_type *t;

	ts_clear(out, in->any);
	if (in->any)
		return;
	TS_FOREACH(in, t)
		if (type_match(t, ts))
			ts_add(out, t);
}

static int chk(struct cctx *c, int32_t *kp, const struct tset *focus, bool top, struct tset *out,
	       bool *dead);

/* The types a path step yields. */
static int chk_step(struct cctx *c, const struct fp_ast *a, const struct tset *in, struct tset *out)
{
	const struct fhir_type *t;
	const struct fhir_type *first = NULL;
	bool found = false;

	ts_clear(out, in->any || !c->checks);
	if (out->any || ts_empty(in))
		return 0;
	TS_FOREACH(in, t) {
		const struct fhir_elem *els[MAX_ALTERNATIVES];
		size_t n;

		if (!first)
			first = t;
		if (t->kind == FK_PRIMITIVE) {
			/* a primitive's id and extension live in its "_x" companion */
			if (strcmp(a->name, "extension") == 0) {
				ts_add(out, c->x->t_extension);
				found = true;
			} else if (strcmp(a->name, "id") == 0) {
				ts_add(out, c->x->t_string);
				found = true;
			}
			continue;
		}
		n = elems_named(t, a->name, els, MAX_ALTERNATIVES);
		for (size_t i = 0; i < n; i++) {
			const struct fhir_type *et = &fhir_types[els[i]->type];

			if (et->kind == FK_ANY_RESOURCE || et->kind == FK_RESOURCE)
				ts_resources(out, TS_RESOURCE);
			else
				ts_add(out, et);
			found = true;
		}
	}
	if (!found)
		return err_set(c->e, ERR_INVALID, "fhirpath: no element '%.64s' in %s (offset %u)",
			       a->name, first->name, a->pos);
	return 0;
}

static int chk_call(struct cctx *c, struct fp_ast *a, const struct tset *in, bool src_dead,
		    struct tset *out, bool *dead)
{
	struct tset ignore;
	bool d;

	*dead = src_dead;
	switch (a->fn) {
	case FN_WHERE:
		*out = *in;
		return chk(c, &a->arg, in, false, &ignore, &d);
	case FN_EXISTS:
	case FN_EMPTY:
		/* on nothing they still answer: false, true */
		*dead = false;
		ts_clear(out, false);
		ts_add(out, c->x->t_boolean);
		return a->arg >= 0 ? chk(c, &a->arg, in, false, &ignore, &d) : 0;
	case FN_NOT:
	case FN_IS:
	case FN_REF_IS:
		ts_clear(out, false);
		ts_add(out, c->x->t_boolean);
		if (a->fn == FN_REF_IS && a->ts.kind != TS_RESOURCE && a->ts.kind != TS_DOMAIN &&
		    !(a->ts.kind == TS_EXACT && a->ts.t->kind == FK_RESOURCE))
			return err_set(c->e, ERR_INVALID,
				       "fhirpath: resolve() is %s: not a resource type (offset %u)",
				       a->ts.t ? a->ts.t->name : "a System type", a->pos);
		return 0;
	case FN_FIRST:
	case FN_LAST:
		*out = *in;
		return 0;
	case FN_AS:
	case FN_OFTYPE:
		ts_filter(out, in, &a->ts);
		return 0;
	case FN_EXTENSION:
		ts_clear(out, false);
		ts_add(out, c->x->t_extension);
		return 0;
	case FN_RESOLVE:
		return err_set(c->e, ERR_NOT_SUPPORTED,
			       "fhirpath: resolve() is supported only as 'resolve() is Type' (offset %u)",
			       a->pos);
	}
	return err_set(c->e, ERR_INTERNAL, "fhirpath: bad function %d", a->fn);
}

/*
 * Check node *kp given the types of its focus.  top: the focus is the
 * expression's input (not a where() item), so a type name that does not
 * match the context makes the path dead: statically empty.  A union drops
 * its dead children, and *kp is replaced by the child when one is left.
 * out: the types the node can yield.
 */
static int chk(struct cctx *c, int32_t *kp, const struct tset *focus, bool top, struct tset *out,
	       bool *dead)
{
	struct fp_ast *a = &c->x->n[*kp];
	struct tset in;
	bool src_dead = false;

	*dead = false;
	if (a->op == OP_UNION) {
		int32_t *link = &a->src, live = 0;
		bool all_dead = true;

		ts_clear(out, false);
		while (*link >= 0) {
			struct tset t;
			bool d;

			if (chk(c, link, focus, top, &t, &d) < 0)
				return -1;
			if (d) {
				*link = c->x->n[*link].next;   /* unlink the dead branch */
				continue;
			}
			all_dead = false;
			live++;
			ts_union(out, &t);
			link = &c->x->n[*link].next;
		}
		*dead = all_dead;
		if (live == 1) {
			/* the child takes the union's place, in a chain too */
			c->x->n[a->src].next = a->next;
			*kp = a->src;
		}
		return 0;
	}
	if (a->op == OP_AND || a->op == OP_OR || a->op == OP_EQ || a->op == OP_NE) {
		struct tset t;
		bool d1, d2;

		if (chk(c, &a->src, focus, top, &t, &d1) < 0 || chk(c, &a->arg, focus, top, &t, &d2) < 0)
			return -1;
		/* = and != on nothing give nothing; and/or only when both sides do */
		*dead = (a->op == OP_EQ || a->op == OP_NE) ? (d1 || d2) : (d1 && d2);
		ts_clear(out, false);
		ts_add(out, c->x->t_boolean);
		return 0;
	}
	if (a->src >= 0) {
		if (chk(c, &a->src, focus, top, &in, &src_dead) < 0)
			return -1;
		a = &c->x->n[*kp];
		if (src_dead)
			ts_clear(&in, false);
	} else {
		in = *focus;
		/* a relative path, $this, %resource: reads the input whatever its type */
		if ((top && a->op != OP_ROOT && a->op != OP_LIT && a->op != OP_EMPTY) ||
		    a->op == OP_RESOURCE || a->op == OP_CONTEXT)
			c->live_reads++;
	}
	switch (a->op) {
	case OP_STEP:
		*dead = src_dead;
		return chk_step(c, a, &in, out);
	case OP_ROOT:
		if (top && c->have_ctx) {
			bool live = c->ctx ? type_match(c->ctx, &a->ts)
				    : a->ts.kind == TS_RESOURCE ||
				      (a->ts.kind == TS_DOMAIN && c->ctx_pseudo == TS_DOMAIN);
			*dead = !live;
			if (live) {
				c->live_reads++;
				*out = c->top;
			} else {
				c->foreign_roots++;
				ts_clear(out, false);
			}
			return 0;
		}
		ts_filter(out, &in, &a->ts);
		if (in.any && a->ts.kind == TS_EXACT) {
			ts_clear(out, false);
			ts_add(out, a->ts.t);
		}
		return 0;
	case OP_THIS:
		*out = in;
		return 0;
	case OP_RESOURCE:
	case OP_CONTEXT:
		*out = c->top;
		return 0;
	case OP_LIT:
		ts_clear(out, false);
		ts_add(out, a->lit_type);
		return 0;
	case OP_EMPTY:
		ts_clear(out, false);
		return 0;
	case OP_INDEX:
		*dead = src_dead;
		*out = in;
		return 0;
	case OP_CALL:
		return chk_call(c, a, &in, src_dead, out, dead);
	}
	return err_set(c->e, ERR_INTERNAL, "fhirpath: bad node %d", a->op);
}

/* ------------------------------------------------------------------ */
/* compile                                                             */

static int lit_cmp(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t)((const struct lit_ref *)a)->v;
	uintptr_t y = (uintptr_t)((const struct lit_ref *)b)->v;

	return x < y ? -1 : x > y;
}

/* The string and number literals, sorted by address. */
static int collect_literals(struct fp_expr *x)
{
	size_t n = 0;

	for (size_t i = 0; i < x->count; i++)
		if (x->n[i].op == OP_LIT && x->n[i].lit_type != x->t_boolean)
			n++;
	if (n == 0)
		return 0;
	x->lits = malloc(n * sizeof(*x->lits));
	if (!x->lits)
		return -1;
	for (size_t i = 0; i < x->count; i++) {
		if (x->n[i].op != OP_LIT || x->n[i].lit_type == x->t_boolean)
			continue;
		x->lits[x->nlits].v = x->n[i].lit;
		x->lits[x->nlits].text = x->n[i].name;
		x->nlits++;
	}
	qsort(x->lits, x->nlits, sizeof(*x->lits), lit_cmp);
	return 0;
}

/* Mark the nodes reachable from k. */
static void mark(const struct fp_expr *x, int32_t k, int32_t *map)
{
	const struct fp_ast *a = &x->n[k];

	map[k] = 0;
	if (a->op == OP_UNION) {
		for (int32_t ch = a->src; ch >= 0; ch = x->n[ch].next)
			mark(x, ch, map);
	} else if (a->src >= 0) {
		mark(x, a->src, map);
	}
	if (a->arg >= 0)
		mark(x, a->arg, map);
}

/* Keep only the nodes still reachable, and their names, in arrays of the
 * exact size: a 30-branch union compiled for one type keeps one branch, and
 * all of them stay in memory for the life of the server. */
static int compact(struct fp_expr *x)
{
	int32_t *map = malloc(x->count * sizeof(*map));
	struct fp_ast *n = NULL;
	char *pool = NULL;
	size_t count = 0, bytes = 0, used = 0;
	int rc = -1;

	if (!map)
		goto out;
	for (size_t i = 0; i < x->count; i++)
		map[i] = -1;
	mark(x, x->root, map);
	for (size_t i = 0; i < x->count; i++) {
		if (map[i] < 0)
			continue;
		map[i] = (int32_t)count++;
		if (x->n[i].name)
			bytes += strlen(x->n[i].name) + 1;
	}
	n = malloc(count * sizeof(*n));
	pool = malloc(bytes ? bytes : 1);
	if (!n || !pool)
		goto out;
	for (size_t i = 0; i < x->count; i++) {
		struct fp_ast *a = &x->n[i], *b;

		if (map[i] < 0) {
			json_object_put(a->lit);
			continue;
		}
		b = &n[map[i]];
		*b = *a;
		b->src = a->src >= 0 ? map[a->src] : -1;
		b->arg = a->arg >= 0 ? map[a->arg] : -1;
		b->next = a->next >= 0 ? map[a->next] : -1;
		if (a->name) {
			size_t len = strlen(a->name) + 1;

			memcpy(pool + used, a->name, len);
			b->name = pool + used;
			used += len;
		}
	}
	x->root = map[x->root];
	free(x->n);
	free(x->pool);
	x->n = n;
	x->count = x->cap = count;
	x->pool = pool;
	n = NULL;
	pool = NULL;
	rc = 0;
out:
	free(map);
	free(n);
	free(pool);
	return rc;
}

void fp_free(struct fp_expr *x)
{
	if (!x)
		return;
	for (size_t i = 0; i < x->count; i++)
		json_object_put(x->n[i].lit);
	json_object_put(x->b_true);
	json_object_put(x->b_false);
	free(x->lits);
	free(x->n);
	free(x->pool);
	free(x);
}

int fp_compile(const char *expr, const char *context_type, struct fp_expr **out, struct err *e)
{
	struct parser p;
	struct fp_expr *x = NULL;
	struct cctx c;
	struct tset t;
	size_t len = strlen(expr);
	bool dead;
	int rc = -1;

	*out = NULL;
	memset(&c, 0, sizeof(c));
	if (len > FP_MAX_EXPR_LEN) {
		err_set(e, ERR_INVALID, "fhirpath: expression longer than %d bytes", FP_MAX_EXPR_LEN);
		goto out;
	}
	if (context_type) {
		c.have_ctx = true;
		c.ctx = fhir_resource_type(context_type);
		if (!c.ctx && strcmp(context_type, "Resource") == 0)
			c.ctx_pseudo = TS_RESOURCE;
		else if (!c.ctx && strcmp(context_type, "DomainResource") == 0)
			c.ctx_pseudo = TS_DOMAIN;
		else if (!c.ctx) {
			err_set(e, ERR_INVALID, "fhirpath: unknown resource type '%.64s'", context_type);
			goto out;
		}
	}
	x = calloc(1, sizeof(*x));
	if (!x)
		goto nomem;
	/* every token's text is at most as long as its source, plus a NUL */
	x->pool = malloc(2 * len + 2);
	x->b_true = json_object_new_boolean(1);
	x->b_false = json_object_new_boolean(0);
	if (!x->pool || !x->b_true || !x->b_false)
		goto nomem;
	x->t_boolean = fhir_type_by_name("boolean");
	x->t_string = fhir_type_by_name("string");
	x->t_integer = fhir_type_by_name("integer");
	x->t_decimal = fhir_type_by_name("decimal");
	x->t_extension = fhir_type_by_name("Extension");
	if (!x->t_boolean || !x->t_string || !x->t_integer || !x->t_decimal || !x->t_extension) {
		err_set(e, ERR_INTERNAL, "fhirpath: the model lacks a basic type");
		goto out;
	}

	memset(&p, 0, sizeof(p));
	p.src = expr;
	p.len = len;
	p.x = x;
	p.e = e;
	if (next(&p) < 0)
		goto out;
	x->root = parse_expr(&p, 0);
	if (x->root < 0)
		goto out;
	if (p.t.kind != T_END) {
		syntax(&p, p.t.pos, p.t.kind == T_RPAREN ? "unbalanced ')'" : "expected an operator");
		goto out;
	}
	for (size_t i = 0; i < x->count; i++) {
		if (x->n[i].op == OP_CALL && x->n[i].fn == FN_RESOLVE) {
			err_set(e, ERR_NOT_SUPPORTED,
				"fhirpath: resolve() is supported only as 'resolve() is Type' (offset %u)",
				x->n[i].pos);
			goto out;
		}
	}

	c.x = x;
	c.e = e;
	c.checks = fhir_n_types <= TSET_WORDS * 64;
	ts_clear(&c.top, true);
	if (c.checks && c.ctx) {
		ts_clear(&c.top, false);
		ts_add(&c.top, c.ctx);
	} else if (c.checks && c.ctx_pseudo) {
		ts_clear(&c.top, false);
		ts_resources(&c.top, c.ctx_pseudo);
	}
	if (!c.checks)
		c.have_ctx = false;
	if (chk(&c, &x->root, &c.top, true, &t, &dead) < 0)
		goto out;
	if (dead || (c.live_reads == 0 && c.foreign_roots > 0)) {
		/* Nothing applies to this type: not an error.  An expression whose
		 * every path is rooted at other types is dropped even when it
		 * would answer (Patient.deceased.exists() is false on an Account). */
		rc = 0;
		goto out;
	}
	if (compact(x) < 0 || collect_literals(x) < 0)
		goto nomem;
	*out = x;
	x = NULL;
	rc = 0;
	goto out;
nomem:
	err_set(e, ERR_NOMEM, "out of memory");
out:
	fp_free(x);
	return rc;
}

/* ------------------------------------------------------------------ */
/* evaluation                                                          */

struct ectx {
	const struct fp_expr *x;
	struct fp_result *st;     /* the stack of collections: the caller's result */
	json_object *resource;
	struct fp_node root;      /* %resource */
	struct fp_node input;     /* %context */
	size_t steps;
	struct err *e;
};

enum { B_EMPTY = 0, B_FALSE, B_TRUE };

static int ev(struct ectx *c, int32_t k, size_t lo, size_t hi);

/* Count one step of work against FP_MAX_STEPS. */
static int tick(struct ectx *c)
{
	if (++c->steps > FP_MAX_STEPS)
		return err_set(c->e, ERR_UNPROCESSABLE,
			       "fhirpath: evaluation exceeds %zu steps", (size_t)FP_MAX_STEPS);
	return 0;
}

static int push(struct ectx *c, const struct fp_node *nd)
{
	struct fp_result *r = c->st;

	if (tick(c) < 0)
		return -1;
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 32;
		struct fp_node *v = realloc(r->v, cap * sizeof(*v));

		if (!v)
			return err_set(c->e, ERR_NOMEM, "out of memory");
		r->v = v;
		r->cap = cap;
	}
	r->v[r->n] = *nd;
	if (nd->owned)
		json_object_get(nd->v);
	r->n++;
	return 0;
}

static int push_value(struct ectx *c, json_object *v, const struct fhir_type *t, json_object *ext)
{
	struct fp_node nd = { v, t, ext, false };

	return push(c, &nd);
}

static int push_bool(struct ectx *c, bool b)
{
	return push_value(c, b ? c->x->b_true : c->x->b_false, c->x->t_boolean, NULL);
}

/* Remove [a, b) from the stack, sliding what is above down. */
static void drop(struct ectx *c, size_t a, size_t b)
{
	struct fp_result *r = c->st;

	for (size_t i = a; i < b; i++)
		if (r->v[i].owned)
			json_object_put(r->v[i].v);
	memmove(r->v + a, r->v + b, (r->n - b) * sizeof(*r->v));
	r->n -= b - a;
}

/* The single-item boolean rule (FHIRPath 4.5): nothing is empty, a boolean
 * is itself, any other single item is true, more than one is an error. */
static int truth(struct ectx *c, size_t a, size_t b, int *out)
{
	json_object *v;

	if (a == b) {
		*out = B_EMPTY;
		return 0;
	}
	if (b - a > 1)
		return err_set(c->e, ERR_UNPROCESSABLE,
			       "fhirpath: a boolean operand has more than one item");
	v = c->st->v[a].v;
	*out = json_object_is_type(v, json_type_boolean) && !json_object_get_boolean(v) ? B_FALSE
											    : B_TRUE;
	return 0;
}

/* One item of element el's value: primitives must be scalars, resources
 * take their type from resourceType, everything else must be an object. */
static int emit_item(struct ectx *c, const struct fhir_type *t, json_object *item, json_object *ext)
{
	enum json_type jt = json_object_get_type(item);

	if (t->kind == FK_PRIMITIVE) {
		if (jt == json_type_null || jt == json_type_object || jt == json_type_array)
			return 0;
		return push_value(c, item, t, json_object_is_type(ext, json_type_object) ? ext : NULL);
	}
	if (jt != json_type_object)
		return 0;
	if (t->kind == FK_ANY_RESOURCE || t->kind == FK_RESOURCE) {
		const char *rt = json_get_str(item, "resourceType");

		t = rt ? fhir_resource_type(rt) : NULL;
		if (!t)
			return 0;
	}
	return push_value(c, item, t, NULL);
}

static int emit_member(struct ectx *c, const struct fhir_elem *el, json_object *obj)
{
	const struct fhir_type *t = &fhir_types[el->type];
	json_object *val = NULL, *ext = NULL;

	if (!json_object_object_get_ex(obj, el->name, &val) || !val)
		return 0;
	if (t->kind == FK_PRIMITIVE) {
		char name[96];
		int n = snprintf(name, sizeof(name), "_%s", el->name);

		if (n > 0 && (size_t)n < sizeof(name))
			json_object_object_get_ex(obj, name, &ext);
	}
	if (json_object_is_type(val, json_type_array)) {
		size_t n = json_object_array_length(val);
		bool ext_arr = json_object_is_type(ext, json_type_array);

		for (size_t i = 0; i < n; i++) {
			json_object *xi = ext_arr && i < json_object_array_length(ext)
					  ? json_object_array_get_idx(ext, i) : NULL;

			if (emit_item(c, t, json_object_array_get_idx(val, i), xi) < 0)
				return -1;
		}
		return 0;
	}
	return emit_item(c, t, val, ext);
}

/* in.name */
static int nav(struct ectx *c, const struct fp_node *in, const char *name)
{
	const struct fhir_elem *els[MAX_ALTERNATIVES];
	size_t n;

	if (in->type->kind == FK_PRIMITIVE) {
		json_object *arr;

		/* a primitive's id and extension are in its "_x" companion */
		if (!in->ext)
			return 0;
		if (strcmp(name, "id") == 0) {
			json_object *id = json_get(in->ext, "id");

			return id ? emit_item(c, c->x->t_string, id, NULL) : 0;
		}
		if (strcmp(name, "extension") != 0)
			return 0;
		arr = json_get_arr(in->ext, "extension");
		for (size_t i = 0, m = arr ? json_object_array_length(arr) : 0; i < m; i++)
			if (emit_item(c, c->x->t_extension, json_object_array_get_idx(arr, i), NULL) < 0)
				return -1;
		return 0;
	}
	n = elems_named(in->type, name, els, MAX_ALTERNATIVES);
	for (size_t i = 0; i < n; i++)
		if (emit_member(c, els[i], in->v) < 0)
			return -1;
	return 0;
}

/* extension('url') on one node */
static int extension_of(struct ectx *c, const struct fp_node *in, json_object *url)
{
	json_object *obj = in->type->kind == FK_PRIMITIVE ? in->ext : in->v;
	json_object *arr = obj ? json_get_arr(obj, "extension") : NULL;
	size_t n = arr ? json_object_array_length(arr) : 0;

	for (size_t i = 0; i < n; i++) {
		json_object *it = json_object_array_get_idx(arr, i);
		json_object *u = json_get(it, "url");

		if (u && json_object_is_type(u, json_type_string) &&
		    json_object_get_string_len(u) == json_object_get_string_len(url) &&
		    memcmp(json_object_get_string(u), json_object_get_string(url),
			   (size_t)json_object_get_string_len(url)) == 0)
			if (emit_item(c, c->x->t_extension, it, NULL) < 0)
				return -1;
	}
	return 0;
}

static bool is_number(json_object *v)
{
	return json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double);
}

/* FHIRPath = on two items. */
static bool item_equal(const struct fp_node *a, const struct fp_node *b)
{
	enum json_type ta = json_object_get_type(a->v), tb = json_object_get_type(b->v);

	if (is_number(a->v) && is_number(b->v)) {
		if (ta == json_type_int && tb == json_type_int)
			return json_object_get_int64(a->v) == json_object_get_int64(b->v);
		return json_object_get_double(a->v) == json_object_get_double(b->v);
	}
	if (ta != tb)
		return false;
	switch (ta) {
	case json_type_string:
		return json_object_get_string_len(a->v) == json_object_get_string_len(b->v) &&
		       memcmp(json_object_get_string(a->v), json_object_get_string(b->v),
			      (size_t)json_object_get_string_len(a->v)) == 0;
	case json_type_boolean:
		return !json_object_get_boolean(a->v) == !json_object_get_boolean(b->v);
	case json_type_object:
		return a->type == b->type && json_patch_equal(a->v, b->v);
	default:
		return false;
	}
}

/* The input of a: its src evaluated onto the stack, or the focus. */
static int input(struct ectx *c, const struct fp_ast *a, size_t lo, size_t hi, size_t *from,
		 size_t *to)
{
	if (a->src < 0) {
		*from = lo;
		*to = hi;
		return 0;
	}
	*from = c->st->n;
	if (ev(c, a->src, lo, hi) < 0)
		return -1;
	*to = c->st->n;
	return 0;
}

/* Done with a's input; its results are above it. */
static void input_done(struct ectx *c, const struct fp_ast *a, size_t from, size_t to)
{
	if (a->src >= 0)
		drop(c, from, to);
}

/* Keep the items of [from, n) not already in [base, from) or earlier in
 * [from, n): the union's duplicate removal, by identity. */
static int dedup(struct ectx *c, size_t base, size_t from)
{
	struct fp_result *r = c->st;
	size_t w = from, end = r->n;
	size_t nkeep = from - base, nnew = end - from;

	if (nkeep * nnew <= 4096) {
		for (size_t i = from; i < end; i++) {
			bool dup = false;

			for (size_t j = base; j < w && !dup; j++)
				dup = r->v[j].v == r->v[i].v;
			if (dup) {
				if (r->v[i].owned)
					json_object_put(r->v[i].v);
			} else {
				r->v[w++] = r->v[i];
			}
		}
	} else {
		/* open addressing over the pointers kept so far */
		size_t cap = 16, mask;
		const void **h;

		while (cap < 2 * (nkeep + nnew))
			cap *= 2;
		mask = cap - 1;
		h = calloc(cap, sizeof(*h));
		if (!h)
			return err_set(c->e, ERR_NOMEM, "out of memory");
		for (size_t i = base; i < end; i++) {
			const void *key = r->v[i].v;
			size_t slot = ((uintptr_t)key >> 4) * 0x9E3779B97F4A7C15u & mask;
			bool dup = false;

			while (h[slot]) {
				if (h[slot] == key) {
					dup = true;
					break;
				}
				slot = (slot + 1) & mask;
			}
			if (i < from)
				h[slot] = key;  /* earlier items are already distinct */
			else if (dup) {
				if (r->v[i].owned)
					json_object_put(r->v[i].v);
			} else {
				h[slot] = key;
				r->v[w++] = r->v[i];
			}
		}
		free(h);
	}
	r->n = w;
	return 0;
}

/* The type a reference's text names, for resolve() is T on a canonical or
 * uri as well as a Reference. */
static const char *ref_type_text(const char *s, json_object *resource);

static int ev_call(struct ectx *c, const struct fp_ast *a, size_t lo, size_t hi)
{
	size_t from, to;
	int b;

	if (input(c, a, lo, hi, &from, &to) < 0)
		return -1;
	switch (a->fn) {
	case FN_WHERE:
	case FN_EXISTS:
		if (a->fn == FN_EXISTS && a->arg < 0) {
			if (push_bool(c, to > from) < 0)
				return -1;
			break;
		}
		{
			size_t count = 0;

			for (size_t i = from; i < to; i++) {
				size_t m = c->st->n;

				if (tick(c) < 0 || ev(c, a->arg, i, i + 1) < 0 ||
				    truth(c, m, c->st->n, &b) < 0)
					return -1;
				drop(c, m, c->st->n);
				if (b != B_TRUE)
					continue;
				count++;
				if (a->fn == FN_WHERE) {
					struct fp_node nd = c->st->v[i];

					if (push(c, &nd) < 0)
						return -1;
				}
			}
			if (a->fn == FN_EXISTS && push_bool(c, count > 0) < 0)
				return -1;
		}
		break;
	case FN_EMPTY:
		if (push_bool(c, to == from) < 0)
			return -1;
		break;
	case FN_NOT:
		if (truth(c, from, to, &b) < 0)
			return -1;
		if (b != B_EMPTY && push_bool(c, b == B_FALSE) < 0)
			return -1;
		break;
	case FN_FIRST:
	case FN_LAST:
		if (to > from) {
			struct fp_node nd = c->st->v[a->fn == FN_FIRST ? from : to - 1];

			if (push(c, &nd) < 0)
				return -1;
		}
		break;
	case FN_AS:
	case FN_OFTYPE:
		for (size_t i = from; i < to; i++) {
			struct fp_node nd = c->st->v[i];

			if (type_match(nd.type, &a->ts) && push(c, &nd) < 0)
				return -1;
		}
		break;
	case FN_IS:
	case FN_REF_IS:
		if (to == from)
			break;
		if (to - from > 1)
			return err_set(c->e, ERR_UNPROCESSABLE,
				       "fhirpath: 'is' applied to more than one item (offset %u)", a->pos);
		{
			const struct fp_node *nd = &c->st->v[from];
			bool match;

			if (a->fn == FN_IS) {
				match = type_match(nd->type, &a->ts);
			} else {
				/* resolve() yields nothing for a reference of unknown type */
				const char *rt = NULL;
				const struct fhir_type *t;

				if (json_object_is_type(nd->v, json_type_object))
					rt = fp_reference_type(nd->v, c->resource);
				else if (json_object_is_type(nd->v, json_type_string))
					rt = ref_type_text(json_object_get_string(nd->v), c->resource);
				t = rt ? fhir_resource_type(rt) : NULL;
				if (!t)
					break;
				match = type_match(t, &a->ts);
			}
			if (push_bool(c, match) < 0)
				return -1;
		}
		break;
	case FN_EXTENSION:
		for (size_t i = from; i < to; i++) {
			struct fp_node nd = c->st->v[i];

			if (extension_of(c, &nd, a->lit) < 0)
				return -1;
		}
		break;
	default:
		return err_set(c->e, ERR_INTERNAL, "fhirpath: bad function %d", a->fn);
	}
	input_done(c, a, from, to);
	return 0;
}

static int ev_binary(struct ectx *c, const struct fp_ast *a, size_t lo, size_t hi)
{
	size_t m = c->st->n, m1, m2;
	int l, r;
	bool eq;

	if (ev(c, a->src, lo, hi) < 0)
		return -1;
	m1 = c->st->n;
	if (ev(c, a->arg, lo, hi) < 0)
		return -1;
	m2 = c->st->n;
	switch (a->op) {
	case OP_AND:
	case OP_OR:
		if (truth(c, m, m1, &l) < 0 || truth(c, m1, m2, &r) < 0)
			return -1;
		drop(c, m, m2);
		if (a->op == OP_AND) {
			if (l == B_FALSE || r == B_FALSE)
				return push_bool(c, false);
			if (l == B_TRUE && r == B_TRUE)
				return push_bool(c, true);
		} else {
			if (l == B_TRUE || r == B_TRUE)
				return push_bool(c, true);
			if (l == B_FALSE && r == B_FALSE)
				return push_bool(c, false);
		}
		return 0;
	default:
		/* = and !=: nothing if either side is empty; collections item by item */
		if (m1 == m || m2 == m1) {
			drop(c, m, m2);
			return 0;
		}
		eq = m1 - m == m2 - m1;
		for (size_t i = 0; eq && i < m1 - m; i++)
			eq = item_equal(&c->st->v[m + i], &c->st->v[m1 + i]);
		drop(c, m, m2);
		return push_bool(c, a->op == OP_EQ ? eq : !eq);
	}
}

static int ev(struct ectx *c, int32_t k, size_t lo, size_t hi)
{
	const struct fp_ast *a = &c->x->n[k];
	size_t from, to;

	switch (a->op) {
	case OP_STEP:
	case OP_ROOT:
	case OP_INDEX:
		if (input(c, a, lo, hi, &from, &to) < 0)
			return -1;
		for (size_t i = from; i < to; i++) {
			struct fp_node nd = c->st->v[i];
			int rc = 0;

			if (a->op == OP_STEP)
				rc = nav(c, &nd, a->name);
			else if (a->op == OP_ROOT && type_match(nd.type, &a->ts))
				rc = push(c, &nd);
			else if (a->op == OP_INDEX && i - from == a->index)
				rc = push(c, &nd);
			if (rc < 0)
				return -1;
		}
		input_done(c, a, from, to);
		return 0;
	case OP_THIS:
		for (size_t i = lo; i < hi; i++) {
			struct fp_node nd = c->st->v[i];

			if (push(c, &nd) < 0)
				return -1;
		}
		return 0;
	case OP_RESOURCE:
		return push(c, &c->root);
	case OP_CONTEXT:
		return push(c, &c->input);
	case OP_LIT:
		return push_value(c, a->lit, a->lit_type, NULL);
	case OP_EMPTY:
		return 0;
	case OP_UNION: {
		size_t base = c->st->n;

		for (int32_t ch = a->src; ch >= 0; ch = c->x->n[ch].next) {
			size_t start = c->st->n;

			if (ev(c, ch, lo, hi) < 0 || dedup(c, base, start) < 0)
				return -1;
		}
		return 0;
	}
	case OP_AND:
	case OP_OR:
	case OP_EQ:
	case OP_NE:
		return ev_binary(c, a, lo, hi);
	case OP_CALL:
		return ev_call(c, a, lo, hi);
	}
	return err_set(c->e, ERR_INTERNAL, "fhirpath: bad node %d", a->op);
}

/* Results must not borrow from the expression (its literals and the two
 * booleans): they would die with it, and json-c caches a serialisation
 * inside a value, so two threads printing one shared value would race.  The
 * few results that do (Patient-deceased's boolean) become owned copies. */
static int own_results(struct ectx *c, size_t from)
{
	const struct fp_expr *x = c->x;

	for (size_t i = from; i < c->st->n; i++) {
		struct fp_node *nd = &c->st->v[i];
		json_object *copy;
		const struct lit_ref *l;
		struct lit_ref key;

		if (nd->owned || nd->type->kind != FK_PRIMITIVE)
			continue;
		if (nd->v == x->b_true || nd->v == x->b_false) {
			copy = json_object_new_boolean(nd->v == x->b_true);
		} else {
			key.v = nd->v;
			l = x->nlits ? bsearch(&key, x->lits, x->nlits, sizeof(key), lit_cmp) : NULL;
			if (!l)
				continue;
			if (json_object_is_type(l->v, json_type_string))
				copy = json_object_new_string_len(json_object_get_string(l->v),
								  json_object_get_string_len(l->v));
			else if (json_object_is_type(l->v, json_type_int))
				copy = json_object_new_int64(json_object_get_int64(l->v));
			else
				copy = json_object_new_double_s(json_object_get_double(l->v), l->text);
		}
		if (!copy)
			return err_set(c->e, ERR_NOMEM, "out of memory");
		nd->v = copy;
		nd->owned = true;
	}
	return 0;
}

int fp_eval(const struct fp_expr *x, json_object *resource, const struct fp_node *start,
	    struct fp_result *out, struct err *e)
{
	struct ectx c;
	size_t base = out->n;
	const char *rt = json_get_str(resource, "resourceType");
	const struct fhir_type *t = rt ? fhir_resource_type(rt) : NULL;

	if (!t || !json_object_is_type(resource, json_type_object))
		return err_set(e, ERR_INVALID, "fhirpath: not a resource of a known type");
	if (!x)
		return 0;
	memset(&c, 0, sizeof(c));
	c.x = x;
	c.st = out;
	c.resource = resource;
	c.e = e;
	c.root.v = resource;
	c.root.type = t;
	c.input = start ? *start : c.root;
	if (push(&c, &c.input) < 0 || ev(&c, x->root, base, base + 1) < 0) {
		drop(&c, base, out->n);
		return -1;
	}
	drop(&c, base, base + 1);
	if (own_results(&c, base) < 0) {
		drop(&c, base, out->n);
		return -1;
	}
	return 0;
}

void fp_result_init(struct fp_result *r)
{
	r->v = NULL;
	r->n = r->cap = 0;
}

void fp_result_reset(struct fp_result *r)
{
	for (size_t i = 0; i < r->n; i++)
		if (r->v[i].owned)
			json_object_put(r->v[i].v);
	r->n = 0;
}

void fp_result_release(struct fp_result *r)
{
	fp_result_reset(r);
	free(r->v);
	fp_result_init(r);
}

/* ------------------------------------------------------------------ */
/* references                                                          */

/* The resource type named by s[0..n), as the model's name, or NULL. */
static const char *type_name_n(const char *s, size_t n)
{
	const struct fhir_type *t = n ? fhir_resource_type_n(s, n) : NULL;

	return t ? t->name : NULL;
}

static const char *contained_type(json_object *resource, const char *id)
{
	json_object *arr = json_get_arr(resource, "contained");
	size_t n = arr ? json_object_array_length(arr) : 0;

	for (size_t i = 0; i < n; i++) {
		json_object *r = json_object_array_get_idx(arr, i);
		const char *rt;

		if (!json_is_str(json_get(r, "id"), id))
			continue;
		rt = json_get_str(r, "resourceType");
		return rt ? type_name_n(rt, strlen(rt)) : NULL;
	}
	return NULL;
}

static const char *ref_type_text(const char *s, json_object *resource)
{
	size_t end, seg[4][2], nseg = 0;
	const char *q;

	if (s[0] == '#') {
		const char *rt;

		if (s[1] != '\0')
			return contained_type(resource, s + 1);
		rt = json_get_str(resource, "resourceType");
		return rt ? type_name_n(rt, strlen(rt)) : NULL;
	}
	if (strncmp(s, "urn:", 4) == 0)
		return NULL;
	/* a conditional reference: Type?query */
	q = strchr(s, '?');
	if (q && !memchr(s, '/', (size_t)(q - s)))
		return type_name_n(s, (size_t)(q - s));
	end = strcspn(s, "?#");
	/* the last four path segments, newest first */
	while (end > 0 && nseg < 4) {
		size_t b = end;

		while (b > 0 && s[b - 1] != '/')
			b--;
		seg[nseg][0] = b;
		seg[nseg][1] = end - b;
		nseg++;
		if (b == 0)
			break;
		end = b - 1;
	}
	/* Type/id/_history/vid */
	if (nseg == 4 && seg[1][1] == 8 && strncmp(s + seg[1][0], "_history", 8) == 0) {
		seg[0][0] = seg[2][0];
		seg[0][1] = seg[2][1];
		seg[1][0] = seg[3][0];
		seg[1][1] = seg[3][1];
	} else if (nseg < 2) {
		return NULL;
	}
	if (!id_valid(s + seg[0][0], seg[0][1]))
		return NULL;
	return type_name_n(s + seg[1][0], seg[1][1]);
}

const char *fp_reference_type(json_object *reference_obj, json_object *resource)
{
	const char *s = json_get_str(reference_obj, "reference");
	const char *t = s ? ref_type_text(s, resource) : NULL;

	if (!t) {
		/* Reference.type: "Patient" or http://hl7.org/fhir/StructureDefinition/Patient */
		const char *ty = json_get_str(reference_obj, "type");

		if (ty) {
			const char *slash = strrchr(ty, '/');
			const char *name = slash ? slash + 1 : ty;

			t = type_name_n(name, strlen(name));
		}
	}
	return t;
}
