"""The pre-loaded Python server: every python3 is a fork of it, and behaves
as the real interpreter does (issue 14).

Each semantics case is one bash script run twice in one session: once with
`python3` (the sandbox's cip-python, handed to the server) and once with the
real interpreter under the same argv[0] (`exec -a python3
/usr/bin/python3.real`, so sys.executable is the same).  Both replies must be
equal: stdout, stderr, exit code, the files written.  CIP_PYTHON_TRACE=1
makes a served program say "cip-python: served" on its stderr as it starts:
the test strips those lines after checking the first run was served, so a
case that fell back to the real interpreter fails instead of passing for the
wrong reason.

The security cases check what the issue asks: the server is out of the
sandbox user's reach, bombs started through it are contained and it
survives, a killed server is restarted and runs fall back meanwhile, and a
process squatting on the server's name is never used.
"""
import re
import time

import pytest

from conftest import GVISOR, Daemon, docker, wait_for

# Runs on the core image (but the tests marked full_image): pytest.ini.
pytestmark = pytest.mark.core_image

SERVED = re.compile(r"^cip-python: .*\n?", re.M)
# "bash /tmp/real" is the real interpreter as the same process (a
# background job's $! is its pid, timeout(1) can run it), with python3's
# argv[0].  /tmp is noexec, hence bash.
PRELUDE = r"""cd /mnt/data
export CIP_PYTHON_TRACE=1
printf '#!/bin/bash\nexec -a python3 /usr/bin/python3.real "$@"\n' > /tmp/real
"""
# What differs between any two processes: object addresses.
ADDRESS = re.compile(r"0x[0-9a-f]{6,}")
# Until the server listens, python3 is the real interpreter.
LISTENING = "grep -c '@cip-python-1$' /proc/net/unix || true"


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    """Runs of up to 30 s: the server's first warm-up takes a few seconds."""
    d = Daemon(tmp_path_factory.mktemp("pyserver"), CI_MAX_RUN_TIMEOUT_SECONDS="30").start()
    yield d
    try:
        d.stop()
    finally:
        d.cleanup()


def ready_session(daemon, sid=None):
    """A session whose server listens.  Asked between runs, with pauses: the
    server warms up only while no run is in progress."""
    deadline = time.monotonic() + 90
    while True:
        r = daemon.exec(LISTENING, lang="bash", session=sid)
        sid = r["session_id"]
        if r["stdout"] == "1\n":
            return sid
        assert time.monotonic() < deadline, f"the server never listened: {r}"
        time.sleep(0.3)


@pytest.fixture(scope="module")
def sid(daemon):
    return ready_session(daemon)


def sh(daemon, sid, script, **extra):
    return daemon.exec(PRELUDE + script, lang="bash", session=sid, **extra)


def strip_served(text):
    return SERVED.sub("", text), len(re.findall(r"^cip-python: served$", text, re.M))


def compare(daemon, sid, script, files=()):
    """Run script with PY=python3 and PY=real; the two must be alike. Returns the reply."""
    got = {}
    for who in ("python3", "real"):
        body = script.replace("$PY", who if who == "python3" else "bash /tmp/real")
        r = sh(daemon, sid, body + "\necho \"rc=$?\"" +
               "".join(f"\necho '--- {f}'; cat {f} 2>&1; rm -f {f}" for f in files))
        out, n_out = strip_served(ADDRESS.sub("0x?", r["stdout"]))
        err, n_err = strip_served(ADDRESS.sub("0x?", r["stderr"]))
        got[who] = (out, err, r["code"], n_out + n_err)
    served, real = got["python3"], got["real"]
    assert served[3] > real[3], f"the python3 run was not served: {served}"
    assert served[:3] == real[:3], f"served and real differ:\nserved {served}\nreal   {real}"
    return served


# ---------------------------------------------------------------- how a program is named

PROG = """cat > prog.py <<'EOF'
import os, sys
print(sys.argv, sys.executable, sys.orig_argv[1:] == sys.argv[1:] or sys.orig_argv)
print(__name__, __file__ if '__file__' in dir() else None, sys.path[0] == os.path.dirname(os.path.realpath(sys.argv[0])) if sys.argv[0] not in ('-c', '', '-') else repr(sys.path[0]))
print(sorted(k for k in globals() if k != 'print'))
print(__loader__.__class__.__name__ if not isinstance(__loader__, type) else __loader__.__name__, __spec__, __package__, __doc__)
if __name__ == "__main__":
    print("main guard")
EOF
"""


