#!/usr/bin/env python3
"""Benchmark of the sandbox runtimes: runc against gVisor's runsc.

Run by `make bench` (when the engine has a runsc runtime) as:

    python3 bench/bench-runtime.py --proxy src/code-interpreter-proxy

It starts two daemons side by side, one per runtime (CI_SANDBOX_RUNTIME
empty, so the engine's runc, and runsc), each with its own loopback port,
storage and sandbox label, the same image and the pre-loaded Python
server.  Then, interleaved in one run so machine noise hits both alike:

  warm       print(1) and a pandas + matplotlib bar chart saved as a PNG,
             each as lang "py" and as a bash heredoc (what LibreChat's
             bash_tool sends), in one warm session per side;
  first      a new session's first exec, print(1), with no warm pool
             (container create + start + the exec): what a conversation's
             first call costs when the pool is empty;
  memory     each warm sandbox's memory as its cgroup counts it (runsc
             counts its Sentry and Gofer too);
  parallel   --parallel sessions per side run print(1) back to back for
             --seconds: exec/s, and host CPU-ms per exec.

It prints medians, p90, the ratio runsc/runc, and the choice rule of
issue 16: runsc is worth being the default if its warm plot (as bash)
stays within 2.5x of runc's.  A measurement, not a test: non-zero only
when something broke.  Python 3 standard library only; it talks to
127.0.0.1 and the local Docker socket, and removes every container
carrying its labels.
"""

import argparse
import http.client
import importlib.util
import os
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def _load(name, file):
    spec = importlib.util.spec_from_file_location(name, os.path.join(HERE, file))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


bp = _load("bench_python", "bench-python.py")
be = bp.be
WARM = ("print(1)", "plot")
CHOICE_RATIO = 2.5


class Side(bp.Side):
    """A daemon whose sandboxes run under one runtime ("" = the engine's)."""

    def __init__(self, name, proxy, image, runtime, tmp):
        super().__init__(name, proxy, image, None, tmp, {"CI_SANDBOX_RUNTIME": runtime})


def sandbox_memory_mb(docker, cid):
    """The container's memory cgroup usage (cgroup v1, cgroupfs), or None."""
    for path in ("/sys/fs/cgroup/memory/docker/%s/memory.usage_in_bytes" % cid,
                 "/sys/fs/cgroup/memory/system.slice/docker-%s.scope/memory.usage_in_bytes" % cid):
        try:
            with open(path) as f:
                return int(f.read()) / 1048576.0
        except OSError:
            continue
    return None


def first_exec_ms(side):
    """A new session's first print(1): create, start, exec (no pool)."""
    conn = http.client.HTTPConnection("127.0.0.1", side.port, timeout=300.0)
    try:
        ms, _ = bp.run_exec(conn, "print(1)", "py", None)
    finally:
        conn.close()
    return ms


def interleaved(sides, docker, rounds, gap):
    samples = {}
    for s in sides:
        s.session = s.new_session()
        s.wait_served(s.conn, s.session, True)
    for w in WARM:  # warm-up, not measured
        for s in sides:
            for mode in ("py", "bash"):
                bp.run_exec(s.conn, w, mode, s.session)
                time.sleep(gap)
    for _ in range(rounds):
        for w in WARM:
            for mode in ("py", "bash"):
                for s in sides:
                    ms, _ = bp.run_exec(s.conn, w, mode, s.session)
                    samples.setdefault((s.name, w, mode), []).append(ms)
                    time.sleep(gap)
        for s in sides:
            samples.setdefault((s.name, "first exec", "py"), []).append(first_exec_ms(s))
            time.sleep(gap)
    memory = {}
    for s in sides:
        cid = be.session_container(s.port, s.session)
        memory[s.name] = sandbox_memory_mb(docker, cid)
    return samples, memory


def report(samples, memory, tput):
    print("\nmedians of one interleaved run (ms); p90 in brackets")
    print("%-12s %-5s %15s %15s %12s" % ("workload", "as", "runc", "runsc", "runsc/runc"))
    for w, mode in [(w, m) for w in WARM for m in ("py", "bash")] + [("first exec", "py")]:
        a, b = samples[("runc", w, mode)], samples[("runsc", w, mode)]
        print("%-12s %-5s %8.1f (%4.0f) %8.1f (%4.0f) %11.2fx" % (
            w, mode, statistics.median(a), be.p90(a), statistics.median(b), be.p90(b),
            statistics.median(b) / statistics.median(a)))
    for name in ("runc", "runsc"):
        m = memory.get(name)
        print("warm sandbox memory, %-5s: %s" % (name, "%.0f MB" % m if m is not None else "n/a"))
    if tput:
        print("\nparallel print(1): exec/s and host CPU-ms per exec (each run listed)")
        for name in ("runc", "runsc"):
            print("  %-6s %s" % (name, "  ".join("%.1f/s %.1f ms" % x for x in tput[name])))
        a = statistics.median(x[0] for x in tput["runc"])
        b = statistics.median(x[0] for x in tput["runsc"])
        print("  runsc/runc throughput: %.2fx" % (b / a))
    ratio = (statistics.median(samples[("runsc", "plot", "bash")]) /
             statistics.median(samples[("runc", "plot", "bash")]))
    print("\nwarm plot as bash, runsc/runc: %.2fx; the rule (<= %.1fx) %s" % (
        ratio, CHOICE_RATIO, "holds: runsc can be the default" if ratio <= CHOICE_RATIO
        else "fails: keep runc as the default"))


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--proxy", required=True, help="path of the code-interpreter-proxy binary")
    ap.add_argument("--image", default=os.environ.get("CI_SANDBOX_IMAGE") or be.DEFAULT_IMAGE)
    ap.add_argument("--rounds", type=int, default=9, help="measured rounds (default 9)")
    ap.add_argument("--gap", type=float, default=0.5, help="seconds between execs (default 0.5)")
    ap.add_argument("--parallel", type=int, default=10, help="sessions in parallel (default 10)")
    ap.add_argument("--seconds", type=float, default=15.0, help="each parallel run (default 15)")
    return ap.parse_args()


def main():
    args = parse_args()
    docker = be.Docker()
    tmp = tempfile.mkdtemp(prefix="bench-runtime-")
    sides = []
    try:
        sides.append(Side("runc", args.proxy, args.image, "", tmp))
        sides.append(Side("runsc", args.proxy, args.image, "runsc", tmp))
        samples, memory = interleaved(sides, docker, args.rounds, args.gap)
        report(samples, memory, bp.parallel_runs(sides, args.parallel, args.seconds))
    except be.BenchError as e:
        return bp.failed("bench-runtime", sides, e)
    finally:
        bp.stop_all(sides, docker, tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
