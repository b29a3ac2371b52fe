"""The sandbox's pre-loaded Python: every python3 is a fork of this process.

The runner starts this server as root, in a new session, when the sandbox
starts (docker/sandbox/Dockerfile, src/runner/pyserver.c).  It imports the
modules it is given (CI_PYTHON_PRELOAD), draws one throw-away figure so
matplotlib's fonts and renderer are loaded, freezes the heap, and listens
on an abstract unix socket.  /usr/bin/python3 is cip-python
(src/runner/pyclient.c): it connects, and this server forks.  The parent
does nothing else with the connection: it never reads a byte of it.  The
child first drops to the sandbox user (uid and gid 1000, no groups,
no_new_privs, no capabilities), and only then reads what the client sent:
argv, environment, working directory, open file descriptors, limits,
umask, signal dispositions and OOM score.  It takes them on, answers "R"
with its pid, and runs the program as a freshly started python3 would
(sys.argv, sys.executable, sys.path[0], a new __main__, the exit code),
or answers "F" and exits when it cannot do exactly that (a flag it does
not know, an environment that changes how Python starts, a terminal):
the client then executes the real interpreter.

The parent waits for each child, writes "S" and its wait status on the
child's connection, and kills the child if its client goes away first.
Runs start from the state of this process, so nothing one run does is seen
by the next; what they share is the list of pre-imported modules, the hash
seed (fixed when this process started) and frozen objects (gc.freeze()).
"""
import atexit
import builtins
import ctypes
import fcntl
import gc
import importlib.machinery
import io
import os
import resource
import runpy
import select
import signal
import site
import socket
import struct
import sys
import tempfile
import time
import types

ADDRESS = b"\0cip-python-1"
SANDBOX_UID = SANDBOX_GID = 1000
PR_SET_DUMPABLE, PR_SET_NO_NEW_PRIVS = 4, 38
# The client's request: magic and length, then the body (pyclient.c).
HEADER = struct.Struct("=4sI")
MAGIC = b"CIP1"
MAX_REQUEST = 8 << 20
MAX_FDS = 250
PAUSE_CHECK_S = 0.01  # how often background work looks for a run
PAUSED_CHECK_S = 0.05  # and, paused, for its end
NSIG = 65
# Variables read while Python starts or while the pre-loaded modules are
# imported: a run whose value differs from ours gets the real interpreter.
STARTUP_VARS = ("PYTHON", "LC_", "LANG", "MPLBACKEND", "MATPLOTLIBRC", "OPENBLAS_", "GOTO_",
                "OMP_", "MKL_", "NUMEXPR_", "NUMBA_", "NPY_", "KMP_", "TZ")
# Python's own command line: the options we reproduce (the environment
# already gives their effect: PYTHONUNBUFFERED, PYTHONDONTWRITEBYTECODE).
SAME_AS_ENV = "uB"

libc = ctypes.CDLL(None, use_errno=True)
REAL_EXECUTABLE = os.path.realpath(sys.executable)


def log(msg):
    """A line for the runner (fd 1 is its status pipe)."""
    try:
        os.write(1, f"{msg}\n".encode(errors="replace")[:4000])
    except OSError:
        pass


# ---------------------------------------------------------------- preload

def in_background(fn, *args):
    """fn(*args), paused whenever a run is in progress; returns its result.

    A watcher thread looks every PAUSE_CHECK_S for a process of the sandbox
    user (the runner kills them all at each run's end) and, when there is
    one, signals this thread, whose handler waits until the watcher sees
    none (looking every PAUSED_CHECK_S): the work stops between two
    bytecodes, within a C call's length, and the
    sandbox's CPU quota is the run's alone.  A lower priority would not do:
    the quota is shared by every core, so work on another core spends it
    all the same.  The pause is safe because only a ready spare is ever
    handed a run.
    """
    import threading

    done, resumed = threading.Event(), threading.Event()
    me = threading.get_ident()

    def watch():
        while not done.wait(PAUSE_CHECK_S):
            if a_run_runs():
                resumed.clear()
                signal.pthread_kill(me, signal.SIGUSR1)
                while not done.is_set() and a_run_runs():
                    time.sleep(PAUSED_CHECK_S)
                resumed.set()

    while a_run_runs():
        time.sleep(PAUSED_CHECK_S)
    old = signal.signal(signal.SIGUSR1, lambda *_: resumed.wait())
    watcher = threading.Thread(target=watch, name="cip-run-watch", daemon=True)
    watcher.start()
    try:
        return fn(*args)
    finally:
        done.set()
        watcher.join()
        signal.signal(signal.SIGUSR1, old)