def test_a_script_path_with_arguments(daemon, sid):
    compare(daemon, sid, PROG + "$PY prog.py one 'two words' --three")


def test_a_relative_and_an_absolute_script_path(daemon, sid):
    compare(daemon, sid, PROG + "$PY ./prog.py a; $PY /mnt/data/prog.py b; mkdir -p sub; cd sub; $PY ../prog.py c")


def test_dash_c_with_arguments(daemon, sid):
    compare(daemon, sid, "$PY -c 'import sys; print(sys.argv, __name__, repr(sys.path[0]))' x y")
    compare(daemon, sid, "$PY -c'import sys; print(sys.argv)' -z")


def test_a_heredoc_on_stdin(daemon, sid):
    compare(daemon, sid, """$PY - one two <<'EOF'
import sys
print(sys.argv, __name__, repr(sys.path[0]), __file__ if '__file__' in dir() else None)
print(sorted(k for k in globals()))
EOF""")
    compare(daemon, sid, """$PY <<'EOF'
import sys
print(sys.argv, sys.stdin.read() == '')
EOF""")


def test_dash_m_module(daemon, sid):
    compare(daemon, sid, """mkdir -p pkg; : > pkg/__init__.py
cat > pkg/mod.py <<'EOF'
import sys, os
print(__name__, sys.argv[1:], os.path.basename(sys.argv[0]), __package__, repr(sys.path[0]))
EOF
$PY -m pkg.mod a b; $PY -m json.tool <<< '{"b": 1, "a": [1, 2]}'""")


def test_dash_u_and_the_stream_setup(daemon, sid):
    compare(daemon, sid, """$PY -u -c '
import sys, os
for i in range(3):
    print("out", i); print("err", i, file=sys.stderr)
print(sys.stdout.line_buffering, sys.stdout.write_through, sys.stdout.encoding, sys.stderr.errors)
print(sys.stdin.isatty(), sys.stdout.isatty(), sys.flags.unbuffered, sys.flags.dont_write_bytecode)
print(sys.stdin.name, sys.stdout.name, sys.stderr.name, sys.stdout.mode, sys.getfilesystemencoding())
' 2>&1 < /dev/null""")


def test_piped_output_and_a_closed_stdin(daemon, sid):
    compare(daemon, sid, "$PY -c 'print(\"through a pipe\")' | tr a-z A-Z; "
            "$PY -c 'import sys; print(sys.stdin)' <&-")


# ---------------------------------------------------------------- how a program ends

@pytest.mark.parametrize("code", [
    "import sys; sys.exit(3)",
    "import sys; sys.exit('a message')",
    "import sys; sys.exit(None)",
    "raise SystemExit(256 + 7)",
    "import os; print('unflushed', end=''); os._exit(9)",
    "def f():\n    raise ValueError('deep')\nf()",
    # On the core image the real interpreter ends this with 1, where the
    # served one (and both on the full image) end with 130: not yet
    # understood, so it runs where both agree.
    pytest.param("raise KeyboardInterrupt", marks=pytest.mark.full_image),
    "import json\njson.loads('{bad')",
    "x = (",
    "print('partial'); 1/0",
])
def test_exit_codes_and_tracebacks(daemon, sid, code):
    compare(daemon, sid, f"cat > end.py <<'EOF'\n{code}\nEOF\n$PY end.py; echo \"rc=$?\"; "
            f"$PY -c \"$(cat end.py)\"; echo \"rc=$?\"; $PY - < end.py")


def test_atexit_and_files_left_open(daemon, sid):
    compare(daemon, sid, """$PY - <<'EOF'
import atexit, sys
f = open("left-open.txt", "w")
f.write("written, never closed or flushed")
atexit.register(print, "atexit ran")
def bad():
    raise RuntimeError("in atexit")
atexit.register(bad)
print("main done")
EOF""", files=["left-open.txt"])


