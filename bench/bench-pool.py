#!/usr/bin/env python3
"""Benchmark of new sessions, parallel sessions and memory (issue 7).

Run by `make bench` as:

    python3 bench/bench-pool.py --proxy src/code-interpreter-proxy

It starts two daemons side by side (free loopback ports, temporary storage,
unique sandbox labels): P with the default warm pool (CI_POOL_SIZE=2) and
Z with none (CI_POOL_SIZE=0), and measures in one run:

  1. New sessions, interleaved round by round:
       W  warm exec in an existing session of P (the yardstick);
       N  the first exec of a new session of P, served from the pool;
       C  the first exec of a new session of Z, which makes its container.
     Between rounds the new sessions are deleted and the bench waits for
     P's pool to be full again (untimed): a pool is for arrivals slower
     than its refill.  A burst of new sessions faster than the refill is
     measured apart (N-burst: --burst sessions back to back).
  2. 20 sessions in parallel, 10 execs each, after each made its session
     (untimed): every exec's latency, errors, p50/p99, against the
     single-client warm median measured just before.  Python's start-up
     is CPU-bound, so the same is done with bash (`echo 1`), where the
     proxy's own share dominates.
  3. P's RSS with 100 live sessions (each holding a container).

A measurement, not a test: it exits non-zero only when something broke.
Python 3 standard library only; it talks to 127.0.0.1 and the local Docker
socket, and removes every container carrying its labels.
"""

import argparse
import http.client
import importlib.util
import json
import math
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location("bench_exec", os.path.join(HERE, "bench-exec.py"))
be = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(be)
BenchError = be.BenchError

GOAL_NEW_VS_WARM = 1.2
GOAL_P99_VS_MEDIAN = 4.0
GOAL_RSS_KB = 20 * 1024
LANGS = {"py": ("print(1)", "1\n"), "bash": ("echo 1", "1\n")}