def a_run_runs():
    """Whether a process of the sandbox user exists.  Only the owners of
    /proc entries are looked at, nothing those processes wrote."""
    try:
        names = os.listdir("/proc")
    except OSError:
        return False
    for n in names:
        if not n.isdigit():
            continue
        try:
            if os.stat(f"/proc/{n}").st_uid == SANDBOX_UID:
                return True
        except OSError:  # ended meanwhile
            continue
    return False


def preload(names):
    """Import names, warm what they draw with; returns what failed."""
    import importlib

    failed = []
    for name in names:
        try:
            importlib.import_module(name)
        except Exception as e:  # a bad module name must not stop the server
            failed.append(f"{name} ({type(e).__name__}: {e})")
    _warm_matplotlib()
    _warm_pandas()
    return failed


def _warm_matplotlib():
    """Draw and save one figure: fonts, the Agg renderer and PNG writer load."""
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is None:
        return
    try:
        fig, ax = plt.subplots()
        ax.bar(["a", "b"], [1, 2])
        ax.set_title("warm")
        ax.set_xlabel("x")
        ax.legend(["y"])
        fig.tight_layout()
        fig.savefig(io.BytesIO(), format="png")
        plt.close("all")
        # The faces cached while drawing keep their font files open; a
        # child would inherit those descriptors.  Re-opening costs ~1 ms.
        import matplotlib.font_manager as fm

        fm._get_font.cache_clear()
    except Exception as e:
        log(f"note warm-up of matplotlib failed: {type(e).__name__}: {e}")


def _warm_pandas():
    """The code paths a first DataFrame takes: construction, groupby, CSV, plot."""
    pd = sys.modules.get("pandas")
    if pd is None:
        return
    try:
        df = pd.read_csv(io.StringIO("k,v\na,1\nb,2\na,3\n"))
        df.groupby("k")["v"].sum().describe()
        if "matplotlib.pyplot" in sys.modules:
            df.plot(kind="bar", x="k", y="v")
            sys.modules["matplotlib.pyplot"].close("all")
            sys.modules["matplotlib.font_manager"]._get_font.cache_clear()
    except Exception as e:
        log(f"note warm-up of pandas failed: {type(e).__name__}: {e}")


def private_mpl_dir():
    """A fresh root-only MPLCONFIGDIR seeded with the image's font list.

    The server must read nothing the sandbox user wrote, and
    /tmp/.matplotlib (the runs' MPLCONFIGDIR) is theirs: matplotlib would
    read its font list and matplotlibrc from there, as root.
    """
    d = tempfile.mkdtemp(prefix=".cip-pyserver-", dir="/tmp")
    os.environ["MPLCONFIGDIR"] = d  # sitecustomize seeds the font list here
    return d


# ---------------------------------------------------------------- server

