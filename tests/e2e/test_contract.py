"""The items of librechat-api.md that current clients (agents 3.9.2, LibreChat
today) added: the profile header, the stateful runtime fields, attached
workspaces refused, timeout, deleted_files, exact downloads, encoded ids."""
import json
import re
import socket
import time
import urllib.parse

import pytest

from conftest import KEY

from test_upload import multipart, upload, ref

# Runs on the core image (but the tests marked full_image): pytest.ini.
pytestmark = pytest.mark.core_image


def test_every_route_takes_the_profile_header(daemon):
    for profile in ("default", "DEFAULT", ""):
        r = daemon.request("POST", "/v1/exec", {"lang": "py", "code": "print(1)"},
                           headers={"X-CodeAPI-Expected-Profile": profile})
        assert r.status == 200 and r.headers["X-CodeAPI-Execution-Profile"] == "default", r.raw
        assert "runtime_session_id" not in r.json()
    r = daemon.request("GET", "/v1/health", key=None,
                       headers={"X-CodeAPI-Expected-Profile": "default"})
    assert r.status == 200
    body, headers = multipart(files=[("file", "p.txt", b"p")])
    headers.update({"User-Id": "u", "X-CodeAPI-Expected-Profile": "default"})
    assert daemon.request("POST", "/upload", body, headers=headers).status == 200


def test_an_unknown_profile_gets_the_documented_409(daemon):
    for path, method, body in (("/exec", "POST", {"lang": "py", "code": "print(1)"}),
                               ("/files/AAAAAAAAAAAAAAAAAAAAA", "GET", None)):
        r = daemon.request(method, path, body, headers={"X-CodeAPI-Expected-Profile": "gpu"})
        assert r.status == 409 and r.json()["error"] == "execution_profile_mismatch", r.raw


def test_stateful_keeps_the_runtime_and_says_so(daemon):
    hint = "v2:conversation:" + "ab" * 16
    hdr = {"X-CodeAPI-Expected-Profile": "stateful"}
    first = daemon.request("POST", "/exec", {"lang": "bash", "code": "echo kept > s.txt",
                                             "runtime_session_hint": hint}, headers=hdr)
    one = first.json()
    assert first.status == 200 and first.headers["X-CodeAPI-Execution-Profile"] == "stateful"
    assert one["runtime_status"] == "new" and one["runtime_session_id"] == one["session_id"]
    two = daemon.request("POST", "/exec", {"lang": "bash", "code": "cat s.txt",
                                           "runtime_session_hint": hint}, headers=hdr).json()
    assert two["runtime_status"] == "reused" and two["runtime_session_id"] == one["session_id"]
    assert two["stdout"] == "kept\n"


def test_attached_workspaces_are_refused_as_such(daemon):
    r = daemon.request("POST", "/exec", {"lang": "bash", "code": "true"},
                       headers={"X-LibreChat-Code-Workspace-ID": "ws-1"})
    assert r.status == 409 and r.json()["error"] == "stateful_workspace_unsupported"
    r = daemon.request("POST", "/v1/workspace-tools/execute", {"protocolVersion": 1})
    assert r.status == 409 and r.json()["error"] == "stateful_workspace_unsupported"
    assert daemon.request("GET", "/v1/bridge/pairings").status == 404


def test_timeout_bounds_the_run(make_daemon):
    d = make_daemon(CI_MAX_RUN_TIMEOUT_SECONDS=4)
    t0 = time.monotonic()
    r = d.exec("import time; print('a', flush=True); time.sleep(30)", timeout=1500)
    # Far below the 30 s the code sleeps (and slack for a loaded machine).
    assert time.monotonic() - t0 < 15, "the 1.5 s timeout was not honoured"
    assert r["message"] == "Execution timed out" and r["stdout"] == "a\n"
    assert "timed out after 2 s" in r["stderr"]
    # Above the cap the cap holds.
    r = d.exec("import time; time.sleep(30)", timeout=600000)
    assert "timed out after 4 s" in r["stderr"]


