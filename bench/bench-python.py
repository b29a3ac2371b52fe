#!/usr/bin/env python3
"""Benchmark of Python runs: the pre-loaded server against fresh interpreters.

Run by `make bench` as:

    python3 bench/bench-python.py --proxy src/code-interpreter-proxy

It starts two daemons side by side (free loopback ports, temporary storage,
unique sandbox labels): "before", whose sandboxes start every python3
afresh (CI_PYTHON_PRELOAD empty; with --before-image, an image whose
python3 is Debian's, so not even the client stands in between), and
"after", with the server and its default modules.  Then,
interleaved in one run so machine noise hits every case alike:

  workloads  print(1); import pandas and print; a pandas + matplotlib bar
             chart saved as a PNG (the reply must carry it); a numpy
             computation.  Each as lang "py" and as a bash heredoc
             (python3 - <<'EOF' ... EOF, what LibreChat's bash_tool sends).
  raw        a raw Engine API exec of python3 -c 'print(1)' in the "after"
             session's container, with Debian's interpreter
             (/usr/bin/python3.real): the goal's yardstick.

--gap seconds pass between two execs of one session (LibreChat's model
thinks between calls; the server forks its spare children in such gaps).
Then parallel throughput: --parallel sessions per daemon run print(1) as
fast as they can for --seconds, "before" and "after" in turn (twice each);
exec/s, and host CPU-ms per exec from /proc/stat.

It prints medians, p90, ratios after/before and the issue's goals.  It is a
measurement, not a test: non-zero only when something broke.  Python 3
standard library only; it talks to 127.0.0.1 and the local Docker socket
and removes every container carrying its labels.
"""

import argparse
import http.client
import importlib.util
import itertools
import json
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

PLOT = """import pandas as pd
import matplotlib.pyplot as plt
df = pd.DataFrame({"city": ["Lyon", "Oslo", "Lima", "Pune"], "sales": [10, 24, 17, 31]})
ax = df.plot(kind="bar", x="city", y="sales", title="Sales by city")
ax.set_ylabel("units")
plt.tight_layout()
plt.savefig("chart.png")
print(df["sales"].sum())
"""
WORKLOADS = {
    "print(1)": ("print(1)\n", "1\n", None),
    "import pandas": ("import pandas as pd\nprint(pd.__version__ > '1')\n", "True\n", None),
    "plot": (PLOT, "82\n", "chart.png"),
    "numpy": ("import numpy as np\nrng = np.random.default_rng(1)\na = rng.random((300, 300))\n"
              "print(round(float(np.linalg.norm(a @ a.T)), 0) > 0)\n", "True\n", None),
}
FILE_SERIAL = itertools.count()
GOALS = {("plot", "py"): 150.0, ("plot", "bash"): 200.0}
GOAL_PRINT_RATIO = 0.15
GOAL_THROUGHPUT_X = 2.5


def body(workload, mode, session_id, fname=None):
    code, _, default_name = WORKLOADS[workload]
    if fname:  # a new name each time: a file rewritten alike is no new output
        code = code.replace(default_name, fname)
    if mode == "bash":
        code = "python3 - <<'EOF'\n%sEOF\n" % code
    b = {"lang": "py" if mode == "py" else "bash", "code": code}
    if session_id:
        b["session_id"] = session_id
    return b


def run_exec(conn, workload, mode, session_id):
    """One /exec; (ms, reply) after checking stdout and the expected file."""
    _, expect, fname = WORKLOADS[workload]
    if fname:
        fname = "%d-%s" % (next(FILE_SERIAL), fname)
    t0 = time.perf_counter()
    r = be.post_json(conn, "/exec", body(workload, mode, session_id, fname))
    ms = (time.perf_counter() - t0) * 1000.0
    if r.get("stdout") != expect or r.get("code") not in (0, None):
        raise be.BenchError("%s as %s: wrong result %r" % (workload, mode, r))
    if fname and not any(f.get("name") == fname for f in r.get("files", [])):
        raise be.BenchError("%s as %s: %s not in the reply's files" % (workload, mode, fname))
    return ms, r


