#!/usr/bin/env bash
# Make sure a Docker daemon answers on /var/run/docker.sock.
# If one answers already, do nothing. Otherwise start dockerd in the
# background (log: /var/log/dockerd-cip.log, pid: /run/dockerd-cip.pid)
# and wait up to 60 s for it. Extra dockerd flags: $CI_DOCKERD_ARGS.
set -euo pipefail

SOCK=/var/run/docker.sock
LOG=/var/log/dockerd-cip.log
PIDFILE=/run/dockerd-cip.pid
WAIT=${CI_DOCKERD_WAIT:-60}

if [[ -x /usr/bin/docker ]]; then DOCKER=/usr/bin/docker; else DOCKER=docker; fi

die() { echo "ensure-dockerd: $*" >&2; exit 1; }

ping_ok() {
    [[ -S $SOCK ]] || return 1
    [[ $(curl -s --max-time 3 --unix-socket "$SOCK" http://localhost/_ping 2>/dev/null) == OK ]]
}

# A daemon already answering?
if timeout 5 "$DOCKER" info >/dev/null 2>&1 || ping_ok; then
    exit 0
fi

alive() { [[ -n ${1:-} ]] && kill -0 "$1" 2>/dev/null; }

pid=""
# A dockerd we (or someone) started earlier that is still coming up: wait
# for it instead of starting a second one.
for f in "$PIDFILE" /var/run/docker.pid; do
    if [[ -s $f ]]; then
        p=$(<"$f")
        if alive "$p" && [[ $(cat "/proc/$p/comm" 2>/dev/null) == dockerd ]]; then
            pid=$p
            break
        fi
    fi
done

if [[ -z $pid ]]; then
    ((EUID == 0)) || die "no Docker daemon answers and starting one needs root"
    command -v dockerd >/dev/null 2>&1 || die "dockerd not installed (run contrib/install-deps.sh)"
    command -v curl >/dev/null 2>&1 || die "curl not installed (run contrib/install-deps.sh)"
    mkdir -p "$(dirname "$LOG")" "$(dirname "$PIDFILE")"
    echo "=== $(date -u '+%Y-%m-%dT%H:%M:%SZ') ensure-dockerd: starting dockerd ${CI_DOCKERD_ARGS:-}" >>"$LOG"
    # shellcheck disable=SC2086  # CI_DOCKERD_ARGS is a list of flags
    setsid nohup dockerd ${CI_DOCKERD_ARGS:-} >>"$LOG" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$PIDFILE"
fi

for ((i = 0; i < WAIT * 4; i++)); do
    ping_ok && exit 0
    if ! alive "$pid"; then
        echo "ensure-dockerd: dockerd (pid $pid) exited; last lines of $LOG:" >&2
        tail -n 40 "$LOG" >&2 || true
        exit 1
    fi
    sleep 0.25
done

echo "ensure-dockerd: dockerd (pid $pid) did not answer on $SOCK within ${WAIT}s; last lines of $LOG:" >&2
tail -n 40 "$LOG" >&2 || true
exit 1
