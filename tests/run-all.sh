#!/usr/bin/env bash
# The whole test suite, on a fresh Debian bookworm machine as root (it
# installs and starts what it needs, gVisor's runsc included).
#
# Stages, and what runs beside what on the machine's two cores:
#   setup       packages, dockerd, runsc registered;
#   check       the plain build and its Check unit tests;
#   images      the core sandbox image, then the full one and the proxy's
#               (ten minutes on a fresh machine, nothing where they are
#               current), in the background while these two lanes run:
#   lane A, the whole end-to-end suite (real daemon, real dockerd, real
#   sandbox image) against the AddressSanitizer + UBSan build:
#     sanitizers-core  its unit tests, then every test that needs no more
#                      than the core image, on it, while the full image builds;
#     sanitizers-full  the rest, once the full image is there;
#   lane B, what needs neither the sanitized build nor the full image first:
#     valgrind    the unit tests under valgrind;
#     fuzz        every libFuzzer target, 15 s each (tests/fuzz/run-fuzz.sh);
#     distcheck   the tarball has every tracked file, builds and passes the
#                 unit tests;
#     tls         the end-to-end core through a second dockerd reached over
#                 TLS (tests/engines/tls.sh);
#     podman      the end-to-end core against Podman, rootful, on the core
#                 image, and the startup refusal against rootless Podman
#                 (tests/engines/podman.sh);
#     runsc       the sandbox's exploit and containment cases again, every
#                 sandbox under gVisor, on the core image;
#   then alone:
#     serial      the test that restarts dockerd, which everything above
#                 stands on.
# A run with the images current takes about 20 minutes; one on a fresh
# machine about 30 (figures in README).  Each stage's output is in
# _build/test-logs/STAGE.log; this prints each stage's closing lines.
# Ends with one line "N passed, M failed" over every test run.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=$ROOT/_build/test-logs
mkdir -p "$OUT"
failed_stages=()

# A stage's output goes to $OUT/NAME.log, its exit status to NAME.rc and
# its wall seconds to NAME.secs; report prints them.  Stages in a
# background lane run with run_stage and are reported when it ends.
run_stage() {	# name, command...
	local name=$1 t0=$SECONDS
	shift
	rm -f "$OUT/$name.rc"
	"$@" >"$OUT/$name.log" 2>&1
	echo $? >"$OUT/$name.rc.tmp"
	echo $((SECONDS - t0)) >"$OUT/$name.secs"
	mv "$OUT/$name.rc.tmp" "$OUT/$name.rc"
}
report() {	# name
	local name=$1 rc secs
	rc=$(cat "$OUT/$name.rc" 2>/dev/null || echo "none")
	secs=$(cat "$OUT/$name.secs" 2>/dev/null || echo "?")
	echo "=== $name"
	if [[ $rc == 0 ]]; then
		echo "--- $name: ok (${secs} s)"
	else
		echo "--- $name: FAILED (exit $rc, ${secs} s)"
		failed_stages+=("$name")
	fi
	# The runners' closing lines, and anything that failed.
	grep -hE '^[0-9]+%: Checks:|^[0-9]+ (passed|failed)|^(=+ )?[0-9]+ (passed|failed).*(in [0-9.]+s)|^(FAIL|ERROR|XPASS):|^FAILED |ERROR SUMMARY|^# (TOTAL|PASS|FAIL)' \
		"$OUT/$name.log" 2>/dev/null | sed 's/^/    /'
}
stage() {	# name, command...: run it here and now
	run_stage "$@"
	report "$1"
}
wait_for_stage() {	# name: until its status is written
	while [[ ! -e $OUT/$1.rc ]]; do sleep 2; done
}

# The per-test logs make check writes in a build dir: removed before a run,
# shown after it, so that no earlier run's lines are counted again.
TEST_LOGS=(tests/unit/check_units.log tests/e2e/run-e2e.sh.log)
clear_logs() {	# build dir
	local l
	for l in "${TEST_LOGS[@]}"; do rm -f "$1/$l"; done
}
check_logs() {	# build dir
	local l
	for l in "${TEST_LOGS[@]}"; do cat "$1/$l" 2>/dev/null; done
}

make_check() {	# build dir, then configure options or make variables (X=Y)
	local b=$1 conf=() vars=()
	shift
	for a in "$@"; do
		if [[ $a == *=* && $a != --* ]]; then vars+=("$a"); else conf+=("$a"); fi
	done
	clear_logs "$b"
	"$ROOT/contrib/build.sh" "$b" "${conf[@]}" && make -s -C "$b" check "${vars[@]}"
	local rc=$?
	check_logs "$b"
	return $rc
}

valgrind_units() {
	make -s -C "$ROOT/_build/main" tests/unit/check_units || return 1
	CK_FORK=no valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
		--show-leak-kinds=definite "$ROOT/_build/main/tests/unit/check_units"
}