class Server:
    """The parent: hands connections to forked children, reports their ends.

    POOL children are forked ahead of need and wait, still root, for a
    connection: a fork costs ~5 ms here and every page a child first writes
    costs ~16 us (copy-on-write faults, slow on this kind of VM), so the
    fork and the pages every run touches are paid before the run, not in it.
    A spare rehearses in the background and then says "r" on its control
    socket; only then is it handed connections.  When none is ready, the
    connection gets a child forked there and then.
    """

    POOL = 2
    REFILL_AFTER_MS = 15  # quiet time before forking a spare: not during a run's start
    # A run that took this many page faults used the data stack: spares then
    # rehearse a plot too (~300 ms of faults, paid before the next run).
    HEAVY_FAULTS = 1500
    # Light runs in a row after which spares rehearse only the start.  Plots
    # are what models run most; a heavy rehearsal (~0.3 s of CPU, between
    # runs) saves a plot ~0.2 s, so spares stay heavy a while.
    LIGHT_RUNS = 8

    def __init__(self, listener):
        self.listener = listener
        self.children = {}  # pid -> connection of a program that runs
        self.faults_before = {}  # pid -> its minor faults when it was handed the run
        self.idle = []  # [pid, control socket, ready] of spare children
        # Spares rehearse the data stack once a run has used it.  Not before:
        # it would cost every new sandbox ~1 s of CPU more, spent while other
        # sandboxes' runs want the machine's cores.
        self.light_runs = self.LIGHT_RUNS
        self.pid = os.getpid()
        self.rd, self.wr = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.set_wakeup_fd(self.wr)
        self.poller = select.poll()
        self.poller.register(listener.fileno(), select.POLLIN)
        self.poller.register(self.rd, select.POLLIN)

    def held(self):
        """What a new child must close: everything of the parent's."""
        return ([self.listener] + list(self.children.values()) + [c for _, c, _ in self.idle],
                [self.rd, self.wr])

    def loop(self):
        """Serve; returns only in a child: ("idle"|"idle-heavy", control) or ("conn", connection)."""
        while True:
            # Spares are forked between programs, never while one starts or runs.
            refill = len(self.idle) < self.POOL and not self.children
            timeout = self.REFILL_AFTER_MS if refill else None
            events = self.poller.poll(timeout)
            if not events:
                got = self._spawn_idle()
                if got is not None:
                    return got
            for fd, _ in events:
                try:
                    got = self._event(fd)
                except Exception as e:  # the server outlives whatever one program does
                    if os.getpid() != self.pid:
                        os._exit(126)  # a child: never a second server
                    log(f"note {type(e).__name__}: {e}")
                    continue
                if got is not None:
                    return got

    def _event(self, fd):
        if fd == self.listener.fileno():
            return self._accept()
        if fd == self.rd:
            self._reap()
        elif fd in self.spare_fds():
            self._spare_says(fd)
        elif fd in {c.fileno() for c in self.children.values()}:
            self._client_gone(fd)
        return None

    def _fork(self):
        """os.fork(); in the child, the parent's state shed (still root)."""
        objs, fds = self.held()
        pid = os.fork()
        if pid == 0:
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            for o in objs:
                o.close()
            for fd in fds:
                os.close(fd)
        return pid

    def _spawn_idle(self):
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            pid = self._fork()
        except OSError:  # the pids cap is full: try again after the next quiet spell
            mine.close()
            theirs.close()
            return None
        if pid == 0:
            mine.close()
            return "idle" if self.light_runs >= self.LIGHT_RUNS else "idle-heavy", theirs
        theirs.close()
        self.idle.append([pid, mine, False])
        self.poller.register(mine.fileno(), select.POLLIN)
        return None

    def spare_fds(self):
        return {c.fileno() for _, c, _ in self.idle}

    def _spare_says(self, fd):
        """A spare is ready ("r"), or its control socket ended (it died: reaped later)."""
        for spare in self.idle:
            if spare[1].fileno() != fd:
                continue
            try:
                said = spare[1].recv(1)
            except OSError:
                said = b""
            if said == b"r":
                spare[2] = True
            else:
                self._drop_spare(spare)
            return

    def _drop_spare(self, spare):
        self.poller.unregister(spare[1].fileno())
        spare[1].close()
        self.idle.remove(spare)

    def _accept(self):
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return None
        for spare in [x for x in self.idle if x[2]]:
            pid, ctl, _ = spare
            try:
                ctl.sendmsg([b"C"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                      struct.pack("=i", conn.fileno()))])
            except OSError:  # it died waiting; it is reaped like any child
                continue
            finally:
                self._drop_spare(spare)
            # What it faulted in rehearsing is not the run's.
            self._track(pid, conn, _minor_faults(pid))
            return None
        try:
            pid = self._fork()
        except OSError:  # the pids cap is full: the client falls back
            conn.close()
            return None
        if pid == 0:
            return "conn", conn
        self._track(pid, conn)
        return None

    def _track(self, pid, conn, faults_before=0):
        self.children[pid] = conn
        self.faults_before[pid] = faults_before
        self.poller.register(conn.fileno(), select.POLLRDHUP)

    def _reap(self):
        try:
            while os.read(self.rd, 512):
                pass
        except OSError:
            pass
        while True:
            try:
                pid, status, usage = os.wait4(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            for spare in [x for x in self.idle if x[0] == pid]:
                self._drop_spare(spare)
            conn = self.children.pop(pid, None)
            if conn is None:
                continue
            # The kernel's count, not anything the program said.
            faults = usage.ru_minflt - self.faults_before.pop(pid, 0)
            self.light_runs = 0 if faults >= self.HEAVY_FAULTS else self.light_runs + 1
            try:
                self.poller.unregister(conn.fileno())
            except KeyError:  # its client had gone already (_client_gone)
                pass
            try:
                conn.setblocking(False)
                conn.send(b"S" + struct.pack("=i", status))
            except OSError:
                pass
            conn.close()

    def _client_gone(self, fd):
        """The client ended (killed, say): its program ends too, as it would have."""
        self.poller.unregister(fd)
        for pid, conn in self.children.items():
            if conn.fileno() == fd:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass


def _minor_faults(pid):
    """A process's minor page faults so far (0 if it cannot be read)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return int(f.read().rpartition(b")")[2].split()[7])
    except (OSError, ValueError, IndexError):
        return 0


def wait_for_connection(ctl):
    """In a spare child: say it is ready, then the connection the parent hands
    over (exits if it never does)."""
    try:
        ctl.send(b"r")
        _, anc, _, _ = ctl.recvmsg(1, socket.CMSG_SPACE(4))
    except OSError:
        os._exit(0)
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS and len(data) >= 4:
            ctl.close()
            return socket.socket(fileno=struct.unpack_from("=i", data)[0])
    os._exit(0)  # the parent is gone


# ---------------------------------------------------------------- child

def become_sandbox_user():
    """Drop to the sandbox user for good: uid, gid, no groups, no_new_privs."""
    os.setgroups([])
    os.setresgid(SANDBOX_GID, SANDBOX_GID, SANDBOX_GID)
    os.setresuid(SANDBOX_UID, SANDBOX_UID, SANDBOX_UID)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
    # A change of uid leaves the process undumpable, unlike an exec: the
    # program's own /proc/self would be root's.
    libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)


class Request:
    """What the client sent (layout in pyclient.c)."""

    def __init__(self, body, fds):
        u = _Unpacker(body)
        nfds = u.u32()
        if nfds > MAX_FDS or len(fds) != nfds + 1:
            raise ValueError("descriptor count")
        self.targets = [u.i32() for _ in range(nfds)]
        self.cwd_fd, self.fds = fds[0], fds[1:]
        self.umask = u.u32()
        self.oom_score_adj = u.i32()
        self.ignored, self.blocked = u.u64(), u.u64()
        self.limits = [(u.u64(), u.u64()) for _ in range(u.u32())]
        argc, envc = u.u32(), u.u32()
        self.argv = [u.string() for _ in range(argc)]
        self.env = [u.string() for _ in range(envc)]
        if not self.argv:
            raise ValueError("no argv")


class _Unpacker:
    def __init__(self, data):
        self.data, self.at = data, 0

    def _take(self, fmt):
        v = struct.unpack_from(fmt, self.data, self.at)[0]
        self.at += struct.calcsize(fmt)
        return v

    def u32(self):
        return self._take("=I")

    def i32(self):
        return self._take("=i")

    def u64(self):
        return self._take("=Q")

    def string(self):
        end = self.data.index(b"\0", self.at)
        s = self.data[self.at:end]
        self.at = end + 1
        return s


def read_request(conn):
    """The client's request, or ValueError/OSError (the client falls back)."""
    msg, anc, _, _ = conn.recvmsg(65536, socket.CMSG_SPACE((MAX_FDS + 1) * 4))
    fds = []
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            n = len(data) // 4
            fds += struct.unpack(f"={n}i", data[:n * 4])
    if len(msg) < HEADER.size:
        raise ValueError("short request")
    magic, length = HEADER.unpack_from(msg)
    if magic != MAGIC or length > MAX_REQUEST:
        raise ValueError("bad request header")
    body = bytearray(msg[HEADER.size:])
    while len(body) < length:
        more = conn.recv(min(1 << 20, length - len(body)))
        if not more:
            raise ValueError("request cut short")
        body += more
    return Request(bytes(body[:length]), fds)


def main_of(req, startup_env):
    """How to run req's argv as python3 would: a Plan, or None (fall back)."""
    env = _env_dict(req.env)
    if env is None or _startup_differs(env, startup_env):
        return None
    for fd in (0, 1, 2):
        if fd in req.targets and os.isatty(req.fds[req.targets.index(fd)]):
            return None  # interactive, or line-buffered output: not ours
    plan = _parse_argv(req.argv)
    if plan is None:
        return None
    plan.env = env
    return plan


class Plan:
    """One run: mode is "c", "m", "stdin" or "script"; what its argv becomes."""

    def __init__(self, mode, value, argv):
        self.mode, self.value, self.argv = mode, value, argv
        self.env = None


def _parse_argv(argv):
    i = 1
    while i < len(argv):
        a = argv[i]
        if a == b"-":
            return Plan("stdin", None, argv[i:])
        if not a.startswith(b"-"):
            return Plan("script", a, argv[i:]) if a else None
        if a.startswith(b"--"):
            return None
        for j in range(1, len(a)):
            ch = chr(a[j])
            if ch in SAME_AS_ENV:
                continue
            if ch in "cm":
                value = a[j + 1:]
                rest = argv[i + 1:]
                if not value:
                    if not rest:
                        return None
                    value, rest = rest[0], rest[1:]
                return Plan(ch, value, [b"-" + ch.encode()] + rest)
            return None
        i += 1
    return Plan("stdin", None, [b""])


def _env_dict(entries):
    env = {}
    for e in entries:
        k, sep, v = e.partition(b"=")
        if not sep or not k:
            return None  # an entry Python would read differently
        env.setdefault(os.fsdecode(k), os.fsdecode(v))
    return env


def _startup_differs(env, startup_env):
    names = set(env) | set(startup_env)
    return any(n.startswith(STARTUP_VARS) and env.get(n) != startup_env.get(n)
               for n in names)


def take_on(req):
    """Become the client's process: fds, cwd, umask, limits, signals, OOM score.

    Returns the connection's new descriptor (the old number may be a target).
    """
    os.fchdir(req.cwd_fd)
    conn = _install_fds(req)
    Trace.mark("fds")
    os.umask(req.umask)
    _take_limits(req.limits)
    Trace.mark("limits")
    _set_oom_score_adj(req.oom_score_adj)
    for sig in range(1, NSIG):
        if req.ignored & (1 << (sig - 1)) and sig not in (signal.SIGKILL, signal.SIGSTOP):
            try:
                signal.signal(sig, signal.SIG_IGN)
            except (OSError, ValueError):
                pass
    try:
        signal.pthread_sigmask(signal.SIG_SETMASK,
                               {s for s in range(1, NSIG) if req.blocked & (1 << (s - 1))
                                and s not in (signal.SIGKILL, signal.SIGSTOP)})
    except (OSError, ValueError):
        pass
    return conn


def _set_oom_score_adj(value):
    try:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write(str(value))
    except OSError:
        pass


def _take_limits(limits):
    """The client's resource limits; a hard limit is only ever lowered."""
    inf = resource.RLIM_INFINITY

    def lim(v):
        return inf if v == (1 << 64) - 1 else v

    def lower(a, b):
        return b if a == inf else a if b == inf else min(a, b)

    for res, (cur, hard) in enumerate(limits):
        try:
            now = resource.getrlimit(res)
        except (ValueError, OSError):
            continue
        hard = lower(lim(hard), now[1])
        want = (lower(lim(cur), hard), hard)
        if want != now:
            try:
                resource.setrlimit(res, want)
            except (ValueError, OSError):
                pass


def _install_fds(req):
    """Put the client's descriptors at their numbers; close every other one."""
    base = max([10, req.conn_fd, req.cwd_fd] + req.targets + req.fds) + 1
    # The connection and every received descriptor out of the way of every
    # target first: any of their numbers may be a target (3, the tool link
    # of programmatic tool calling, often is).
    conn = fcntl.fcntl(req.conn_fd, fcntl.F_DUPFD_CLOEXEC, base)
    moved = []
    for fd in req.fds:
        moved.append(fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, base))
        os.close(fd)
    os.close(req.cwd_fd)
    for high, target in zip(moved, req.targets):
        os.dup2(high, target, inheritable=True)
    keep = set(req.targets) | {conn}
    for fd in _open_fds():
        if fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass
    return conn


