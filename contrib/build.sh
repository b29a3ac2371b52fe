#!/usr/bin/env bash
# Configure (once) and build the tree out of the source directory.
#
#   contrib/build.sh BUILD_DIR [configure options...]
#
# Idempotent: configure runs again only when configure.ac or Makefile.am
# changed; make rebuilds only what changed.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
(($# >= 1)) || { echo "usage: $0 BUILD_DIR [configure options]" >&2; exit 2; }
BUILD=$1
shift
cd "$ROOT"
if [[ ! -x configure || configure.ac -nt configure || Makefile.am -nt Makefile.in ]]; then
	autoreconf -fi >/dev/null 2>&1 || autoreconf -fi
fi
mkdir -p "$BUILD"
cd "$BUILD"
if [[ ! -f Makefile || "$ROOT/configure" -nt Makefile || "$ROOT/Makefile.in" -nt Makefile ]]; then
	"$ROOT/configure" -q "$@"
fi
make -s -j"$(nproc)"
