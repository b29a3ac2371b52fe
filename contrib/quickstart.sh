#!/usr/bin/env bash
# One command on a fresh Debian bookworm machine, as root: install what is
# missing, start dockerd if none answers, build the daemon and the sandbox
# image, and start the proxy with its defaults (port 8000, key dev-ci-key).
# Any CI_* variable set in the environment is passed to the proxy;
# CI_SANDBOX_RUNTIME=runsc also sets gVisor up (contrib/setup-runsc.sh).
# Run it again to rebuild and restart.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${CIP_BUILD_DIR:-$ROOT/_build/main}
LOG=${CIP_LOG_FILE:-/var/log/code-interpreter-proxy.log}
PIDFILE=${CIP_PID_FILE:-/run/code-interpreter-proxy.pid}

"$ROOT/contrib/install-deps.sh"
"$ROOT/contrib/ensure-dockerd.sh"
# gVisor on request: installs runsc and registers it with the engine.
case ${CI_SANDBOX_RUNTIME:-} in
runsc | runsc-*) "$ROOT/contrib/setup-runsc.sh" ;;
esac
echo "building in $BUILD"
"$ROOT/contrib/build.sh" "$BUILD"
make -s -C "$BUILD" sandbox-image

if [[ -f $PIDFILE ]] && pid=$(cat "$PIDFILE") && [[ $(cat "/proc/$pid/comm" 2>/dev/null) == code-interpre* ]]; then
	echo "stopping the running proxy (pid $pid)"
	kill "$pid"
	for _ in $(seq 100); do [[ -d /proc/$pid ]] || break; sleep 0.1; done
fi
nohup setsid "$BUILD/src/code-interpreter-proxy" >>"$LOG" 2>&1 </dev/null &
echo $! >"$PIDFILE"
port=${CI_PORT:-8000}
for _ in $(seq 300); do
	if curl -sf "http://127.0.0.1:$port/health" >/dev/null; then
		echo "code-interpreter-proxy is up on port $port (pid $(cat "$PIDFILE"), log $LOG)"
		echo "try: curl -s -H 'X-API-Key: ${CI_API_KEY:-dev-ci-key}' -d '{\"lang\":\"py\",\"code\":\"print(6*7)\"}' localhost:$port/exec"
		exit 0
	fi
	if ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
		echo "the proxy exited; the end of its log:" >&2
		tail -20 "$LOG" >&2
		exit 1
	fi
	sleep 0.1
done
echo "the proxy did not become healthy in 30 s; see $LOG" >&2
exit 1