def test_unknown_fields_of_current_librechat_are_ignored(daemon):
    r = daemon.exec("print('ok')", codeSessionKey="execute_code", executionRouteKey="r",
                    codeEnvironmentSettings={"a": 1}, bridgeWorkerId=None)
    assert r["stdout"] == "ok\n"


def test_deleted_files_names_the_inputs_a_run_deleted(daemon):
    up = upload(daemon, files=[("file", "a.txt", b"a"), ("file", "d/b.txt", b"b")],
                path="/upload/batch").json()
    refs = [ref(up["storage_session_id"], f["fileId"], f["filename"]) for f in up["files"]]
    r = daemon.exec("import os; os.remove('d/b.txt'); print(sorted(os.listdir('.')))",
                    files=refs)
    assert r["deleted_files"] == ["d/b.txt"], r
    r = daemon.exec("print(open('a.txt').read())", files=refs[:1])
    assert r["deleted_files"] == [] and r["stdout"] == "a\n"
    assert "artifact_delivery" not in r


def test_downloads_carry_the_exact_length(daemon):
    r = daemon.exec("open('big.bin','wb').write(bytes(range(256)) * 400)")
    f = r["files"][0]
    got = daemon.request("GET", f"/download/{f['storage_session_id']}/{f['id']}")
    assert got.status == 200 and len(got.raw) == 102400
    assert got.headers["Content-Length"] == "102400"
    assert "Transfer-Encoding" not in got.headers


def test_percent_encoded_ids_are_decoded(daemon):
    r = daemon.exec("open('e.txt','w').write('enc')")
    f = r["files"][0]
    every = lambda s: "".join(f"%{ord(c):02X}" for c in s)  # noqa: E731
    for sid, fid in ((every(f["storage_session_id"]), every(f["id"])),
                     (urllib.parse.quote(f["storage_session_id"]), f["id"])):
        got = daemon.request("GET", f"/v1/download/{sid}/{fid}?kind=user&id=u")
        assert got.status == 200 and got.raw == b"enc", (sid, got.raw)
        meta = daemon.request("GET", f"/v1/sessions/{sid}/objects/{fid}")
        assert meta.status == 200 and meta.json()["originalFilename"] == "e.txt"


def test_stop_kills_the_run_within_a_second_and_keeps_its_outputs(make_daemon):
    """LibreChat 3.9's Stop aborts the fetch: the socket closes mid-run."""
    d = make_daemon(CI_MAX_RUN_TIMEOUT_SECONDS=30)
    sid = d.exec("print(0)")["session_id"]
    body = json.dumps({"lang": "py", "session_id": sid, "code":
                       "import time\nopen('early.txt', 'w').write('e')\n"
                       "print('a', flush=True)\ntime.sleep(30)"}).encode()
    s = socket.create_connection(("127.0.0.1", d.port))
    s.sendall(b"POST /v1/exec HTTP/1.1\r\nHost: x\r\nX-API-Key: %s\r\n"
              b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
              % (KEY.encode(), len(body)) + body)
    time.sleep(1.5)                 # the run is under way: it sleeps 30 s
    s.close()
    # The session's next call waits for the stopped run, not for its 30 s.
    r = d.exec("import os; print(sorted(os.listdir('.')))", session=sid)
    assert "early.txt" in r["stdout"]
    m = re.search(r"run stopped after (\d+) ms: the client went away", d.logtext())
    assert m, d.logtext()[-2000:]
    # Sent 1.5 s before the close, so stopped within a second of it.
    assert int(m.group(1)) < 2500, m.group(0)
    listed = d.request("GET", f"/files/{sid}?detail=normalized").json()
    assert [f["name"] for f in listed] == ["early.txt"]
    metrics = d.request("GET", "/metrics").raw.decode()
    assert re.search(r'cip_execs_total\{lang="py",outcome="cancelled"\} 1', metrics), metrics
