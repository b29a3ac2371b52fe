#!/usr/bin/env bash
# Ensure the base image debian:bookworm-slim exists in the local Docker.
#
# No container registry is reachable here, so unless CI_TRY_PULL=1 (then
# `docker pull` is tried first) the image is built locally: debootstrap
# --variant=minbase from the Debian mirror this machine's apt uses, slimmed
# like the official -slim image, then `docker import`ed. Inside the image apt
# points at the same mirror(s) and suites (bookworm, -updates, -security as
# configured on the host), so `RUN apt-get update && apt-get install ...`
# works in `docker build`.
#
# Env: CI_TRY_PULL=1       try `docker pull` before building
#      CI_DEBIAN_MIRROR=URL override the mirror found in apt's sources
#      CI_BASE_IMAGE        image name (default debian:bookworm-slim)
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
IMAGE=${CI_BASE_IMAGE:-debian:bookworm-slim}
SUITE=bookworm
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

if [[ -x /usr/bin/docker ]]; then DOCKER=/usr/bin/docker; else DOCKER=docker; fi

die() { echo "bootstrap-base: $*" >&2; exit 1; }

have_image() { "$DOCKER" image inspect "$IMAGE" >/dev/null 2>&1; }

"$ROOT/contrib/ensure-dockerd.sh"
have_image && exit 0

# Serialise concurrent runs (taken after ensure-dockerd so that a dockerd
# started by it cannot inherit the lock's file descriptor).
mkdir -p /run/lock
exec 9>/run/lock/cip-bootstrap-base.lock
flock 9
have_image && exit 0

if [[ ${CI_TRY_PULL:-} == 1 ]]; then
    if "$DOCKER" pull -q "$IMAGE" >/dev/null 2>&1; then
        exit 0
    fi
    echo "bootstrap-base: docker pull $IMAGE failed; building it with debootstrap" >&2
fi

((EUID == 0)) || die "building $IMAGE with debootstrap needs root"
command -v debootstrap >/dev/null 2>&1 || die "debootstrap not installed (run contrib/install-deps.sh)"
[[ -r $KEYRING ]] || die "$KEYRING missing (install debian-archive-keyring)"

# --- Which Debian mirror(s) does this machine's apt use? -------------------
# apt-get indextargets reads sources.list and sources.list.d/* (one-line
# and deb822 formats, honouring Enabled: no) without needing the lists.
# shellcheck disable=SC2016  # apt-get itself expands these $(...) fields
fmt='$(TARGET_OF) $(REPO_URI) $(RELEASE) $(COMPONENT)'
declare -A comps=()      # "uri suite" -> "comp comp ..."
declare -a order=()
while read -r type uri rel comp; do
    [[ $type == deb ]] || continue
    [[ $rel =~ ^$SUITE(-updates|-security)?$ ]] || continue
    uri=${uri%/}
    key="$uri $rel"
    if [[ -z ${comps[$key]+x} ]]; then comps[$key]=""; order+=("$key"); fi
    [[ " ${comps[$key]} " == *" $comp "* ]] || comps[$key]+="${comps[$key]:+ }$comp"
done < <(apt-get indextargets --no-release-info --format "$fmt" \
            'Identifier: Packages' 2>/dev/null)

