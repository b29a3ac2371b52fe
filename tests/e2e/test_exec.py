"""/exec against the real engine: output, sessions, routes, limits."""
import json
import threading
import time

import pytest

from conftest import KEY

# Runs on the core image (but the tests marked full_image): pytest.ini.
pytestmark = pytest.mark.core_image


def test_print(daemon):
    r = daemon.exec("print(6*7)")
    assert r["stdout"] == "42\n"
    assert r["stderr"] == ""
    assert r["files"] == []
    assert r["status"] is None and r["code"] == 0 and r["message"] is None
    assert len(r["session_id"]) == 21


@pytest.mark.full_image
def test_js_and_bash_with_args(daemon):
    r = daemon.exec("console.log(process.argv.slice(2).join('|'))", lang="js",
                    args=["a b", "c"])
    assert r["stdout"] == "a b|c\n"
    r = daemon.exec('echo "$#:$1:$2"', lang="bash", args=["x y", "z"])
    assert r["stdout"] == "2:x y:z\n"
    r = daemon.exec("import sys; print(sys.argv[1:])", lang="python", args=["1"])
    assert r["stdout"] == "['1']\n"


def test_user_code_failure_is_a_200(daemon):
    r = daemon.exec("import sys\nprint('before')\nsys.exit(3)")
    assert (r["stdout"], r["code"], r["status"]) == ("before\n", 3, None)
    r = daemon.exec("raise ValueError('boom')")
    assert "ValueError: boom" in r["stderr"] and r["code"] == 1
    r = daemon.exec("syntax error here")
    assert "SyntaxError" in r["stderr"]


def test_session_reuse_shares_mnt_data_and_one_container(daemon):
    first = daemon.exec("open('note.txt', 'w').write('kept')\nimport os; print(os.getcwd())")
    sid = first["session_id"]
    assert first["stdout"] == "/mnt/data\n"
    second = daemon.exec("print(open('/mnt/data/note.txt').read())", session=sid)
    assert second["session_id"] == sid
    assert second["stdout"] == "kept\n"
    third = daemon.exec("cat note.txt", lang="bash", session=sid)
    assert third["stdout"] == "kept"
    assert len(daemon.containers(sid)) == 1


def test_new_sessions_are_isolated(daemon):
    a = daemon.exec("open('secret.txt', 'w').write('a')")
    b = daemon.exec("import os; print(os.path.exists('secret.txt'))")
    assert a["session_id"] != b["session_id"]
    assert b["stdout"] == "False\n"
    assert daemon.containers(a["session_id"]) != daemon.containers(b["session_id"])


def test_unknown_session_id_starts_a_new_session(daemon):
    r = daemon.exec("print(1)", session="AAAAAAAAAAAAAAAAAAAAA")
    assert r["session_id"] != "AAAAAAAAAAAAAAAAAAAAA"
    r2 = daemon.exec("print(2)", session="../../etc")
    assert r2["stdout"] == "2\n"


def test_files_bucket_resolves_the_session(daemon):
    made = daemon.exec("open('in.txt','w').write('x')")
    sid = made["session_id"]
    ref = {"id": made["files"][0]["id"], "name": "in.txt", "storage_session_id": sid,
           "kind": "user"}
    r = daemon.exec("print(open('in.txt').read())", files=[ref])
    assert r["session_id"] == sid and r["stdout"] == "x\n"


def test_runtime_session_hint_keeps_one_session(daemon):
    a = daemon.exec("open('h.txt','w').write('hint')", runtime_session_hint="conv-42")
    b = daemon.exec("print(open('h.txt').read())", runtime_session_hint="conv-42")
    assert a["session_id"] == b["session_id"] and b["stdout"] == "hint\n"


def test_sessions_belong_to_their_user(daemon):
    sid = daemon.exec("print(1)", user_id="alice")["session_id"]
    r = daemon.request("POST", "/exec", {"lang": "py", "code": "print(2)",
                                         "session_id": sid}, headers={"User-Id": "mallory"})
    assert r.status == 200 and r.json()["session_id"] != sid


def test_every_route_alias(daemon):
    for path in ("/exec", "/v1/exec", "/v1/librechat/runs", "//v1//exec/", "/librechat/runs"):
        assert daemon.exec("print('ok')", path=path)["stdout"] == "ok\n", path
    for path in ("/health", "/v1/health", "/v1/librechat/health"):
        r = daemon.request("GET", path, key=None)
        assert r.status == 200 and r.json()["status"] == "ok", path


