"""Programmatic tool calling (librechat-api.md 3.3, 3.11) as the agents client
drives it: POST /exec/programmatic, tool_call_required -> continuation ->
completed or error, and cancel.  The client's loop is written out here; the
real 3.9.2 client runs it in tests/librechat/agents-3.9."""
import json
import re
import socket
import time
import uuid

import pytest

from conftest import KEY, wait_for

# Runs on the core image (but the tests marked full_image): pytest.ini.
pytestmark = pytest.mark.core_image

WEATHER = [{"name": "get_weather", "description": "weather of a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}]


def ptc(d, body, headers=None):
    hdrs = {"X-LibreChat-Code-Request-ID": str(uuid.uuid4()), **(headers or {})}
    r = d.request("POST", "/v1/exec/programmatic", body, headers=hdrs)
    return r


def run_loop(d, body, tool, headers=None):
    """The client's loop: run every call with tool(name, input) -> (result, error)."""
    rounds, calls = 0, []
    r = ptc(d, body, headers)
    while r.status == 200 and r.json()["status"] == "tool_call_required":
        j = r.json()
        rounds += 1
        assert rounds <= 20
        results = []
        for c in j["tool_calls"]:
            calls.append(c)
            res, err = tool(c["name"], c["input"])
            results.append({"call_id": c["id"], "result": res, "is_error": err is not None,
                            **({"error_message": err} if err else {})})
        r = ptc(d, {"continuation_token": j["continuation_token"], "tool_results": results},
                headers)
    assert r.status == 200, r.raw
    return r.json(), rounds, calls


def weather(name, args):
    return {"city": args.get("city"), "temp": 18}, None


def py_ok_runs(d):
    m = re.search(r'cip_execs_total\{lang="py",outcome="ok"\} (\d+)',
                  d.request("GET", "/metrics").raw.decode())
    return int(m.group(1)) if m else 0


def test_one_call_in_python(daemon):
    before = py_ok_runs(daemon)
    out, rounds, calls = run_loop(daemon, {"code": "r = await get_weather(city='SF')\n"
                                           "print(r['temp'], r['city'])", "tools": WEATHER,
                                           "timeout": 15000}, weather)
    assert out["status"] == "completed" and out["stdout"] == "18 SF\n", out
    assert rounds == 1 and calls == [{"id": "call_001", "name": "get_weather",
                                      "input": {"city": "SF"}}]
    assert py_ok_runs(daemon) == before + 1     # a PTC run counts as a run


def test_parallel_calls_come_in_one_round(daemon):
    code = ("import asyncio\n"
            "rs = await asyncio.gather(*(get_weather(city=c) for c in 'ABC'))\n"
            "print(','.join(r['city'] for r in rs))")
    out, rounds, calls = run_loop(daemon, {"code": code, "tools": WEATHER}, weather)
    assert out["stdout"] == "A,B,C\n" and rounds == 1 and len(calls) == 3, (out, calls)
    assert len({c["id"] for c in calls}) == 3


def test_side_effects_happen_once_and_files_come_back(daemon):
    """No replay: the program runs once, whatever the rounds."""
    code = ("n = int(open('count.txt').read()) if __import__('os').path.exists('count.txt') else 0\n"
            "open('count.txt', 'w').write(str(n + 1))\n"
            "for c in ['X', 'Y', 'Z']:\n"
            "    await get_weather(city=c)\n"
            "open('report.csv', 'w').write('city\\nX\\nY\\nZ\\n')\n"
            "print(open('count.txt').read())")
    out, rounds, _ = run_loop(daemon, {"code": code, "tools": WEATHER}, weather)
    assert rounds == 3 and out["stdout"] == "1\n", out
    names = {f["name"] for f in out["files"]}
    assert names == {"count.txt", "report.csv"}, out
    f = [f for f in out["files"] if f["name"] == "report.csv"][0]
    got = daemon.request("GET", f"/download/{f['storage_session_id']}/{f['id']}")
    assert got.raw == b"city\nX\nY\nZ\n"


def test_a_tool_error_raises_in_python_and_fails_in_bash(daemon):
    def failing(name, args):
        return None, "the weather service is down"
    code = ("try:\n    await get_weather(city='SF')\nexcept ToolError as e:\n"
            "    print('caught:', e)")
    out, _, _ = run_loop(daemon, {"code": code, "tools": WEATHER}, failing)
    assert out["status"] == "completed" and out["stdout"] == \
        "caught: the weather service is down\n", out
    out, _, _ = run_loop(daemon, {"lang": "bash", "tools": WEATHER, "code":
                                  "get_weather '{\"city\":\"SF\"}' || echo \"failed $?\""}, failing)
    assert out["stdout"] == "failed 1\n" and "the weather service is down" in out["stderr"], out


def test_bash_with_the_dollar_bang_prefix_and_normalised_names(daemon):
    tools = [{"name": "get-weather"}, {"name": "mcp.server tool"}, {"name": "9lives"},
             {"name": "done"}]
    code = (': &\nwait "$!"\n'
            'a=$(get_weather \'{"city":"SF"}\')\nb=$(mcp_server_tool \'{}\')\n'
            'c=$(_9lives)\nd=$(done_tool \'{"x":1}\')\necho "$a|$b|$c|$d"')
    out, rounds, calls = run_loop(daemon, {"lang": "bash", "code": code, "tools": tools},
                                  lambda n, a: ({"tool": n, "input": a}, None))
    assert out["status"] == "completed", out
    assert [c["name"] for c in calls] == ["get-weather", "mcp.server tool", "9lives", "done"]
    assert out["stdout"].strip().split("|")[0] == '{"tool":"get-weather","input":{"city":"SF"}}'
    assert rounds == 4


def test_python_names_follow_the_rules(daemon):
    tools = [{"name": "get-weather now"}, {"name": "class"}, {"name": "1st"}, {"name": "a.b!c"}]
    code = ("print(await get_weather_now(), await class_tool(), await _1st(), await abc())")
    out, _, calls = run_loop(daemon, {"code": code, "tools": tools},
                             lambda n, a: (n, None))
    assert out["stdout"] == "get-weather now class 1st a.b!c\n", out


def test_empty_tools_run_as_a_plain_program_and_many_tools_are_taken(daemon):
    r = ptc(daemon, {"code": "print('plain')", "tools": []})
    assert r.status == 200 and r.json()["status"] == "completed" and r.json()["stdout"] == "plain\n"
    many = [{"name": f"tool_{i}", "parameters": {"type": "object"}} for i in range(150)]
    out, _, calls = run_loop(daemon, {"code": "print(await tool_149(n=1))", "tools": many},
                             lambda n, a: (f"{n}:{a['n']}", None))
    assert out["stdout"] == "tool_149:1\n" and calls[0]["name"] == "tool_149"


def test_failures_use_the_strings_clients_know(daemon):
    r = ptc(daemon, {"code": "raise SystemExit(3)", "tools": WEATHER})
    assert r.json()["status"] == "error" and r.json()["error"] == "Sandbox exited with code 3"
    r = ptc(daemon, {"code": "import time; time.sleep(30)", "tools": WEATHER, "timeout": 1500})
    assert r.json()["error"] == "Time limit exceeded", r.raw
    r = ptc(daemon, {"lang": "bash", "tools": WEATHER,
                     "code": "printf '{\"calls\":[{\"id\":\"x\",\"name\":\"rm_rf\",\"input\":{}}]}\\n' >&3; read -r x <&3"})
    assert r.json()["error"] == "Sandbox requested an unregistered tool: rm_rf", r.raw
    for bad in ({"code": "x", "tools": "no"}, {"code": "x", "tools": [{"name": "a-b"}, {"name": "a_b"}]},
                {"code": "x", "tools": [], "lang": "ruby"}):
        assert ptc(daemon, bad).status == 400, bad


def test_tokens_are_single_use_and_bound_to_the_caller(make_daemon):
    d = make_daemon(CI_AUTH="none")
    alice, bob = {"User-Id": "alice"}, {"User-Id": "bob"}
    r = d.request("POST", "/exec/programmatic", {"code": "print(await get_weather(city='a'))",
                  "tools": WEATHER, "user_id": "alice"}, key=None, headers=alice)
    j = r.json()
    tok, cid = j["continuation_token"], j["tool_calls"][0]["id"]
    cont = {"continuation_token": tok, "tool_results": [{"call_id": cid, "result": 1,
                                                         "is_error": False}]}
    # Another user cannot even learn the token exists; the owner's answer completes it.
    assert d.request("POST", "/exec/programmatic", cont, key=None, headers=bob).status == 404
    r = d.request("POST", "/exec/programmatic", cont, key=None, headers=alice)
    assert r.json()["status"] == "completed" and r.json()["stdout"] == "1\n", r.raw
    # Used: a second continuation with the same token is stale.
    assert d.request("POST", "/exec/programmatic", cont, key=None, headers=alice).status == 404
    bogus = dict(cont, continuation_token="x" * 42)
    assert d.request("POST", "/exec/programmatic", bogus, key=None, headers=alice).status == 404
    assert d.request("POST", "/exec/programmatic", {"continuation_token": tok,
                     "tool_results": []}, key=None, headers=alice).status in (400, 404)


def test_a_waiting_program_expires_with_its_token(make_daemon):
    d = make_daemon(CI_PTC_CONTINUATION_SECONDS=2)
    j = ptc(d, {"code": "open('before.txt','w').write('1')\nawait get_weather(city='a')",
                "tools": WEATHER}).json()
    time.sleep(3)
    r = ptc(d, {"continuation_token": j["continuation_token"],
                "tool_results": [{"call_id": "call_001", "result": 1, "is_error": False}]})
    assert r.status == 404, r.raw
    # The program was stopped and the session is free again.
    r = d.exec("import os; print(os.path.exists('before.txt'))", session=j["session_id"])
    assert r["stdout"] == "True\n"


def test_cancel_by_request_id(daemon):
    rid = str(uuid.uuid4())
    j = daemon.request("POST", "/exec/programmatic",
                       {"code": "await get_weather(city='a')\nprint('never')", "tools": WEATHER},
                       headers={"X-LibreChat-Code-Request-ID": rid}).json()
    assert j["status"] == "tool_call_required"
    r = daemon.request("POST", "/v1/exec/programmatic/cancel", {"request_id": rid})
    assert r.status == 202 and r.json() == {"status": "cancellation_requested"}
    # The run ends (the cancel is asynchronous: 202): its session answers
    # again, and the token is gone.
    wait_for(lambda: daemon.request("POST", "/exec", {"lang": "py", "code": "print(1)",
                                                     "session_id": j["session_id"]}).status == 200,
             "the session free after the cancel")
    r = ptc(daemon, {"continuation_token": j["continuation_token"],
                     "tool_results": [{"call_id": "call_001", "result": 1, "is_error": False}]})
    assert r.status == 404
    r = daemon.request("POST", "/exec/programmatic/cancel", {"request_id": rid})
    assert r.status == 200 and r.json() == {"status": "already_completed"}
    assert daemon.request("POST", "/exec/programmatic/cancel", {"request_id": "nope"}).status == 404
    assert daemon.request("POST", "/exec/programmatic/cancel", {}).status == 400


def test_stop_during_a_request_cancels_the_run(make_daemon):
    d = make_daemon(CI_MAX_RUN_TIMEOUT_SECONDS=30)
    sid = d.exec("print(0)")["session_id"]
    body = json.dumps({"code": "import time\ntime.sleep(30)", "tools": WEATHER,
                       "session_id": sid}).encode()
    s = socket.create_connection(("127.0.0.1", d.port))
    s.sendall(b"POST /v1/exec/programmatic HTTP/1.1\r\nHost: x\r\nX-API-Key: %s\r\n"
              b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
              % (KEY.encode(), len(body)) + body)
    time.sleep(1.5)
    s.close()
    t0 = time.monotonic()
    assert d.exec("print('free')", session=sid)["stdout"] == "free\n"
    assert time.monotonic() - t0 < 20, "the run was not stopped when its client went away"
    assert "the client went away" in d.logtext()


def test_the_run_timeout_counts_only_while_the_program_runs(make_daemon):
    """1 s of work, a 3 s wait for the tool, 1 s of work, under a 3 s timeout."""
    d = make_daemon(CI_MAX_RUN_TIMEOUT_SECONDS=3)
    code = ("import time\ntime.sleep(1)\nr = await get_weather(city='x')\n"
            "time.sleep(1)\nprint('done', r['city'])")
    def slow(name, args):
        time.sleep(3)
        return weather(name, args)
    out, rounds, _ = run_loop(d, {"code": code, "tools": WEATHER}, slow)
    assert out["status"] == "completed" and out["stdout"] == "done x\n", out


def test_at_most_twenty_rounds(daemon):
    code = "for i in range(25):\n    await get_weather(city=str(i))\nprint('all')"
    r = ptc(daemon, {"code": code, "tools": WEATHER})
    for n in range(1, 25):
        j = r.json()
        if j["status"] != "tool_call_required":
            break
        r = ptc(daemon, {"continuation_token": j["continuation_token"], "tool_results": [
            {"call_id": j["tool_calls"][0]["id"], "result": {"city": "c"}, "is_error": False}]})
    j = r.json()
    assert n - 1 == 20 and j["status"] == "error" and j["error"] == "more than 20 rounds of tool calls", (n, j)


def test_cancel_of_another_callers_run_is_403(make_daemon):
    d = make_daemon(CI_AUTH="none")
    rid = str(uuid.uuid4())
    j = d.request("POST", "/exec/programmatic", {"code": "await get_weather(city='a')",
                  "tools": WEATHER}, key=None,
                  headers={"User-Id": "alice", "X-LibreChat-Code-Request-ID": rid}).json()
    assert j["status"] == "tool_call_required"
    r = d.request("POST", "/exec/programmatic/cancel", {"request_id": rid}, key=None,
                  headers={"User-Id": "bob"})
    assert r.status == 403, r.raw
    r = d.request("POST", "/exec/programmatic/cancel", {"request_id": rid}, key=None,
                  headers={"User-Id": "alice"})
    assert r.status == 202, r.raw


def test_bash_tools_may_share_a_name_with_a_command(daemon):
    tools = [{"name": "printf"}, {"name": "cat"}, {"name": "flock"}]
    out, rounds, calls = run_loop(daemon, {"lang": "bash", "tools": tools, "code":
                                           'r=$(printf \'{}\'); s=$(cat \'{}\'); echo "$r $s"'},
                                  lambda n, a: (n, None))
    assert out["status"] == "completed" and out["stdout"] == '"printf" "cat"\n', out
    assert rounds == 2


def test_an_exec_behind_a_waiting_program_does_not_wait_for_it(daemon):
    sid = daemon.exec("print(0)")["session_id"]
    j = ptc(daemon, {"code": "await get_weather(city='a')", "tools": WEATHER,
                     "session_id": sid}).json()
    assert j["status"] == "tool_call_required" and j["session_id"] == sid
    r = daemon.request("POST", "/exec", {"lang": "py", "code": "print(1)", "session_id": sid})
    assert r.status == 503 and "programmatic tool call" in r.json()["message"], r.raw
    assert int(r.headers["Retry-After"]) > 0
    out = ptc(daemon, {"continuation_token": j["continuation_token"], "tool_results": [
        {"call_id": "call_001", "result": 1, "is_error": False}]}).json()
    assert out["status"] == "completed"
    assert daemon.exec("print(2)", session=sid)["stdout"] == "2\n"
