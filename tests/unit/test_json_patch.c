/* test_json_patch.c - RFC 6902 JSON Patch and RFC 6901 JSON Pointer.
 *
 * The cases are tables: RFC 6902 Appendix A (A.1-A.16) word for word, the
 * RFC 6901 section 5 pointer examples, and one row per error with its code
 * and its exact message.  Each row runs as its own cmocka test.  Results are
 * compared with json-c's own json_object_equal(), not with the equality under
 * test. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/json.h"
#include "base/json_patch.h"
#include "base/banned.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

static json_object *parse_depth(const char *s, int depth)
{
	struct err e = ERR_INIT;
	json_object *o = json_parse_buf(s, strlen(s), depth, &e);

	if (e.code != ERR_NONE)
		fail_msg("test data does not parse: %s: %s", s, e.msg);
	return o;
}

static json_object *parse(const char *s)
{
	return parse_depth(s, 0);
}

/* JSON null parses to a NULL object (json-c), so scalars are written as [x]
 * and taken out. */
static json_object *parse_value(const char *s)
{
	struct buf b = BUF_INIT(0);
	json_object *arr, *v;

	buf_addf(&b, "[%s]", s);
	arr = parse(buf_cstr(&b));
	v = json_object_get(json_object_array_get_idx(arr, 0));
	json_object_put(arr);
	buf_release(&b);
	return v;
}

