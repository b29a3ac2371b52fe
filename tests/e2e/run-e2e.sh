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
cd "$CIP_SRCDIR/tests/e2e"
PYTHON=${PYTHON:-/usr/bin/python3}
export PYTHONDONTWRITEBYTECODE=1
exec "$PYTHON" -m pytest -p no:cacheprovider -q ${CIP_E2E_ARGS:-} .
