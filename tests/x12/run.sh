#!/bin/sh
# Data-driven tests of `chartkeep x12` (parse, validate, encode) against the
# files under tests/data/x12/:
#   cases/NNN-name.x12     a broken (or tricky) variant of a valid file, with
#                          .999 (validate's stdout), .err (its stderr) and
#                          .rc (its exit status) beside it
#   lfh/<guide>/<file>     the LinuxForHealth examples: expected/<guide>/<file>
#                          .999 and .rc; every one must round-trip (parse,
#                          then encode) byte for byte unless expected/
#                          roundtrip-differs.txt names it with the reason;
#                          .json where a parse is pinned
#   encode/NNN-name.json   encoder input with .x12 (expected output) or .err
#                          (expected message, exit status 1)
# and every 999 written must itself pass the 999 guide.
#
#   tests/x12/run.sh [BIN] [--update]
# --update rewrites the expected files from BIN's output: review the diff.
set -u
cd "$(dirname "$0")/.."/..
BIN=${1:-build/chartkeep}
UPDATE=${2:-}
NOW=202601011200
D=tests/data/x12
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
pass=0
fail=0

ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }

# same EXPECTED ACTUAL LABEL
same() {
	if [ "$UPDATE" = "--update" ]; then
		cp "$2" "$1"
		ok
	elif [ -f "$1" ] && cmp -s "$1" "$2"; then
		ok
	else
		bad "$3"
		[ -f "$1" ] && diff "$1" "$2" | head -n 10
	fi
}

validate() { # FILE OUTPREFIX
	"$BIN" x12 validate --now $NOW "$1" >"$2.999" 2>"$2.err"
	echo $? >"$2.rc"
}

# Our own acknowledgements must pass our own 999 guide (a TA1 quoting a
# received ISA's bad date or time cannot, and is allowed to fail).
self_check() { # ACK LABEL
	[ -s "$1" ] || return 0
	"$BIN" x12 validate --now $NOW "$1" >"$T/self.999" 2>"$T/self.err"
	rc=$?
	if [ $rc -eq 0 ] || grep -q '^x12: interchange [0-9]*: TA10[23] (element [23]): invalid' "$T/self.err"; then
		ok
	else
		bad "$2: our 999 does not pass the 999 guide: $(head -n 2 "$T/self.err")"
	fi
}

roundtrip() { # FILE LABEL
	"$BIN" x12 parse "$1" >"$T/rt.json" 2>/dev/null
	if ! "$BIN" x12 encode "$T/rt.json" >"$T/rt.x12" 2>"$T/rt.err"; then
		bad "$2: encode failed: $(cat "$T/rt.err")"
	elif cmp -s "$1" "$T/rt.x12"; then
		ok
	else
		bad "$2: round trip differs"
		cmp "$1" "$T/rt.x12" | head -n 2
	fi
	# the JSON must be valid JSON
	if python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$T/rt.json" 2>/dev/null; then
		ok
	else
		bad "$2: parse output is not JSON"
	fi
}

for f in "$D"/cases/*.x12; do
	n=${f%.x12}
	validate "$f" "$T/c"
	same "$n.999" "$T/c.999" "$(basename "$f"): 999"
	same "$n.err" "$T/c.err" "$(basename "$f"): messages"
	same "$n.rc" "$T/c.rc" "$(basename "$f"): exit status"
	self_check "$T/c.999" "$(basename "$f")"
	# those that are whole interchanges must round-trip too
	case $(cat "$n.rc") in
	2) ;;
	*) if grep -qx "$(basename "$f")" "$D/cases/roundtrip-skip.txt" 2>/dev/null; then :; else
		roundtrip "$f" "$(basename "$f")"
	   fi ;;
	esac
done

for f in "$D"/lfh/*/*; do
	case $f in */LICENSE|*/SOURCES.txt) continue ;; esac
	rel=${f#"$D"/lfh/}
	e="$D/expected/$rel"
	mkdir -p "$(dirname "$e")"
	validate "$f" "$T/l"
	same "$e.999" "$T/l.999" "$rel: 999"
	same "$e.rc" "$T/l.rc" "$rel: exit status"
	self_check "$T/l.999" "$rel"
	if grep -q "^$rel " "$D/expected/roundtrip-differs.txt" 2>/dev/null; then
		"$BIN" x12 parse "$f" >"$T/rt.json" 2>/dev/null
		"$BIN" x12 encode "$T/rt.json" >"$T/rt.x12" 2>/dev/null
		if cmp -s "$f" "$T/rt.x12"; then bad "$rel: listed as differing but round-trips"; else ok; fi
	else
		roundtrip "$f" "$rel"
	fi
	if [ -f "$e.json" ]; then
		"$BIN" x12 parse "$f" >"$T/p.json" 2>/dev/null
		same "$e.json" "$T/p.json" "$rel: parse JSON"
	fi
done

for f in "$D"/encode/*.json; do
	[ -f "$f" ] || continue
	n=${f%.json}
	"$BIN" x12 encode "$f" >"$T/e.out" 2>"$T/e.err"
	rc=$?
	if [ -f "$n.x12" ]; then
		if [ $rc -eq 0 ]; then ok; else bad "$(basename "$f"): exit $rc"; fi
		same "$n.x12" "$T/e.out" "$(basename "$f"): output"
	else
		if [ $rc -eq 1 ]; then ok; else bad "$(basename "$f"): exit $rc, expected 1"; fi
		same "$n.err" "$T/e.err" "$(basename "$f"): message"
	fi
done

# usage errors and unreadable input: exit 2
"$BIN" x12 validate /nonexistent/file.x12 >/dev/null 2>&1
if [ $? -eq 2 ]; then ok; else bad "missing file: expected exit 2"; fi
"$BIN" x12 parse >/dev/null 2>&1
if [ $? -eq 2 ]; then ok; else bad "no FILE: expected exit 2"; fi
"$BIN" x12 frobnicate x >/dev/null 2>&1
if [ $? -eq 2 ]; then ok; else bad "unknown action: expected exit 2"; fi
"$BIN" x12 validate --now 2026 "$D/cases/001-se-count-wrong.x12" >/dev/null 2>&1
if [ $? -eq 2 ]; then ok; else bad "bad --now: expected exit 2"; fi
# standard input
"$BIN" x12 validate --now $NOW - <"$D/lfh/837_005010X222A2/demo.example1.837" >"$T/s.999" 2>/dev/null
if [ $? -eq 0 ] && cmp -s "$T/s.999" "$D/expected/837_005010X222A2/demo.example1.837.999"; then ok; else
	bad "validate from standard input"; fi
# --our-delimiters: valid, same 999
"$BIN" x12 parse "$D/lfh/835_005010X221A1/managed-care.835" >"$T/o.json"
"$BIN" x12 encode --our-delimiters "$T/o.json" >"$T/o.x12"
"$BIN" x12 validate --now $NOW "$T/o.x12" >"$T/o.999" 2>/dev/null
if cmp -s "$T/o.999" "$D/expected/835_005010X221A1/managed-care.835.999"; then ok; else
	bad "--our-delimiters changes the validation"; fi

echo "suite x12-cli: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