@pytest.mark.full_image  # on the core image the real interpreter ends a KeyboardInterrupt with 1
def test_signals(daemon, sid):
    # SIGINT once the program says it runs (a fixed delay raced its start on
    # a loaded machine); set -m, or a background job would ignore SIGINT.
    # The reference itself wavered on a loaded machine: once beside other
    # suites the real interpreter, not the served one, ended a caught
    # SIGTERM with 143 (not yet understood).  So up to three tries; a served
    # run that differs every time still fails.
    for attempt in range(3):
        try:
            compare(daemon, sid, SIGNALS)
            return
        except AssertionError:
            if attempt == 2:
                raise


SIGNALS = """$PY -c 'import os, signal; os.kill(os.getpid(), signal.SIGTERM)'; echo "rc=$?"
$PY -c 'import os, signal; print("handled", end=""); signal.signal(signal.SIGUSR1, lambda *a: print(" got", a[0])); os.kill(os.getpid(), signal.SIGUSR1)'
$PY -c '
import signal, sys, time
signal.signal(signal.SIGTERM, lambda *a: (print("term caught"), sys.exit(5)))
print("ready", flush=True)
time.sleep(20)' > sig.out & pid=$!
until grep -q ready sig.out 2>/dev/null; do sleep 0.05; done
kill -TERM $pid; wait $pid; echo "bg rc=$?"; cat sig.out
{ set -m; $PY -c 'import time; print("ready", flush=True); time.sleep(20)' > int.out 2>&1 & pid=$!
until grep -q ready int.out 2>/dev/null; do sleep 0.05; done
kill -INT $pid; wait $pid; echo "int rc=$?"; set +m; } 2>/dev/null; tail -1 int.out
(trap '' USR2; $PY -c 'import signal; print(signal.getsignal(signal.SIGUSR2))')"""


def test_threads_run_to_their_end(daemon, sid):
    compare(daemon, sid, """$PY - <<'EOF'
import threading, time
def work(n):
    time.sleep(0.2)
    print("thread", n, "done")
threading.Thread(target=work, args=(1,)).start()
threading.Thread(target=lambda: time.sleep(30), daemon=True).start()
print("main ends first", threading.active_count())
EOF""")


def test_multiprocessing_and_subprocess(daemon, sid):
    """From a file: spawn re-runs the main module, which a heredoc has not."""
    compare(daemon, sid, """cat > mp.py <<'EOF'
import multiprocessing as mp, subprocess, sys
def square(x):
    return x * x
if __name__ == "__main__":
    with mp.Pool(2) as p:
        print(p.map(square, range(6)))
    ctx = mp.get_context("spawn")
    with ctx.Pool(1) as p:
        print(p.map(abs, [-1, -2]))
    r = subprocess.run(["python3", "-c", "import sys; print('child', sys.argv[1:]); sys.exit(4)", "x"],
                       capture_output=True, text=True)
    print(r.returncode, r.stdout.strip())
    print(subprocess.run([sys.executable, "-c", "print(6 * 7)"], capture_output=True, text=True).stdout.strip())
EOF
$PY mp.py""")


def test_stdin_data_reaches_the_program(daemon, sid):
    compare(daemon, sid, """cat > reader.py <<'EOF'
import sys
name = input("name? ")
rest = sys.stdin.read()
print("hello", name, len(rest.splitlines()))
EOF
printf 'Ada\\nl1\\nl2\\n' | $PY reader.py; $PY reader.py <<'EOF'
Grace
x
EOF""")


def test_environment_and_process_state(daemon, sid):
    compare(daemon, sid, """umask 027; ulimit -n 200
MYVAR='v a l' $PY -c '
import os, sys, resource, warnings
print(os.environ["MYVAR"], os.environ.get("HOME"), os.getcwd(), oct(os.umask(0)))
print(resource.getrlimit(resource.RLIMIT_NOFILE), os.getuid(), os.getgid(), os.getgroups())
print(sys.flags, sys.getrecursionlimit(), type(exit).__name__, type(help).__name__)
print(sorted(int(fd) for fd in os.listdir("/proc/self/fd"))[:4])
warnings.warn("a user warning")
import collections; print(collections.__name__)
' 3< /dev/null""")


# ---------------------------------------------------------------- a clean state every run

