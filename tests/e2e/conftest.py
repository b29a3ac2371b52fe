"""Harness for the end-to-end tests: the real daemon against the real engine.

Each Daemon gets its own port, storage directory and sandbox label
(CI_SANDBOX_LABEL=cip.e2e.<random>), so stopping it removes exactly the
containers it made, and tests never touch anyone else's.  A daemon built
with sanitizers reports to its log: stop() fails the test on any report.
"""
import http.client
import json
import os
import random
import signal
import socket
import ssl
import string
import subprocess
import tempfile
import time

import pytest

BUILDDIR = os.environ.get("CIP_BUILDDIR", os.path.join(os.path.dirname(__file__), "..", ".."))
PROXY = os.environ.get("CIP_PROXY_BIN", os.path.join(BUILDDIR, "src", "code-interpreter-proxy"))
IMAGE = os.environ.get("CI_SANDBOX_IMAGE", "code-interpreter-sandbox:latest")
# The engine's CLI, to look and to clean up: docker by default; set
# CIP_ENGINE_CLI=podman (with CI_DOCKER_HOST at its socket) to test on Podman.
DOCKER = os.environ.get("CIP_ENGINE_CLI") or (
    "/usr/bin/docker" if os.path.exists("/usr/bin/docker") else "docker")
# The daemons' engine: what they inherit, as the daemon reads it.
ENGINE_HOST = os.environ.get("CI_DOCKER_HOST") or "unix:///var/run/docker.sock"
# The sandboxes' OCI runtime, as the daemons inherit it: gVisor (runsc)
# differs from runc in ways some tests must know (README: The sandbox).
RUNTIME = os.environ.get("CI_SANDBOX_RUNTIME", "")
GVISOR = RUNTIME == "runsc" or RUNTIME.startswith("runsc-")
# A tcp:// engine over TLS (tests/engines/tls.sh): the daemons inherit these
# too, and the CLI and engine_connect() reach the engine with the same files.
TLS_CA = os.environ.get("CI_DOCKER_TLS_CA", "")
TLS_CERT = os.environ.get("CI_DOCKER_TLS_CERT", "")
TLS_KEY = os.environ.get("CI_DOCKER_TLS_KEY", "")
# test_tls_engine.py needs the TLS stage's engine and certificates (the
# stranger CA's among them): only that stage, which sets CIP_TLS_CERTS,
# collects it.
collect_ignore = [] if os.environ.get("CIP_TLS_CERTS") else ["test_tls_engine.py"]


def docker_argv(*args):
    """The engine's CLI aimed at ENGINE_HOST: docker's own flags for a host
    given in CI_DOCKER_HOST (and TLS); another CLI (podman) as it is."""
    argv = [DOCKER]
    if os.path.basename(DOCKER) == "docker" and os.environ.get("CI_DOCKER_HOST"):
        argv += ["-H", ENGINE_HOST]
        if TLS_CA:
            argv += ["--tlsverify", "--tlscacert", TLS_CA]
        if TLS_CERT:
            argv += ["--tlscert", TLS_CERT, "--tlskey", TLS_KEY]
    return argv + list(args)
KEY = "e2e-key"
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                   "WARNING: ThreadSanitizer")


def docker(*args, check=True):
    """Run the engine's CLI; the tests use it only to look, and to clean up."""
    r = subprocess.run(docker_argv(*args), capture_output=True, text=True, timeout=120)
    if check and r.returncode != 0:
        raise AssertionError(f"{os.path.basename(DOCKER)} {' '.join(args)} failed: {r.stderr}")
    return r.stdout


