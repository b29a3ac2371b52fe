#!/usr/bin/env bash
# Make gVisor's runsc an OCI runtime of the local Docker engine, named
# "runsc", so that CI_SANDBOX_RUNTIME=runsc runs every sandbox under it.
#
#   contrib/setup-runsc.sh [--check]
#
# Installs Debian's runsc if it is missing, adds to /etc/docker/daemon.json
#   "runtimes": {"runsc": {"path": "/usr/bin/runsc",
#                          "runtimeArgs": ["--network=none", "--platform=ptrace"]}}
# and reloads the engine with SIGHUP, which re-reads the runtimes without
# stopping a container.  The arguments: sandboxes have no network anyway,
# and runsc will not start here without --network=none; the KVM platform
# hangs on this kind of machine, ptrace works everywhere.
#
# An operator's configuration is never rewritten silently: every other key
# is kept as it is, the old file is kept beside it (daemon.json.cip-<time>),
# and the change is printed.  A "runsc" runtime that is already there with
# other arguments is left alone, with a warning: it is the operator's.
# --check only says whether the engine has a working runsc runtime.
# Env: CI_DOCKER_CONFIG  the engine's configuration (default /etc/docker/daemon.json)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CONF=${CI_DOCKER_CONFIG:-/etc/docker/daemon.json}
RUNSC=/usr/bin/runsc
WANT='{"path":"/usr/bin/runsc","runtimeArgs":["--network=none","--platform=ptrace"]}'
if [[ -x /usr/bin/docker ]]; then DOCKER=/usr/bin/docker; else DOCKER=docker; fi

die() { echo "setup-runsc: $*" >&2; exit 1; }
say() { echo "setup-runsc: $*"; }

engine_has_runsc() {
	"$DOCKER" info --format '{{range $k, $v := .Runtimes}}{{$k}} {{end}}' 2>/dev/null |
		tr ' ' '\n' | grep -qx runsc
}

have_image() { "$DOCKER" image inspect "$1" >/dev/null 2>&1; }

# A container that prints the kernel it sees: gVisor's says so.  Never
# pulled (there is no registry to pull from): the sandbox image, else the
# base image it is built on, which a fresh machine gets from debootstrap.
runsc_works() {
	local image=${CI_SANDBOX_IMAGE:-code-interpreter-sandbox:latest} out
	have_image "$image" || image=debian:bookworm-slim
	if ! have_image "$image"; then
		say "no image to start yet: building the base image (docker/bootstrap-base.sh)" >&2
		"$ROOT/docker/bootstrap-base.sh" >&2 || return 1
	fi
	out=$(timeout 60 "$DOCKER" run --rm --pull never --runtime runsc --network none \
		--entrypoint /bin/sh "$image" -c 'dmesg 2>/dev/null | head -1; cat /proc/version' 2>&1) || {
		echo "$out" >&2
		return 1
	}
	grep -qi gvisor <<<"$out" || { echo "not gVisor's kernel: $out" >&2; return 1; }
}

if [[ ${1:-} == --check ]]; then
	engine_has_runsc || die "the engine has no runtime named runsc (run $0)"
	runsc_works || die "a container under runsc did not start"
	say "runsc works"
	exit 0
fi
(($# == 0)) || die "usage: $0 [--check]"
((EUID == 0)) || die "must run as root (it installs a package and edits $CONF)"
command -v jq >/dev/null 2>&1 || die "jq not installed (run contrib/install-deps.sh)"

if [[ ! -x $RUNSC ]]; then
	say "installing Debian's runsc"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends runsc \
		>/tmp/setup-runsc-apt.log 2>&1 || { cat /tmp/setup-runsc-apt.log >&2; die "apt-get install runsc failed"; }
fi

mkdir -p "$(dirname "$CONF")"
current='{}'
if [[ -s $CONF ]]; then
	current=$(jq -c . "$CONF") || die "$CONF is not valid JSON; not touching it"
fi
have=$(jq -c '.runtimes.runsc // empty' <<<"$current")
if [[ -n $have && $(jq -S -c . <<<"$have") != $(jq -S -c . <<<"$WANT") ]]; then
	echo "setup-runsc: warning: $CONF already defines runtime runsc as $have;" \
		"leaving it (the proxy needs runtimeArgs --network=none and, here, --platform=ptrace)" >&2
elif [[ -z $have ]]; then
	new=$(jq --argjson r "$WANT" '.runtimes.runsc = $r' <<<"$current")
	if [[ -e $CONF ]]; then
		backup=$CONF.cip-$(date -u +%Y%m%dT%H%M%SZ)
		cp -p "$CONF" "$backup" || die "cannot back up $CONF"
		say "kept the old configuration as $backup"
	fi
	tmp=$(mktemp "$CONF.XXXXXX")
	printf '%s\n' "$new" >"$tmp" || { rm -f "$tmp"; die "cannot write $tmp"; }
	chmod 0644 "$tmp" && mv "$tmp" "$CONF" || { rm -f "$tmp"; die "cannot replace $CONF"; }
	say "$CONF: added \"runtimes\": {\"runsc\": $WANT}; nothing else changed"
fi

if ! engine_has_runsc; then
	pid=$(cat /var/run/docker.pid 2>/dev/null || true)
	[[ -n $pid && $(cat "/proc/$pid/comm" 2>/dev/null) == dockerd ]] ||
		die "no running dockerd found (/var/run/docker.pid); start it, then run $0 again"
	say "reloading dockerd (pid $pid) with SIGHUP: containers keep running"
	kill -HUP "$pid"
	for _ in $(seq 50); do engine_has_runsc && break; sleep 0.2; done
	engine_has_runsc || die "dockerd did not pick up runsc from $CONF (is it started with another --config-file?)"
fi
runsc_works || die "runsc is registered, but a container under it did not start"
say "runsc is ready: set CI_SANDBOX_RUNTIME=runsc"