def test_unknown_fields_are_ignored(daemon):
    r = daemon.exec("print('fine')", timeout=5000, LIBRECHAT_CODE_API_KEY="x",
                    entity_id="agent_123", shell_output_filter="raw", extra={"a": [1]})
    assert r["stdout"] == "fine\n"


def test_stdout_flood_is_capped(daemon):
    r = daemon.exec("import sys\nfor i in range(300000): sys.stdout.write('y' * 99 + '\\n')\n"
                    "sys.stderr.write('done')")
    # The contract's overflow: 200, top-level "OL", stdout exactly the first
    # 64 KiB (LibreChat's image reader parses it), the note in stderr.
    assert r["status"] == "OL"
    assert r["stdout"] == ("y" * 99 + "\n") * 655 + "y" * 36
    assert r["stderr"] == "done\n[stdout truncated: 65536 of 30000000 bytes shown " \
        "(CI_MAX_OUTPUT_BYTES)]\n"


def test_non_utf8_output_becomes_valid_json(daemon):
    r = daemon.request("POST", "/exec", {"lang": "py", "code":
                       "import sys\nsys.stdout.buffer.write(b'ok\\xff\\xc3\\xa9\\x00\\xed\\xa0\\x80!')"})
    assert r.status == 200
    r.raw.decode("utf-8")                      # strictly valid UTF-8 on the wire
    out = r.json()["stdout"]
    assert out == "ok\ufffd\u00e9\x00\ufffd\ufffd\ufffd!"


def test_timeout_kills_the_run_and_the_session_goes_on(daemon):
    sid = daemon.exec("open('before.txt','w').write('1')")["session_id"]
    r = daemon.exec("print('started', flush=True)\nwhile True: pass", session=sid, timeout=4000)
    assert r["status"] is None and r["message"] == "Execution timed out"
    assert r["stdout"] == "started\n"
    assert "timed out after 4 s" in r["stderr"]
    after = daemon.exec("pgrep -c -u 1000 python3 || true; cat before.txt", lang="bash",
                        session=sid)
    assert after["stdout"] == "0\n1"
    assert len(daemon.containers(sid)) == 1


def test_setsid_child_does_not_survive_its_run(daemon):
    sid = daemon.exec("import subprocess\n"
                      "subprocess.Popen(['setsid', 'sleep', '1000'], start_new_session=True)\n"
                      "subprocess.Popen(['sh', '-c', 'sleep 999 &'])\nprint('spawned')")["session_id"]
    r = daemon.exec("ps -eo uid=,args=", lang="bash", session=sid)
    assert "sleep" not in r["stdout"], r["stdout"]


def test_calls_in_one_session_are_serialized(daemon):
    sid = daemon.exec("print(0)")["session_id"]
    code = ("import time\nwith open('log.txt','a') as f: f.write('start {n}\\n')\n"
            "time.sleep(1)\nwith open('log.txt','a') as f: f.write('end {n}\\n')")
    threads = [threading.Thread(target=daemon.exec, args=(code.format(n=n),),
                                kwargs={"session": sid}) for n in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = daemon.exec("print(open('log.txt').read(), end='')", session=sid)["stdout"].split("\n")
    assert lines[0].split()[1] == lines[1].split()[1]      # start n, end n
    assert lines[2].split()[1] == lines[3].split()[1]


def test_different_sessions_run_in_parallel(daemon):
    """B is answered while A is still running: sessions do not wait on each other."""
    slow_sid = daemon.exec("print(0)")["session_id"]
    done = {}

    def slow():
        daemon.exec("import time; time.sleep(3)", session=slow_sid)
        done["slow"] = time.monotonic()

    t = threading.Thread(target=slow)
    t.start()
    time.sleep(0.5)
    daemon.exec("print('fast')")
    done["fast"] = time.monotonic()
    t.join()
    assert done["fast"] < done["slow"]


def test_reply_shape_is_the_contracts(daemon):
    r = daemon.request("POST", "/v1/exec", {"lang": "py", "code": "print(1)"},
                       headers={"User-Agent": "LibreChat/1.0"})
    assert r.status == 200
    assert r.headers["Content-Type"] == "application/json"
    body = r.json()
    assert {"session_id", "stdout", "stderr", "files"} <= set(body)
    assert isinstance(body["files"], list)
