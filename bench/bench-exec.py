#!/usr/bin/env python3
"""Benchmark of code-interpreter-proxy's /exec path.

Run by `make bench` as:

    python3 bench/bench-exec.py --proxy src/code-interpreter-proxy

It starts its own daemon (free loopback port, temporary storage, a unique
sandbox label), then measures, interleaved in one run so machine noise hits
every case alike:

  A  warm proxy exec: POST /exec print(1) in an existing session, over one
     keep-alive HTTP connection.  This is what LibreChat pays per call.
  B  raw Engine API exec in that same container: create an exec, start it
     and read its multiplexed stream to EOF, inspect its exit code.  This is
     what a naive proxy would do per call, so it is the yardstick for A.
  C  cold proxy exec: the first /exec of a brand-new session with no warm
     pool (CI_POOL_SIZE=0 here), which has to create and start a container
     before running anything.  bench-pool.py measures the pooled case.

It prints n, median, p90, min and max of each case, the ratio
median(A)/median(B) against the project's goal, and the daemon's RSS.

It is a measurement, not a test: it exits 0 even if the goal is missed, and
non-zero only when something broke (wrong output, the daemon died, /health
never came up, the engine refused a call).

Python 3 standard library only.  It talks to nothing but 127.0.0.1 and the
local Docker socket, and removes every container carrying its label.
"""

import argparse
import http.client
import json
import math
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse

API_KEY = "bench-key"
DOCKER_SOCKET = "/var/run/docker.sock"
DEFAULT_IMAGE = "code-interpreter-sandbox:latest"
HEALTH_TIMEOUT_S = 30.0
STOP_GRACE_S = 10.0
WARMUP_ROUNDS = 5
GOAL_RATIO = 0.35
CODE = "print(1)"
EXPECTED_STDOUT = "1\n"


class BenchError(Exception):
    """Something broke: the numbers would be meaningless, so exit non-zero."""


# --------------------------------------------------------------------------
# Docker Engine API over the unix socket
# --------------------------------------------------------------------------

