#!/usr/bin/env bash
# Build the libFuzzer targets (configure --enable-fuzz) and run each one for
# a bounded time under ASan and UBSan.
#
#   tests/fuzz/run-fuzz.sh BUILD_DIR SECONDS_PER_TARGET [TARGET...]
#
# Each target starts from a copy of its committed seeds
# (tests/fuzz/corpus/<target>/), kept in BUILD_DIR/fuzz-work/<target>/corpus
# and grown there from run to run; the committed corpus is never written.
# A crash leaves its input in BUILD_DIR/fuzz-work/<target>/, whose path and
# base64 are printed.  Ends with "N passed, M failed in X.Xs" (a target is
# a test) and exits non-zero if any target failed.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
(($# >= 2)) || { echo "usage: $0 BUILD_DIR SECONDS_PER_TARGET [TARGET...]" >&2; exit 2; }
BUILD=$(mkdir -p "$1" && cd "$1" && pwd)
SECS=$2
shift 2
TARGETS=("$@")
((${#TARGETS[@]})) || TARGETS=(exec_req ptc multipart proto_proxy proto_runner demux jwt names
	engine_json)

start=$(date +%s.%N)
if ! "$ROOT/contrib/build.sh" "$BUILD" --enable-fuzz CC=clang; then
	echo "fuzz: the build failed"
	echo "0 passed, 1 failed in $(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN{printf "%.1f", e-s}')s"
	exit 1
fi

# Stop at the first error of either sanitizer, with a stack; leaks count.
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

pass=0 fail=0
for t in "${TARGETS[@]}"; do
	bin=$BUILD/tests/fuzz/fuzz_$t
	work=$BUILD/fuzz-work/$t
	mkdir -p "$work/corpus"
	cp -n "$ROOT/tests/fuzz/corpus/$t"/* "$work/corpus/" 2>/dev/null
	rm -f "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-*
	# -timeout: one input for more than 25 s is a hang.  The outer timeout
	# is for a target that no longer answers at all.
	timeout -k 10 $((SECS + 120)) "$bin" -max_total_time="$SECS" -timeout=25 \
		-print_final_stats=1 -artifact_prefix="$work/" "$work/corpus" >"$work/log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -1)
	last=$(grep -E '^#[0-9]+' "$work/log" | tail -1)
	cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
	ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
	corp=$(find "$work/corpus" -type f | wc -l)
	artifact=$(ls -t "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-* 2>/dev/null | head -1)
	if ((rc == 0)) && [[ -z $artifact ]]; then
		pass=$((pass + 1))
		echo "fuzz_$t: ok in ${SECS}s: ${execs:-?} execs, cov ${cov:-?}, ft ${ft:-?}, corpus $corp"
	else
		fail=$((fail + 1))
		echo "fuzz_$t: FAILED (exit $rc): ${execs:-?} execs, cov ${cov:-?}, ft ${ft:-?}"
		grep -E "ERROR|SUMMARY|invariant broken|runtime error|deadly signal|^fuzz_$t: " "$work/log" | head -6 |
			sed 's/^/    /'
		if [[ -n $artifact ]]; then
			echo "    input: $artifact"
			echo "    base64: $(base64 -w0 "$artifact")"
		fi
		echo "    log: $work/log"
	fi
done
end=$(date +%s.%N)
echo "$pass passed, $fail failed in $(awk -v s="$start" -v e="$end" 'BEGIN{printf "%.1f", e-s}')s"
((fail == 0))
