"""The warm pool and the bounded number of live containers.

A pooled container is made ahead of time (labelled cip.pool=1, no session
label) and given to exactly one new session; it is removed with that
session, never returned.  CI_MAX_LIVE_CONTAINERS caps every container the
daemon holds, pooled ones included: at the cap the least recently used idle
session loses its container (its files stay and come back on its next
call), and when every container is busy the answer is 503.
"""
import threading
import time

import pytest

from conftest import docker, wait_for

# Runs on the core image (but the tests marked full_image): pytest.ini.
pytestmark = pytest.mark.core_image


def sessions(d):
    r = d.request("GET", "/v1/librechat/sessions")
    assert r.status == 200
    return {s["session_id"]: s for s in r.json()["sessions"]}


def container_of(d, sid):
    return sessions(d)[sid]["container_id"]


def all_containers(d):
    return set(docker("ps", "-aq", "--no-trunc", "--filter", f"label={d.label}=1").split())


def pool_full(d, n):
    """The pool holds n ready containers (the daemon's count: docker lists a
    container from its create on, before its runner answers)."""
    return lambda: health(d)["pool_size"] == n


def pooled(d):
    """The daemon's pooled containers that no session holds (made or being made)."""
    ids = set(docker("ps", "-aq", "--no-trunc", "--filter", f"label={d.label}=1",
                     "--filter", "label=cip.pool=1").split())
    held = {s["container_id"] for s in sessions(d).values() if s["container_id"]}
    return ids - held


def health(d):
    r = d.request("GET", "/health", key=None)
    assert r.status == 200, r.raw
    return r.json()


def metric(d, line):
    text = d.request("GET", "/metrics").raw.decode()
    for ln in text.splitlines():
        if ln.startswith(line + " "):
            return float(ln.split()[-1])
    raise AssertionError(f"{line} not in /metrics")


def ls(d, sid):
    return d.exec("import os; print(sorted(os.listdir('.')))", session=sid)["stdout"]


def test_a_new_session_takes_a_pooled_container_and_the_pool_refills(make_daemon):
    d = make_daemon(CI_POOL_SIZE="2")
    wait_for(pool_full(d, 2), "the pool filled")
    before = pooled(d)
    assert health(d)["pool_size"] == 2 and health(d)["pool_target"] == 2
    sid = d.exec("print('warm')")["session_id"]
    cid = container_of(d, sid)
    assert cid in before, "the session's container was not a pooled one"
    wait_for(pool_full(d, 2), "the pool refilled")
    assert cid not in pooled(d)
    h = health(d)
    assert h["live_containers"] == 1 and h["pool_size"] == 2
    assert metric(d, 'cip_pool_takes_total{result="hit"}') == 1
    assert metric(d, "cip_pool_size") == 2 and metric(d, "cip_containers_live") == 1
    assert "taken from the warm pool" in d.logtext()


def test_no_file_crosses_sessions_through_the_pool(make_daemon):
    d = make_daemon(CI_POOL_SIZE="1")
    wait_for(pool_full(d, 1), "the pool filled")
    a = d.exec("open('secret.txt','w').write('only a')")["session_id"]
    a_cid = container_of(d, a)
    wait_for(pool_full(d, 1), "the pool refilled")
    b = d.exec("print(1)")["session_id"]
    assert "secret.txt" not in ls(d, b)
    # A deleted session's container is removed, never pooled again.
    assert d.request("DELETE", f"/v1/librechat/sessions/{a}").status == 200
    assert a_cid not in all_containers(d)
    wait_for(pool_full(d, 1), "the pool refilled")
    c = d.exec("print(1)")["session_id"]
    assert "secret.txt" not in ls(d, c)
    cids = {container_of(d, b), container_of(d, c), a_cid}
    assert len(cids) == 3, "a container served two sessions"


def test_at_the_cap_the_least_recently_used_idle_session_gives_way(make_daemon):
    d = make_daemon(CI_POOL_SIZE="0", CI_MAX_LIVE_CONTAINERS="3")
    s = [d.exec(f"open('f{i}.txt','w').write('{i}')")["session_id"] for i in range(3)]
    for sid in (s[1], s[2]):         # s[0] is now the least recently used
        d.exec("print(1)", session=sid)
    s.append(d.exec("print('fourth')")["session_id"])
    live = {k: v["live"] for k, v in sessions(d).items()}
    assert live == {s[0]: False, s[1]: True, s[2]: True, s[3]: True}
    assert len(all_containers(d)) == 3
    # Its files come back with a new container; s[1] is the one to go now.
    assert d.exec("print(open('f0.txt').read())", session=s[0])["stdout"] == "0\n"
    live = {k: v["live"] for k, v in sessions(d).items()}
    assert live == {s[0]: True, s[1]: False, s[2]: True, s[3]: True}
    assert len(all_containers(d)) == 3
    assert metric(d, 'cip_container_evictions_total{reason="lru"}') == 2


