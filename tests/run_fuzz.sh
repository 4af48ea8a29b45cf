#!/bin/sh
# A short run of every libFuzzer target (built by `make fuzz`), seeded from
# the test data.  A crash, leak or sanitizer report fails the target and
# leaves the input in build-fuzz/crashes/.
#   tests/run_fuzz.sh SECONDS
set -u
cd "$(dirname "$0")/.."
secs=${1:-10}
status=0
mkdir -p build-fuzz/crashes build-fuzz/corpus
for t in build-fuzz/fuzz/fuzz_*; do
	[ -x "$t" ] || continue
	name=$(basename "$t")
	corpus=build-fuzz/corpus/$name
	mkdir -p "$corpus"
	seeds=tests/fuzz/seeds/$name
	out=$("$t" -max_total_time="$secs" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
		-artifact_prefix=build-fuzz/crashes/"$name"- "$corpus" ${seeds:+$( [ -d "$seeds" ] && echo "$seeds")} 2>&1)
	rc=$?
	runs=$(printf '%s\n' "$out" | sed -n 's/^Done \([0-9]*\) runs.*/\1/p' | tail -n 1)
	if [ "$rc" -ne 0 ]; then
		printf '%s\n' "$out" | grep -E 'ERROR|SUMMARY|Test unit written|runtime error' | head -n 20
		echo "FAIL $name (exit $rc)"
		echo "suite $name: 0 passed, 1 failed"
		status=1
	else
		echo "$name: ${runs:-?} runs in ${secs}s, no findings"
		echo "suite $name: 1 passed, 0 failed"
	fi
done
exit $status