def engine_connect():
    """A fresh connection to the engine at ENGINE_HOST (unix:// or tcp://)."""
    if ENGINE_HOST.startswith("unix://"):
        s = socket.socket(socket.AF_UNIX)
        s.connect(ENGINE_HOST[len("unix://"):])
        return s
    host, _, port = ENGINE_HOST[len("tcp://"):].rpartition(":")
    s = socket.create_connection((host.strip("[]"), int(port)))
    if not TLS_CA:
        return s
    ctx = ssl.create_default_context(cafile=TLS_CA)
    if TLS_CERT:
        ctx.load_cert_chain(TLS_CERT, TLS_KEY)
    return ctx.wrap_socket(s, server_hostname=host.strip("[]"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rand(n=8):
    return "".join(random.choice(string.ascii_lowercase + string.digits) for _ in range(n))


def wait_for(predicate, what, timeout=30, every=0.1):
    """Poll until predicate() holds; the bound is generous (a noisy machine)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(every)
    raise AssertionError(f"not within {timeout}s: {what}")


class Reply:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.raw = status, headers, body

    def json(self):
        return json.loads(self.raw)


class Daemon:
    def __init__(self, tmp_path, **env):
        self.port = free_port()
        self.storage = str(tmp_path / f"storage-{rand()}")
        self.label = f"cip.e2e.{rand()}"
        self.log_path = str(tmp_path / f"daemon-{self.port}.log")
        self.env = dict(os.environ)
        self.env.update({
            "CI_HOST": "127.0.0.1", "CI_PORT": str(self.port), "CI_API_KEY": KEY,
            "CI_FILE_STORAGE_PATH": self.storage, "CI_SANDBOX_LABEL": self.label,
            "CI_SANDBOX_IMAGE": IMAGE,
            # A cap no run here meets by being slow on a loaded machine (a
            # cold pandas import under two test streams took over 4 s);
            # the tests of timeouts ask for theirs.
            "CI_MAX_RUN_TIMEOUT_SECONDS": "30",
            "CI_LOG_LEVEL": "debug",
            # No warm pool unless a test asks: most tests count a daemon's
            # containers, and pooled ones would be among them (test_pool.py
            # and the LibreChat client tests run with the pool).
            "CI_POOL_SIZE": "0",
            "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0:exitcode=23",
            "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
        })
        self.env.update({k: str(v) for k, v in env.items()})
        # A test that points the daemon at a unix socket (a relay to the
        # engine, say) drops inherited TLS files: TLS is for tcp:// only.
        if self.env.get("CI_DOCKER_HOST", "").startswith("unix://"):
            for k in ("CI_DOCKER_TLS_CA", "CI_DOCKER_TLS_CERT", "CI_DOCKER_TLS_KEY"):
                if k not in env:
                    self.env.pop(k, None)
        self.proc = None

    def start(self, wait=True, wrapper=()):
        """wrapper: a command the daemon runs under (prlimit ..., say)."""
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([*wrapper, PROXY], env=self.env, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        if wait:
            self.wait_healthy()
        return self

    def wait_healthy(self, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"daemon exited {self.proc.returncode}:\n{self.logtext()}")
            try:
                if self.request("GET", "/health", key=None).status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"daemon not healthy after {timeout}s:\n{self.logtext()}")

    def logtext(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def request(self, method, path, body=None, key=KEY, headers=None, timeout=120):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        hdrs = dict(headers or {})
        if key is not None:
            hdrs["X-API-Key"] = key
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
            hdrs.setdefault("Content-Type", "application/json")
        try:
            conn.request(method, path, body=body, headers=hdrs)
            r = conn.getresponse()
            return Reply(r.status, dict(r.getheaders()), r.read())
        finally:
            conn.close()

    def exec(self, code, lang="py", session=None, path="/exec", expect=200, **extra):
        body = {"lang": lang, "code": code, **extra}
        if session:
            body["session_id"] = session
        r = self.request("POST", path, body)
        assert r.status == expect, f"{r.status}: {r.raw[:500]!r}\n{self.logtext()[-3000:]}"
        return r.json()

    def containers(self, session=None):
        """Ids of this daemon's containers (of one session, if given)."""
        args = ["ps", "-aq", "--no-trunc", "--filter", f"label={self.label}=1"]
        if session:
            args += ["--filter", f"label=cip.session={session}"]
        return docker(*args).split()

    def kill9(self):
        self.proc.kill()
        self.proc.wait()

    def stop(self, check=True):
        """SIGTERM and wait; then fail on a bad exit or a sanitizer report."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                if check:
                    raise AssertionError("daemon ignored SIGTERM for 60 s")
        if self.proc:
            self.log.close()
        text = self.logtext()
        if check:
            for mark in SANITIZER_MARKS:
                assert mark not in text, f"sanitizer report in the daemon log:\n{text[-6000:]}"
            if self.proc and self.proc.returncode not in (0, -9):
                raise AssertionError(f"daemon exited {self.proc.returncode}:\n{text[-3000:]}")

    def cleanup(self):
        ids = docker("ps", "-aq", "--filter", f"label={self.label}=1", check=False).split()
        # One at a time: podman 4.3's rm -f of several, one of them gone
        # meanwhile, removes none and still exits 0.
        for i in ids:
            docker("rm", "-f", "-v", i, check=False)


@pytest.fixture
def make_daemon(tmp_path):
    """Start daemons for one test; all are stopped and cleaned up after it."""
    made = []

    def make(start=True, **env):
        d = Daemon(tmp_path, **env)
        made.append(d)
        return d.start() if start else d

    yield make
    errors = []
    for d in made:
        try:
            d.stop()
        except AssertionError as e:
            errors.append(str(e))
        finally:
            d.cleanup()
    if errors:
        pytest.fail("\n".join(errors))


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    """One daemon shared by a module's tests (each test makes its own sessions)."""
    d = Daemon(tmp_path_factory.mktemp("daemon")).start()
    yield d
    try:
        d.stop()
    finally:
        d.cleanup()


def pytest_sessionstart(session):
    """No engine or no binary is a failure, never a skip."""
    if not os.access(PROXY, os.X_OK):
        raise pytest.UsageError(f"daemon binary {PROXY} not built")
    r = subprocess.run(docker_argv("image", "inspect", IMAGE), capture_output=True)
    if r.returncode != 0:
        raise pytest.UsageError(f"docker engine or image {IMAGE} unavailable: "
                                f"{r.stderr.decode()[:300]}")