def _open_fds():
    return [int(n) for n in os.listdir("/proc/self/fd")]


def fresh_stdio(targets):
    """New sys.stdin/out/err as Python makes them at start (create_stdio)."""
    made = []
    for fd, name, like in ((0, "<stdin>", sys.__stdin__), (1, "<stdout>", sys.__stdout__),
                           (2, "<stderr>", sys.__stderr__)):
        if fd not in targets:
            os.close(fd) if _fd_open(fd) else None
            made.append(None)
            continue
        made.append(_stream(fd, name, like))
    sys.stdin, sys.stdout, sys.stderr = made
    sys.__stdin__, sys.__stdout__, sys.__stderr__ = made


def _fd_open(fd):
    try:
        os.fstat(fd)
        return True
    except OSError:
        return False


def _stream(fd, name, like):
    writing = fd != 0
    unbuffered = writing and like is not None and isinstance(like.buffer, io.FileIO)
    buf = io.open(fd, "wb" if writing else "rb", buffering=0 if unbuffered else -1,
                  closefd=False)
    raw = buf if unbuffered else buf.raw
    raw.name = name
    stream = io.TextIOWrapper(buf, encoding=like.encoding if like else "utf-8",
                              errors=like.errors if like else "strict", newline="\n",
                              line_buffering=not unbuffered and fd == 2,
                              write_through=unbuffered)
    stream.mode = "w" if writing else "r"
    return stream


