#!/usr/bin/env python3
"""Benchmark: does a crowd of slow or idle clients starve LibreChat?

Run by `make bench` as:

    python3 bench/bench-slowclients.py --proxy src/code-interpreter-proxy \
        [--before-proxy OLD_BINARY] [--clients 1000]

For each binary given (the "before" one first), it starts its own daemon
(free loopback port, temporary storage, a unique sandbox label), warms one
session, and times a warm POST /exec print(1) (a fresh connection each, as
LibreChat's client closes them) while each crowd below is held open:

  none          nobody else: the normal median
  idle          N connections that send nothing
  header-drip   N connections sending their request header a byte a second
  body-drip     N connections with a whole header and a 1 MB Content-Length,
                sending the body a byte a second
  flood         new connections opened as fast as possible to 1000 past the
                daemon's cap (CI_MAX_CONNECTIONS, set to 3 x N here), then
                held: past the cap the daemon must refuse at once (execs
                then fail fast, that is the cap), never crash or hang

A held connection the daemon closes is opened again at once, so the crowd
stays at N however short the daemon's timeouts are (the count of such
reopenings is reported).  For each crowd it prints the exec median and
worst case, their ratio to the normal median (goal: under 2x), the daemon's
RSS and open descriptors, and how the crowd fared.

A measurement, not a test: it exits 0 when a goal is missed, and non-zero
only when something broke (the daemon died, /health never came up).
Python 3 standard library only; it talks to nothing but 127.0.0.1 and the
local Docker socket, and removes every container carrying its label.
"""

import argparse
import http.client
import json
import os
import resource
import secrets
import selectors
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

API_KEY = "bench-key"
EXEC_TIMEOUT_S = 30.0
SAMPLES = 15
GOAL = 2.0


class BenchError(Exception):
    pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_daemon(path, port, storage, label, log, max_conn):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CI_")}
    env.update({"CI_PORT": str(port), "CI_HOST": "127.0.0.1", "CI_FILE_STORAGE_PATH": storage,
                "CI_SANDBOX_LABEL": label, "CI_API_KEY": API_KEY, "CI_LOG_LEVEL": "error",
                "CI_POOL_SIZE": "1", "CI_MAX_CONNECTIONS": str(max_conn),
                "CI_SANDBOX_IMAGE": os.environ.get("CI_SANDBOX_IMAGE",
                                                   "code-interpreter-sandbox:latest")})
    proc = subprocess.Popen([path], env=env, stdin=subprocess.DEVNULL, stdout=log,
                            stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError("daemon exited with status %d" % proc.returncode)
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/health")
            if c.getresponse().status == 200:
                return proc
        except OSError:
            pass
        time.sleep(0.1)
    raise BenchError("/health never answered")


def timed_exec(port, session_id, fail_ms=None):
    """ms for one warm print(1), or None when it failed or took past the
    timeout (then fail_ms, a list, gets how long the failure took)."""
    body = json.dumps({"lang": "py", "code": "print(1)", "session_id": session_id})
    t0 = time.perf_counter()
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=EXEC_TIMEOUT_S)
        c.request("POST", "/exec", body=body, headers={"X-API-Key": API_KEY,
                                                        "Content-Type": "application/json"})
        r = c.getresponse()
        reply = json.loads(r.read())
        c.close()
    except (OSError, http.client.HTTPException, ValueError):
        r = None
    if r is None or r.status != 200 or reply.get("stdout") != "1\n":
        if fail_ms is not None:
            fail_ms.append((time.perf_counter() - t0) * 1000.0)
        return None
    return (time.perf_counter() - t0) * 1000.0


class Crowd:
    """N held connections of one kind, driven by one thread with a selector."""

    def __init__(self, port, kind, n):
        self.port, self.kind, self.n = port, kind, n
        self.sel = selectors.DefaultSelector()
        self.stop = threading.Event()
        self.opened = self.reopened = self.refused = 0
        self.answers = {}
        self.thread = threading.Thread(target=self.run, daemon=True)

    def prefix(self):
        if self.kind == "body-drip":
            return (b"POST /exec HTTP/1.1\r\nHost: x\r\nX-API-Key: " + API_KEY.encode() +
                    b"\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n")
        return b""

    def drip(self):
        if self.kind == "header-drip":
            return b"X"	# never ends a header line
        if self.kind == "body-drip":
            return b" "
        return b""

    def open_one(self):
        s = socket.socket()
        s.setblocking(False)
        try:
            s.connect_ex(("127.0.0.1", self.port))
        except OSError:
            s.close()
            self.refused += 1
            return False
        self.sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE, [self.prefix()])
        self.opened += 1
        return True

    def close_one(self, key, why):
        self.sel.unregister(key.fileobj)
        key.fileobj.close()
        self.answers[why] = self.answers.get(why, 0) + 1

    def run(self):
        burst = self.kind == "flood"
        while self.opened < self.n and not self.stop.is_set():
            if not self.open_one():
                time.sleep(0.01)
            if not burst and self.opened % 50 == 0:
                time.sleep(0.01)
        last_drip = time.monotonic()
        while not self.stop.is_set():
            for key, ev in self.sel.select(timeout=0.2):
                self.service(key, ev)
            # Reopen what the daemon closed, a bounded number per turn so
            # the crowd cannot turn into a busy loop against a small cap.
            live, budget = len(self.sel.get_map()), 100
            while live < self.n and budget and not self.stop.is_set() and self.open_one():
                self.reopened += 1
                live, budget = live + 1, budget - 1
            if time.monotonic() - last_drip >= 1.0:
                last_drip = time.monotonic()
                for key in list(self.sel.get_map().values()):
                    key.data.append(self.drip())
                    self.sel.modify(key.fileobj, selectors.EVENT_READ | selectors.EVENT_WRITE,
                                    key.data)
        for key in list(self.sel.get_map().values()):
            key.fileobj.close()

    def service(self, key, ev):
        s, pending = key.fileobj, key.data
        if ev & selectors.EVENT_READ:
            try:
                data = s.recv(4096)
            except OSError as e:
                return self.close_one(key, type(e).__name__)
            if not data:
                return self.close_one(key, "closed")
            status = data.split(b"\r\n", 1)[0].decode("latin-1", "replace")
            return self.close_one(key, status[:40])
        if ev & selectors.EVENT_WRITE:
            out = b"".join(pending)
            pending.clear()
            if out:
                try:
                    s.send(out)
                except OSError as e:
                    return self.close_one(key, type(e).__name__)
            self.sel.modify(s, selectors.EVENT_READ, pending)