class Side:
    """One daemon of the comparison, with its own port, storage and label."""

    def __init__(self, name, proxy, image, preload, tmp, extra_env=None):
        self.name = name
        self.serves = preload != ""  # the server is on unless the list is empty
        self.port = be.free_port()
        self.storage = tempfile.mkdtemp(prefix="bench-py-%s-" % name, dir=tmp)
        self.label = "cip.bench.%s.%s" % (name, secrets.token_hex(4))
        env = be.daemon_env(self.port, self.storage, self.label)
        env["CI_SANDBOX_IMAGE"] = image
        env["CI_MAX_LIVE_CONTAINERS"] = "100"
        if preload is not None:
            env["CI_PYTHON_PRELOAD"] = preload
        env.update(extra_env or {})
        self.log = open(os.path.join(tmp, "%s.log" % name), "w")
        self.proc = be.start_daemon(proxy, env, self.log)
        be.wait_healthy(self.proc, self.port)
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=300.0)
        self.session = None

    def new_session(self, conn=None):
        _, r = run_exec(conn or self.conn, "print(1)", "py", None)
        return r["session_id"]

    def served(self, conn, session_id):
        r = be.post_json(conn, "/exec", {"lang": "py", "session_id": session_id,
                                         "code": "import sys\nprint('numpy' in sys.modules)"})
        return r.get("stdout") == "True\n"

    def wait_served(self, conn, session_id, expect, timeout=120.0):
        """Until the session's server is warm (after), or for nothing (before)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.served(conn, session_id) == expect:
                return
            time.sleep(0.5)
        raise be.BenchError("%s: session %s never became %s" %
                            (self.name, session_id, "served" if expect else "unserved"))

    def stop(self, docker):
        be.stop_daemon(self.proc)
        be.cleanup_containers(docker, self.label)
        self.log.close()


def interleaved(sides, docker, rounds, gap):
    samples = {}
    for s in sides:
        s.session = s.new_session()
        s.wait_served(s.conn, s.session, s.serves)
    cid = be.session_container(sides[1].port, sides[1].session)
    for w in WORKLOADS:  # warm-up: one of each, not measured
        for s in sides:
            for mode in ("py", "bash"):
                run_exec(s.conn, w, mode, s.session)
                time.sleep(gap)
    for i in range(rounds):
        for w in WORKLOADS:
            for mode in ("py", "bash"):
                for s in sides:
                    ms, _ = run_exec(s.conn, w, mode, s.session)
                    samples.setdefault((s.name, w, mode), []).append(ms)
                    time.sleep(gap)
        # The yardstick is python3 as Debian ships it: in the "after"
        # container plain python3 would itself be served.
        samples.setdefault(("raw", "print(1)", "engine"), []).append(
            be.raw_engine_exec(docker, cid, "/usr/bin/python3.real"))
        time.sleep(gap)
    return samples


def cpu_jiffies():
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, os.sysconf("SC_CLK_TCK")


def throughput(side, n, seconds):
    """n sessions running print(1) back to back for seconds: (exec/s, CPU-ms/exec)."""
    conns = [http.client.HTTPConnection("127.0.0.1", side.port, timeout=300.0) for _ in range(n)]
    sessions = side.parallel_sessions
    counts = [0] * n
    errors = []
    stop = threading.Event()

    def worker(i):
        try:
            while not stop.is_set():
                run_exec(conns[i], "print(1)", "py", sessions[i])
                counts[i] += 1
        except Exception as e:  # reported after the run
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    busy0, hz = cpu_jiffies()
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    busy1, _ = cpu_jiffies()
    for c in conns:
        c.close()
    if errors:
        raise be.BenchError("%s parallel: %s" % (side.name, errors[0]))
    total = sum(counts)
    return total / elapsed, (busy1 - busy0) * 1000.0 / hz / max(total, 1)


def prepare_parallel(side, n):
    conns = [http.client.HTTPConnection("127.0.0.1", side.port, timeout=300.0) for _ in range(n)]
    side.parallel_sessions = [side.new_session(c) for c in conns]
    for c, sid in zip(conns, side.parallel_sessions):
        side.wait_served(c, sid, side.serves)
        c.close()


def parallel_runs(sides, n, seconds):
    """{side name: [(exec/s, CPU-ms/exec)] * 2}: each side in turn, twice; {} if n is 0."""
    tput = {}
    if not n:
        return tput
    for s in sides:
        prepare_parallel(s, n)
    for _ in range(2):
        for s in sides:
            time.sleep(3)  # let the spares of the other side settle
            tput.setdefault(s.name, []).append(throughput(s, n, seconds))
    return tput


def failed(prog, sides, e):
    """Say what broke, with the end of each daemon's log; the exit status."""
    print("%s: %s" % (prog, e), file=sys.stderr)
    for s in sides:
        s.log.flush()
        be.print_log_tail(s.log.name)
    return 1