# ---------------------------------------------------------------- the run

def set_identity(plan):
    """sys.argv, sys.executable, sys.path[0], site, and per-process state."""
    sys.argv = [os.fsdecode(a) for a in plan.argv]
    sys.orig_argv = [os.fsdecode(a) for a in plan.orig_argv]
    sys.executable = sys._base_executable = plan.executable
    sys.path[0] = plan.path0
    _reset_site()
    Trace.mark("site")
    _reset_matplotlib_dirs()
    Trace.mark("mpl")
    tempfile.tempdir = None


def _reset_site():
    site.USER_BASE = None
    site.USER_SITE = None
    site.getusersitepackages()


def _reseed():
    """What a new process draws afresh: numpy's global generator, the authkey."""
    nr = sys.modules.get("numpy.random")
    if nr is not None:
        nr.seed()
    mp = sys.modules.get("multiprocessing.process")
    if mp is not None:
        mp.current_process().authkey = os.urandom(32)


def _reset_matplotlib_dirs():
    """matplotlib's config and cache dirs from this run's MPLCONFIGDIR."""
    mpl = sys.modules.get("matplotlib")
    if mpl is None:
        return
    for fn in (mpl.get_configdir, mpl.get_cachedir):
        cells = dict(zip(fn.__code__.co_freevars, fn.__closure__ or ()))
        if "called" in cells:
            cells["called"].cell_contents = False
    tm = sys.modules.get("matplotlib.texmanager")
    if tm is not None:
        tm.TexManager.texcache = _LazyTexCache()


