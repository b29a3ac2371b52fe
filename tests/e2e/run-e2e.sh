#!/bin/sh
# End-to-end tests under `make check`: the real daemon, the real engine and
# the sandbox image built from this tree's runner.  No engine is a failure,
# never a skip.
set -eu
: "${CIP_SRCDIR:?run through make check}" "${CIP_BUILDDIR:?run through make check}"
if ! curl -sf --max-time 5 --unix-socket /var/run/docker.sock http://localhost/_ping >/dev/null; then
	echo "FAIL: no docker engine answers on /var/run/docker.sock (start one: contrib/ensure-dockerd.sh)" >&2
	exit 1
fi
"$CIP_SRCDIR/docker/build-sandbox-image.sh" "$CIP_BUILDDIR/src/runner/cip-runner"
# The runner protocol, straight to a container; a failed check leaves its
# container behind (forked checks skip teardown), so sweep by its label.
rc=0
"$CIP_BUILDDIR/tests/e2e/check_runner" || rc=1
left=$(docker ps -aq --filter label=cip.e2e.runner=1)
[ -z "$left" ] || docker rm -f -v $left >/dev/null
[ $rc -eq 0 ] || exit 1
cd "$CIP_SRCDIR/tests/e2e"
PYTHON=${PYTHON:-/usr/bin/python3}
export PYTHONDONTWRITEBYTECODE=1
exec "$PYTHON" -m pytest -p no:cacheprovider -q ${CIP_E2E_ARGS:-} .