class UnixHTTPConnection(http.client.HTTPConnection):
    """http.client speaking HTTP/1.1 over an AF_UNIX socket.

    The Engine API listens on a unix socket; http.client only knows TCP, so
    only connect() is replaced.  The host name is just what goes in Host:.
    """

    def __init__(self, path, timeout=60.0):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.unix_path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class Docker:
    """The few Engine API calls the benchmark needs.

    One keep-alive connection carries the ordinary request/response calls.
    An exec start with Detach=false is hijacked by the engine (the raw stream
    follows the headers and ends when the connection closes), so each start
    gets a connection of its own.
    """

    def __init__(self, path=DOCKER_SOCKET):
        self.path = path
        self.conn = UnixHTTPConnection(path)
        self.prefix = "/v" + self._negotiate_version()

    def _negotiate_version(self):
        """Use the engine's own API version instead of hard-coding one."""
        conn = UnixHTTPConnection(self.path, timeout=10.0)
        try:
            conn.request("GET", "/_ping")
            resp = conn.getresponse()
            resp.read()
            version = resp.getheader("Api-Version")
        except OSError as e:
            raise BenchError("docker engine at %s: %s" % (self.path, e))
        finally:
            conn.close()
        if resp.status != 200 or not version:
            raise BenchError("docker /_ping answered %d without Api-Version" % resp.status)
        return version

    def call(self, method, path, body=None, ok=(200, 201, 204)):
        """One request on the keep-alive connection; returns (status, bytes)."""
        headers = {}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        try:
            self.conn.request(method, self.prefix + path, body=data, headers=headers)
            resp = self.conn.getresponse()
            payload = resp.read()
        except (OSError, http.client.HTTPException) as e:
            self.conn.close()
            raise BenchError("docker %s %s: %s" % (method, path, e))
        if resp.status not in ok:
            raise BenchError("docker %s %s: %d %s" % (method, path, resp.status,
                                                     payload[:300].decode(errors="replace")))
        return resp.status, payload

    def containers_with_label(self, label):
        """Ids of all containers (running or not) carrying label."""
        filters = urllib.parse.quote(json.dumps({"label": [label]}))
        _, payload = self.call("GET", "/containers/json?all=1&filters=" + filters)
        return [c["Id"] for c in json.loads(payload)]

    def remove_container(self, cid):
        """Force-remove a container and its anonymous volumes; gone is fine."""
        self.call("DELETE", "/containers/%s?force=1&v=1" % cid, ok=(200, 204, 404))

    def exec_start_stream(self, exec_id):
        """Start an exec attached and return its demultiplexed (stdout, stderr)."""
        conn = UnixHTTPConnection(self.path)
        try:
            body = json.dumps({"Detach": False, "Tty": False}).encode()
            conn.request("POST", "%s/exec/%s/start" % (self.prefix, exec_id), body=body,
                         headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            raw = resp.read()  # no length: read until the engine closes
        except (OSError, http.client.HTTPException) as e:
            raise BenchError("docker exec start: %s" % e)
        finally:
            conn.close()
        if resp.status != 200:
            raise BenchError("docker exec start: %d %s" % (resp.status, raw[:300]))
        return demultiplex(raw)

    def close(self):
        self.conn.close()


def demultiplex(raw):
    """Split the engine's multiplexed stream into (stdout, stderr) bytes.

    Each frame is an 8-byte header (byte 0 the stream: 1 stdout, 2 stderr;
    bytes 4-7 the big-endian payload length) followed by the payload.
    """
    out, err = bytearray(), bytearray()
    pos = 0
    while pos < len(raw):
        if len(raw) - pos < 8:
            raise BenchError("truncated exec stream frame header")
        stream = raw[pos]
        length = int.from_bytes(raw[pos + 4:pos + 8], "big")
        payload = raw[pos + 8:pos + 8 + length]
        if len(payload) != length:
            raise BenchError("truncated exec stream frame")
        if stream == 1:
            out += payload
        elif stream == 2:
            err += payload
        pos += 8 + length
    return bytes(out), bytes(err)


# --------------------------------------------------------------------------
# The daemon
# --------------------------------------------------------------------------

def free_port():
    """A loopback port nobody listens on right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def daemon_env(port, storage, label):
    """The daemon's environment: ours without stray CI_* settings, plus the
    bench's own, so a developer's shell cannot change what is measured.
    CI_SANDBOX_IMAGE alone is passed through, to bench another image."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CI_")}
    env.update({
        "CI_PORT": str(port),
        "CI_HOST": "127.0.0.1",
        "CI_FILE_STORAGE_PATH": storage,
        "CI_SANDBOX_LABEL": label,
        "CI_API_KEY": API_KEY,
        "CI_LOG_LEVEL": "warn",
        "CI_POOL_SIZE": "0",
        "CI_SANDBOX_IMAGE": os.environ.get("CI_SANDBOX_IMAGE") or DEFAULT_IMAGE,
    })
    return env


def start_daemon(path, env, log_file):
    """Start the daemon with stdout and stderr going to log_file."""
    try:
        return subprocess.Popen([path], env=env, stdin=subprocess.DEVNULL,
                                stdout=log_file, stderr=subprocess.STDOUT)
    except OSError as e:
        raise BenchError("cannot start %s: %s" % (path, e))


def wait_healthy(proc, port, timeout=HEALTH_TIMEOUT_S):
    """Poll GET /health until it answers 200; fail if the daemon exits."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError("daemon exited with status %d before /health answered"
                             % proc.returncode)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2.0)
        try:
            conn.request("GET", "/health")
            resp = conn.getresponse()
            resp.read()
            if resp.status == 200:
                return
            last = "status %d" % resp.status
        except (OSError, http.client.HTTPException) as e:
            last = str(e) or type(e).__name__
        finally:
            conn.close()
        time.sleep(0.1)
    raise BenchError("/health did not answer 200 within %.0f s (last: %s)" % (timeout, last))


def stop_daemon(proc):
    """SIGTERM, then SIGKILL if it has not exited after STOP_GRACE_S."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        print("warning: daemon ignored SIGTERM for %.0f s, killing it" % STOP_GRACE_S,
              file=sys.stderr)
        proc.kill()
        proc.wait()


