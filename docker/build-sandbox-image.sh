#!/usr/bin/env bash
# Build the sandbox image from docker/sandbox/Dockerfile and a runner binary.
#
#   docker/build-sandbox-image.sh RUNNER_BINARY [TAG]
#
# TAG defaults to $CI_SANDBOX_IMAGE or code-interpreter-sandbox:latest.
# The image carries the label cip.build-hash=sha256(Dockerfile, runner); if
# TAG already has the current hash the build is skipped. The build log is
# kept in $CI_SANDBOX_BUILD_LOG (default ${TMPDIR:-/tmp}/cip-sandbox-build.log)
# and printed only if the build fails.
# Env: CI_BUILD_NETWORK  network for RUN steps (default: host, so apt reaches
#                        the mirror exactly as the host does)
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
DOCKERFILE=$SCRIPT_DIR/sandbox/Dockerfile

die() { echo "build-sandbox-image: $*" >&2; exit 1; }

(($# >= 1 && $# <= 2)) || die "usage: $0 RUNNER_BINARY [TAG]"
RUNNER=$1
TAG=${2:-${CI_SANDBOX_IMAGE:-code-interpreter-sandbox:latest}}
BUILD_LOG=${CI_SANDBOX_BUILD_LOG:-${TMPDIR:-/tmp}/cip-sandbox-build.log}
NETWORK=${CI_BUILD_NETWORK:-host}

[[ -f $RUNNER ]] || die "runner binary '$RUNNER' not found"
[[ -r $RUNNER ]] || die "runner binary '$RUNNER' not readable"
[[ -f $DOCKERFILE ]] || die "$DOCKERFILE missing"

if [[ -x /usr/bin/docker ]]; then DOCKER=/usr/bin/docker; else DOCKER=docker; fi
# shellcheck source=image-lib.sh
. "$SCRIPT_DIR/image-lib.sh"

"$ROOT/contrib/ensure-dockerd.sh"
"$SCRIPT_DIR/bootstrap-base.sh"

PYDIR=$SCRIPT_DIR/sandbox/python
hash=$({ sha256sum <"$DOCKERFILE"; sha256sum <"$RUNNER";
	(cd "$SCRIPT_DIR/sandbox" && sha256sum -- python/* ts/* r/*); } | sha256sum)
hash=${hash%% *}

if image_current "$TAG" "$hash"; then
    echo "sandbox image current"
    exit 0
fi

ctx=$(mktemp -d "${TMPDIR:-/tmp}/cip-sandbox-ctx.XXXXXX")
trap 'rm -rf "$ctx"' EXIT
cp "$DOCKERFILE" "$ctx/Dockerfile"
install -m 0755 "$RUNNER" "$ctx/runner"
cp -R "$PYDIR" "$ctx/python"
cp -R "$SCRIPT_DIR/sandbox/ts" "$ctx/ts"
cp -R "$SCRIPT_DIR/sandbox/r" "$ctx/r"

image_build "$TAG" "$hash" "$BUILD_LOG" "$ctx"
echo "sandbox image $TAG built"