class Daemon:
    def __init__(self, proxy, name, env):
        self.name = name
        self.port = be.free_port()
        self.label = "cip.bench.%s.%s" % (name.lower(), secrets.token_hex(4))
        self.storage = tempfile.mkdtemp(prefix="cip-bench-%s-" % name.lower())
        fd, self.log_path = tempfile.mkstemp(prefix="cip-bench-%s-" % name.lower(),
                                             suffix=".log")
        self.log = os.fdopen(fd, "w")
        e = be.daemon_env(self.port, self.storage, self.label)
        e.update(env)
        self.proc = be.start_daemon(proxy, e, self.log)
        be.wait_healthy(self.proc, self.port)

    def request(self, method, path, body=None, conn=None):
        own = conn is None
        conn = conn or http.client.HTTPConnection("127.0.0.1", self.port, timeout=120.0)
        headers = {"X-API-Key": be.API_KEY}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        try:
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.read()
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            raise BenchError("%s %s on %s: %s" % (method, path, self.name, e))
        finally:
            if own:
                conn.close()

    def exec(self, lang="py", session=None, conn=None):
        """One checked /exec; returns (ms, session id)."""
        code, want = LANGS[lang]
        body = {"lang": lang, "code": code}
        if session:
            body["session_id"] = session
        t0 = time.perf_counter()
        status, payload = self.request("POST", "/exec", body, conn)
        ms = (time.perf_counter() - t0) * 1000.0
        if status != 200:
            raise BenchError("%s /exec: %d %s" % (self.name, status, payload[:200]))
        reply = json.loads(payload)
        if reply.get("stdout") != want:
            raise BenchError("%s /exec gave %r" % (self.name, reply))
        return ms, reply["session_id"]

    def health(self):
        status, payload = self.request("GET", "/health")
        if status != 200:
            raise BenchError("%s /health: %d" % (self.name, status))
        return json.loads(payload)

    def wait_pool_full(self, timeout=60.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            h = self.health()
            if h.get("pool_size") == h.get("pool_target"):
                return
            time.sleep(0.02)
        raise BenchError("%s: the pool did not refill within %.0f s" % (self.name, timeout))

    def delete(self, sid):
        status, payload = self.request("DELETE", "/v1/librechat/sessions/" + sid)
        if status != 200:
            raise BenchError("%s: DELETE session: %d %s" % (self.name, status, payload[:200]))

    def stop(self, docker):
        be.stop_daemon(self.proc)
        removed = be.cleanup_containers(docker, self.label)
        shutil.rmtree(self.storage, ignore_errors=True)
        self.log.close()
        return removed


def cpu_seconds(pid):
    """User + system CPU of one process, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy():
    """CPU seconds the whole machine spent not idle (all CPUs), from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    return (sum(v[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def pct(values, p):
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100.0 * len(ordered)) - 1)]


def row(name, v):
    print("%-34s %4d %8.1f %8.1f %8.1f %8.1f" % (name, len(v), statistics.median(v),
                                                 pct(v, 90), min(v), max(v)))


def header(title):
    print()
    print(title)
    print("%-34s %4s %8s %8s %8s %8s" % ("case (ms)", "n", "median", "p90", "min", "max"))


def new_sessions(p, z, rounds, burst):
    """Part 1: W, N and C interleaved, then a burst of N."""
    conn = http.client.HTTPConnection("127.0.0.1", p.port, timeout=120.0)
    _, warm = p.exec(conn=conn)
    for _ in range(be.WARMUP_ROUNDS):
        p.exec(session=warm, conn=conn)
    w, n, c = [], [], []
    for _ in range(rounds):
        p.wait_pool_full()
        w.append(p.exec(session=warm, conn=conn)[0])
        ms, sid = p.exec()
        n.append(ms)
        ms, zsid = z.exec()
        c.append(ms)
        p.delete(sid)
        z.delete(zsid)
    p.wait_pool_full()
    b, made = [], []
    for _ in range(burst):
        ms, sid = p.exec()
        b.append(ms)
        made.append(sid)
    for sid in made:
        p.delete(sid)
    conn.close()
    header("1. new sessions (P: CI_POOL_SIZE=2, Z: CI_POOL_SIZE=0), %d interleaved rounds" % rounds)
    row("W warm exec (P)", w)
    row("N new session, from the pool (P)", n)
    row("C new session, no pool (Z)", c)
    row("N-burst: %d new sessions back to back" % burst, b)
    ratio = statistics.median(n) / statistics.median(w)
    print("median(N)/median(W) = %.2f (goal <= %.1f)%s; no pool: median(C)/median(W) = %.2f"
          % (ratio, GOAL_NEW_VS_WARM, "" if ratio <= GOAL_NEW_VS_WARM else "  -- goal missed",
             statistics.median(c) / statistics.median(w)))


def parallel(p, lang, clients, execs):
    """Part 2 for one language: the single-client median, then clients x execs."""
    conn = http.client.HTTPConnection("127.0.0.1", p.port, timeout=120.0)
    _, sid = p.exec(lang, conn=conn)
    for _ in range(be.WARMUP_ROUNDS):
        p.exec(lang, sid, conn)
    single = [p.exec(lang, sid, conn)[0] for _ in range(40)]
    conn.close()
    p.delete(sid)
    sessions = []
    for _ in range(clients):
        p.wait_pool_full()
        sessions.append(p.exec(lang)[1])
    lat, errors, lock = [], [], threading.Lock()
    start = threading.Barrier(clients)

    def client(sid):
        c = http.client.HTTPConnection("127.0.0.1", p.port, timeout=120.0)
        start.wait()
        for _ in range(execs):
            try:
                ms = p.exec(lang, sid, c)[0]
                with lock:
                    lat.append(ms)
            except BenchError as e:
                with lock:
                    errors.append(str(e))
                c = http.client.HTTPConnection("127.0.0.1", p.port, timeout=120.0)
        c.close()

    threads = [threading.Thread(target=client, args=(s,)) for s in sessions]
    cpu0, busy0 = cpu_seconds(p.proc.pid), machine_busy()
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    daemon_cpu, busy = cpu_seconds(p.proc.pid) - cpu0, machine_busy() - busy0
    for sid in sessions:
        p.delete(sid)
    med = statistics.median(single)
    header("2. %d sessions in parallel x %d execs, lang %s" % (clients, execs, lang))
    row("single client, warm", single)
    if lat:
        row("parallel, every exec", lat)
    p99 = pct(lat, 99) if lat else float("nan")
    print("errors %d; p50 %.1f, p99 %.1f ms; p99/single median = %.1f (goal <= %.0f)%s; "
          "%.0f execs/s" % (len(errors), statistics.median(lat) if lat else float("nan"), p99,
                            p99 / med, GOAL_P99_VS_MEDIAN,
                            "" if p99 / med <= GOAL_P99_VS_MEDIAN and not errors
                            else "  -- goal missed", len(lat) / wall))
    for e in errors[:5]:
        print("  error: %s" % e)
    # Little's law: with every client always waiting, mean latency is
    # clients / throughput whatever the scheduling; the CPUs bound it.
    n = max(len(lat), 1)
    print("machine: %d CPUs %.0f%% busy during the run; %.1f CPU-ms per exec in all, "
          "%.2f of them the proxy's; clients/throughput = %.1f ms, p50 is %.2fx that"
          % (os.cpu_count(), 100.0 * busy / (wall * os.cpu_count()), 1000.0 * busy / n,
             1000.0 * daemon_cpu / n, 1000.0 * clients * wall / n,
             (statistics.median(lat) if lat else 0) / (1000.0 * clients * wall / n)))


def memory_with_sessions(p, n):
    """Part 3: n sessions each holding a container, then P's RSS."""
    ids, errors = [], []
    lock = threading.Lock()

    def make(k):
        for _ in range(k):
            try:
                sid = p.exec("bash")[1]
                with lock:
                    ids.append(sid)
            except BenchError as e:
                with lock:
                    errors.append(str(e))

    threads = [threading.Thread(target=make, args=(n // 4 + (1 if i < n % 4 else 0),))
               for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise BenchError("making %d sessions: %s" % (n, errors[0]))
    h = p.health()
    mem = be.daemon_memory(p.proc.pid)
    print()
    print("3. %d live sessions (health: %d live containers, pool %d)"
          % (len(ids), h["live_containers"], h["pool_size"]))
    print("daemon RSS %d kB, peak %d kB (goal <= %d kB)%s"
          % (mem["VmRSS"], mem["VmHWM"], GOAL_RSS_KB,
             "" if mem["VmRSS"] <= GOAL_RSS_KB else "  -- goal missed"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--proxy", required=True)
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--burst", type=int, default=10)
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--execs", type=int, default=10)
    ap.add_argument("--sessions", type=int, default=100)
    ap.add_argument("--parts", default="123", help="which parts to run (default 123)")
    args = ap.parse_args()
    sys.stdout.reconfigure(line_buffering=True)
    proxy = os.path.abspath(args.proxy)
    docker = be.Docker()
    daemons, failed = [], True
    try:
        p = Daemon(proxy, "P", {"CI_POOL_SIZE": "2",
                                "CI_MAX_LIVE_CONTAINERS": str(args.sessions + 10)})
        daemons.append(p)
        z = Daemon(proxy, "Z", {"CI_POOL_SIZE": "0"})
        daemons.append(z)
        print("P on :%d (pool 2), Z on :%d (no pool), engine API %s"
              % (p.port, z.port, docker.prefix[1:]))
        if "1" in args.parts:
            new_sessions(p, z, args.rounds, args.burst)
        if "2" in args.parts:
            for lang in ("py", "bash"):
                parallel(p, lang, args.clients, args.execs)
        if "3" in args.parts:
            memory_with_sessions(p, args.sessions)
        failed = False
    except BenchError as e:
        print("bench-pool: %s" % e, file=sys.stderr)
    finally:
        for d in daemons:
            removed = d.stop(docker)
            print("%s: removed %d container(s) labelled %s" % (d.name, removed, d.label))
            if failed:
                be.print_log_tail(d.log_path)
            os.unlink(d.log_path)
        docker.close()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
