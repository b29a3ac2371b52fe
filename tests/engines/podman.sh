#!/usr/bin/env bash
# The end-to-end core against Podman: run-all.sh's podman stage.
#
#   tests/engines/podman.sh [BUILD_DIR]
#
# As root on Debian bookworm.  Installs podman if it is missing (apt; a
# failed install fails the stage), builds the tree and the core sandbox
# image (docker/build-sandbox-image.sh --core, with dockerd), and starts two
# Podman services of its own, each on its own socket with a pid file beside
# it (SOCKET without .sock, .pid) and a log in BUILD_DIR/podman/:
#   - rootful:  podman system service --time=0 unix:///run/cip-podman.sock
#   - rootless: the same as user cipuser (created with subordinate ids if
#               missing), on unix:///run/user/UID/cip-podman.sock
# The core image goes into each one's store by docker save | podman load,
# skipped when the store already holds an image with the same
# cip.build-hash label.  Then check_runner (the runner protocol) runs
# against the rootful service, and pytest the exec, files, lifecycle, pool
# and sandbox suites against the rootful service, on the core image, and
# test_engine_limits.py, whose rootless_podman test starts the daemon
# against the rootless service and must see it refuse.  Both services are
# stopped by their pid at the end.  Prints pytest's summary and the wall time.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=$(mkdir -p "${1:-$ROOT/_build/main}" && cd "${1:-$ROOT/_build/main}" && pwd)
WORK=$BUILD/podman
IMAGE=code-interpreter-sandbox:core
ROOTFUL_SOCK=/run/cip-podman.sock
ROOTFUL_PID=/run/cip-podman.pid
RL_USER=cipuser
start=$(date +%s.%N)
pids=()	# the services' background jobs, stopped at the end

