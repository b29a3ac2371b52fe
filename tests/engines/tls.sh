#!/usr/bin/env bash
# The TLS stage of tests/run-all.sh: the end-to-end core through a remote
# engine over TLS.  Makes a CA, a server certificate for 127.0.0.1 and
# localhost and a client certificate (and a stranger CA with its own client
# certificate) with openssl; starts a second dockerd that shares nothing
# with the main one (tls-lib.sh says how) and verifies its clients; copies
# the core sandbox image into it; runs check_runner (the runner protocol
# over the TLS exec stream), test_exec.py, test_files.py, test_lifecycle.py
# and test_tls_engine.py (the refusals among them) through it; stops
# it by its pid and removes its roots.  Prints the stage's wall times.
#
#   tests/engines/tls.sh BUILD_DIR
#
# Root only (dockerd).  A missing tool is a failure, never a skip.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=$(cd "${1:?usage: $0 BUILD_DIR}" && pwd) || exit 1
# The core image (bash, Python, the runner): the full one is 5 GB to copy.
# The tests marked full_image (node, matplotlib, plotly: the sandbox's side,
# which the check stage covers) are left out; the engine calls they make
# are the ones of the rest.
IMAGE=code-interpreter-sandbox:core

# shellcheck source=tests/engines/tls-lib.sh
. "$ROOT/tests/engines/tls-lib.sh"

die() { echo "tls: $*" >&2; exit 1; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f s", b - a }'; }

((EUID == 0)) || die "needs root (it starts a dockerd)"
for t in openssl dockerd docker curl python3 ip; do
	command -v "$t" >/dev/null || die "$t is not installed (contrib/install-deps.sh)"
done
/usr/bin/python3 -c 'import pytest' || die "pytest is not installed (contrib/install-deps.sh)"

WORK=$(mktemp -d /var/tmp/cip-tls.XXXXXX) || die "mktemp failed"
TLS_DOCKERD_PID=
had_docker0=0
ip link show docker0 >/dev/null 2>&1 && had_docker0=1
cleanup() {
	local rc=$? i left
	if [[ -n $TLS_DOCKERD_PID ]] && kill -0 "$TLS_DOCKERD_PID" 2>/dev/null; then
		# Containers a failed test left; then the engine, by the pid we started.
		left=$(docker -H "unix://$TLS_SOCK" ps -aq 2>/dev/null)
		[[ -z $left ]] || docker -H "unix://$TLS_SOCK" rm -f -v $left >/dev/null 2>&1
		kill -TERM "$TLS_DOCKERD_PID"
		for ((i = 0; i < 240; i++)); do
			kill -0 "$TLS_DOCKERD_PID" 2>/dev/null || break
			sleep 0.25
		done
		if kill -0 "$TLS_DOCKERD_PID" 2>/dev/null; then
			echo "tls: the second dockerd ignored SIGTERM for 60 s: SIGKILL" >&2
			kill -KILL "$TLS_DOCKERD_PID"
			rc=1
		fi
		wait "$TLS_DOCKERD_PID" 2>/dev/null
	fi
	# Its managed containerd, should it outlive a killed dockerd.
	if [[ -s $TLS_EXECROOT/containerd/containerd.pid ]]; then
		i=$(<"$TLS_EXECROOT/containerd/containerd.pid")
		[[ $(cat "/proc/$i/comm" 2>/dev/null) == containerd ]] && kill -TERM "$i"
	fi
	# Nothing may stay mounted under its roots before they go.
	for left in $(findmnt -rn -o TARGET | grep -E "^($WORK|$TLS_EXECROOT)(/|$)" | sort -r); do
		umount "$left" || { echo "tls: cannot unmount $left; left $WORK" >&2; exit 1; }
	done
	rm -rf --one-file-system "$WORK" "$TLS_EXECROOT" "$TLS_SOCK" "$TLS_PIDFILE"
	ip link del "$TLS_BRIDGE" 2>/dev/null
	# The main engine's bridge is still there (see TLS_BRIDGE).
	if [[ $had_docker0 == 1 ]] && ! ip link show docker0 >/dev/null 2>&1; then
		echo "tls: the host's docker0 bridge is gone" >&2
		rc=1
	fi
	# The main engine answers still: nothing of the second one reached it.
	if ! curl -s --max-time 5 --unix-socket /var/run/docker.sock http://localhost/_ping |
		grep -qx OK; then
		echo "tls: the main dockerd does not answer on /var/run/docker.sock any more" >&2
		rc=1
	fi
	[[ -z ${t0:-} ]] || echo "tls: the stage, engine stopped and removed: $(since "$t0")"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

rc=0
t0=$(now)
tls_make_certs "$WORK/certs" || die "openssl could not make the certificates"
PORT=$(tls_free_port) || die "no free port"
t=$(now)
tls_start_dockerd "$WORK/certs" "$WORK/engine" "$PORT" "$WORK/dockerd.log" ||
	die "the second dockerd did not start"
echo "tls: second dockerd (pid $TLS_DOCKERD_PID) on 127.0.0.1:$PORT up in $(since "$t")"

# Its managed containerd must be its own: its config under our exec root,
# and no other containerd for its parent than the one it started.
grep -q "^state = \"$TLS_EXECROOT/" "$TLS_EXECROOT/containerd/containerd.toml" &&
	grep -q "^root = \"$WORK/engine/data/" "$TLS_EXECROOT/containerd/containerd.toml" ||
	die "the second dockerd's containerd does not keep its state and root under ours"
[[ $(ps -o args= --ppid "$TLS_DOCKERD_PID") == *"--config $TLS_EXECROOT/containerd/containerd.toml"* ]] ||
	die "the second dockerd did not start its own containerd"

make -s -C "$BUILD" all tests/e2e/check_runner >/dev/null || die "build failed"
# With this tree's runner (docker's cache makes a rebuild cheap).
t=$(now)
make -s -C "$BUILD" sandbox-core-image >"$WORK/image.log" 2>&1 ||
	{ tail -30 "$WORK/image.log" >&2; die "the core image did not build"; }
echo "tls: $IMAGE built in $(since "$t")"
t=$(now)
docker save "$IMAGE" | docker -H "unix://$TLS_SOCK" load -q >/dev/null ||
	die "could not copy $IMAGE into the second dockerd"
echo "tls: $IMAGE ($(docker image inspect -f '{{.Size}}' "$IMAGE" | awk '{ printf "%d MB", $1 / 1e6 }')) copied in $(since "$t")"

t=$(now)
export CI_DOCKER_HOST=tcp://127.0.0.1:$PORT \
	CI_DOCKER_TLS_CA=$WORK/certs/client/ca.pem \
	CI_DOCKER_TLS_CERT=$WORK/certs/client/cert.pem \
	CI_DOCKER_TLS_KEY=$WORK/certs/client/key.pem \
	CI_SANDBOX_IMAGE=$IMAGE
# The runner protocol straight over the TLS exec stream (no daemon between).
"$BUILD/tests/e2e/check_runner" || rc=1
cd "$ROOT/tests/e2e" || die "no tests/e2e"
CIP_BUILDDIR=$BUILD CIP_SRCDIR=$ROOT PYTHONDONTWRITEBYTECODE=1 \
CIP_TLS_CERTS=$WORK/certs CIP_TLS_DATA_ROOT=$WORK/engine/data \
	/usr/bin/python3 -m pytest -p no:cacheprovider -q -m "not full_image" \
	test_tls_engine.py test_exec.py test_files.py test_lifecycle.py || rc=1
echo "tls: tests $(since "$t"); the stage $(since "$t0") (engine start and image copy included)"
exit "$rc"