MIRROR=${CI_DEBIAN_MIRROR:-}
if [[ -z $MIRROR ]]; then
    for key in "${order[@]}"; do
        if [[ ${key#* } == "$SUITE" ]]; then MIRROR=${key% *}; break; fi
    done
fi
if ((${#order[@]} == 0)) || [[ -n ${CI_DEBIAN_MIRROR:-} ]]; then
    # Nothing usable configured on the host (or an explicit override):
    # main suite + updates on MIRROR, security on the matching host.
    MIRROR=${MIRROR:-http://deb.debian.org/debian}
    MIRROR=${MIRROR%/}
    comps=(["$MIRROR $SUITE"]=main ["$MIRROR $SUITE-updates"]=main)
    order=("$MIRROR $SUITE" "$MIRROR $SUITE-updates")
    if [[ $MIRROR == */debian ]]; then
        comps["$MIRROR-security $SUITE-security"]=main
        order+=("$MIRROR-security $SUITE-security")
    fi
fi
[[ -n $MIRROR ]] || die "no '$SUITE' suite in this machine's apt sources; set CI_DEBIAN_MIRROR"

# deb822 sources for the image: one stanza per URI.
sources=""
declare -A done_uri=()
for key in "${order[@]}"; do
    uri=${key% *}
    [[ -z ${done_uri[$uri]:-} ]] || continue
    done_uri[$uri]=1
    suites="" allcomps=""
    for k2 in "${order[@]}"; do
        [[ ${k2% *} == "$uri" ]] || continue
        suites+="${suites:+ }${k2#* }"
        for c in ${comps[$k2]}; do
            [[ " $allcomps " == *" $c "* ]] || allcomps+="${allcomps:+ }$c"
        done
    done
    sources+="Types: deb
URIs: $uri
Suites: $suites
Components: $allcomps
Signed-By: $KEYRING

"
done

# apt settings the host needs to reach/accept its mirror (e.g. a snapshot
# whose Release files are past Valid-Until, or a proxy).
host_apt_conf=$(apt-config dump 2>/dev/null |
    grep -E '^Acquire::(Check-Valid-Until|Check-Date|Max-ValidTime|Retries|https?::Proxy)( |::)' || true)

# --- debootstrap -----------------------------------------------------------
DIR=""
LOG=$(mktemp "${TMPDIR:-/tmp}/cip-debootstrap.XXXXXX.log")

mounts_under() {
    awk -v d="$1" '$2 == d || index($2, d "/") == 1 { print $2 }' /proc/mounts | sort -r
}
cleanup() {
    local rc=$?
    if [[ -n $DIR && -d $DIR ]]; then
        local m
        for m in $(mounts_under "$DIR"); do umount -l "$m" 2>/dev/null || true; done
        if [[ -n $(mounts_under "$DIR") ]]; then
            echo "bootstrap-base: not removing $DIR: something is still mounted in it" >&2
        else
            rm -rf --one-file-system "$DIR"
        fi
    fi
    rm -f "$LOG"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

DIR=$(mktemp -d /var/tmp/cip-rootfs.XXXXXX)
chmod 0755 "$DIR"

echo "bootstrap-base: building $IMAGE with debootstrap from $MIRROR (a few minutes)" >&2
if ! debootstrap --variant=minbase --keyring="$KEYRING" "$SUITE" "$DIR" "$MIRROR" >"$LOG" 2>&1; then
    tail -n 40 "$LOG" >&2
    [[ -f $DIR/debootstrap/debootstrap.log ]] && tail -n 40 "$DIR/debootstrap/debootstrap.log" >&2
    die "debootstrap $SUITE from $MIRROR failed"
fi
[[ -z $(mounts_under "$DIR") ]] || die "debootstrap left mounts under $DIR"

# --- make it look like debian:*-slim --------------------------------------
R=$DIR
rm -f "$R/etc/apt/sources.list"
mkdir -p "$R/etc/apt/sources.list.d"
printf '%s' "$sources" >"$R/etc/apt/sources.list.d/debian.sources"

cat >"$R/etc/dpkg/dpkg.cfg.d/docker" <<'CFG'
# The "slim" variant: files normally unneeded in containers are excluded,
# and this keeps them that way for packages installed later.
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/overrides/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/man/*
CFG
cat >"$R/etc/apt/apt.conf.d/docker-clean" <<'CFG'
// Keep no .deb files or binary caches in image layers.
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
CFG
echo 'Acquire::GzipIndexes "true";' >"$R/etc/apt/apt.conf.d/docker-gzip-indexes"
echo 'Acquire::Languages "none";' >"$R/etc/apt/apt.conf.d/docker-no-languages"
echo 'APT::AutoRemove::SuggestsImportant "false";' >"$R/etc/apt/apt.conf.d/docker-autoremove-suggests"
if [[ -n $host_apt_conf ]]; then
    { echo "// Copied from the build host's apt configuration (bootstrap-base.sh)."
      echo "$host_apt_conf"; } >"$R/etc/apt/apt.conf.d/99cip-host"
fi
# No init scripts started by package installs during docker build.
printf '#!/bin/sh\nexit 101\n' >"$R/usr/sbin/policy-rc.d"
chmod 0755 "$R/usr/sbin/policy-rc.d"

rm -rf "$R"/var/lib/apt/lists/* "$R"/var/cache/apt/*.bin "$R"/var/cache/apt/archives/*.deb \
       "$R"/var/cache/apt/archives/partial/* "$R"/var/cache/debconf/*-old \
       "$R"/var/lib/dpkg/*-old "$R"/debootstrap
mkdir -p "$R/var/lib/apt/lists/partial"
if [[ -d $R/usr/share/doc ]]; then
    find "$R/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
    find "$R/usr/share/doc" -mindepth 1 -depth -type d -empty -delete
fi
for d in man info groff linda lintian/overrides locale; do
    [[ -d $R/usr/share/$d ]] && find "$R/usr/share/$d" -mindepth 1 -delete
done
find "$R/var/log" -type f -delete
rm -rf "${R:?}"/tmp/* "${R:?}"/var/tmp/* "${R:?}"/dev/* "${R:?}"/proc/* "${R:?}"/sys/* "${R:?}"/run/*
# Docker provides these at run time; do not bake in the host's.
: >"$R/etc/resolv.conf"
: >"$R/etc/hostname"
[[ -f $R/etc/machine-id ]] && : >"$R/etc/machine-id"

# --- import ---------------------------------------------------------------
if ! tar --numeric-owner -C "$R" -cf - . |
     "$DOCKER" import \
        --change 'CMD ["bash"]' \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --message "debootstrap --variant=minbase $SUITE $MIRROR (code-interpreter-proxy bootstrap-base.sh)" \
        - "$IMAGE" >"$LOG" 2>&1; then
    cat "$LOG" >&2
    die "docker import of $IMAGE failed"
fi