@pytest.mark.full_image  # numpy, matplotlib or plotly
def test_nothing_one_run_does_is_seen_by_the_next(daemon, sid):
    sh(daemon, sid, """python3 - <<'EOF'
import json, numpy, matplotlib, matplotlib.pyplot as plt, builtins
json.dumps = None
numpy.CIP_MARK = 1
builtins.CIP_MARK = 1
matplotlib.rcParams["lines.linewidth"] = 9
plt.figure()
import sys; sys.modules["cip_leak"] = json; sys.path.append("/leak")
held = open("/mnt/data/held.txt", "w")
GLOBAL = 1
EOF""")
    r = compare(daemon, sid, """$PY - <<'EOF'
import json, builtins, sys
import matplotlib, matplotlib.pyplot as plt, numpy
print(json.dumps([1]), hasattr(numpy, "CIP_MARK"), hasattr(builtins, "CIP_MARK"))
print(matplotlib.rcParams["lines.linewidth"], plt.get_fignums(), "cip_leak" in sys.modules, "/leak" in sys.path)
print("GLOBAL" in globals())
EOF""")
    assert r[0].startswith("[1] False False\n1.5 [] False False\nFalse\n"), r


@pytest.mark.full_image  # numpy, matplotlib or plotly
def test_random_state_differs_between_runs(daemon, sid):
    prog = ("python3 -c 'import random, numpy, os; "
            "print(random.random(), numpy.random.rand(), os.urandom(4).hex())'")
    seen = {sh(daemon, sid, prog)["stdout"] for _ in range(4)}
    assert len(seen) == 4, seen


@pytest.mark.full_image  # numpy, matplotlib or plotly
def test_plots_are_captured_as_before(daemon, sid):
    """A bare plt.show() and plotly's fig.show() still give files."""
    r = sh(daemon, sid, """python3 - <<'EOF'
import matplotlib.pyplot as plt
plt.plot([1, 2, 3]); plt.show()
import plotly.express as px
px.bar(x=["a", "b"], y=[1, 2]).show()
EOF""")
    assert r["code"] == 0, r
    assert "cip-python: served" in r["stderr"], r
    names = sorted(f["name"] for f in r["files"])
    assert any(n.endswith(".png") for n in names) and any(n.endswith(".html") for n in names), names


@pytest.mark.full_image  # numpy, matplotlib or plotly
def test_lang_py_is_served(daemon, sid):
    r = daemon.exec("import sys, os\nprint('numpy' in sys.modules, os.getcwd(), __file__ == os.path.abspath(sys.argv[0]))",
                    session=sid)
    assert r["stdout"] == "True /mnt/data True\n", r


# ---------------------------------------------------------------- what it falls back on

@pytest.mark.parametrize("cmd", [
    "$PY -I -c 'import sys; print(sys.flags.isolated)'",
    "$PY -X dev -c 'import sys; print(sys.flags.dev_mode)'",
    "PYTHONHASHSEED=1 $PY -c 'print(hash(\"abc\"))'",
    "$PY -W error -c 'import warnings; warnings.warn(\"x\")'",
    "$PY --version",
    "$PY -O -c 'assert False; print(\"asserts off\")'",
])
def test_what_it_cannot_reproduce_runs_on_the_real_interpreter(daemon, sid, cmd):
    """Declined (no "served" line), and the same as the real interpreter."""
    outs = []
    for who in ("python3", "bash /tmp/real"):
        r = sh(daemon, sid, cmd.replace("$PY", who) + '; echo "rc=$?"')
        assert "cip-python: served" not in r["stderr"], r
        outs.append((r["stdout"], r["stderr"]))
    assert outs[0] == outs[1]


# ---------------------------------------------------------------- security

def server_pid(daemon, sid):
    (cid,) = daemon.containers(sid)
    pids = docker("exec", cid, "pgrep", "-f", "-o", "cip_pyserver.py").split()
    assert len(pids) == 1, pids
    return cid, pids[0]