def daemon_memory(pid):
    """VmRSS and VmHWM (peak RSS) lines of /proc/<pid>/status, in kB."""
    mem = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                mem[key] = int(value.split()[0])
    return mem


# --------------------------------------------------------------------------
# The three measured cases
# --------------------------------------------------------------------------

def proxy_exec(conn, session_id=None):
    """POST /exec print(1) on conn; returns (elapsed ms, reply) after checking it."""
    body = {"lang": "py", "code": CODE}
    if session_id:
        body["session_id"] = session_id
    data = json.dumps(body).encode()
    headers = {"X-API-Key": API_KEY, "Content-Type": "application/json"}
    t0 = time.perf_counter()
    try:
        conn.request("POST", "/exec", body=data, headers=headers)
        resp = conn.getresponse()
        payload = resp.read()
    except (OSError, http.client.HTTPException) as e:
        conn.close()
        raise BenchError("POST /exec: %s" % e)
    elapsed = (time.perf_counter() - t0) * 1000.0
    if resp.status != 200:
        raise BenchError("POST /exec: %d %s" % (resp.status, payload[:300]))
    reply = json.loads(payload)
    if reply.get("stdout") != EXPECTED_STDOUT or reply.get("code") != 0 \
            or reply.get("status") is not None:
        raise BenchError("POST /exec gave a wrong result: %r" % reply)
    if session_id and reply.get("session_id") != session_id:
        raise BenchError("POST /exec answered for session %r, not %r"
                         % (reply.get("session_id"), session_id))
    return elapsed, reply


def post_json(conn, path, body):
    headers = {"X-API-Key": API_KEY, "Content-Type": "application/json"}
    try:
        conn.request("POST", path, body=json.dumps(body).encode(), headers=headers)
        resp = conn.getresponse()
        payload = resp.read()
    except (OSError, http.client.HTTPException) as e:
        conn.close()
        raise BenchError("POST %s: %s" % (path, e))
    if resp.status != 200:
        raise BenchError("POST %s: %d %s" % (path, resp.status, payload[:300]))
    return json.loads(payload)


def ptc_round_trip(conn, session_id):
    """One programmatic tool calling run with one tool call, in a warm session:
    the initial request, the client's (instant) tool, the continuation."""
    t0 = time.perf_counter()
    r = post_json(conn, "/exec/programmatic", {
        "code": "r = await get_one()\nprint(r)", "session_id": session_id,
        "tools": [{"name": "get_one", "parameters": {"type": "object"}}]})
    if r.get("status") != "tool_call_required":
        raise BenchError("PTC: expected a tool call, got %r" % r)
    r = post_json(conn, "/exec/programmatic", {
        "continuation_token": r["continuation_token"],
        "tool_results": [{"call_id": r["tool_calls"][0]["id"], "result": 1, "is_error": False}]})
    elapsed = (time.perf_counter() - t0) * 1000.0
    if r.get("status") != "completed" or r.get("stdout") != EXPECTED_STDOUT:
        raise BenchError("PTC gave a wrong result: %r" % r)
    return elapsed


def raw_engine_exec(docker, container_id, python="python3"):
    """Create, start (stream read to EOF) and inspect one exec; returns ms."""
    spec = {
        "AttachStdout": True, "AttachStderr": True,
        "User": "1000:1000", "WorkingDir": "/mnt/data",
        "Cmd": [python, "-c", CODE],
    }
    t0 = time.perf_counter()
    _, payload = docker.call("POST", "/containers/%s/exec" % container_id, spec)
    exec_id = json.loads(payload)["Id"]
    out, err = docker.exec_start_stream(exec_id)
    _, payload = docker.call("GET", "/exec/%s/json" % exec_id)
    elapsed = (time.perf_counter() - t0) * 1000.0
    exit_code = json.loads(payload).get("ExitCode")
    if out != EXPECTED_STDOUT.encode() or exit_code != 0:
        raise BenchError("raw exec gave a wrong result: stdout %r stderr %r exit %r"
                         % (out, err, exit_code))
    return elapsed


