#!/usr/bin/env bash
# Build the sandbox image from docker/sandbox/Dockerfile and a runner binary.
#
#   docker/build-sandbox-image.sh [--core] RUNNER_BINARY [TAG]
#
# --core builds docker/sandbox/Dockerfile.core instead: bash, Python and the
# runner only (about 130 MB against 5 GB), for the test stages that copy the
# image into another engine; its TAG defaults to code-interpreter-sandbox:core.
#
# cip-python, the sandbox's /usr/bin/python3, is taken from beside the
# runner binary (the build puts both in src/runner/).
# TAG defaults to $CI_SANDBOX_IMAGE or code-interpreter-sandbox:latest.
# The image carries the label cip.build-hash=sha256(Dockerfile, runner); if
# TAG already has the current hash the build is skipped. The build log is
# kept in $CI_SANDBOX_BUILD_LOG (default ${TMPDIR:-/tmp}/cip-sandbox-build.log)
# and printed only if the build fails.
# The Node packages come from the npm registry, as sandbox/node/package-lock.json
# pins them (npm ci, no install scripts), into the build context; the image
# build itself needs only Debian's archive.
# Env: CI_BUILD_NETWORK  network for RUN steps (default: host, so apt reaches
#                        the mirror exactly as the host does)
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
DOCKERFILE=$SCRIPT_DIR/sandbox/Dockerfile

die() { echo "build-sandbox-image: $*" >&2; exit 1; }

CORE=0
if [[ ${1:-} == --core ]]; then CORE=1; shift; fi
(($# >= 1 && $# <= 2)) || die "usage: $0 [--core] RUNNER_BINARY [TAG]"
RUNNER=$1
if ((CORE)); then
	DOCKERFILE=$SCRIPT_DIR/sandbox/Dockerfile.core
	TAG=${2:-code-interpreter-sandbox:core}
else
	TAG=${2:-${CI_SANDBOX_IMAGE:-code-interpreter-sandbox:latest}}
fi
BUILD_LOG=${CI_SANDBOX_BUILD_LOG:-${TMPDIR:-/tmp}/cip-sandbox-build.log}
NETWORK=${CI_BUILD_NETWORK:-host}

[[ -f $RUNNER ]] || die "runner binary '$RUNNER' not found"
[[ -r $RUNNER ]] || die "runner binary '$RUNNER' not readable"
PYCLIENT=$(dirname "$RUNNER")/cip-python
[[ -f $PYCLIENT && -r $PYCLIENT ]] || die "cip-python not found beside the runner ($PYCLIENT)"
[[ -f $DOCKERFILE ]] || die "$DOCKERFILE missing"

if [[ -x /usr/bin/docker ]]; then DOCKER=/usr/bin/docker; else DOCKER=docker; fi
# shellcheck source=image-lib.sh
. "$SCRIPT_DIR/image-lib.sh"

"$ROOT/contrib/ensure-dockerd.sh"
"$SCRIPT_DIR/bootstrap-base.sh"

SANDBOX=$SCRIPT_DIR/sandbox
# Every input of the image; a change to any of them rebuilds it.
hash=$({ sha256sum <"$DOCKERFILE"; sha256sum <"$RUNNER"; sha256sum <"$PYCLIENT";
	(cd "$SANDBOX" && sha256sum -- python/* pyserver/* ptc/* ts/* r/* hints/* node/package.json \
		node/package-lock.json); } | sha256sum)
hash=${hash%% *}

if image_current "$TAG" "$hash"; then
    echo "sandbox image current"
    exit 0
fi

ctx=$(mktemp -d "${TMPDIR:-/tmp}/cip-sandbox-ctx.XXXXXX")
trap 'rm -rf "$ctx"' EXIT
cp "$DOCKERFILE" "$ctx/Dockerfile"
install -m 0755 "$RUNNER" "$ctx/runner"
install -m 0755 "$PYCLIENT" "$ctx/cip-python"
for d in python pyserver ptc ts r hints; do cp -R "$SANDBOX/$d" "$ctx/$d"; done
if ((CORE)); then
	chmod -R a+rX,go-w "$ctx"
	image_build "$TAG" "$hash" "$BUILD_LOG" "$ctx"
	echo "sandbox image $TAG built"
	exit 0
fi
command -v npm >/dev/null 2>&1 || die "npm not installed (run contrib/install-deps.sh)"
mkdir "$ctx/node"
cp "$SANDBOX/node/package.json" "$SANDBOX/node/package-lock.json" "$ctx/node/"
if ! (cd "$ctx/node" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund) >"$BUILD_LOG" 2>&1; then
	cat "$BUILD_LOG" >&2
	die "npm ci of docker/sandbox/node failed (log: $BUILD_LOG)"
fi
mv "$ctx/node/node_modules" "$ctx/node_modules"
# COPY keeps the context's modes: readable by the sandbox user as they are,
# with no chmod layer that would copy all of node_modules again.
chmod -R a+rX,go-w "$ctx"

image_build "$TAG" "$hash" "$BUILD_LOG" "$ctx"
echo "sandbox image $TAG built"
