"""Bad input and a bad environment: clear JSON errors, the right status, nothing lost."""
import os
import socket
import subprocess
import threading

import pytest

from conftest import KEY, PROXY, Daemon, docker, engine_connect

# Runs on the core image (but the tests marked full_image): pytest.ini.
pytestmark = pytest.mark.core_image


def error_of(reply, status):
    assert reply.status == status, (reply.status, reply.raw[:300])
    assert reply.headers["Content-Type"] == "application/json"
    body = reply.json()
    assert isinstance(body["error"], str) and body["error"]
    return body


def test_missing_or_wrong_key_is_401(daemon):
    for key in (None, "", "wrong", KEY + "x", KEY[:-1]):
        r = daemon.request("POST", "/exec", {"lang": "py", "code": "print(1)"}, key=key)
        error_of(r, 401)
    # The log says why, and never shows the key.
    log = daemon.logtext()
    assert "401 POST /exec: wrong API key" in log
    assert "401 POST /exec: no credentials" in log
    assert KEY + "x" not in log


def test_a_refused_client_gets_its_401_after_a_large_body(daemon):
    r = daemon.request("POST", "/exec", b"x" * (4 << 20), key="wrong")
    error_of(r, 401)


def test_auth_none_lets_keyless_clients_in(make_daemon):
    d = make_daemon(CI_AUTH="none")
    r = d.request("POST", "/exec", {"lang": "py", "code": "print('no key')"}, key=None)
    assert r.status == 200 and r.json()["stdout"] == "no key\n"
    # none alone ignores a key (an old LibreChat still sends one) ...
    assert d.request("GET", "/v1/librechat/sessions", key="stale").status == 200


def test_auth_with_none_still_checks_a_key_it_lists(make_daemon):
    d = make_daemon(CI_AUTH="api-key,none")
    assert d.request("GET", "/v1/librechat/sessions", key=None).status == 200
    assert d.request("GET", "/v1/librechat/sessions").status == 200
    assert d.request("GET", "/v1/librechat/sessions", key="wrong").status == 401


def test_malformed_json_is_400(daemon):
    for body in (b"", b"{", b"not json", b'{"lang":"py","code":"x"} extra', b"[]",
                 b'{"lang":"py","code":"x"', b"\xff\xfe", b"[" * 100 + b"]" * 100):
        body_json = error_of(daemon.request("POST", "/exec", body), 400)
        assert "Invalid JSON" in body_json["error"] or "object" in body_json["error"], body


def test_missing_and_wrong_fields_are_400(daemon):
    cases = [({"code": "x"}, "lang"), ({"lang": "py"}, "code"), ({"lang": 1, "code": "x"}, "lang"),
             ({"lang": "py", "code": "x", "args": "ok but", "files": 3}, "files"),
             ({"lang": "py", "code": "x", "args": [{}]}, "args")]
    for body, word in cases:
        assert word in error_of(daemon.request("POST", "/exec", body), 400)["error"]


def test_unsupported_language_is_told_to_the_model(daemon):
    # A 400 would reach a current client's model only as "rejected": 200 + stderr says why.
    r = daemon.request("POST", "/exec", {"lang": "cobol", "code": "x"})
    body = r.json()
    assert r.status == 200 and body["stdout"] == "" and body["files"] == [], body
    assert body["stderr"].startswith("Unsupported language: cobol (supported: py, js, ts, ")
    assert len(body["session_id"]) == 21 and body["status"] is None


def raw_http(port, head, chunks=()):
    """Send a request by hand; return the answer's first 4 KiB."""
    conn = socket.create_connection(("127.0.0.1", port), timeout=30)
    try:
        conn.sendall(head)
        for c in chunks:
            conn.sendall(c)
        return conn.recv(4096)
    finally:
        conn.close()


def test_oversize_body_is_413(make_daemon):
    d = make_daemon(CI_MAX_REQUEST_BYTES=100000)
    auth = b"X-API-Key: " + KEY.encode() + b"\r\n"
    # A declared size over the limit is refused before a byte of body is sent.
    answer = raw_http(d.port, b"POST /exec HTTP/1.1\r\nHost: x\r\n" + auth +
                      b"Content-Type: application/json\r\nContent-Length: 200000\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 413"), answer[:100]
    assert b'"error":"Request body too large"' in answer and b"100000" in answer
    # Chunked, with no Content-Length to refuse up front: refused at the end.
    chunk = b"x" * 50000
    answer = raw_http(d.port, b"POST /exec HTTP/1.1\r\nHost: x\r\n" + auth +
                      b"Transfer-Encoding: chunked\r\n\r\n",
                      [b"%x\r\n%s\r\n" % (len(chunk), chunk)] * 4 + [b"0\r\n\r\n"])
    assert answer.startswith(b"HTTP/1.1 413"), answer[:100]
    # Just under the limit is fine.
    ok = {"lang": "py", "code": "print(len('" + "x" * 90000 + "'))"}
    assert d.exec(**{k: v for k, v in ok.items()})["stdout"] == "90000\n"


def test_unknown_route_and_wrong_method(daemon):
    error_of(daemon.request("GET", "/nope"), 404)
    error_of(daemon.request("GET", "/exec"), 405)
    error_of(daemon.request("DELETE", "/health", key=None), 405)