def session_container(port, session_id):
    """The container the daemon says the session holds (a pooled one has no
    session label, so the admin listing is the one place that knows)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30.0)
    try:
        conn.request("GET", "/v1/librechat/sessions", headers={"X-API-Key": API_KEY})
        resp = conn.getresponse()
        payload = resp.read()
    except (OSError, http.client.HTTPException) as e:
        raise BenchError("GET /v1/librechat/sessions: %s" % e)
    finally:
        conn.close()
    if resp.status != 200:
        raise BenchError("GET /v1/librechat/sessions: %d" % resp.status)
    for s in json.loads(payload)["sessions"]:
        if s["session_id"] == session_id and s.get("container_id"):
            return s["container_id"]
    raise BenchError("session %s holds no container" % session_id)


def cold_schedule(rounds, cold):
    """Rounds (0-based, measured rounds only) after which a cold exec runs.

    Spread evenly so cold container starts are interleaved with A and B;
    if there are more cold runs than rounds, the rest run after the loop.
    """
    per_round = min(cold, rounds)
    return {(i * rounds) // per_round for i in range(per_round)} if per_round else set()


def run_rounds(port, docker, rounds, cold):
    """Warm-up, then interleaved A, B (and spread-out C) rounds.

    Returns a dict of case name -> list of ms, plus A's daemon-side times.
    """
    warm_conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120.0)
    cold_conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120.0)
    try:
        first_ms, reply = proxy_exec(warm_conn)
        session_id = reply["session_id"]
        container_id = session_container(port, session_id)
        print("session %s in container %.12s (its first exec took %.1f ms)"
              % (session_id, container_id, first_ms))

        for _ in range(WARMUP_ROUNDS):
            proxy_exec(warm_conn, session_id)
            raw_engine_exec(docker, container_id)

        samples = {"A": [], "B": [], "C": [], "D": []}
        daemon_ms = []
        cold_rounds = cold_schedule(rounds, cold)
        for i in range(rounds):
            ms, reply = proxy_exec(warm_conn, session_id)
            samples["A"].append(ms)
            daemon_ms.append(reply.get("wall_time", 0))
            samples["B"].append(raw_engine_exec(docker, container_id))
            samples["D"].append(ptc_round_trip(warm_conn, session_id))
            if i in cold_rounds:
                samples["C"].append(cold_exec(cold_conn, session_id))
        while len(samples["C"]) < cold:
            samples["C"].append(cold_exec(cold_conn, session_id))
        return samples, daemon_ms
    finally:
        warm_conn.close()
        cold_conn.close()


def cold_exec(conn, warm_session_id):
    """First /exec of a new session: container create + start + run."""
    ms, reply = proxy_exec(conn)
    if reply.get("session_id") == warm_session_id:
        raise BenchError("a request without session_id reused session %s" % warm_session_id)
    return ms


# --------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------

def p90(values):
    """Nearest-rank 90th percentile: the smallest value >= 90% of the samples."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def print_report(samples, daemon_ms, memory):
    names = {
        "A": "A warm proxy /exec",
        "B": "B raw engine exec",
        "C": "C cold proxy /exec",
        "D": "D warm PTC, one call",
    }
    print()
    print("%-22s %4s %9s %9s %9s %9s" % ("case (ms)", "n", "median", "p90", "min", "max"))
    for key in ("A", "B", "C", "D"):
        v = samples[key]
        if not v:
            print("%-22s %4d %9s %9s %9s %9s" % (names[key], 0, "-", "-", "-", "-"))
            continue
        print("%-22s %4d %9.1f %9.1f %9.1f %9.1f"
              % (names[key], len(v), statistics.median(v), p90(v), min(v), max(v)))
    if daemon_ms:
        print("(A as timed by the daemon, wall_time: median %.1f ms)"
              % statistics.median(daemon_ms))
    print()
    ratio = statistics.median(samples["A"]) / statistics.median(samples["B"])
    print("median(A)/median(B) = %.2f" % ratio)
    print("warm /exec vs raw engine exec: %.2fx (goal <= %.2fx)%s"
          % (ratio, GOAL_RATIO, "" if ratio <= GOAL_RATIO else "  -- goal missed"))
    if samples["D"]:
        print("median(D)/median(A) = %.2f: a PTC run with one tool round trip against a "
              "plain warm /exec (replaying the program instead would run it twice)"
              % (statistics.median(samples["D"]) / statistics.median(samples["A"])))
    print("daemon RSS: %d kB (peak %d kB)" % (memory.get("VmRSS", -1), memory.get("VmHWM", -1)))


