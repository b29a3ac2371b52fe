#!/usr/bin/env bash
# Install (with apt-get) whatever the project needs that is not installed yet:
# build dependencies plus the runtime/test tools (docker, debootstrap, ...).
# Idempotent: when everything is present it only reads dpkg's database
# (well under a second, no network) and prints nothing.
set -euo pipefail

BUILD_DEPS=(build-essential autoconf automake libtool pkg-config
    libmicrohttpd-dev libjson-c-dev libcurl4-openssl-dev libsqlite3-dev
    libmagic-dev libarchive-dev libssl-dev check
    clang libclang-rt-14-dev)   # the fuzz targets: libclang_rt.fuzzer is in libclang-rt-14-dev
TOOLS=(docker.io debootstrap curl jq python3 python3-pytest python3-pytest-xdist python3-jwt python3-cryptography python3-prometheus-client
    prometheus valgrind docker-compose python3-yaml systemd iproute2
    nodejs npm ca-certificates poppler-utils python3-pil)

die() { echo "install-deps: $*" >&2; exit 1; }

command -v dpkg-query >/dev/null 2>&1 || die "dpkg-query not found: this script needs Debian/apt"

# One dpkg-query call: every installed package, plus every name it Provides
# (e.g. NodeSource's nodejs provides and conflicts with "npm"; such a
# package counts as present, installing Debian's npm would fail).
declare -A have=()
while IFS='|' read -r status pkg provides; do
    [[ $status == "install ok installed" ]] || continue
    have[$pkg]=1
    if [[ -n $provides ]]; then
        IFS=',' read -r -a prov <<<"$provides"
        for p in "${prov[@]}"; do
            p=${p## }; p=${p%% *}        # strip blanks and "(= version)"
            [[ -n $p ]] && have[$p]=1
        done
    fi
done < <(dpkg-query -W -f='${Status}|${Package}|${Provides}\n' 2>/dev/null)

missing=()
for p in "${BUILD_DEPS[@]}" "${TOOLS[@]}"; do
    [[ -n ${have[$p]:-} ]] || missing+=("$p")
done
((${#missing[@]} == 0)) && exit 0

SUDO=()
if ((EUID != 0)); then
    command -v sudo >/dev/null 2>&1 || die "need root to install: ${missing[*]}"
    SUDO=(sudo -E)
fi

export DEBIAN_FRONTEND=noninteractive
log=$(mktemp "${TMPDIR:-/tmp}/install-deps.XXXXXX.log")
trap 'rm -f "$log"' EXIT

if ! "${SUDO[@]}" apt-get update -q >"$log" 2>&1; then
    cat "$log" >&2
    die "apt-get update failed (missing: ${missing[*]})"
fi
if ! "${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" >>"$log" 2>&1; then
    cat "$log" >&2
    die "apt-get install failed for: ${missing[*]}"
fi