mkdir -p "$WORK" || exit 1
die() { echo "podman stage: $*" >&2; exit 1; }
elapsed() { awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN{printf "%.1f", e-s}'; }

stop_services() {
	local p
	for p in "${pids[@]}"; do
		kill "$(service_pid "$p")" "$p" 2>/dev/null
	done
	for p in "${pids[@]}"; do
		wait "$p" 2>/dev/null
	done
	rm -f "$ROOTFUL_PID" "${RL_PID:-}"
}

# The podman process at or below pid $1: the rootless one runs under the
# subshell that switched users, and killing that one would leave it.
service_pid() {
	local p=$1 c
	while [[ $(cat /proc/"$p"/comm 2>/dev/null) != podman ]]; do
		c=$(ps -o pid= --ppid "$p" | tr -d ' ' | head -1)
		[[ -n $c ]] || break
		p=$c
	done
	echo "$p"
}
trap stop_services EXIT

# A leftover of an earlier run of this script (its pid file names a live
# podman service on our socket) is stopped; anything else on the socket is
# not ours, and the stage fails rather than touch it.
stop_leftover() {	# pid file, socket
	local pid
	[[ -f $1 ]] || return 0
	pid=$(cat "$1")
	if [[ -n $pid ]] && tr '\0' ' ' </proc/"$pid"/cmdline 2>/dev/null |
		grep -q "podman system service --time=0 unix://$2"; then
		echo "stopping the service a previous run left (pid $pid)"
		kill "$pid" && while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done
	fi
	rm -f "$1"
}

wait_ping() {	# socket, pid, log
	local i
	for ((i = 0; i < 150; i++)); do
		curl -sf --max-time 2 --unix-socket "$1" http://localhost/_ping >/dev/null && return 0
		kill -0 "$2" 2>/dev/null || { cat "$3"; die "the service on $1 exited"; }
		sleep 0.2
	done
	cat "$3"
	die "no answer on $1 after 30 s"
}

# Copy the core image from dockerd unless the store has this build already.
transfer_image() {	# podman command (array, passed as words)
	local want have
	want=$(docker image inspect --format '{{ index .Config.Labels "cip.build-hash" }}' "$IMAGE") ||
		die "dockerd has no $IMAGE"
	have=$("$@" image inspect --format '{{ index .Config.Labels "cip.build-hash" }}' "$IMAGE" \
		2>/dev/null)
	if [[ $have == "$want" ]]; then
		echo "$* already has $IMAGE (cip.build-hash ${want:0:12})"
		return 0
	fi
	local t0 old
	t0=$(date +%s.%N)
	old=$("$@" image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null)
	docker save "$IMAGE" | "$@" load -q >/dev/null || die "$*: load of $IMAGE failed"
	# The build it replaces, now untagged, would only take space.
	if [[ -n $old ]] && ! "$@" rmi "$old" >/dev/null 2>&1; then
		echo "note: $*: the previous $IMAGE (${old:0:12}) is still in use, kept"
	fi
	echo "$IMAGE copied into $*'s store in $(awk -v s="$t0" -v e="$(date +%s.%N)" \
		'BEGIN{printf "%.1f", e-s}') s"
}

# 1. podman and what rootless Podman needs; dockerd for the image build.
if ! command -v podman >/dev/null; then
	apt-get install -y -q podman uidmap slirp4netns fuse-overlayfs >"$WORK/apt.log" 2>&1 ||
		{ cat "$WORK/apt.log"; die "podman is missing and apt-get install failed"; }
fi
for tool in newuidmap slirp4netns; do
	command -v $tool >/dev/null || die "$tool missing (apt-get install uidmap slirp4netns)"
done
"$ROOT/contrib/ensure-dockerd.sh" || die "no dockerd to build the image with"
podman --version

# 2. The daemon and the core image.
"$ROOT/contrib/build.sh" "$BUILD" >"$WORK/build.log" 2>&1 ||
	{ tail -40 "$WORK/build.log"; die "build failed"; }
make -s -C "$BUILD" sandbox-core-image || die "core image build failed"

# 3. The rootful service.
stop_leftover "$ROOTFUL_PID" "$ROOTFUL_SOCK"
rm -f "${ROOTFUL_SOCK}"
# From its own directory: conmon leaves an "oom" file in its working one.
(cd "$WORK" && exec podman system service --time=0 "unix://$ROOTFUL_SOCK") \
	>"$WORK/rootful.log" 2>&1 &
pids+=($!)
wait_ping "$ROOTFUL_SOCK" "$!" "$WORK/rootful.log"
service_pid $! >"$ROOTFUL_PID" || die "cannot write $ROOTFUL_PID"
transfer_image podman

# 4. The rootless service, as RL_USER.
if ! id "$RL_USER" >/dev/null 2>&1; then
	useradd -m -s /bin/bash "$RL_USER" || die "cannot create user $RL_USER"
fi
uid=$(id -u "$RL_USER")
for f in /etc/subuid /etc/subgid; do
	grep -q "^$RL_USER:" "$f" || echo "$RL_USER:200000:65536" >>"$f" || die "cannot write $f"
done
RL_RUN=/run/user/$uid
RL_SOCK=$RL_RUN/cip-podman.sock
RL_PID=$RL_RUN/cip-podman.pid
install -d -m 0700 -o "$RL_USER" -g "$RL_USER" "$RL_RUN" || die "cannot make $RL_RUN"
RL_HOME=$(getent passwd "$RL_USER" | cut -d: -f6)
# setpriv execs podman (runuser would stay as its parent); service_pid
# still looks below $! for it.
rl_podman() {
	(cd / && exec setpriv --reuid="$RL_USER" --regid="$RL_USER" --init-groups \
		env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin XDG_RUNTIME_DIR="$RL_RUN" HOME="$RL_HOME" \
		USER="$RL_USER" podman "$@")
}
stop_leftover "$RL_PID" "$RL_SOCK"
rm -f "$RL_SOCK"
rl_podman system service --time=0 "unix://$RL_SOCK" >"$WORK/rootless.log" 2>&1 &
pids+=($!)
wait_ping "$RL_SOCK" "$!" "$WORK/rootless.log"
service_pid $! >"$RL_PID" || die "cannot write $RL_PID"
transfer_image rl_podman

# 5. The runner protocol straight to a container (as run-e2e.sh runs it);
# a failed check leaves its container behind, so sweep by its label.
make -s -C "$BUILD" tests/e2e/check_runner || die "check_runner build failed"
rc_runner=0
CI_DOCKER_HOST="unix://$ROOTFUL_SOCK" CI_SANDBOX_IMAGE="$IMAGE" "$BUILD/tests/e2e/check_runner" ||
	rc_runner=1
for c in $(podman ps -aq --filter label=cip.e2e.runner=1); do
	podman rm -f -v "$c" >/dev/null || echo "podman stage: cannot remove container $c"
done

# 6. The suites.  -m "not full_image": the core image has bash and Python
# only; the tests marked so need the full image's other languages and
# libraries, and run in the sanitizer stages on dockerd.
cd "$ROOT/tests/e2e" || die "no tests/e2e"
env PYTHONDONTWRITEBYTECODE=1 CIP_BUILDDIR="$BUILD" CI_DOCKER_HOST="unix://$ROOTFUL_SOCK" \
	CIP_ENGINE_CLI=podman CI_SANDBOX_IMAGE="$IMAGE" \
	CIP_ROOTLESS_PODMAN_HOST="unix://$RL_SOCK" CIP_ROOTLESS_PODMAN_IMAGE="$IMAGE" \
	/usr/bin/python3 -m pytest -p no:cacheprovider -q --durations=12 -m "not full_image" \
	test_exec.py test_files.py test_lifecycle.py test_pool.py test_sandbox.py \
	test_engine_limits.py
rc=$?
echo "podman stage: $(elapsed) s wall time"
((rc == 0 && rc_runner == 0))