/* Serialisation, copied (json_dump_str's text lives only until o changes). */
static char *dump(json_object *o)
{
	size_t n = 0;
	const char *s = json_dump_str(o, &n);
	char *p = malloc(n + 1);

	assert_non_null(p);
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

/* Parse doc and patch, apply, and return the result (or NULL with *e). */
static json_object *run(const char *doc, const char *patch, struct err *e)
{
	json_object *d = parse_value(doc), *p = parse(patch), *r;
	char *before = dump(d);
	char *after;

	r = json_patch_apply(d, p, e);
	after = dump(d);
	assert_string_equal(before, after); /* the input is never touched */
	free(before);
	free(after);
	json_object_put(d);
	json_object_put(p);
	return r;
}

/* ------------------------------------------------------------------ */
/* RFC 6902 Appendix A                                                 */

struct rfc_case {
	const char *name;
	const char *doc, *patch;
	const char *result; /* NULL: the patch must fail */
	int code;           /* when it fails */
};

static struct rfc_case rfc[] = {
	{ "A.1 adding an object member",
	  "{ \"foo\": \"bar\"}",
	  "[ { \"op\": \"add\", \"path\": \"/baz\", \"value\": \"qux\" } ]",
	  "{ \"baz\": \"qux\", \"foo\": \"bar\" }", 0 },
	{ "A.2 adding an array element",
	  "{ \"foo\": [ \"bar\", \"baz\" ] }",
	  "[ { \"op\": \"add\", \"path\": \"/foo/1\", \"value\": \"qux\" } ]",
	  "{ \"foo\": [ \"bar\", \"qux\", \"baz\" ] }", 0 },
	{ "A.3 removing an object member",
	  "{ \"baz\": \"qux\", \"foo\": \"bar\" }",
	  "[ { \"op\": \"remove\", \"path\": \"/baz\" } ]",
	  "{ \"foo\": \"bar\" }", 0 },
	{ "A.4 removing an array element",
	  "{ \"foo\": [ \"bar\", \"qux\", \"baz\" ] }",
	  "[ { \"op\": \"remove\", \"path\": \"/foo/1\" } ]",
	  "{ \"foo\": [ \"bar\", \"baz\" ] }", 0 },
	{ "A.5 replacing a value",
	  "{ \"baz\": \"qux\", \"foo\": \"bar\" }",
	  "[ { \"op\": \"replace\", \"path\": \"/baz\", \"value\": \"boo\" } ]",
	  "{ \"baz\": \"boo\", \"foo\": \"bar\" }", 0 },
	{ "A.6 moving a value",
	  "{ \"foo\": { \"bar\": \"baz\", \"waldo\": \"fred\" }, \"qux\": { \"corge\": \"grault\" } }",
	  "[ { \"op\": \"move\", \"from\": \"/foo/waldo\", \"path\": \"/qux/thud\" } ]",
	  "{ \"foo\": { \"bar\": \"baz\" }, \"qux\": { \"corge\": \"grault\", \"thud\": \"fred\" } }", 0 },
	{ "A.7 moving an array element",
	  "{ \"foo\": [ \"all\", \"grass\", \"cows\", \"eat\" ] }",
	  "[ { \"op\": \"move\", \"from\": \"/foo/1\", \"path\": \"/foo/3\" } ]",
	  "{ \"foo\": [ \"all\", \"cows\", \"eat\", \"grass\" ] }", 0 },
	{ "A.8 testing a value: success",
	  "{ \"baz\": \"qux\", \"foo\": [ \"a\", 2, \"c\" ] }",
	  "[ { \"op\": \"test\", \"path\": \"/baz\", \"value\": \"qux\" },"
	  "  { \"op\": \"test\", \"path\": \"/foo/1\", \"value\": 2 } ]",
	  "{ \"baz\": \"qux\", \"foo\": [ \"a\", 2, \"c\" ] }", 0 },
	{ "A.9 testing a value: error",
	  "{ \"baz\": \"qux\" }",
	  "[ { \"op\": \"test\", \"path\": \"/baz\", \"value\": \"bar\" } ]",
	  NULL, ERR_UNPROCESSABLE },
	{ "A.10 adding a nested member object",
	  "{ \"foo\": \"bar\" }",
	  "[ { \"op\": \"add\", \"path\": \"/child\", \"value\": { \"grandchild\": { } } } ]",
	  "{ \"foo\": \"bar\", \"child\": { \"grandchild\": { } } }", 0 },
	{ "A.11 ignoring unrecognized elements",
	  "{ \"foo\": \"bar\" }",
	  "[ { \"op\": \"add\", \"path\": \"/baz\", \"value\": \"qux\", \"xyz\": 123 } ]",
	  "{ \"foo\": \"bar\", \"baz\": \"qux\" }", 0 },
	{ "A.12 adding to a nonexistent target",
	  "{ \"foo\": \"bar\" }",
	  "[ { \"op\": \"add\", \"path\": \"/baz/bat\", \"value\": \"qux\" } ]",
	  NULL, ERR_UNPROCESSABLE },
	/* A.13 is a patch that is not even JSON we accept: see test_rfc_a13 */
	{ "A.14 ~ escape ordering",
	  "{ \"/\": 9, \"~1\": 10 }",
	  "[ {\"op\": \"test\", \"path\": \"/~01\", \"value\": 10} ]",
	  "{ \"/\": 9, \"~1\": 10 }", 0 },
	{ "A.15 comparing strings and numbers",
	  "{ \"/\": 9, \"~1\": 10 }",
	  "[ {\"op\": \"test\", \"path\": \"/~01\", \"value\": \"10\"} ]",
	  NULL, ERR_UNPROCESSABLE },
	{ "A.16 adding an array value",
	  "{ \"foo\": [\"bar\"] }",
	  "[ { \"op\": \"add\", \"path\": \"/foo/-\", \"value\": [\"abc\", \"def\"] } ]",
	  "{ \"foo\": [\"bar\", [\"abc\", \"def\"]] }", 0 },

	/* more of the same shape, beyond the appendix */
	{ "add replaces an existing member",
	  "{\"a\":1,\"b\":2}", "[{\"op\":\"add\",\"path\":\"/a\",\"value\":[3]}]",
	  "{\"a\":[3],\"b\":2}", 0 },
	{ "add at index 0", "[1,2]", "[{\"op\":\"add\",\"path\":\"/0\",\"value\":0}]", "[0,1,2]", 0 },
	{ "add at index == length appends", "[1,2]",
	  "[{\"op\":\"add\",\"path\":\"/2\",\"value\":3}]", "[1,2,3]", 0 },
	{ "add - to an empty array", "{\"a\":[]}",
	  "[{\"op\":\"add\",\"path\":\"/a/-\",\"value\":{}}]", "{\"a\":[{}]}", 0 },
	{ "add null into an array", "[1,2]",
	  "[{\"op\":\"add\",\"path\":\"/1\",\"value\":null}]", "[1,null,2]", 0 },
	{ "add a null member and test it", "{}",
	  "[{\"op\":\"add\",\"path\":\"/n\",\"value\":null},{\"op\":\"test\",\"path\":\"/n\",\"value\":null}]",
	  "{\"n\":null}", 0 },
	{ "add the empty-string member", "{}",
	  "[{\"op\":\"add\",\"path\":\"/\",\"value\":1}]", "{\"\":1}", 0 },
	{ "add at the root replaces the document", "{\"a\":1}",
	  "[{\"op\":\"add\",\"path\":\"\",\"value\":[1]}]", "[1]", 0 },
	{ "replace the root", "[1]",
	  "[{\"op\":\"replace\",\"path\":\"\",\"value\":{\"b\":2}}]", "{\"b\":2}", 0 },
	{ "replace with null", "{\"a\":1}",
	  "[{\"op\":\"replace\",\"path\":\"/a\",\"value\":null}]", "{\"a\":null}", 0 },
	{ "replace an array element", "[1,2,3]",
	  "[{\"op\":\"replace\",\"path\":\"/1\",\"value\":9}]", "[1,9,3]", 0 },
	{ "remove the last element", "[1,2,3]",
	  "[{\"op\":\"remove\",\"path\":\"/2\"}]", "[1,2]", 0 },
	{ "remove a null member", "{\"a\":null,\"b\":1}",
	  "[{\"op\":\"remove\",\"path\":\"/a\"}]", "{\"b\":1}", 0 },
	{ "move an element to the front", "[1,2,3]",
	  "[{\"op\":\"move\",\"from\":\"/2\",\"path\":\"/0\"}]", "[3,1,2]", 0 },
	{ "move to itself", "{\"a\":{\"b\":1}}",
	  "[{\"op\":\"move\",\"from\":\"/a\",\"path\":\"/a\"}]", "{\"a\":{\"b\":1}}", 0 },
	{ "move the root to itself", "{\"a\":1}",
	  "[{\"op\":\"move\",\"from\":\"\",\"path\":\"\"}]", "{\"a\":1}", 0 },
	{ "move a member up to the root", "{\"a\":{\"b\":1}}",
	  "[{\"op\":\"move\",\"from\":\"/a\",\"path\":\"\"}]", "{\"b\":1}", 0 },
	{ "move to a sibling prefix is not into itself", "{\"a\":1}",
	  "[{\"op\":\"move\",\"from\":\"/a\",\"path\":\"/ab\"}]", "{\"ab\":1}", 0 },
	{ "move a null", "{\"a\":null}",
	  "[{\"op\":\"move\",\"from\":\"/a\",\"path\":\"/b\"}]", "{\"b\":null}", 0 },
	{ "copy the root into itself", "{\"a\":1}",
	  "[{\"op\":\"copy\",\"from\":\"\",\"path\":\"/c\"}]", "{\"a\":1,\"c\":{\"a\":1}}", 0 },
	{ "copy an element to the end", "[[1],2]",
	  "[{\"op\":\"copy\",\"from\":\"/0\",\"path\":\"/-\"}]", "[[1],2,[1]]", 0 },
	{ "test numbers by value: 1 == 1.0 == 1e0", "{\"n\":1.0,\"m\":1}",
	  "[{\"op\":\"test\",\"path\":\"/n\",\"value\":1},{\"op\":\"test\",\"path\":\"/m\",\"value\":1e0}]",
	  "{\"n\":1.0,\"m\":1}", 0 },
	{ "test objects ignore member order", "{\"o\":{\"a\":1,\"b\":[true,null]}}",
	  "[{\"op\":\"test\",\"path\":\"/o\",\"value\":{\"b\":[true,null],\"a\":1.00}}]",
	  "{\"o\":{\"a\":1,\"b\":[true,null]}}", 0 },
	{ "test arrays are ordered", "{\"a\":[1,2]}",
	  "[{\"op\":\"test\",\"path\":\"/a\",\"value\":[2,1]}]", NULL, ERR_UNPROCESSABLE },
	{ "test the whole document", "{\"a\":[1,2]}",
	  "[{\"op\":\"test\",\"path\":\"\",\"value\":{\"a\":[1,2]}}]", "{\"a\":[1,2]}", 0 },
	{ "operations see earlier ones", "{}",
	  "[{\"op\":\"add\",\"path\":\"/a\",\"value\":[]},{\"op\":\"add\",\"path\":\"/a/-\",\"value\":1},"
	  "{\"op\":\"copy\",\"from\":\"/a\",\"path\":\"/b\"},{\"op\":\"replace\",\"path\":\"/b/0\",\"value\":2},"
	  "{\"op\":\"test\",\"path\":\"/a/0\",\"value\":1}]",
	  "{\"a\":[1],\"b\":[2]}", 0 },
	{ "an empty patch", "{\"a\":1}", "[]", "{\"a\":1}", 0 },
	{ "a null document", "null",
	  "[{\"op\":\"replace\",\"path\":\"\",\"value\":{\"a\":1}}]", "{\"a\":1}", 0 },
};

static void test_rfc(void **state)
{
	const struct rfc_case *c = *state;
	struct err e = ERR_INIT;
	json_object *r = run(c->doc, c->patch, &e), *want;

	if (!c->result) {
		assert_null(r);
		assert_int_equal(e.code, c->code);
		assert_true(strncmp(e.msg, "patch operation ", 16) == 0);
		return;
	}
	if (e.code != ERR_NONE)
		fail_msg("%s", e.msg);
	want = parse_value(c->result);
	if (!json_object_equal(r, want))
		fail_msg("got %s", json_dump_str(r, NULL));
	json_object_put(want);
	json_object_put(r);
}

/* A.13: a member repeated in an operation object.  RFC 6902 says this is an
 * error; chartkeep's parser already refuses duplicate names, so the patch
 * never gets as far as json_patch_apply(). */
static void test_rfc_a13(void **state)
{
	const char *p = "[ { \"op\": \"add\", \"path\": \"/baz\", \"value\": \"qux\", \"op\": \"remove\" } ]";
	struct err e = ERR_INIT;

	(void)state;
	assert_null(json_parse_buf(p, strlen(p), 0, &e));
	assert_int_equal(e.code, ERR_INVALID);
	assert_non_null(strstr(e.msg, "duplicate property \"op\""));
}

/* ------------------------------------------------------------------ */
/* errors: code and exact message                                      */

struct err_case {
	const char *doc, *patch;
	int code;
	const char *msg;
};

static const char long_path_msg[] =
	"patch operation 0 (remove): path "
	"\"/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...\""
	" does not exist";

static struct err_case errs[] = {
	/* the patch document is malformed: ERR_INVALID */
	{ "{}", "{\"op\":\"add\"}", ERR_INVALID,
	  "patch document must be a JSON array of operations" },
	{ "{}", "[1]", ERR_INVALID, "patch operation 0: not a JSON object" },
	{ "{}", "[{\"path\":\"/a\"}]", ERR_INVALID, "patch operation 0: missing \"op\"" },
	{ "{}", "[{\"op\":1,\"path\":\"/a\"}]", ERR_INVALID, "patch operation 0: \"op\" must be a string" },
	{ "{}", "[{\"op\":\"frob\",\"path\":\"/a\"}]", ERR_INVALID, "patch operation 0: unknown op \"frob\"" },
	{ "{}", "[{\"op\":\"ADD\",\"path\":\"/a\",\"value\":1}]", ERR_INVALID,
	  "patch operation 0: unknown op \"ADD\"" },
	{ "{}", "[{\"op\":\"a\\\"b\\n\"}]", ERR_INVALID, "patch operation 0: unknown op \"a\\\"b\\n\"" },
	{ "{}", "[{\"op\":\"add\\u0000\",\"path\":\"/a\",\"value\":1}]", ERR_INVALID,
	  "patch operation 0: unknown op \"add\\u0000\"" },
	{ "{}", "[{\"op\":\"add\",\"value\":1}]", ERR_INVALID, "patch operation 0 (add): missing \"path\"" },
	{ "{}", "[{\"op\":\"remove\",\"path\":5}]", ERR_INVALID,
	  "patch operation 0 (remove): \"path\" must be a string" },
	{ "{}", "[{\"op\":\"add\",\"path\":null,\"value\":1}]", ERR_INVALID,
	  "patch operation 0 (add): \"path\" must be a string" },
	{ "{}", "[{\"op\":\"add\",\"path\":\"a\",\"value\":1}]", ERR_INVALID,
	  "patch operation 0 (add): path \"a\" is not a valid JSON Pointer: must be empty or start with \"/\"" },
	{ "{}", "[{\"op\":\"remove\",\"path\":\"/a~2\"}]", ERR_INVALID,
	  "patch operation 0 (remove): path \"/a~2\" is not a valid JSON Pointer: \"~\" must be followed by \"0\" or \"1\"" },
	{ "{}", "[{\"op\":\"test\",\"path\":\"/a~\",\"value\":1}]", ERR_INVALID,
	  "patch operation 0 (test): path \"/a~\" is not a valid JSON Pointer: \"~\" must be followed by \"0\" or \"1\"" },
	{ "{}", "[{\"op\":\"move\",\"path\":\"/a\"}]", ERR_INVALID, "patch operation 0 (move): missing \"from\"" },
	{ "{}", "[{\"op\":\"copy\",\"from\":null,\"path\":\"/a\"}]", ERR_INVALID,
	  "patch operation 0 (copy): \"from\" must be a string" },
	{ "{}", "[{\"op\":\"copy\",\"from\":\"x\",\"path\":\"/a\"}]", ERR_INVALID,
	  "patch operation 0 (copy): from \"x\" is not a valid JSON Pointer: must be empty or start with \"/\"" },
	{ "{}", "[{\"op\":\"add\",\"path\":\"/a\"}]", ERR_INVALID, "patch operation 0 (add): missing \"value\"" },
	{ "{}", "[{\"op\":\"replace\",\"path\":\"/a\"}]", ERR_INVALID,
	  "patch operation 0 (replace): missing \"value\"" },
	{ "{}", "[{\"op\":\"test\",\"path\":\"/a\"}]", ERR_INVALID, "patch operation 0 (test): missing \"value\"" },
	/* a malformed operation is reported even after one that would fail */
	{ "{}", "[{\"op\":\"remove\",\"path\":\"/nope\"},{\"op\":\"bogus\"}]", ERR_INVALID,
	  "patch operation 1: unknown op \"bogus\"" },

	/* well-formed but cannot be applied: ERR_UNPROCESSABLE */
	{ "{\"name\":[\"a\",\"b\"]}",
	  "[{\"op\":\"test\",\"path\":\"/name/0\",\"value\":\"a\"},{\"op\":\"add\",\"path\":\"/x\",\"value\":1},"
	  "{\"op\":\"replace\",\"path\":\"/name/5\",\"value\":\"z\"}]", ERR_UNPROCESSABLE,
	  "patch operation 2 (replace): path \"/name/5\" does not exist" },
	{ "{}", "[{\"op\":\"remove\",\"path\":\"/missing\"}]", ERR_UNPROCESSABLE,
	  "patch operation 0 (remove): path \"/missing\" does not exist" },
	{ "{}", "[{\"op\":\"replace\",\"path\":\"/missing\",\"value\":1}]", ERR_UNPROCESSABLE,
	  "patch operation 0 (replace): path \"/missing\" does not exist" },
	{ "{}", "[{\"op\":\"test\",\"path\":\"/missing\",\"value\":null}]", ERR_UNPROCESSABLE,
	  "patch operation 0 (test): path \"/missing\" does not exist" },
	{ "{}", "[{\"op\":\"add\",\"path\":\"/a/b/c\",\"value\":1}]", ERR_UNPROCESSABLE,
	  "patch operation 0 (add): path \"/a/b/c\" does not exist" },
	{ "{\"a\":\"str\"}", "[{\"op\":\"add\",\"path\":\"/a/b\",\"value\":1}]", ERR_UNPROCESSABLE,
	  "patch operation 0 (add): path \"/a/b\" does not exist" },
	{ "{\"a\":null}", "[{\"op\":\"add\",\"path\":\"/a/b\",\"value\":1}]", ERR_UNPROCESSABLE,
	  "patch operation 0 (add): path \"/a/b\" does not exist" },
	{ "{\"a\":[1,2]}", "[{\"op\":\"add\",\"path\":\"/a/01\",\"value\":1}]", ERR_UNPROCESSABLE,
	  "patch operation 0 (add): path \"/a/01\": \"01\" is not a valid array index" },
	{ "{\"a\":[1,2]}", "[{\"op\":\"remove\",\"path\":\"/a/+1\"}]", ERR_UNPROCESSABLE,
	  "patch operation 0 (remove): path \"/a/+1\": \"+1\" is not a valid array index" },
	{ "{\"a\":[1,2]}", "[{\"op\":\"remove\",\"path\":\"/a/\"}]", ERR_UNPROCESSABLE,
	  "patch operation 0 (remove): path \"/a/\": \"\" is not a valid array index" },
	{ "{\"a\":[[1]]}", "[{\"op\":\"test\",\"path\":\"/a/00/0\",\"value\":1}]", ERR_UNPROCESSABLE,
	  "patch operation 0 (test): path \"/a/00/0\": \"00\" is not a valid array index" },
	{ "{\"a\":[1,2]}", "[{\"op\":\"add\",\"path\":\"/a/3\",\"value\":1}]", ERR_UNPROCESSABLE,
	  "patch operation 0 (add): path \"/a/3\": array index \"3\" is out of range" },
	{ "{\"a\":[1,2]}", "[{\"op\":\"add\",\"path\":\"/a/99999999999999999999999\",\"value\":1}]",
	  ERR_UNPROCESSABLE,
	  "patch operation 0 (add): path \"/a/99999999999999999999999\": array index \"99999999999999999999999\" is out of range" },
	{ "{\"a\":[1,2]}", "[{\"op\":\"remove\",\"path\":\"/a/2\"}]", ERR_UNPROCESSABLE,
	  "patch operation 0 (remove): path \"/a/2\" does not exist" },
	{ "{\"a\":[1,2]}", "[{\"op\":\"remove\",\"path\":\"/a/-\"}]", ERR_UNPROCESSABLE,
	  "patch operation 0 (remove): path \"/a/-\": \"-\" names no existing array element" },
	{ "{\"a\":[1,2]}", "[{\"op\":\"replace\",\"path\":\"/a/-\",\"value\":1}]", ERR_UNPROCESSABLE,
	  "patch operation 0 (replace): path \"/a/-\": \"-\" names no existing array element" },
	{ "{\"a\":[{}]}", "[{\"op\":\"add\",\"path\":\"/a/-/b\",\"value\":1}]", ERR_UNPROCESSABLE,
	  "patch operation 0 (add): path \"/a/-/b\": \"-\" names no existing array element" },
	{ "{\"baz\":\"qux\"}", "[{\"op\":\"test\",\"path\":\"/baz\",\"value\":\"bar\"}]", ERR_UNPROCESSABLE,
	  "patch operation 0 (test): path \"/baz\" does not hold the value tested for" },
	{ "{\"a\":{\"b\":1}}", "[{\"op\":\"move\",\"from\":\"/a\",\"path\":\"/a/b/c\"}]", ERR_UNPROCESSABLE,
	  "patch operation 0 (move): path \"/a/b/c\" is inside from \"/a\": a value cannot be moved into itself" },
	{ "{\"a\":1}", "[{\"op\":\"move\",\"from\":\"\",\"path\":\"/b\"}]", ERR_UNPROCESSABLE,
	  "patch operation 0 (move): path \"/b\" is inside from \"\": a value cannot be moved into itself" },
	{ "{\"a\":1}", "[{\"op\":\"remove\",\"path\":\"\"}]", ERR_UNPROCESSABLE,
	  "patch operation 0 (remove): path \"\": the whole document cannot be removed" },
	{ "{}", "[{\"op\":\"move\",\"from\":\"/nope\",\"path\":\"/b\"}]", ERR_UNPROCESSABLE,
	  "patch operation 0 (move): from \"/nope\" does not exist" },
	{ "{\"a\":1}", "[{\"op\":\"move\",\"from\":\"/a\",\"path\":\"/x/y\"}]", ERR_UNPROCESSABLE,
	  "patch operation 0 (move): path \"/x/y\" does not exist" },
	{ "{}", "[{\"op\":\"copy\",\"from\":\"/nope\",\"path\":\"/b\"}]", ERR_UNPROCESSABLE,
	  "patch operation 0 (copy): from \"/nope\" does not exist" },
	{ "{\"a\":1}", "[{\"op\":\"copy\",\"from\":\"/a\",\"path\":\"/x/y\"}]", ERR_UNPROCESSABLE,
	  "patch operation 0 (copy): path \"/x/y\" does not exist" },
	/* json-c member names are C strings: a NUL names nothing */
	{ "{\"a\":1}", "[{\"op\":\"test\",\"path\":\"/a\\u0000b\",\"value\":1}]", ERR_UNPROCESSABLE,
	  "patch operation 0 (test): path \"/a\\u0000b\" does not exist" },
	{ "{}", "[{\"op\":\"add\",\"path\":\"/a\\u0000b\",\"value\":1}]", ERR_UNPROCESSABLE,
	  "patch operation 0 (add): path \"/a\\u0000b\": member names cannot hold a NUL character" },
	/* escapes are decoded before lookup, and quoted back escaped */
	{ "{\"a/b\":1}", "[{\"op\":\"remove\",\"path\":\"/a/b\"}]", ERR_UNPROCESSABLE,
	  "patch operation 0 (remove): path \"/a/b\" does not exist" },
	{ "{\"x\":{}}", "[{\"op\":\"remove\",\"path\":\"/x/q\\\"\\t\"}]", ERR_UNPROCESSABLE,
	  "patch operation 0 (remove): path \"/x/q\\\"\\t\" does not exist" },
	/* long pointers are cut in messages */
	{ "{}", "[{\"op\":\"remove\",\"path\":\"/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}]", ERR_UNPROCESSABLE, long_path_msg },
};

static void test_err(void **state)
{
	const struct err_case *c = *state;
	struct err e = ERR_INIT;
	json_object *r = run(c->doc, c->patch, &e);

	assert_null(r);
	assert_string_equal(err_code_name(e.code), err_code_name(c->code));
	assert_string_equal(e.msg, c->msg);
}

/* ------------------------------------------------------------------ */
/* RFC 6901 section 5                                                  */

static const char rfc6901_doc[] =
	"{ \"foo\": [\"bar\", \"baz\"], \"\": 0, \"a/b\": 1, \"c%d\": 2, \"e^f\": 3, \"g|h\": 4,"
	"  \"i\\\\j\": 5, \"k\\\"l\": 6, \" \": 7, \"m~n\": 8 }";

static void test_pointer_rfc6901(void **state)
{
	static const struct { const char *ptr, *want; } rows[] = {
		{ "", NULL /* the document */ },
		{ "/foo", "[\"bar\",\"baz\"]" },
		{ "/foo/0", "\"bar\"" },
		{ "/", "0" },
		{ "/a~1b", "1" },
		{ "/c%d", "2" },
		{ "/e^f", "3" },
		{ "/g|h", "4" },
		{ "/i\\j", "5" },
		{ "/k\"l", "6" },
		{ "/ ", "7" },
		{ "/m~0n", "8" },
	};
	json_object *doc = parse(rfc6901_doc);

	(void)state;
	for (size_t i = 0; i < N_OF(rows); i++) {
		struct err e = ERR_INIT;
		json_object *v = json_pointer_resolve(doc, rows[i].ptr, &e);

		assert_int_equal(e.code, ERR_NONE);
		if (!rows[i].want) {
			assert_ptr_equal(v, doc);
			continue;
		}
		assert_non_null(v);
		assert_string_equal(json_dump_str(v, NULL), rows[i].want);
	}
	json_object_put(doc);
}

static void test_pointer_errors(void **state)
{
	static const struct { const char *ptr; int code; const char *msg; } rows[] = {
		{ "foo", ERR_INVALID,
		  "pointer \"foo\" is not a valid JSON Pointer: must be empty or start with \"/\"" },
		{ "/m~2n", ERR_INVALID,
		  "pointer \"/m~2n\" is not a valid JSON Pointer: \"~\" must be followed by \"0\" or \"1\"" },
		{ "/nope", ERR_NOT_FOUND, "pointer \"/nope\" does not exist" },
		{ "/foo/2", ERR_NOT_FOUND, "pointer \"/foo/2\" does not exist" },
		{ "/foo/-", ERR_NOT_FOUND, "pointer \"/foo/-\": \"-\" names no existing array element" },
		{ "/foo/01", ERR_NOT_FOUND, "pointer \"/foo/01\": \"01\" is not a valid array index" },
		{ "/foo/0/x", ERR_NOT_FOUND, "pointer \"/foo/0/x\" does not exist" },
		{ "/a/b", ERR_NOT_FOUND, "pointer \"/a/b\" does not exist" },
	};
	json_object *doc = parse(rfc6901_doc);
	struct err e = ERR_INIT;

	(void)state;
	for (size_t i = 0; i < N_OF(rows); i++) {
		assert_null(json_pointer_resolve(doc, rows[i].ptr, &e));
		assert_int_equal(e.code, rows[i].code);
		assert_string_equal(e.msg, rows[i].msg);
	}
	/* a null member is found: NULL with no error */
	json_object_put(doc);
	doc = parse("{\"n\":null}");
	assert_null(json_pointer_resolve(doc, "/n", &e));
	assert_int_equal(e.code, ERR_NONE);
	assert_null(json_pointer_resolve(doc, "/m", &e));
	assert_int_equal(e.code, ERR_NOT_FOUND);
	assert_null(json_pointer_resolve(doc, "/m", NULL));
	assert_null(json_pointer_resolve(doc, NULL, &e));
	assert_int_equal(e.code, ERR_INVALID);
	json_object_put(doc);

	assert_true(json_pointer_valid("", 0));
	assert_true(json_pointer_valid("/~0~1/", 6));
	assert_false(json_pointer_valid("~0", 2));
	assert_false(json_pointer_valid("/~", 2));
	assert_false(json_pointer_valid(NULL, 0));
}

/* ------------------------------------------------------------------ */
/* equality                                                            */

static void test_equal(void **state)
{
	static const struct { const char *a, *b; bool eq; } rows[] = {
		{ "1", "1.0", true },
		{ "1", "1e0", true },
		{ "100", "1E+2", true },
		{ "7.5", "7.50", true },
		{ "1.5e0", "15e-1", true },
		{ "-2.50", "-25E-1", true },
		{ "0", "-0.0", true },
		{ "0.0", "0e10", true },
		{ "0.001", "1e-3", true },
		{ "123456789012345678", "123456789012345678.0", true },
		{ "1", "2", false },
		{ "1", "-1", false },
		{ "1", "10", false },
		{ "1.5", "15", false },
		/* exact decimals, not doubles: these two parse to the same double */
		{ "0.1", "0.10000000000000001", false },
		{ "9007199254740993", "9007199254740992.0", false },
		{ "\"10\"", "10", false },
		{ "true", "1", false },
		{ "null", "0", false },
		{ "null", "null", true },
		{ "false", "false", true },
		{ "\"a\"", "\"a\"", true },
		{ "\"a\\u0000b\"", "\"a\\u0000c\"", false },
		{ "\"a\\u0000b\"", "\"a\\u0000b\"", true },
		{ "\"a\"", "\"a \"", false },
		{ "[1,2]", "[1,2]", true },
		{ "[1,2]", "[2,1]", false },
		{ "[1,2]", "[1,2,3]", false },
		{ "[]", "{}", false },
		{ "{}", "{}", true },
		{ "{\"a\":1,\"b\":{\"c\":[1.0]}}", "{\"b\":{\"c\":[1]},\"a\":1.00}", true },
		{ "{\"a\":1}", "{\"a\":1,\"b\":1}", false },
		{ "{\"a\":1,\"b\":1}", "{\"a\":1,\"c\":1}", false },
		{ "{\"a\":null}", "{\"b\":null}", false },
	};

	(void)state;
	for (size_t i = 0; i < N_OF(rows); i++) {
		json_object *a = parse_value(rows[i].a), *b = parse_value(rows[i].b);

		if (json_patch_equal(a, b) != rows[i].eq || json_patch_equal(b, a) != rows[i].eq)
			fail_msg("%s vs %s: expected %s", rows[i].a, rows[i].b, rows[i].eq ? "equal" : "different");
		json_object_put(a);
		json_object_put(b);
	}
}

/* Integers beyond int64, which the parser refuses, built by hand. */
static void test_equal_uint64(void **state)
{
	json_object *a = json_object_new_uint64(UINT64_MAX);
	json_object *b = json_object_new_uint64(UINT64_MAX);
	json_object *c = json_object_new_int64(INT64_MAX);
	json_object *d = json_object_new_double(18446744073709551615.0);
	json_object *n = json_object_new_int64(-5);
	json_object *m = json_object_new_double(-5.0);

	(void)state;
	assert_true(json_patch_equal(a, b));
	assert_false(json_patch_equal(a, c));
	assert_false(json_patch_equal(c, a));
	assert_false(json_patch_equal(a, d)); /* the double is 2^64 exactly */
	assert_true(json_patch_equal(n, m));
	json_object_put(a);
	json_object_put(b);
	json_object_put(c);
	json_object_put(d);
	json_object_put(n);
	json_object_put(m);
}

/* ------------------------------------------------------------------ */
/* behaviour beyond single results                                     */

/* Three operations, the third failing: the caller's document serialises
 * byte for byte as before, and nothing leaks (valgrind checks that). */
static void test_atomic(void **state)
{
	const char *doc_text = "{\"name\":[{\"given\":[\"Ann\"]}],\"v\":7.50,\"list\":[1,2,3]}";
	const char *patch_text =
		"[{\"op\":\"add\",\"path\":\"/name/0/given/-\",\"value\":\"Bo\"},"
		" {\"op\":\"remove\",\"path\":\"/list/0\"},"
		" {\"op\":\"replace\",\"path\":\"/name/5\",\"value\":{}}]";
	json_object *doc = parse(doc_text), *patch = parse(patch_text), *out = (json_object *)1;
	json_object *name = json_pointer_resolve(doc, "/name", NULL);
	struct err e = ERR_INIT;
	char *before = dump(doc), *after;

	(void)state;
	assert_int_equal(json_patch_apply_ex(doc, patch, &out, &e), -1);
	assert_null(out);
	assert_int_equal(e.code, ERR_UNPROCESSABLE);
	assert_string_equal(e.msg, "patch operation 2 (replace): path \"/name/5\" does not exist");
	after = dump(doc);
	assert_string_equal(before, after);
	assert_string_equal(after, doc_text);
	assert_ptr_equal(json_pointer_resolve(doc, "/name", NULL), name);
	assert_int_equal(json_object_array_length(json_pointer_resolve(doc, "/list", NULL)), 3);
	free(before);
	free(after);

	/* and the same patch without its last operation succeeds */
	json_object_array_del_idx(patch, 2, 1);
	assert_int_equal(json_patch_apply_ex(doc, patch, &out, &e), 0);
	assert_int_equal(e.code, ERR_NONE);
	assert_string_equal(json_dump_str(out, NULL),
			    "{\"name\":[{\"given\":[\"Ann\",\"Bo\"]}],\"v\":7.50,\"list\":[2,3]}");
	assert_string_equal(json_dump_str(doc, NULL), doc_text);
	json_object_put(out);
	json_object_put(doc);
	json_object_put(patch);
}

/* Decimals keep their written form through the copy and every operation. */
static void test_decimal_text(void **state)
{
	json_object *doc = parse("{\"v\":7.50,\"w\":[1.0,2.50e1,-0.0],\"i\":10}");
	json_object *patch = parse(
		"[{\"op\":\"add\",\"path\":\"/x\",\"value\":0.10},"
		" {\"op\":\"copy\",\"from\":\"/v\",\"path\":\"/y\"},"
		" {\"op\":\"move\",\"from\":\"/w\",\"path\":\"/z\"},"
		" {\"op\":\"replace\",\"path\":\"/i\",\"value\":1.230E+1},"
		" {\"op\":\"test\",\"path\":\"/v\",\"value\":7.5}]");
	json_object *copy = NULL;
	struct err e = ERR_INIT;
	json_object *r;

	(void)state;
	/* json-c's own deep copy keeps the parsed text, which the patch relies on */
	assert_int_equal(json_object_deep_copy(doc, &copy, NULL), 0);
	assert_string_equal(json_dump_str(copy, NULL), "{\"v\":7.50,\"w\":[1.0,2.50e1,-0.0],\"i\":10}");
	json_object_put(copy);

	r = json_patch_apply(doc, patch, &e);
	assert_non_null(r);
	assert_string_equal(json_dump_str(r, NULL),
			    "{\"v\":7.50,\"i\":1.230E+1,\"x\":0.10,\"y\":7.50,\"z\":[1.0,2.50e1,-0.0]}");
	json_object_put(r);
	json_object_put(doc);
	json_object_put(patch);
}

/* Member order is kept by replace and by add over an existing member. */
static void test_member_order(void **state)
{
	struct err e = ERR_INIT;
	json_object *r = run("{\"a\":1,\"b\":2,\"c\":3}",
			     "[{\"op\":\"replace\",\"path\":\"/b\",\"value\":9},"
			     " {\"op\":\"add\",\"path\":\"/a\",\"value\":8},"
			     " {\"op\":\"add\",\"path\":\"/d\",\"value\":7}]", &e);

	(void)state;
	assert_non_null(r);
	assert_string_equal(json_dump_str(r, NULL), "{\"a\":8,\"b\":9,\"c\":3,\"d\":7}");
	json_object_put(r);
}

/* The result shares no object with the document or the patch. */
static void test_no_sharing(void **state)
{
	json_object *doc = parse("{\"keep\":{\"k\":[1]},\"src\":{\"s\":1}}");
	json_object *patch = parse(
		"[{\"op\":\"add\",\"path\":\"/added\",\"value\":{\"x\":[1,2]}},"
		" {\"op\":\"replace\",\"path\":\"/keep/k\",\"value\":[3]},"
		" {\"op\":\"copy\",\"from\":\"/src\",\"path\":\"/copied\"}]");
	json_object *pv = json_pointer_resolve(patch, "/0/value", NULL);
	json_object *pk = json_pointer_resolve(patch, "/1/value", NULL);
	struct err e = ERR_INIT;
	json_object *r = json_patch_apply(doc, patch, &e);

	(void)state;
	assert_non_null(r);
	assert_ptr_not_equal(json_pointer_resolve(r, "/added", NULL), pv);
	assert_ptr_not_equal(json_pointer_resolve(r, "/added/x", NULL), json_pointer_resolve(pv, "/x", NULL));
	assert_ptr_not_equal(json_pointer_resolve(r, "/keep/k", NULL), pk);
	assert_ptr_not_equal(json_pointer_resolve(r, "/keep", NULL), json_pointer_resolve(doc, "/keep", NULL));
	assert_ptr_not_equal(json_pointer_resolve(r, "/copied", NULL), json_pointer_resolve(r, "/src", NULL));
	/* change the result: neither input sees it */
	json_object_array_add(json_pointer_resolve(r, "/added/x", NULL), json_object_new_int(3));
	json_object_object_add(json_pointer_resolve(r, "/copied", NULL), "t", NULL);
	assert_string_equal(json_dump_str(patch, NULL),
			    "[{\"op\":\"add\",\"path\":\"/added\",\"value\":{\"x\":[1,2]}},"
			    "{\"op\":\"replace\",\"path\":\"/keep/k\",\"value\":[3]},"
			    "{\"op\":\"copy\",\"from\":\"/src\",\"path\":\"/copied\"}]");
	assert_string_equal(json_dump_str(doc, NULL), "{\"keep\":{\"k\":[1]},\"src\":{\"s\":1}}");
	json_object_put(r);
	json_object_put(doc);
	json_object_put(patch);
}

/* A failed "test" names the path, never the values compared. */
static void test_no_values_in_messages(void **state)
{
	struct err e = ERR_INIT;
	json_object *r = run("{\"ssn\":\"123-45-6789\"}",
			     "[{\"op\":\"test\",\"path\":\"/ssn\",\"value\":\"999-99-9999\"}]", &e);

	(void)state;
	assert_null(r);
	assert_null(strstr(e.msg, "123"));
	assert_null(strstr(e.msg, "999"));
	assert_string_equal(e.msg, "patch operation 0 (test): path \"/ssn\" does not hold the value tested for");
}

/* A JSON null result: NULL from both entry points, and no error. */
static void test_null_result(void **state)
{
	json_object *doc = parse("{\"a\":1}");
	json_object *patch = parse("[{\"op\":\"replace\",\"path\":\"\",\"value\":null}]");
	json_object *out = (json_object *)1;
	struct err e = ERR_INIT;

	(void)state;
	assert_int_equal(json_patch_apply_ex(doc, patch, &out, &e), 0);
	assert_null(out);
	assert_int_equal(e.code, ERR_NONE);
	assert_null(json_patch_apply(doc, patch, &e));
	assert_int_equal(e.code, ERR_NONE);
	/* and the patch machinery copes with a NULL document */
	json_object_put(patch);
	patch = parse("[{\"op\":\"test\",\"path\":\"\",\"value\":null}]");
	assert_int_equal(json_patch_apply_ex(NULL, patch, &out, &e), 0);
	assert_null(out);
	assert_int_equal(json_patch_apply_ex(doc, NULL, &out, &e), -1);
	assert_int_equal(e.code, ERR_INVALID);
	json_object_put(patch);
	json_object_put(doc);
}

/* Nesting: the result must parse again with json_parse_buf's default depth. */
static void test_depth_limit(void **state)
{
	struct buf deep = BUF_INIT(0), patch = BUF_INIT(0);
	struct err e = ERR_INIT;
	json_object *r, *d, *p;
	char *again;

	(void)state;
	/* a value 99 levels deep under "/a" (1 token) makes 100: allowed */
	for (int i = 0; i < 99; i++)
		buf_addch(&deep, '[');
	for (int i = 0; i < 99; i++)
		buf_addch(&deep, ']');
	buf_addf(&patch, "[{\"op\":\"add\",\"path\":\"/a\",\"value\":%s}]", buf_cstr(&deep));
	d = parse("{}");
	p = parse_depth(buf_cstr(&patch), 200);
	r = json_patch_apply(d, p, &e);
	assert_non_null(r);
	again = dump(r);
	json_object_put(r);
	r = json_parse_buf(again, strlen(again), 0, &e);
	assert_non_null(r);
	json_object_put(r);
	free(again);
	json_object_put(p);

	/* one more level is refused */
	buf_reset(&patch);
	buf_addf(&patch, "[{\"op\":\"add\",\"path\":\"/a\",\"value\":[%s]}]", buf_cstr(&deep));
	p = parse_depth(buf_cstr(&patch), 200);
	assert_null(json_patch_apply(d, p, &e));
	assert_int_equal(e.code, ERR_UNPROCESSABLE);
	assert_string_equal(e.msg,
			    "patch operation 0 (add): path \"/a\" would nest the value deeper than 100 levels");
	json_object_put(p);

	/* as is moving a deep value under a deep path */
	json_object_put(d);
	buf_reset(&patch);
	buf_addf(&patch, "{\"a\":%s,\"b\":[[[]]]}", buf_cstr(&deep));
	d = parse(buf_cstr(&patch));
	p = parse("[{\"op\":\"move\",\"from\":\"/a\",\"path\":\"/b/0/0/-\"}]");
	assert_null(json_patch_apply(d, p, &e));
	assert_int_equal(e.code, ERR_UNPROCESSABLE);
	json_object_put(p);
	json_object_put(d);
	buf_release(&deep);
	buf_release(&patch);
}

/* "copy" of the root into itself doubles the document each time: stopped. */
static void test_copy_limit(void **state)
{
	char want[96];
	struct buf patch = BUF_INIT(0);
	struct err e = ERR_INIT;
	json_object *d, *p;

	(void)state;
	buf_addstr(&patch, "[");
	for (int i = 0; i < 40; i++)
		buf_addf(&patch, "%s{\"op\":\"copy\",\"from\":\"\",\"path\":\"/%d\"}", i ? "," : "", i);
	buf_addstr(&patch, "]");
	d = parse("{\"x\":[1,2,3,4,5,6,7,8,9,10]}");
	p = parse(buf_cstr(&patch));
	assert_null(json_patch_apply(d, p, &e));
	assert_int_equal(e.code, ERR_UNPROCESSABLE);
	snprintf(want, sizeof(want), "from \"\" copies more than %zu JSON values in all",
		 JSON_PATCH_MAX_COPY_NODES);
	assert_non_null(strstr(e.msg, want));
	json_object_put(p);
	json_object_put(d);
	buf_release(&patch);
}

/* Inserting in the middle of a long array shifts every later element. */
static void test_array_insert_shift(void **state)
{
	struct buf text = BUF_INIT(0), want = BUF_INIT(0);
	struct err e = ERR_INIT;
	json_object *d, *p, *r;

	(void)state;
	buf_addstr(&text, "[");
	buf_addstr(&want, "[");
	for (int i = 0; i < 50; i++) {
		buf_addf(&text, "%s{\"n\":%d}", i ? "," : "", i);
		buf_addf(&want, "%s%s{\"n\":%d}", i ? "," : "", i == 20 ? "\"new\"," : "", i);
	}
	buf_addstr(&text, "]");
	buf_addstr(&want, "]");
	d = parse(buf_cstr(&text));
	p = parse("[{\"op\":\"add\",\"path\":\"/20\",\"value\":\"new\"}]");
	r = json_patch_apply(d, p, &e);
	assert_non_null(r);
	assert_string_equal(json_dump_str(r, NULL), buf_cstr(&want));
	json_object_put(r);
	json_object_put(p);
	json_object_put(d);
	buf_release(&text);
	buf_release(&want);
}

int main(void)
{
	struct CMUnitTest rfc_tests[N_OF(rfc)], err_tests[N_OF(errs)];
	char err_names[N_OF(errs)][48];
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc_a13),
		cmocka_unit_test(test_pointer_rfc6901),
		cmocka_unit_test(test_pointer_errors),
		cmocka_unit_test(test_equal),
		cmocka_unit_test(test_equal_uint64),
		cmocka_unit_test(test_atomic),
		cmocka_unit_test(test_decimal_text),
		cmocka_unit_test(test_member_order),
		cmocka_unit_test(test_no_sharing),
		cmocka_unit_test(test_no_values_in_messages),
		cmocka_unit_test(test_null_result),
		cmocka_unit_test(test_depth_limit),
		cmocka_unit_test(test_copy_limit),
		cmocka_unit_test(test_array_insert_shift),
	};
	int failed = 0;

	for (size_t i = 0; i < N_OF(rfc); i++)
		rfc_tests[i] = (struct CMUnitTest){ rfc[i].name, test_rfc, NULL, NULL, &rfc[i] };
	for (size_t i = 0; i < N_OF(errs); i++) {
		snprintf(err_names[i], sizeof(err_names[i]), "error case %zu", i);
		err_tests[i] = (struct CMUnitTest){ err_names[i], test_err, NULL, NULL, &errs[i] };
	}
	failed += _cmocka_run_group_tests("json_patch_cases", rfc_tests, N_OF(rfc_tests), NULL, NULL);
	failed += _cmocka_run_group_tests("json_patch_errors", err_tests, N_OF(err_tests), NULL, NULL);
	failed += cmocka_run_group_tests(tests, NULL, NULL);
	return failed ? 1 : 0;
}
