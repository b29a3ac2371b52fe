"""Slow, idle and too many clients: they cost a descriptor, never LibreChat's turn.

The HTTP layer reads requests on two I/O threads and hands complete ones to
workers, so a crowd of connections that send nothing, or a byte at a time,
must not keep an /exec out (the thread-per-connection server it replaced
was locked out by 300 half-sent headers).  Not timing tests: the bounds
below only tell a hang from an answer.  bench/bench-slowclients.py measures.
"""
import json
import os
import re
import selectors
import socket
import subprocess
import threading
import time

import pytest

from conftest import KEY, PROXY, wait_for

# Runs on the core image (but the tests marked full_image): pytest.ini.
pytestmark = pytest.mark.core_image


def hold(port, n, prefix=b"", drip=b""):
    """n connections sending prefix, then drip every 0.5 s, until the returned
    event is set.  Returns (stop event, thread, sockets)."""
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port))
        if prefix:
            s.sendall(prefix)
        socks.append(s)
    stop = threading.Event()

    def drip_loop():
        while not stop.wait(0.5):
            for s in socks:
                if drip:
                    try:
                        s.send(drip)
                    except OSError:
                        pass
        for s in socks:
            s.close()

    t = threading.Thread(target=drip_loop, daemon=True)
    t.start()
    return stop, t, socks


def threads_of(d):
    return len(os.listdir(f"/proc/{d.proc.pid}/task"))


def closed_by_peer(s, timeout=20):
    """True when the daemon closes s (EOF or reset) within timeout."""
    s.settimeout(timeout)
    try:
        return s.recv(100) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def post_exec_header(n):
    return (b"POST /exec HTTP/1.1\r\nHost: x\r\nX-API-Key: " + KEY.encode() +
            b"\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % n)


def test_a_crowd_of_idle_and_dripping_clients_does_not_starve_exec(make_daemon):
    d = make_daemon(CI_PYTHON_PRELOAD="")
    sid = d.exec("print(1)")["session_id"]
    base_threads = threads_of(d)
    crowds = [hold(d.port, 400),
              hold(d.port, 300, b"POST /exec HTTP/1.1\r\nX-Slow: ", b"a"),
              hold(d.port, 300, post_exec_header(1 << 20), b" ")]
    try:
        for _ in range(3):
            r = d.request("POST", "/exec", {"lang": "py", "code": "print(6*7)",
                                            "session_id": sid}, timeout=30)
            assert r.status == 200 and r.json()["stdout"] == "42\n", r.raw
        assert d.request("GET", "/health", key=None, timeout=30).status == 200
        # A thread per connection would be a thousand; here only the workers grew.
        assert threads_of(d) < base_threads + 16, (base_threads, threads_of(d))
        assert len(os.listdir(f"/proc/{d.proc.pid}/fd")) > 1000
    finally:
        for stop, t, _ in crowds:
            stop.set()
            t.join()


def test_a_silent_or_stalled_header_is_closed(make_daemon):
    d = make_daemon(CI_HEADER_TIMEOUT_SECONDS="1", CI_PYTHON_PRELOAD="")
    silent = socket.create_connection(("127.0.0.1", d.port))
    partial = socket.create_connection(("127.0.0.1", d.port))
    partial.sendall(b"GET /health HTTP/1.1\r\nHo")
    assert closed_by_peer(silent) and closed_by_peer(partial)
    assert d.request("GET", "/health", key=None).status == 200


def test_a_stalled_body_is_closed_but_a_slow_one_goes_through(make_daemon):
    d = make_daemon(CI_HEADER_TIMEOUT_SECONDS="1", CI_BODY_TIMEOUT_SECONDS="2",
                    CI_PYTHON_PRELOAD="")
    stalled = socket.create_connection(("127.0.0.1", d.port))
    stalled.sendall(post_exec_header(100) + b'{"lang":')
    assert closed_by_peer(stalled)
    # A byte every 0.6 s: 6 s in all, past both timeouts, but always moving.
    body = json.dumps({"lang": "py", "code": "print(7)"}).encode()
    slow = socket.create_connection(("127.0.0.1", d.port))
    slow.sendall(post_exec_header(len(body)))
    for i in range(10):
        time.sleep(0.6)
        slow.sendall(body[i:i + 1])
    slow.sendall(body[10:])
    slow.settimeout(60)
    reply = b""
    while not reply.endswith(b"}"):
        chunk = slow.recv(65536)
        if not chunk:
            break
        reply += chunk
    head, _, payload = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), reply[:300]
    assert json.loads(payload)["stdout"] == "7\n"