class _LazyTexCache:
    """TexManager.texcache, computed from this run's cache dir when first used
    (as matplotlib does at import), not at every start: that costs a mkdir."""

    def __get__(self, obj, cls):
        mpl = sys.modules["matplotlib"]
        path = os.path.join(mpl.get_cachedir(), "tex.cache")
        cls.texcache = path
        return path


def plan_paths(plan, req):
    """sys.executable and sys.path[0] as CPython computes them; None if unlike ours."""
    argv0 = os.fsdecode(req.argv[0])
    if "/" in argv0:
        exe = argv0 if argv0.startswith("/") else os.path.join(os.getcwd(), argv0)
    else:
        exe = ""
        for d in plan.env.get("PATH", "").split(":"):
            p = os.path.join(d, argv0)
            if os.path.isfile(p) and os.access(p, os.X_OK):
                exe = p
                break
    if not exe or os.path.realpath(exe) != REAL_EXECUTABLE:
        return False
    plan.executable = exe
    plan.orig_argv = req.argv
    os.environ.clear()
    os.environ.update(plan.env)
    if plan.mode == "script":
        path = os.fsdecode(plan.value)
        if not (os.path.isfile(path) and os.access(path, os.R_OK)) or _mpl_rc_here():
            return False
        plan.path0 = os.path.dirname(os.path.realpath(path))
        plan.filename = path if path.startswith("/") else os.path.join(os.getcwd(), path)
    else:
        if _mpl_rc_here():
            return False
        plan.path0 = os.getcwd() if plan.mode == "m" else ""
    site.USER_BASE = None
    site.USER_SITE = None
    if site.ENABLE_USER_SITE and os.path.isdir(site.getusersitepackages()):
        return False  # its .pth files would run at start: the real interpreter does that
    return True


def _mpl_rc_here():
    """A matplotlibrc that a fresh matplotlib would read, and ours did not."""
    if "matplotlib" not in sys.modules:
        return False
    conf = os.environ.get("MPLCONFIGDIR") or ""
    return os.path.exists("matplotlibrc") or bool(conf) and os.path.exists(
        os.path.join(conf, "matplotlibrc"))


