#!/usr/bin/env bash
# The whole test suite, on a fresh Debian bookworm machine as root (it
# installs and starts what it needs).  Stages:
#   1. build, then `make check`: Check unit tests and the end-to-end tests
#      (real daemon, real dockerd, real sandbox image);
#   2. the same under AddressSanitizer and UBSan (daemon and unit tests;
#      the end-to-end suites that test only the sandbox's side run once);
#   3. the unit tests under valgrind;
#   4. the libFuzzer targets, 15 s each (tests/fuzz/run-fuzz.sh);
#   5. `make distcheck` (the end-to-end tests that need the tarball's files);
#   6. the end-to-end core through a second dockerd reached over TLS
#      (tests/engines/tls.sh).
# Ends with one line "N passed, M failed" over every test run.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=$ROOT/_build/test-logs
mkdir -p "$OUT"
failed_stages=()

stage() {	# name, command...
	local name=$1
	shift
	echo "=== $name"
	if "$@" >"$OUT/$name.log" 2>&1; then
		echo "--- $name: ok"
	else
		echo "--- $name: FAILED"
		failed_stages+=("$name")
	fi
	# The runners' closing lines, and anything that failed.
	grep -hE '^[0-9]+%: Checks:|^[0-9]+ (passed|failed)|^(=+ )?[0-9]+ (passed|failed).*(in [0-9.]+s)|^(FAIL|ERROR|XPASS):|^FAILED |ERROR SUMMARY|^# (TOTAL|PASS|FAIL)' \
		"$OUT/$name.log" | sed 's/^/    /'
}

check_logs() {	# build dir: show the per-test logs make check wrote
	local b=$1
	cat "$b"/tests/unit/check_units.log "$b"/tests/e2e/run-e2e.sh.log 2>/dev/null
}

make_check() {	# build dir, configure options
	local b=$1
	shift
	"$ROOT/contrib/build.sh" "$b" "$@" && make -s -C "$b" check
	local rc=$?
	check_logs "$b"
	return $rc
}

valgrind_units() {
	make -s -C "$ROOT/_build/main" tests/unit/check_units || return 1
	CK_FORK=no valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
		--show-leak-kinds=definite "$ROOT/_build/main/tests/unit/check_units"
}

stage setup bash -c "'$ROOT/contrib/install-deps.sh' && '$ROOT/contrib/ensure-dockerd.sh'"
if [[ ${#failed_stages[@]} -gt 0 ]]; then
	cat "$OUT/setup.log"
	echo "0 passed, 1 failed"
	exit 1
fi
stage check make_check "$ROOT/_build/main"
# The sanitizers watch the daemon, so their end-to-end run leaves out the
# suites that test only what runs inside the sandbox (the image, its
# languages, the pre-loaded Python server, the exploit cases) or the contrib
# files: the check stage ran those against the same daemon code.  The
# sandboxes start without the Python server, whose warm-up would only add
# CPU load to the 4 s runs.
SANDBOX_SIDE="--ignore=test_pyserver.py --ignore=test_languages.py --ignore=test_image.py \
--ignore=test_installed.py --ignore=test_contrib.py --ignore=test_sandbox.py"
sanitized_check() {
	CIP_E2E_ARGS="$SANDBOX_SIDE" CI_PYTHON_PRELOAD= make_check "$ROOT/_build/asan" --enable-sanitizers
}
stage sanitizers sanitized_check
stage valgrind valgrind_units
# Every libFuzzer target for 15 s under ASan and UBSan (build included: a few minutes).
stage fuzz bash "$ROOT/tests/fuzz/run-fuzz.sh" "$ROOT/_build/fuzz" 15
# distcheck builds and tests the tarball.  Its end-to-end run is the tests
# that read files the tarball must carry (image, contrib, the LibreChat
# client package) plus /exec: the whole suite already ran above.
stage distcheck env CIP_E2E_SELECT="test_exec or test_image or test_contrib or test_librechat_client" \
	make -s -C "$ROOT/_build/main" distcheck
# A remote engine over TLS: a second dockerd on loopback that verifies its
# clients, the core image copied into it, the end-to-end core through it,
# and the refused handshakes (a few minutes).
stage tls bash "$ROOT/tests/engines/tls.sh" "$ROOT/_build/main"

for s in "${failed_stages[@]}"; do
	echo "=== end of the $s log ($OUT/$s.log)"
	tail -60 "$OUT/$s.log"
done
# Sum every runner's closing line: Check's "Checks: N, Failures: F, Errors: E"
# and pytest's "N passed, M failed".
cat "$OUT"/*.log | awk '
	/^[0-9]+%: Checks:/ { gsub(/,/, ""); n = $3; f = $5 + $7; pass += n - f; fail += f }
	/ passed| failed/ && /in [0-9.]+s/ {
		for (i = 1; i <= NF; i++) {
			if ($(i+1) ~ /^passed/) pass += $i
			if ($(i+1) ~ /^(failed|errors?)/) fail += $i
		}
	}
	END { printf "%d passed, %d failed\n", pass, fail + stages }' stages="${#failed_stages[@]}"
[[ ${#failed_stages[@]} -eq 0 ]]