def test_the_server_is_out_of_the_sandbox_users_reach(daemon, sid):
    _, pid = server_pid(daemon, sid)
    r = sh(daemon, sid, f"""stat -c '%u' /proc/{pid}; kill -9 {pid} 2>&1; kill -STOP {pid} 2>&1
cat /proc/{pid}/environ 2>&1 | head -c 80; echo; head -c 8 /proc/{pid}/mem 2>&1; echo
ls /proc/{pid}/fd 2>&1
python3.real -c '
import ctypes; libc = ctypes.CDLL(None, use_errno=True)
print("ptrace", libc.ptrace(16, {pid}, 0, 0), ctypes.get_errno())'
touch /opt/cip/pyserver/x 2>&1""")
    out = r["stdout"]
    assert out.count("Operation not permitted") >= 2, out
    assert "ptrace -1 1\n" in out, out  # EPERM
    if GVISOR:
        # gVisor: /proc/PID itself and its fd answer EINVAL, the environ
        # (the container's, which every run has) is readable, and the
        # permission check comes before the read-only one.
        assert f"/proc/{pid}/mem' for reading: Permission denied" in out, out
        assert f"'/proc/{pid}/fd': Invalid argument" in out, out
        assert "'/opt/cip/pyserver/x': Permission denied" in out, out
    else:
        assert out.startswith("0\n"), out
        assert out.count("Permission denied") >= 3, out
        assert "Read-only file system" in out, out
    _, again = server_pid(daemon, sid)
    assert again == pid
    assert "served" in sh(daemon, sid, "python3 -c pass")["stderr"]


def test_what_a_served_program_leaves_behind_dies_with_its_run(daemon, sid):
    r = sh(daemon, sid, """python3 - <<'EOF'
import os, subprocess, time
subprocess.Popen(["setsid", "sleep", "1000"], start_new_session=True)
if os.fork() == 0:
    os.setsid()
    time.sleep(1000)
print("spawned")
EOF""")
    assert "cip-python: served" in r["stderr"] and r["stdout"] == "spawned\n", r
    left = sh(daemon, sid, "ps -u sandbox -o args= | grep -v -e '^ps ' -e '^bash ' -e '^grep ' || true")
    assert left["stdout"] == "", left


def test_a_fork_bomb_through_it_is_contained_and_it_survives(daemon, sid):
    _, pid = server_pid(daemon, sid)
    r = sh(daemon, sid, """python3 -c '
import os
while True:
    try:
        os.fork()
    except OSError:
        pass' ; echo after""", timeout=3000)
    assert "cip-python: served" in r["stderr"], r
    again = sh(daemon, sid, "ps -e --no-headers -o uid= | grep -c '^ *1000$'; python3 -c 'print(7)'")
    assert again["stdout"].split("\n")[1] == "7", again
    assert "cip-python: served" in again["stderr"], again
    assert server_pid(daemon, sid)[1] == pid


def test_a_memory_bomb_through_it_is_contained_and_it_survives(daemon, sid):
    _, pid = server_pid(daemon, sid)
    if GVISOR:
        # gVisor cannot OOM-kill one program: the whole sandbox goes (README:
        # Under gVisor); the session's next call gets a new one, served again.
        r = sh(daemon, sid, "python3 -c 'x = []\nwhile True: x.append(b\"x\" * (64 << 20))'")
        assert r["code"] == 137 and "ran out of memory" in r["stderr"], r
        wait_for(lambda: served(daemon, sid), "the new sandbox's server", timeout=90)
        return
    r = sh(daemon, sid, "python3 -c 'x = []\nwhile True: x.append(bytearray(64 << 20))'; echo \"rc=$?\"")
    assert "cip-python: served" in r["stderr"], r
    assert "rc=137" in r["stdout"], r
    assert server_pid(daemon, sid)[1] == pid
    assert sh(daemon, sid, "python3 -c 'print(8)'")["stdout"] == "8\n"


def served(d, sid):
    """Whether python3 is served now (a pause first when it is not)."""
    if "cip-python: served" in sh(d, sid, "python3 -c pass")["stderr"]:
        return True
    time.sleep(0.5)
    return False


def test_a_killed_server_is_restarted_and_runs_fall_back_meanwhile(make_daemon):
    d = make_daemon(CI_MAX_RUN_TIMEOUT_SECONDS="30")
    sid = ready_session(d)
    cid, pid = server_pid(d, sid)
    docker("exec", cid, "kill", "-9", pid)
    r = sh(d, sid, "python3 -c 'import sys; print(\"numpy\" in sys.modules)'")
    assert (r["stdout"], r["code"]) == ("False\n", 0), r
    assert "cip-python: served" not in r["stderr"], r
    wait_for(lambda: served(d, sid), "the server back", timeout=60)
    assert server_pid(d, sid)[1] != pid