# No earlier run's logs are read or counted.
rm -f "$OUT"/*.log "$OUT"/*.rc "$OUT"/*.rc.tmp "$OUT"/*.secs

stage setup bash -c "'$ROOT/contrib/install-deps.sh' && '$ROOT/contrib/ensure-dockerd.sh' \
	&& '$ROOT/contrib/setup-runsc.sh'"
if [[ ${#failed_stages[@]} -gt 0 ]]; then
	cat "$OUT/setup.log"
	echo "0 passed, 1 failed"
	exit 1
fi
# The plain build's own end-to-end runs are the engine stages' below (TLS,
# Podman, gVisor): the whole suite runs once, against the sanitized daemon,
# which sees more.
stage check make_check "$ROOT/_build/main" TESTS=tests/unit/check_units

# The images, in the background.  Every build makes the same runner bytes
# (Makefile.am), so one image serves every stage; the core one first, for
# the stages that need no more.
build_images() {	# make targets
	make -s -C "$ROOT/_build/main" "$@"
}
(
	run_stage images-core build_images sandbox-core-image
	run_stage images-full build_images sandbox-image proxy-image
) &
images_job=$!

# Lane B, in the background: nothing in it restarts dockerd or needs the
# sanitized build.
runsc_check() {
	clear_logs "$ROOT/_build/main"
	CI_SANDBOX_RUNTIME=runsc CIP_E2E_IMAGE=core CIP_E2E_MARK="not full_image" \
		CIP_E2E_FILES="test_sandbox.py test_pyserver.py" CIP_E2E_SELECT="$RUNSC_SELECT" \
		make -s -C "$ROOT/_build/main" check TESTS=tests/e2e/run-e2e.sh
	local rc=$?
	check_logs "$ROOT/_build/main"
	return $rc
}
# The sandbox's side again with every sandbox under gVisor (contrib/setup-runsc.sh
# registered runsc above): every exploit and containment case of test_sandbox,
# and the pre-loaded server's (out of the user's reach, squatter, bombs,
# killed and back).  On the core image, so that it runs while the full one
# builds: the served data stack and plots (lang_py, plots; full_image) are
# left to runc.  The rest of the suite is the daemon's side, the same under
# any runtime; what gVisor does differently elsewhere is in README's
# "Under gVisor".
RUNSC_SELECT="test_sandbox or reach or memory_bomb or squatter or a_fork_bomb_through_it \
or killed_server"
LANE_B=(valgrind fuzz distcheck tls podman runsc)
(
	# Below the image build in the scheduler's eyes: on a fresh machine the
	# full image is the longest path, and this lane has time to spare.
	renice -n 10 -p "$BASHPID" >/dev/null
	run_stage valgrind valgrind_units
	# Every libFuzzer target for 15 s under ASan and UBSan (build included).
	run_stage fuzz bash "$ROOT/tests/fuzz/run-fuzz.sh" "$ROOT/_build/fuzz" 15
	# distcheck builds the tarball, checks that it has every file git tracks
	# (Makefile.am's distcheck-hook), then builds and unit-tests it in a
	# read-only tree.  Its end-to-end run would repeat, from identical
	# files, what the other stages run (it took 6 of the run's 36 minutes).
	run_stage distcheck make -s -C "$ROOT/_build/main" distcheck TESTS=tests/unit/check_units
	wait_for_stage images-core
	# A remote engine over TLS: a second dockerd on loopback that verifies
	# its clients, the core image copied into it, the end-to-end core
	# through it, and the refused handshakes.
	run_stage tls bash "$ROOT/tests/engines/tls.sh" "$ROOT/_build/main"
	# Podman: its own services and sockets, stopped at the end.
	run_stage podman bash "$ROOT/tests/engines/podman.sh" "$ROOT/_build/main"
	run_stage runsc runsc_check
) &
lane_b=$!

# Lane A, here: the sanitized end-to-end suite, in two parts.  The tests
# that run on the core image (their files say core_image; pytest.ini)
# start as soon as it is there; the rest wait for the full image.
sanitized_check() {	# pytest -m expression, then make variables
	local mark=$1
	shift
	clear_logs "$ROOT/_build/asan"
	"$ROOT/contrib/build.sh" "$ROOT/_build/asan" --enable-sanitizers &&
		CIP_E2E_MARK="$mark" make -s -C "$ROOT/_build/asan" check "$@"
	local rc=$?
	check_logs "$ROOT/_build/asan"
	return $rc
}
sanitizers_core() {
	# The build first: it needs no image.
	"$ROOT/contrib/build.sh" "$ROOT/_build/asan" --enable-sanitizers || return 1
	wait_for_stage images-core
	CIP_E2E_IMAGE=core sanitized_check "core_image and not full_image and not serial"
}
sanitizers_full() {
	wait_for_stage images-full
	sanitized_check "not (core_image and not full_image) and not serial" TESTS=tests/e2e/run-e2e.sh
}
stage sanitizers-core sanitizers_core
stage sanitizers-full sanitizers_full
wait "$images_job"
report images-core
report images-full
wait "$lane_b"
for s in "${LANE_B[@]}"; do report "$s"; done
# Alone at the end: the test that restarts dockerd under everything else.
stage serial sanitized_check serial TESTS=tests/e2e/run-e2e.sh

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