def new_main(plan):
    """A fresh __main__ module, as the interpreter makes it for this mode."""
    main = types.ModuleType("__main__")
    main.__builtins__ = builtins
    main.__loader__ = importlib.machinery.BuiltinImporter
    main.__annotations__ = {}
    sys.modules["__main__"] = main
    return main


def run(plan):
    """Run the program; never returns (exits as python3 would)."""
    main = new_main(plan)
    exc = None
    try:
        _run_mode(plan, main)
    except BaseException as e:  # noqa: B902 - everything ends the program
        exc = e
    Trace.mark("ran")
    finish(exc, main)


def _run_mode(plan, main):
    d = main.__dict__
    if plan.mode == "c":
        code = compile(os.fsdecode(plan.value), "<string>", "exec")
        exec(code, d)
    elif plan.mode == "m":
        if os.fsdecode(plan.value) in ("pip", "pip3") and "sitecustomize" in sys.modules:
            sys.modules["sitecustomize"]._run_pip_module()
        runpy._run_module_as_main(os.fsdecode(plan.value), True)
    elif plan.mode == "stdin":
        src = _read_all(0)
        d["__file__"], d["__cached__"] = "<stdin>", None
        try:
            exec(compile(src, "<stdin>", "exec"), d)
        finally:
            d.pop("__file__", None)
            d.pop("__cached__", None)
    else:
        with open(plan.filename, "rb") as f:
            src = f.read()
        d["__file__"], d["__cached__"] = plan.filename, None
        d["__loader__"] = importlib.machinery.SourceFileLoader("__main__", plan.filename)
        try:
            exec(compile(src, plan.filename, "exec"), d)
        finally:
            d.pop("__file__", None)
            d.pop("__cached__", None)


def _read_all(fd):
    chunks = []
    while True:
        b = os.read(fd, 1 << 16)
        if not b:
            return b"".join(chunks)
        chunks.append(b)


def finish(exc, main):
    """End as Py_RunMain does: report, join threads, atexit, flush, exit."""
    code = 0
    if isinstance(exc, SystemExit):
        code = _exit_code(exc)
    elif exc is not None:
        _print_exception(exc)
        code = 1
    threading = sys.modules.get("threading")
    if threading is not None:
        threading._shutdown()
    atexit._run_exitfuncs()
    _release(main)
    for f in (sys.stdout, sys.stderr):
        try:
            if f is not None and not f.closed:  # as flush_std_files skips a closed one
                f.flush()
        except Exception:
            code = 120 if f is sys.stdout else code
    libc.fflush(None)
    if isinstance(exc, KeyboardInterrupt):
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    Trace.mark("ended")
    Trace.report()
    os._exit(code)


def _exit_code(exc):
    c = exc.code
    if c is None:
        return 0
    if isinstance(c, int):
        return c & 0xFF if c >= 0 else c & 0xFF
    try:
        print(c, file=sys.stderr)
    except Exception:
        pass
    return 1


def _print_exception(exc):
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    exc.__traceback__ = tb
    sys.last_type, sys.last_value, sys.last_traceback = type(exc), exc, tb
    try:
        sys.excepthook(type(exc), exc, tb)
    except BaseException:
        pass


def _release(main):
    """What finalisation does for the program's objects: files left open flush."""
    d = main.__dict__
    for k in [k for k in d if k.startswith("_") and k != "__builtins__"]:
        d[k] = None
    for k in [k for k in d if k != "__builtins__"]:
        d[k] = None
    gc.collect()


class Trace:
    """When the run's environment has CIP_PYTHON_TRACE: "cip-python: served"
    on its stderr as it starts (tests tell a served run from a fallen-back
    one by it), and its phase timings as it ends (README: where the time
    goes)."""

    marks = []

    @classmethod
    def mark(cls, label):
        cls.marks.append((label, time.perf_counter()))

    @classmethod
    def served(cls):
        cls._say("served")

    @classmethod
    def report(cls):
        if cls.marks:
            t0 = cls.marks[0][1]
            cls._say(" ".join(f"{label}={(t - t0) * 1000:.2f}ms" for label, t in cls.marks))

    @staticmethod
    def _say(line):
        if not os.environ.get("CIP_PYTHON_TRACE"):
            return
        try:
            os.write(2, f"cip-python: {line}\n".encode())
        except OSError:
            pass


