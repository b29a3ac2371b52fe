#!/usr/bin/env bash
# Build the proxy image from docker/Dockerfile and this tree's sources.
#
#   docker/build-proxy-image.sh [TAG]
#
# TAG defaults to $CI_PROXY_IMAGE or code-interpreter-proxy:latest.  The
# image carries the label cip.build-hash=sha256 of every file the build
# reads; if TAG already has the current hash the build is skipped.  The
# context is a temporary copy of just those files, so the build works from a
# read-only tree (make distcheck) and never uploads build directories.  The
# log is kept in $CI_PROXY_BUILD_LOG (default ${TMPDIR:-/tmp}/cip-proxy-build.log)
# and printed only if the build fails.
# Env: CI_BUILD_NETWORK  network for RUN steps (default: host)
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$SCRIPT_DIR/.." && pwd)

die() { echo "build-proxy-image: $*" >&2; exit 1; }

(($# <= 1)) || die "usage: $0 [TAG]"
TAG=${1:-${CI_PROXY_IMAGE:-code-interpreter-proxy:latest}}
BUILD_LOG=${CI_PROXY_BUILD_LOG:-${TMPDIR:-/tmp}/cip-proxy-build.log}
NETWORK=${CI_BUILD_NETWORK:-host}
if [[ -x /usr/bin/docker ]]; then DOCKER=/usr/bin/docker; else DOCKER=docker; fi
# shellcheck source=image-lib.sh
. "$SCRIPT_DIR/image-lib.sh"

# What the Dockerfile copies, relative to ROOT; sorted, so the hash is stable.
inputs() {
	(cd "$ROOT" && {
		printf '%s\n' configure.ac Makefile.am docker/Dockerfile \
		    docker/proxy-entrypoint.sh
		find src sessions storage -type f \( -name '*.c' -o -name '*.h' \)
	} | LC_ALL=C sort)
}

for f in $(inputs); do
	[[ -f $ROOT/$f ]] || die "$ROOT/$f missing"
done

"$ROOT/contrib/ensure-dockerd.sh"
"$SCRIPT_DIR/bootstrap-base.sh"

hash=$(cd "$ROOT" && inputs | while read -r f; do
	printf '%s ' "$f"; sha256sum <"$f"
done | sha256sum)
hash=${hash%% *}

if image_current "$TAG" "$hash"; then
	echo "proxy image current"
	exit 0
fi

ctx=$(mktemp -d "${TMPDIR:-/tmp}/cip-proxy-ctx.XXXXXX")
trap 'rm -rf "$ctx"' EXIT
(cd "$ROOT" && inputs | while read -r f; do
	mkdir -p "$ctx/$(dirname "$f")"
	cp -p "$f" "$ctx/$f"
done)

image_build "$TAG" "$hash" "$BUILD_LOG" "$ctx" -f "$ctx/docker/Dockerfile"
echo "proxy image $TAG built"