def test_a_squatter_on_its_name_is_never_used(make_daemon):
    """While the server is down, a sandbox process takes its socket name:
    python3 must not talk to it (the client wants a root peer)."""
    d = make_daemon(CI_MAX_RUN_TIMEOUT_SECONDS="30")
    sid = ready_session(d)
    cid, pid = server_pid(d, sid)
    docker("exec", cid, "kill", "-9", pid)
    r = sh(d, sid, """python3.real - <<'EOF' &
import socket, time
s = socket.socket(socket.AF_UNIX)
s.bind(b"\\0cip-python-1"); s.listen(8)
print("squatting", flush=True)
while True:
    c, _ = s.accept(); c.recv(65536); c.send(b"R\\x01\\x00\\x00\\x00S\\x00\\x00\\x00\\x00")
EOF
sleep 0.5; python3 -c 'print("real", 6 * 7)'; echo "rc=$?"; kill %1""")
    assert "squatting\n" in r["stdout"] and "real 42\nrc=0\n" in r["stdout"], r
    # After the run the squatter is gone and the server comes back.
    wait_for(lambda: served(d, sid), "the server back after the squatter", timeout=90)


def test_off_when_the_preload_list_is_empty(make_daemon):
    d = make_daemon(CI_PYTHON_PRELOAD="", CI_MAX_RUN_TIMEOUT_SECONDS="30")
    sid = d.exec("print(1)")["session_id"]
    time.sleep(3)  # what a server would need to listen, were there one
    r = sh(d, sid, LISTENING + "; python3 -c 'import sys; print(\"numpy\" in sys.modules)'; "
           "pgrep -c -f cip_pyserver")
    assert r["stdout"] == "0\nFalse\n0\n", r


def test_a_served_run_has_the_priority_and_threads_of_a_fresh_one(daemon, sid):
    """Nothing of the server's background work (its warm-up, the spares'
    rehearsal of the data stack) shows in a run: priority, threads."""
    sh(daemon, sid, "python3 -c 'import pandas as pd; pd.DataFrame({\"a\": [1, 2]}).plot()'")
    time.sleep(3)  # spares fork and rehearse (with the data stack: the run above was heavy)
    compare(daemon, sid, """$PY -c '
import os, threading, numpy
a = numpy.ones((256, 256)); a @ a
tasks = os.listdir("/proc/self/task")
print(sorted({os.sched_getscheduler(int(t)) for t in tasks}), os.nice(0), len(tasks), threading.active_count())'""")


def test_roots_python3_stays_roots(daemon, sid):
    """Only the sandbox user's python3 is handed to the server (whose
    children are the sandbox user): root's, in a `docker exec`, stays root's."""
    cid, _ = server_pid(daemon, sid)
    assert docker("exec", cid, "python3", "-c", "import os; print(os.getuid())") == "0\n"
    out = docker("exec", "-u", "1000:1000", "-e", "CIP_PYTHON_TRACE=1", cid, "sh", "-c",
                 "python3 -c 'import os; print(os.getuid())' 2>&1")
    assert out.startswith("cip-python: served\n1000\n"), out


def test_runs_are_handed_to_ready_spares(daemon, sid):
    """Between runs the server keeps spare children, forked and rehearsed
    ahead: a run is handed one (the trace names what served it)."""
    def by_a_spare():
        time.sleep(0.5)
        return "cip-python: connection(idle" in sh(daemon, sid, "python3 -c pass")["stderr"]
    wait_for(by_a_spare, "a run served by a spare", timeout=30)


def test_spares_rehearse_what_runs_use(daemon, sid):
    """After a data-stack run, spares rehearse the data stack too; after a
    few light runs, only the start again (a spare's own rehearsal is not
    counted as its run's work)."""
    def served_by(kind):
        time.sleep(0.5)
        return f"cip-python: connection({kind})=" in sh(daemon, sid, "python3 -c pass")["stderr"]
    sh(daemon, sid, "python3 -c 'import pandas as pd; pd.DataFrame({\"a\": [1, 2]}).plot()'")
    wait_for(lambda: served_by("idle-heavy"), "a spare that rehearsed the data stack", timeout=30)
    wait_for(lambda: served_by("idle"), "light spares again after light runs", timeout=30)