def serve_one(conn, startup_env, kind):
    """In a child holding a connection: drop, read, decide, run.  Never returns.

    kind: "conn" (forked for it), "idle" or "idle-heavy" (a spare)."""
    Trace.mark(f"connection({kind})")
    if kind == "conn":  # forked for this connection
        _reseed()
    try:
        # "H", sent while still root: the client's proof that it talks to
        # the server, where SO_PEERCRED cannot tell (gVisor, see pyclient.c).
        conn.send(b"H")
        become_sandbox_user()
    except BaseException:
        os._exit(127)
    Trace.mark("dropped")
    try:
        req = read_request(conn)
        req.conn_fd = conn.fileno()
        Trace.mark("read")
        plan = main_of(req, startup_env)
        Trace.mark("argv")
        if plan is not None:
            os.fchdir(req.cwd_fd)
            if not plan_paths(plan, req):
                plan = None
        if plan is None or _client_left(conn):
            conn.send(b"F")
            os._exit(0)
        Trace.mark("planned")
        conn.detach()
        conn = socket.socket(fileno=take_on(req))
        Trace.mark("took")
        fresh_stdio(req.targets)
        Trace.mark("stdio")
        set_identity(plan)
        conn.send(b"R" + struct.pack("=I", os.getpid()))
        conn.close()
        Trace.mark("became")
    except BaseException:
        os._exit(126)
    Trace.served()
    run(plan)


def rehearse(startup_env, heavy):
    """In a spare child, as root: take the path a run takes, on a made-up
    request, and with heavy, the data stack's path too.

    Every page it writes is copied now, while nobody waits, instead of
    during a run.  Nothing here reads what the sandbox user wrote.
    """
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    null = os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC)
    try:
        env = [f"{k}={v}".encode() for k, v in startup_env.items()]
        body = _fake_body([b"python3", b"-c", b"pass"], env)
        a.sendmsg([HEADER.pack(MAGIC, len(body)) + body],
                  [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack("=4i", null, null, null, null))])
        req = read_request(b)
        plan = _parse_argv(req.argv)
        _startup_differs(_env_dict(req.env), startup_env)
        for fd in req.fds + [req.cwd_fd]:
            os.close(fd)
        for res in range(len(req.limits)):
            resource.getrlimit(res)
        for sig in range(1, NSIG):
            signal.getsignal(sig) if sig < signal.NSIG else None
        _open_fds()
        for like in (sys.__stdin__, sys.__stdout__, sys.__stderr__):
            st = _stream(null, "<rehearsal>", like)
            if st.mode == "w":
                st.write("x\n")
                st.flush()
        plan.env = _env_dict(req.env)
        plan_paths(plan, req)
        new_main(plan)
        exec(compile("print(1, end='')\n", "<string>", "exec"), {"print": lambda *a, **k: None})
        os.path.realpath(sys.executable)
    except Exception as e:
        log(f"note rehearsal failed: {type(e).__name__}: {e}")
    finally:
        a.close()
        b.close()
        os.close(null)
    if heavy:  # the data stack's pages too: a plot, a DataFrame
        _warm_matplotlib()
        _warm_pandas()


def _fake_body(argv, env):
    out = [struct.pack("=I3i", 3, 0, 1, 2), struct.pack("=Ii", 0o22, 1000), struct.pack("=QQ", 0, 0),
           struct.pack("=I", 16), struct.pack("=32Q", *([0] * 32)),
           struct.pack("=II", len(argv), len(env))]
    out += [x + b"\0" for x in argv + env]
    return b"".join(out)


def _client_left(conn):
    p = select.poll()
    p.register(conn.fileno(), select.POLLRDHUP)
    return bool(p.poll(0))


def main():
    names = [n for n in sys.argv[1:] if n]
    os.chdir("/")
    libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    startup_env = dict(os.environ)
    private_mpl_dir()
    failed = in_background(preload, names) or []
    for f in failed:
        log(f"note cannot pre-import {f}")
    gc.collect()
    gc.freeze()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    listener.bind(ADDRESS)
    listener.listen(64)
    listener.setblocking(False)
    log(f"ready {os.getpid()}")
    kind, sock = Server(listener).loop()
    if kind.startswith("idle"):
        # Spares go first when memory runs out: they are only a head start.
        _set_oom_score_adj(1000)
        _reseed()
        if kind == "idle-heavy":
            in_background(rehearse, startup_env, True)
        else:  # a few ms: not worth a watcher
            rehearse(startup_env, False)
        sock = wait_for_connection(sock)
    serve_one(sock, startup_env, kind)


if __name__ == "__main__":
    main()