def print_log_tail(path, lines=30):
    """Show the end of the daemon's log when something broke."""
    try:
        with open(path, errors="replace") as f:
            tail = f.readlines()[-lines:]
    except OSError:
        return
    if tail:
        print("--- last lines of the daemon log (%s) ---" % path, file=sys.stderr)
        sys.stderr.writelines(tail)


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------

def parse_args():
    ap = argparse.ArgumentParser(description="Benchmark the proxy's /exec against raw engine exec.")
    ap.add_argument("--proxy", required=True, help="path of the code-interpreter-proxy binary")
    ap.add_argument("--rounds", type=int, default=40, help="measured A/B rounds (default 40)")
    ap.add_argument("--cold", type=int, default=10, help="cold first-exec samples (default 10)")
    ap.add_argument("--keep-log", action="store_true",
                    help="keep the daemon's log file and print its path")
    args = ap.parse_args()
    if args.rounds < 1 or args.cold < 0:
        ap.error("--rounds must be >= 1 and --cold >= 0")
    return args


def cleanup_containers(docker, label):
    """Remove every container carrying our label (the daemon's sessions)."""
    ids = docker.containers_with_label(label)
    for cid in ids:
        docker.remove_container(cid)
    return len(ids)


def main():
    args = parse_args()
    # Keep stdout and stderr in order when `make bench` pipes them to a log.
    sys.stdout.reconfigure(line_buffering=True)
    proxy = os.path.abspath(args.proxy)
    label = "cip.bench." + secrets.token_hex(6)
    port = free_port()
    storage = tempfile.mkdtemp(prefix="cip-bench-")
    log_fd, log_path = tempfile.mkstemp(prefix="cip-bench-", suffix=".log")
    log_file = os.fdopen(log_fd, "w")
    docker = None
    proc = None
    failed = True
    try:
        docker = Docker()
        print("daemon %s on 127.0.0.1:%d, label %s, engine API %s"
              % (proxy, port, label, docker.prefix[1:]))
        proc = start_daemon(proxy, daemon_env(port, storage, label), log_file)
        wait_healthy(proc, port)
        samples, daemon_ms = run_rounds(port, docker, args.rounds, args.cold)
        if proc.poll() is not None:
            raise BenchError("daemon exited with status %d during the run" % proc.returncode)
        memory = daemon_memory(proc.pid)
        print_report(samples, daemon_ms, memory)
        failed = False
    except BenchError as e:
        died = ""
        if proc is not None and proc.poll() is not None:
            died = " (the daemon exited with status %d)" % proc.returncode
        print("bench-exec: %s%s" % (e, died), file=sys.stderr)
    finally:
        if proc is not None:
            stop_daemon(proc)
            if not failed and proc.returncode != 0:
                print("bench-exec: daemon exited with status %d on SIGTERM" % proc.returncode,
                      file=sys.stderr)
                failed = True
        if docker is not None:
            try:
                removed = cleanup_containers(docker, label)
                print("removed %d container(s) labelled %s" % (removed, label))
            except BenchError as e:
                print("bench-exec: cleanup: %s" % e, file=sys.stderr)
                failed = True
            docker.close()
        shutil.rmtree(storage, ignore_errors=True)
        log_file.close()
        if failed:
            print_log_tail(log_path)
        if args.keep_log:
            print("daemon log: %s" % log_path)
        else:
            os.unlink(log_path)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