def stop_all(sides, docker, tmp):
    for s in sides:
        s.stop(docker)
    docker.close()
    shutil.rmtree(tmp, ignore_errors=True)


def report(samples, tput):
    med = {k: statistics.median(v) for k, v in samples.items()}
    raw = med[("raw", "print(1)", "engine")]
    print("\nmedians of one interleaved run (ms); p90 in brackets")
    print("%-15s %-5s %14s %14s %8s %8s" % ("workload", "as", "before", "after", "after/b", "goal"))
    for w in WORKLOADS:
        for mode in ("py", "bash"):
            b, a = samples[("before", w, mode)], samples[("after", w, mode)]
            goal = GOALS.get((w, mode))
            if w == "print(1)":
                goal_s = "<=%.0f" % (GOAL_PRINT_RATIO * raw)
            else:
                goal_s = "<=%.0f" % goal if goal else ""
            print("%-15s %-5s %7.1f (%4.0f) %7.1f (%4.0f) %8.2f %8s" % (
                w, mode, statistics.median(b), be.p90(b), statistics.median(a), be.p90(a),
                statistics.median(a) / statistics.median(b), goal_s))
    print("raw Engine exec of python3 -c 'print(1)', same container: %.1f ms" % raw)
    print("print(1) as py, after / raw: %.3f (goal <= %.2f)" %
          (med[("after", "print(1)", "py")] / raw, GOAL_PRINT_RATIO))
    if tput:
        print("\nparallel print(1): exec/s and host CPU-ms per exec (each run listed)")
        for name in ("before", "after"):
            print("  %-6s %s" % (name, "  ".join("%.1f/s %.1f ms" % x for x in tput[name])))
        b = statistics.median(x[0] for x in tput["before"])
        a = statistics.median(x[0] for x in tput["after"])
        print("  after/before throughput: %.2fx (goal >= %.1fx)" % (a / b, GOAL_THROUGHPUT_X))


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--proxy", required=True, help="path of the code-interpreter-proxy binary")
    ap.add_argument("--image", default=os.environ.get("CI_SANDBOX_IMAGE") or be.DEFAULT_IMAGE,
                    help="sandbox image with the server (after)")
    ap.add_argument("--before-image", default=None,
                    help="image for 'before' (default: --image with CI_PYTHON_PRELOAD empty)")
    ap.add_argument("--rounds", type=int, default=9, help="measured rounds (default 9)")
    ap.add_argument("--gap", type=float, default=0.5, help="seconds between execs (default 0.5)")
    ap.add_argument("--parallel", type=int, default=20, help="sessions in parallel (default 20)")
    ap.add_argument("--seconds", type=float, default=15.0, help="each parallel run (default 15)")
    return ap.parse_args()


def main():
    args = parse_args()
    docker = be.Docker()
    tmp = tempfile.mkdtemp(prefix="bench-python-")
    sides = []
    try:
        sides.append(Side("before", args.proxy, args.before_image or args.image,
                          "", tmp))
        sides.append(Side("after", args.proxy, args.image, None, tmp))
        samples = interleaved(sides, docker, args.rounds, args.gap)
        report(samples, parallel_runs(sides, args.parallel, args.seconds))
    except be.BenchError as e:
        return failed("bench-python", sides, e)
    finally:
        stop_all(sides, docker, tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