def refusal(s, timeout=5):
    """What the daemon says to a connection past its cap, unasked."""
    s.settimeout(timeout)
    data = b""
    try:
        while True:
            chunk = s.recv(4096)
            if not chunk:
                return data
            data += chunk
    except (socket.timeout, ConnectionResetError):
        return data


def accepted(d):
    """How many connections to d's port the daemon has accepted (sockets in
    its descriptor table; the ones still in the kernel's backlog are not)."""
    mine = set()
    for fd in os.listdir(f"/proc/{d.proc.pid}/fd"):
        try:
            link = os.readlink(f"/proc/{d.proc.pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            mine.add(link[8:-1])
    n = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                col = line.split()
                port, state, inode = int(col[1].rsplit(":", 1)[1], 16), col[3], col[9]
                n += port == d.port and state == "01" and inode in mine
    return n


def test_connections_past_the_cap_are_answered_503_at_once(make_daemon):
    d = make_daemon(CI_MAX_CONNECTIONS="16", CI_PYTHON_PRELOAD="")
    held = [socket.create_connection(("127.0.0.1", d.port)) for _ in range(16)]
    try:
        # The daemon's two I/O threads may take the last held one and the
        # first extra one in either order: which one is past the cap is
        # settled only once all 16 are in.
        wait_for(lambda: accepted(d) == 16, "the 16 connections accepted")
        extra = [socket.create_connection(("127.0.0.1", d.port)) for _ in range(5)]
        # Answered and closed before the client sent a byte, long before the
        # 10 s header timeout could have closed them.
        for s in extra:
            head, _, body = refusal(s).partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 503") and b"Retry-After: 1" in head, head
            assert json.loads(body) == {"error": "Service unavailable",
                                        "details": "too many connections"}
        assert d.proc.poll() is None
    finally:
        for s in held:
            s.close()
    wait_for(lambda: d.request("GET", "/health", key=None).status == 200, "health after the cap")
    assert d.exec("print(2)")["stdout"] == "2\n"
    assert "connection(s) refused with 503: CI_MAX_CONNECTIONS=16 are open" in d.logtext()


def test_requests_past_the_active_cap_wait_their_turn(make_daemon):
    d = make_daemon(CI_MAX_ACTIVE_REQUESTS="1", CI_PYTHON_PRELOAD="")
    replies = []

    def one(i):
        r = d.request("POST", "/exec", {"lang": "py", "code": f"import time\ntime.sleep(1)\n"
                                        f"print({i})"}, timeout=60)
        replies.append((i, r.status, r.json().get("stdout")))

    ts = [threading.Thread(target=one, args=(i,)) for i in range(3)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert sorted(replies) == [(i, 200, f"{i}\n") for i in range(3)]


def test_the_connection_cap_is_lowered_to_fit_the_descriptor_limit(make_daemon):
    d = make_daemon(start=False, CI_PYTHON_PRELOAD="")
    d.start(wrapper=("prlimit", "--nofile=1024:2048"))
    m = re.search(r"CI_MAX_CONNECTIONS=10000 lowered to (\d+): the descriptor limit is 2048",
                  d.logtext())
    assert m and 100 < int(m.group(1)) < 2048, d.logtext()
    assert d.exec("print(3)")["stdout"] == "3\n"


def test_bad_http_settings_stop_the_daemon(tmp_path):
    for name, value in (("CI_HEADER_TIMEOUT_SECONDS", "0"), ("CI_BODY_TIMEOUT_SECONDS", "x"),
                        ("CI_MAX_ACTIVE_REQUESTS", "0"), ("CI_MAX_CONNECTIONS", "8")):
        env = dict(os.environ, CI_FILE_STORAGE_PATH=str(tmp_path), **{name: value},
                   CI_DOCKER_WAIT_SECONDS="0")
        r = subprocess.run([PROXY], env=env, capture_output=True, text=True, timeout=30)
        assert r.returncode == 2 and name in r.stderr, (name, r.stderr)