def proc_figures(pid):
    rss = 0
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) // 1024
    nfd = len(os.listdir("/proc/%d/fd" % pid))
    threads = len(os.listdir("/proc/%d/task" % pid))
    return rss, nfd, threads


def measure(port, session_id):
    """SAMPLES timed execs; three failures end the sampling (a starved
    daemon would otherwise cost SAMPLES x EXEC_TIMEOUT_S)."""
    ok, failed = [], []
    for _ in range(SAMPLES):
        t = timed_exec(port, session_id, failed)
        if t is None:
            if len(failed) == 3:
                break
        else:
            ok.append(t)
    return ok, failed


def bench_one(label, path, n, settle):
    port = free_port()
    storage = tempfile.mkdtemp(prefix="cip-bench-slow-")
    sandbox_label = "cip.bench.slow." + secrets.token_hex(4)
    log = open(os.path.join(storage, "daemon.log"), "w")
    proc = start_daemon(path, port, storage, sandbox_label, log, 3 * n)
    rows = []
    try:
        body = json.dumps({"lang": "py", "code": "print(1)"})
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        c.request("POST", "/exec", body=body, headers={"X-API-Key": API_KEY,
                                                        "Content-Type": "application/json"})
        sid = json.loads(c.getresponse().read())["session_id"]
        for _ in range(5):
            timed_exec(port, sid)
        ok, failed = measure(port, sid)
        base = statistics.median(ok)
        rows.append(("none", ok, failed, proc_figures(proc.pid), None))
        for kind in ("idle", "header-drip", "body-drip", "flood"):
            crowd = Crowd(port, kind, 4 * n if kind == "flood" else n)
            crowd.thread.start()
            time.sleep(settle)
            if proc.poll() is not None:
                raise BenchError("%s: the daemon died under the %s crowd" % (label, kind))
            figs = proc_figures(proc.pid)
            ok, failed = measure(port, sid)
            crowd.stop.set()
            crowd.thread.join()
            rows.append((kind, ok, failed, figs, crowd))
            time.sleep(2)
        alive = proc.poll() is None and timed_exec(port, sid) is not None
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
        log.close()
        subprocess.run(["docker", "rm", "-f"] + subprocess.run(
            ["docker", "ps", "-aq", "--filter", "label=" + sandbox_label],
            capture_output=True, text=True).stdout.split(), capture_output=True)
        shutil.rmtree(storage, ignore_errors=True)
    print("\n== %s (%s), %d held connections per crowd" % (label, path, n))
    print("%-12s %9s %9s %7s %12s %7s %6s %8s  %s" % ("crowd", "median", "worst", "ratio",
          "fails (ms)", "RSS MB", "fds", "threads", "crowd's fate"))
    for kind, ok, failed, (rss, nfd, thr), crowd in rows:
        med = statistics.median(ok) if ok else float("nan")
        worst = max(ok) if ok else float("nan")
        fate = ""
        if crowd:
            fate = "opened %d, reopened %d, refused %d; answers %s" % (
                crowd.opened, crowd.reopened, crowd.refused,
                ", ".join("%s: %d" % kv for kv in sorted(crowd.answers.items())) or "none")
        fails = "%d (%.0f)" % (len(failed), max(failed)) if failed else "0"
        print("%-12s %7.1fms %7.1fms %6.2fx %12s %7d %6d %8d  %s" % (
            kind, med, worst, med / base, fails, rss, nfd, thr, fate))
    print("after the crowds: the daemon %s" % ("still answers" if alive else "DOES NOT ANSWER"))
    return alive


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--proxy", required=True)
    ap.add_argument("--before-proxy")
    ap.add_argument("--clients", type=int, default=1000)
    ap.add_argument("--settle", type=float, default=12.0,
                    help="seconds a crowd is held before the execs are timed")
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < args.clients * 4 + 200:
        raise BenchError("the descriptor limit %d is too low for %d clients" % (hard, args.clients))
    ok = True
    try:
        if args.before_proxy:
            ok &= bench_one("before", args.before_proxy, args.clients, args.settle)
        ok &= bench_one("after" if args.before_proxy else "proxy", args.proxy, args.clients,
                        args.settle)
    except BenchError as e:
        print("bench-slowclients: %s" % e, file=sys.stderr)
        return 1
    print("\ngoal: every crowd's median under %.1fx the normal median" % GOAL)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
