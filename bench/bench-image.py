#!/usr/bin/env python3
"""Benchmark of what a sandbox image costs the code that runs in it.

    python3 bench/bench-image.py [--rounds N] IMAGE [IMAGE...]

For two images (say the one before a Dockerfile change and the one after),
it starts one container of each, as the proxy would (no network, read-only
root, tmpfs /mnt/data and /tmp, uid 1000, the proxy's run environment), and
times, inside the containers and interleaved round by round so machine
noise hits every image alike:

  start      python3 -c pass: interpreter and sitecustomize start-up
  pandas     python3 -c 'import pandas, matplotlib.pyplot'
  plot       a bar chart with a title, saved as PNG (the common task)
  first-plot the same in a sandbox whose MPLCONFIGDIR is still empty,
             as in a new session: matplotlib's font list is built or copied
  node       node -e 0 (the image's node, with its preload if it has one)

It prints the median and p90 of each case per image, the ratio of each
image's median to the first image's, and each image's size.  A measurement,
not a test: it exits non-zero only when a case fails to run.  Talks only to
the local Docker engine and removes the containers it made.
"""
import argparse
import json
import math
import statistics
import subprocess
import sys

DOCKER = "docker"

# The environment the proxy gives every run (sessions/sessions.c, run_env).
RUN_ENV = {
    "HOME": "/mnt/data", "LANG": "C.UTF-8", "TMPDIR": "/tmp",
    "MPLBACKEND": "module://cip_mpl_backend", "MPLCONFIGDIR": "/tmp/.matplotlib",
    "PYTHONPATH": "/opt/cip/python", "PYTHONDONTWRITEBYTECODE": "1",
    "XDG_CONFIG_HOME": "/tmp/.config", "XDG_CACHE_HOME": "/tmp/.cache",
}

PLOT = ("import matplotlib.pyplot as plt; plt.bar(['a','b','c'], [3, 7, 2]); "
        "plt.title('Quarterly revenue'); plt.savefig('/tmp/b.png', dpi=100)")

CASES = [
    ("start", ["python3", "-c", "pass"], False),
    ("pandas", ["python3", "-c", "import pandas, matplotlib.pyplot"], False),
    ("plot", ["python3", "-c", PLOT], False),
    ("first-plot", ["python3", "-c", PLOT], True),
    ("node", ["node", "-e", "0"], False),
]

# Runs inside the container: each case once, timed there (no docker exec
# overhead in the figure).  argv[1] is the JSON list of cases.
TIMER = r'''
import json, os, shutil, subprocess, sys, time
out = {}
for name, argv, fresh in json.loads(sys.argv[1]):
    if fresh:
        shutil.rmtree(os.environ["MPLCONFIGDIR"], ignore_errors=True)
    t = time.perf_counter()
    r = subprocess.run(argv, capture_output=True)
    out[name] = time.perf_counter() - t
    if r.returncode != 0:
        sys.exit(f"{name} failed: {r.stderr.decode()[-500:]}")
print(json.dumps(out))
'''


def docker(*args):
    r = subprocess.run([DOCKER, *args], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"docker {' '.join(args[:2])} failed: {r.stderr.strip()}")
    return r.stdout.strip()


def start(image):
    env = [a for k, v in RUN_ENV.items() for a in ("-e", f"{k}={v}")]
    return docker("run", "-d", "--network", "none", "--read-only", "--user", "1000:1000",
                  "--tmpfs", "/mnt/data:mode=1777,exec", "--tmpfs", "/tmp:mode=1777,exec",
                  "--label", "cip.bench-image=1", "-w", "/mnt/data", *env,
                  "--entrypoint", "sleep", image, "infinity")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("images", nargs="+")
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args()
    cases = json.dumps(CASES)
    ids = [start(img) for img in args.images]
    times = {img: {c[0]: [] for c in CASES} for img in args.images}
    try:
        for cid in ids:   # one untimed round: page cache and .pyc warm
            docker("exec", cid, "python3", "-c", TIMER, cases)
        for _ in range(args.rounds):
            for img, cid in zip(args.images, ids):
                for name, secs in json.loads(docker("exec", cid, "python3", "-c", TIMER,
                                                    cases)).items():
                    times[img][name].append(secs * 1000)
    finally:
        docker("rm", "-f", *ids)
    first = args.images[0]
    print(f"{'case':<11} {'image':<40} {'median ms':>10} {'p90 ms':>8} {'ratio':>6}")
    for name, *_ in CASES:
        base = statistics.median(times[first][name])
        for img in args.images:
            t = sorted(times[img][name])
            med, p90 = statistics.median(t), t[math.ceil(0.9 * len(t)) - 1]
            print(f"{name:<11} {img:<40} {med:10.1f} {p90:8.1f} {med / base:6.2f}")
    for img in args.images:
        size = int(docker("image", "inspect", "--format", "{{.Size}}", img))
        print(f"size {img}: {size / 1e9:.2f} GB")


if __name__ == "__main__":
    main()