class CuttableEngine:
    """A unix socket relayed to the real engine (the daemons' CI_DOCKER_HOST)
    that can be cut and restored: the engine going away and coming back, as a
    dockerd restart does."""

    def __init__(self, path):
        self.path = path
        self.up = threading.Event()
        self.conns = []
        self.srv = socket.socket(socket.AF_UNIX)
        self.srv.bind(path)
        self.srv.listen(64)
        self.up.set()
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            if not self.up.is_set():
                c.close()
                continue
            e = engine_connect()
            self.conns += [c, e]
            for a, b in ((c, e), (e, c)):
                threading.Thread(target=self.pump, args=(a, b), daemon=True).start()

    @staticmethod
    def pump(a, b):
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self):
        self.up.clear()
        for s in self.conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.conns = []

    def restore(self):
        self.up.set()


def test_engine_gone_and_back(make_daemon, tmp_path):
    engine = CuttableEngine(str(tmp_path / "engine.sock"))
    d = make_daemon(CI_DOCKER_HOST=f"unix://{engine.path}")
    sid = d.exec("open('f.txt','w').write('1'); print('up')")["session_id"]
    engine.cut()
    r = d.request("GET", "/health", key=None)
    assert r.status == 503 and "docker engine unavailable" in r.json()["reason"]
    r = d.request("POST", "/exec", {"lang": "py", "code": "print(2)", "session_id": sid})
    assert r.status in (502, 503), r.raw
    assert "error" in r.json()
    if r.status == 503:     # both forms of "come back": LibreChat's header, the agents' body
        assert int(r.headers["Retry-After"]) == r.json()["retry_after_seconds"] > 0, r.raw
    engine.restore()
    assert d.request("GET", "/health", key=None).status == 200
    assert d.exec("print('back')", session=sid)["stdout"] == "back\n"


def test_engine_missing_at_startup_fails_clearly(make_daemon):
    d = make_daemon(start=False, CI_DOCKER_HOST="unix:///nonexistent/docker.sock",
                    CI_DOCKER_WAIT_SECONDS=1)
    d.start(wait=False)
    assert d.proc.wait(timeout=30) == 1
    assert "does not answer" in d.logtext()
    d.proc = None


def test_missing_image_fails_clearly(make_daemon):
    d = make_daemon(start=False, CI_SANDBOX_IMAGE="cip-no-such-image:none")
    d.start(wait=False)
    assert d.proc.wait(timeout=30) == 1
    assert "sandbox image cip-no-such-image:none is missing" in d.logtext()
    assert "build-sandbox-image" in d.logtext()
    d.proc = None


def test_bad_config_values_stop_the_daemon(tmp_path):
    for name, value, words in (("CI_PORT", "99999", "from 1 to 65535"),
                               ("CI_MAX_MEMORY_MB", "lots", "not valid"),
                               ("CI_LOG_LEVEL", "chatty", "debug, info"),
                               ("CI_DOCKER_HOST", "ftp://x", "unix://"),
                               ("CI_HOST", "not-an-ip", "numeric")):
        env = dict(os.environ, CI_FILE_STORAGE_PATH=str(tmp_path), **{name: value},
                   CI_DOCKER_WAIT_SECONDS="0")
        r = subprocess.run([PROXY], env=env, capture_output=True, text=True, timeout=30)
        assert r.returncode != 0, name
        assert name in r.stderr and words in r.stderr, r.stderr


def test_storage_path_is_created_with_its_parents(make_daemon, tmp_path):
    d = make_daemon(CI_FILE_STORAGE_PATH=str(tmp_path / "a" / "b" / "c"))
    assert d.exec("print('ok')")["stdout"] == "ok\n"
    assert (tmp_path / "a" / "b" / "c" / "proxy.db").exists()


def test_unusable_storage_path_fails_clearly(make_daemon, tmp_path):
    (tmp_path / "file").write_text("not a directory")
    d = make_daemon(start=False, CI_FILE_STORAGE_PATH=str(tmp_path / "file" / "sub"))
    d.start(wait=False)
    assert d.proc.wait(timeout=30) == 1
    assert "cannot create CI_FILE_STORAGE_PATH" in d.logtext()
    d.proc = None


def test_readme_lists_every_variable_as_the_code_does():
    table = subprocess.run([PROXY, "--config-table"], capture_output=True, text=True).stdout
    readme = open(os.path.join(os.path.dirname(__file__), "..", "..", "README.md")).read()
    rows = [line for line in table.splitlines() if line.startswith("| `CI_")]
    assert len(rows) > 20
    for row in rows:
        assert row in readme, f"README is missing or has a stale row: {row}"
    # And no row for a variable the code does not have.
    documented = [line for line in readme.splitlines() if line.startswith("| `CI_")]
    assert sorted(documented) == sorted(rows), set(documented) ^ set(rows)


def test_help_and_version():
    r = subprocess.run([PROXY, "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "CI_API_KEY" in r.stdout
    r = subprocess.run([PROXY, "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("code-interpreter-proxy ")
    r = subprocess.run([PROXY, "--bogus"], capture_output=True, text=True)
    assert r.returncode == 2 and "--help" in r.stderr


def test_healthcheck_asks_the_running_daemon(make_daemon):
    d = make_daemon()
    env = {"CI_PORT": str(d.port), "CI_HOST": "127.0.0.1", "PATH": "/usr/bin:/bin"}
    r = subprocess.run([PROXY, "--healthcheck"], env=env, capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.endswith(": 200\n"), r.stdout + r.stderr
    d.stop()
    r = subprocess.run([PROXY, "--healthcheck"], env=env, capture_output=True, text=True)
    assert r.returncode == 1 and "Couldn't connect" in r.stdout, r.stdout
    env["CI_PORT"] = "0"
    r = subprocess.run([PROXY, "--healthcheck"], env=env, capture_output=True, text=True)
    assert r.returncode == 2 and "CI_PORT" in r.stderr
