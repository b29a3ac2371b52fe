"""A remote engine over TLS: the daemon reaches a dockerd that verifies its
clients (dockerd --tlsverify) with our client certificate, and refuses to
start, saying why in OpenSSL's words, when either side's certificate is
wrong.

Collected only by the TLS stage (tests/engines/tls.sh), which starts that
dockerd on 127.0.0.1 (and 127.0.0.2, an address its certificate does not
name), makes the certificates in CIP_TLS_CERTS, and points CI_DOCKER_HOST
and CI_DOCKER_TLS_* at them.  The stage also runs test_exec.py,
test_files.py and test_lifecycle.py through the same engine.
"""
import json
import os
import subprocess

import pytest

from conftest import ENGINE_HOST, TLS_CA, Daemon, docker, engine_connect, wait_for

CERTS = os.environ["CIP_TLS_CERTS"]
PORT = ENGINE_HOST.rpartition(":")[2]


def test_the_stage_runs_over_tls():
    """The other tests of the stage run through the TLS engine, not a default one."""
    assert ENGINE_HOST == f"tcp://127.0.0.1:{PORT}" and TLS_CA.startswith(CERTS)


def test_exec_over_tls(daemon):
    assert "over TLS" in daemon.logtext()
    r = daemon.exec("echo hi; echo oops >&2", lang="bash")
    assert (r["stdout"], r["stderr"]) == ("hi\n", "oops\n")
    # A reply bigger than one TLS record (16 KiB), through the hijacked stream.
    r = daemon.exec("print('x' * 60000)", session=r["session_id"])
    assert r["stdout"] == "x" * 60000 + "\n"


def metric(d, line):
    for ln in d.request("GET", "/metrics").raw.decode().splitlines():
        if ln.startswith(line + " "):
            return float(ln.split()[-1])
    raise AssertionError(f"{line} not in /metrics")


def test_a_pooled_channel_stays_sound_over_tls(make_daemon):
    """A warm container's channel waits unused, then is checked for stray
    bytes (docker_stream_quiet, which asks curl, not the socket) before a
    session takes it.  A sound channel is taken (a hit), not replaced.  (The
    old check, a poll of the socket, passes this too against dockerd: no
    engine here leaves decrypted bytes or bare TLS records behind.)"""
    d = make_daemon(CI_POOL_SIZE="1")
    wait_for(lambda: d.request("GET", "/health", key=None).json()["pool_size"] == 1,
             "the pool filled", timeout=120)
    assert d.exec("print(6 * 7)")["stdout"] == "42\n"
    assert metric(d, 'cip_pool_takes_total{result="hit"}') == 1
    assert metric(d, 'cip_pool_takes_total{result="miss"}') == 0


def test_the_harness_reaches_the_engine_over_tls():
    """engine_connect() (test_errors.py's raw Engine API client) speaks TLS too."""
    s = engine_connect()
    try:
        s.sendall(b"GET /_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n")
        got = b""
        while chunk := s.recv(4096):
            got += chunk
    finally:
        s.close()
    assert got.startswith(b"HTTP/1.1 200") and got.endswith(b"OK"), got


def run_refused(tmp_path, **env):
    """Start a daemon that must exit at once; its exit status and log."""
    d = Daemon(tmp_path, **env)
    d.start(wait=False)
    try:
        rc = d.proc.wait(timeout=120)
    except subprocess.TimeoutExpired:
        d.proc.kill()
        d.proc.wait()
        raise AssertionError(f"the daemon did not exit:\n{d.logtext()[-3000:]}")
    finally:
        d.log.close()
    return rc, d.logtext()


# What is wrong, the settings that make it so, and the words the log must hold.
REFUSALS = {
    "wrong CA": (
        {"CI_DOCKER_TLS_CA": f"{CERTS}/other/ca.pem"},
        ["SSL certificate problem: unable to get local issuer certificate",
         "not signed by CI_DOCKER_TLS_CA"]),
    "host not in the engine's certificate": (
        {"CI_DOCKER_HOST": f"tcp://127.0.0.2:{PORT}"},
        ["no alternative certificate subject name matches target host name '127.0.0.2'"]),
    "no client certificate": (
        {"CI_DOCKER_TLS_CERT": "", "CI_DOCKER_TLS_KEY": ""},
        ["alert bad certificate", "the engine refuses our client certificate"]),
    "client certificate of another CA": (
        {"CI_DOCKER_TLS_CERT": f"{CERTS}/other/cert.pem",
         "CI_DOCKER_TLS_KEY": f"{CERTS}/other/key.pem"},
        ["alert bad certificate", "the engine refuses our client certificate"]),
    "no TLS at all": (
        {"CI_DOCKER_TLS_CA": "", "CI_DOCKER_TLS_CERT": "", "CI_DOCKER_TLS_KEY": ""},
        ["Client sent an HTTP request to an HTTPS server", "the engine wants TLS"]),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_a_refused_handshake_stops_the_daemon(tmp_path, case):
    env, words = REFUSALS[case]
    rc, log = run_refused(tmp_path, **env)
    assert rc == 1, log
    assert "refuses our TLS connection" in log, log
    for w in words:
        assert w in log, f"{w!r} not in:\n{log}"
    # Certificates do not mend by waiting: no retry loop.
    assert "waiting for the docker engine" not in log, log
    assert "listening on" not in log, log
    # tcp:// to loopback: never the warning about an unencrypted engine.
    assert "reached unencrypted" not in log, log


@pytest.mark.parametrize("env, words", [
    ({"CI_DOCKER_TLS_KEY": ""},
     "CI_DOCKER_TLS_CERT is set but CI_DOCKER_TLS_KEY is empty"),
    ({"CI_DOCKER_TLS_CA": f"{CERTS}/nonexistent.pem"},
     f'CI_DOCKER_TLS_CA="{CERTS}/nonexistent.pem": cannot read it'),
    ({"CI_DOCKER_HOST": "unix:///run/cip-dockerd-tls.sock", "CI_DOCKER_TLS_CA": TLS_CA},
     "is not tcp://host:port: TLS is for an engine reached over TCP only"),
])
def test_bad_tls_settings_stop_the_daemon_before_the_engine(tmp_path, env, words):
    rc, log = run_refused(tmp_path, **env)
    assert rc == 2 and words in log, log


def test_the_cli_and_the_daemon_see_the_same_engine(daemon):
    """The harness's docker() reaches the TLS engine: it lists this daemon's container."""
    sid = daemon.exec("print(1)")["session_id"]
    ids = docker("ps", "-q", "--no-trunc", "--filter", f"label=cip.session={sid}").split()
    assert len(ids) == 1
    info = json.loads(docker("info", "--format", "{{json .DockerRootDir}}"))
    assert info.startswith(os.environ["CIP_TLS_DATA_ROOT"]), info