def test_the_pool_yields_to_sessions_under_the_cap(make_daemon):
    d = make_daemon(CI_POOL_SIZE="2", CI_MAX_LIVE_CONTAINERS="3")
    wait_for(pool_full(d, 2), "the pool filled")
    for n in range(1, 4):
        d.exec("print(1)")
        assert len(all_containers(d)) <= 3
        time.sleep(1)                  # the refill, if there is room
        assert len(all_containers(d)) <= 3
    # Three sessions hold the three slots: nothing is left for the pool.
    assert pooled(d) == set() and health(d)["live_containers"] == 3


def test_every_container_busy_is_503_with_retry_after(make_daemon):
    d = make_daemon(CI_POOL_SIZE="0", CI_MAX_LIVE_CONTAINERS="2")
    results = []

    def run_long():
        results.append(d.exec("import time; time.sleep(3); print('done')"))

    threads = [threading.Thread(target=run_long) for _ in range(2)]
    for t in threads:
        t.start()
    wait_for(lambda: health(d)["live_containers"] == 2, "both sessions hold a container")
    time.sleep(0.3)
    r = d.request("POST", "/exec", {"lang": "py", "code": "print(3)"})
    assert r.status == 503, r.raw
    assert r.headers.get("Retry-After") == "2"
    body = r.json()
    assert body["error"] == "sandboxes_busy" and "CI_MAX_LIVE_CONTAINERS=2" in body["message"]
    assert body["retry_after_seconds"] == 2
    for t in threads:
        t.join()
    assert [x["stdout"] for x in results] == ["done\n", "done\n"]
    # Once they are idle, a new session takes the place of one of them.
    assert d.exec("print(3)")["stdout"] == "3\n"
    assert metric(d, "cip_busy_total") == 1
    assert len(all_containers(d)) == 2


def test_an_idle_session_gives_back_its_container_not_its_files(make_daemon):
    d = make_daemon(CI_CONTAINER_IDLE_MINUTES="0.02", CI_SWEEP_INTERVAL_SECONDS="0.3")
    sid = d.exec("open('kept.txt','w').write('still here')")["session_id"]
    cid = container_of(d, sid)
    wait_for(lambda: not sessions(d)[sid]["live"], "the idle container was taken")
    assert cid not in all_containers(d)
    assert sessions(d)[sid]["state"] == "active"
    assert d.exec("print(open('kept.txt').read())", session=sid)["stdout"] == "still here\n"
    assert metric(d, 'cip_container_evictions_total{reason="idle"}') >= 1


def test_startup_removes_unused_pool_containers_and_keeps_taken_ones(make_daemon):
    d = make_daemon(CI_POOL_SIZE="2", CI_CLOSE_SESSIONS_ON_SHUTDOWN="false")
    wait_for(pool_full(d, 2), "the pool filled")
    sid = d.exec("open('a.txt','w').write('x')")["session_id"]
    held = container_of(d, sid)
    wait_for(pool_full(d, 2), "the pool refilled")
    unused = pooled(d)
    d.kill9()
    assert unused | {held} <= all_containers(d)
    d.start()
    wait_for(pool_full(d, 2), "a new pool")
    assert not (unused & all_containers(d)), "unused pool containers of the last run stayed"
    assert container_of(d, sid) == held and held in all_containers(d)
    assert d.exec("print(open('a.txt').read())", session=sid)["stdout"] == "x\n"
    assert container_of(d, sid) == held
    assert "an unused warm-pool container" in d.logtext()
    # SIGTERM: pooled containers go even when sessions keep theirs.
    d.stop()
    assert all_containers(d) == {held}


def test_pooled_channels_cut_by_the_engine_are_not_handed_out(make_daemon, tmp_path):
    from test_errors import CuttableEngine
    engine = CuttableEngine(str(tmp_path / "engine.sock"))
    d = make_daemon(CI_POOL_SIZE="2", CI_DOCKER_HOST=f"unix://{engine.path}")
    wait_for(pool_full(d, 2), "the pool filled")
    stale = pooled(d)
    # Every stream the daemon holds ends, as in an engine restart.
    engine.cut()
    engine.restore()
    # The first new session after it runs at once: no dead channel is used.
    assert d.exec("print('fresh')")["stdout"] == "fresh\n"
    wait_for(pool_full(d, 2), "the pool refilled")
    assert not (stale & pooled(d)), "a pooled sandbox with a dead channel stayed"
    assert "its channel broke while it waited" in d.logtext()


def test_eviction_skips_a_busy_session_even_when_it_is_the_oldest(make_daemon):
    d = make_daemon(CI_POOL_SIZE="0", CI_MAX_LIVE_CONTAINERS="3")
    s = [d.exec("print(1)")["session_id"] for _ in range(3)]
    done = []
    t = threading.Thread(target=lambda: done.append(
        d.exec("import time; time.sleep(3); print('long')", session=s[0])))
    t.start()
    time.sleep(0.7)                    # s[0], the oldest use, is now mid-run
    s.append(d.exec("print('new')")["session_id"])
    live = {k: v["live"] for k, v in sessions(d).items()}
    assert live == {s[0]: True, s[1]: False, s[2]: True, s[3]: True}
    t.join()
    assert done[0]["stdout"] == "long\n"
