#!/bin/sh
# Run every unit test binary of a build directory; one "suite" line each.
#   tests/run_unit.sh BUILD_DIR [WRAPPER...]   (e.g. valgrind --error-exitcode=1)
set -u
dir=$1
shift
status=0
for t in "$dir"/tests/test_*; do
	[ -x "$t" ] || continue
	name=$(basename "$t")
	out=$(cd "$(dirname "$0")/.." && "$@" "$t" 2>&1)
	rc=$?
	# a binary may run several cmocka groups: add up their summaries
	p=0
	f=0
	for n in $(printf '%s\n' "$out" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p'); do p=$((p + n)); done
	for n in $(printf '%s\n' "$out" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p'); do f=$((f + n)); done
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1
		printf '%s\n' "$out" | tail -n 40
		echo "FAIL $name exited with status $rc"
	elif [ "$f" -ne 0 ]; then
		printf '%s\n' "$out" | grep -E '^\[  (FAILED|ERROR) ' | head -n 20
		printf '%s\n' "$out" | grep -B2 -E 'error: Failure|Assert|Check' | head -n 40
	fi
	[ "$f" -ne 0 ] && status=1
	echo "suite $name: $p passed, $f failed"
done
exit $status
