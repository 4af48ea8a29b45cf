#!/bin/sh
# make check: build, run every test suite, then build with AddressSanitizer and
# UndefinedBehaviorSanitizer and run them again, then a short run of every
# fuzz target.  Each suite prints "suite NAME: N passed, M failed"; the last
# line of this script adds them all up.
#
#   FUZZ_SECONDS=N   length of each fuzz run (default 10; 0 skips fuzzing)
set -u
cd "$(dirname "$0")/.."

JOBS=$(nproc 2>/dev/null || echo 2)
FUZZ_SECONDS=${FUZZ_SECONDS:-10}
LOG=$(mktemp -d)
trap 'rm -rf "$LOG"' EXIT
PASS=0
FAIL=0

# run_suite LABEL CMD... : run, show failures, add up the "suite" lines.
run_suite() {
	label=$1
	shift
	out="$LOG/$label.out"
	start=$(date +%s)
	"$@" >"$out" 2>&1
	rc=$?
	secs=$(( $(date +%s) - start ))
	p=0
	f=0
	for n in $(sed -n 's/^suite .*: \([0-9]*\) passed, [0-9]* failed$/\1/p' "$out"); do p=$((p + n)); done
	for n in $(sed -n 's/^suite .*: [0-9]* passed, \([0-9]*\) failed$/\1/p' "$out"); do f=$((f + n)); done
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1
		echo "FAIL $label exited with status $rc"
		tail -n 30 "$out"
	fi
	grep -E '^(FAIL|\[  FAILED  \]|==[0-9]+==ERROR|.*runtime error:)' "$out" | head -n 40
	echo "  $label: $p passed, $f failed (${secs}s)"
	PASS=$((PASS + p))
	FAIL=$((FAIL + f))
}

build() {
	if ! make --no-print-directory -j"$JOBS" "$@" all unit >"$LOG/build.out" 2>&1; then
		cat "$LOG/build.out"
		echo "build failed: make $*"
		echo "$PASS passed, $((FAIL + 1)) failed"
		exit 1
	fi
}

echo "== build"
build
echo "== tests"
run_suite unit tests/run_unit.sh build
run_suite api python3 tests/api/run.py --bin build/chartkeep
run_suite x12-cli tests/x12/run.sh build/chartkeep
run_suite unit-valgrind tests/run_unit.sh build valgrind -q --error-exitcode=99 \
	--leak-check=full --errors-for-leak-kinds=definite,indirect

echo "== build with -fsanitize=address,undefined"
build SANITIZE=address,undefined
echo "== tests under the sanitizers"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	run_suite unit-asan tests/run_unit.sh build-asan
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	run_suite x12-cli-asan tests/x12/run.sh build-asan/chartkeep
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	run_suite api-asan python3 tests/api/run.py --bin build-asan/chartkeep --only cases,flows,examples,export,search,search-index,oauth,audit,labels,access,attacks,transport,codes,mpi,mpi-accuracy,hl7

if [ "$FUZZ_SECONDS" -gt 0 ]; then
	echo "== fuzzing (${FUZZ_SECONDS}s per target)"
	if make --no-print-directory fuzz >"$LOG/fuzz-build.out" 2>&1; then
		run_suite fuzz tests/run_fuzz.sh "$FUZZ_SECONDS"
	else
		cat "$LOG/fuzz-build.out"
		echo "FAIL fuzz targets did not build"
		FAIL=$((FAIL + 1))
	fi
fi

echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
