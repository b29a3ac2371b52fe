#!/bin/sh
# End-to-end tests under `make check`: the real daemon, the real engine and
# the sandbox image built from this tree's runner.  No engine is a failure,
# never a skip.
#
# The engine is dockerd at /var/run/docker.sock unless CI_DOCKER_HOST says
# otherwise; CIP_ENGINE_CLI names its CLI (default docker), e.g. for Podman:
#   CI_DOCKER_HOST=unix:///run/podman/podman.sock CIP_ENGINE_CLI=podman
# The image build drives docker, so on another engine the sandbox image
# must be there already (docker save IMAGE | podman load).
set -eu
: "${CIP_SRCDIR:?run through make check}" "${CIP_BUILDDIR:?run through make check}"
ENGINE=${CI_DOCKER_HOST:-unix:///var/run/docker.sock}
CLI=${CIP_ENGINE_CLI:-docker}
case $ENGINE in
unix://*)	set -- --unix-socket "${ENGINE#unix://}" http://localhost/_ping ;;
tcp://*)	set -- "http://${ENGINE#tcp://}/_ping" ;;
*)		echo "FAIL: CI_DOCKER_HOST=$ENGINE is neither unix:// nor tcp://" >&2; exit 1 ;;
esac
if ! curl -sf --max-time 5 "$@" >/dev/null; then
	if [ -z "${CI_DOCKER_HOST:-}" ]; then
		echo "FAIL: no docker engine answers on /var/run/docker.sock (start one: contrib/ensure-dockerd.sh)" >&2
	else
		echo "FAIL: no engine answers on $ENGINE" >&2
	fi
	exit 1
fi
# CIP_E2E_IMAGE=core: the tests run on the core image (bash, Python, the
# runner; a minute to build where the full one takes ten), which run-all.sh
# uses while the full image is still building; select -m "not full_image".
case ${CLI##*/}:${CIP_E2E_IMAGE:-full} in
docker:core)
	export CI_SANDBOX_IMAGE=code-interpreter-sandbox:core
	"$CIP_SRCDIR/docker/build-sandbox-image.sh" --core "$CIP_BUILDDIR/src/runner/cip-runner" ;;
docker:full)
	"$CIP_SRCDIR/docker/build-sandbox-image.sh" "$CIP_BUILDDIR/src/runner/cip-runner"
	"$CIP_SRCDIR/docker/build-proxy-image.sh" ;;
docker:*)
	echo "FAIL: CIP_E2E_IMAGE=$CIP_E2E_IMAGE is neither core nor full" >&2; exit 1 ;;
*:*)	echo "run-e2e: engine CLI $CLI: using its image ${CI_SANDBOX_IMAGE:-code-interpreter-sandbox:latest} as it is" ;;
esac
# The runner protocol, straight to a container; a failed check leaves its
# container behind (forked checks skip teardown), so sweep by its label.
rc=0
"$CIP_BUILDDIR/tests/e2e/check_runner" || rc=1
left=$("$CLI" ps -aq --filter label=cip.e2e.runner=1)
[ -z "$left" ] || "$CLI" rm -f -v $left >/dev/null
[ $rc -eq 0 ] || exit 1
cd "$CIP_SRCDIR/tests/e2e"
PYTHON=${PYTHON:-/usr/bin/python3}
export PYTHONDONTWRITEBYTECODE=1
# CIP_E2E_SELECT: a pytest -k expression (run-all.sh's distcheck stage).
if [ -n "${CIP_E2E_SELECT:-}" ]; then set -- -k "$CIP_E2E_SELECT"; else set --; fi
# CIP_E2E_MARK: a pytest -m expression of the stage's (e.g. "not full_image");
# the marks below are joined to it with "and" (pytest keeps only the last -m).
# The rootless_podman test needs a rootless Podman service, which only
# tests/engines/podman.sh (run-all.sh's podman stage) starts and names in
# CIP_ROOTLESS_PODMAN_HOST; without one it is deselected, not skipped.
if [ -z "${CIP_ROOTLESS_PODMAN_HOST:-}" ]; then
	CIP_E2E_MARK="${CIP_E2E_MARK:+($CIP_E2E_MARK) and }not rootless_podman"
fi
with_mark() {	# expression: CIP_E2E_MARK and it
	if [ -n "${CIP_E2E_MARK:-}" ]; then echo "($CIP_E2E_MARK) and ($1)"; else echo "$1"; fi
}
# CIP_E2E_FILES: the test files to run (default: all of them).
# shellcheck disable=SC2086
set -- "$@" ${CIP_E2E_FILES:-.}
# CIP_E2E_JOBS=N (N > 1): N pytest-xdist workers, a test file per worker at
# a time (each test has its own daemons, ports and labels; the module
# fixtures stay in one process), then the tests marked serial alone: they
# restart the engine every other test stands on.
if [ "${CIP_E2E_JOBS:-1}" -gt 1 ]; then
	rc=0
	# shellcheck disable=SC2086  # CIP_E2E_ARGS is a list of arguments
	"$PYTHON" -m pytest -p no:cacheprovider -q -n "$CIP_E2E_JOBS" --dist loadfile \
		-m "$(with_mark "not serial")" ${CIP_E2E_ARGS:-} "$@" || rc=1
	# Exit status 5: nothing selected (a -k that leaves the serial tests out).
	r=0
	# shellcheck disable=SC2086
	"$PYTHON" -m pytest -p no:cacheprovider -q -m "$(with_mark serial)" \
		${CIP_E2E_ARGS:-} "$@" || r=$?
	[ $r -eq 0 ] || [ $r -eq 5 ] || rc=1
	exit $rc
fi
if [ -n "${CIP_E2E_MARK:-}" ]; then set -- -m "$CIP_E2E_MARK" "$@"; fi
# shellcheck disable=SC2086
exec "$PYTHON" -m pytest -p no:cacheprovider -q ${CIP_E2E_ARGS:-} "$@"
