"""Sessions end on time and leave nothing behind; admins list and delete them."""
import subprocess
import threading
import time

import pytest

from conftest import KEY, wait_for

# Runs on the core image (but the tests marked full_image): pytest.ini.
pytestmark = pytest.mark.core_image


def listed(d):
    r = d.request("GET", "/v1/librechat/sessions")
    assert r.status == 200
    return {s["session_id"]: s for s in r.json()["sessions"]}


def test_admin_list_shows_sessions_with_their_files(daemon):
    r = daemon.exec("open('a.txt','w').write('12345')", user_id="alice")
    sid = r["session_id"]
    s = listed(daemon)[sid]
    assert s["user_id"] == "alice" and s["state"] == "active" and s["live"] is True
    assert s["files"] == 1 and s["bytes"] == 5
    assert s["container_id"] == daemon.containers(sid)[0]
    assert s["created_at"] < s["expires_at"] and s["last_used_at"] >= s["created_at"]
    assert daemon.request("GET", "/v1/librechat/sessions", key="wrong").status == 401


def test_admin_delete_removes_container_files_and_row(daemon):
    r = daemon.exec("open('gone.txt','w').write('x')")
    sid, fid = r["session_id"], r["files"][0]["id"]
    d = daemon.request("DELETE", f"/v1/librechat/sessions/{sid}")
    assert d.status == 200 and d.json()["session_id"] == sid
    assert daemon.containers(sid) == []
    assert sid not in listed(daemon)
    assert daemon.request("GET", f"/download/{sid}/{fid}").status == 404
    assert daemon.request("DELETE", f"/v1/librechat/sessions/{sid}").status == 404
    assert daemon.request("DELETE", "/v1/librechat/sessions/nope").status == 404
    # The id no longer resumes anything: a new session starts.
    assert daemon.exec("print(1)", session=sid)["session_id"] != sid


def test_the_seed_readme_cleanup_loop_works(make_daemon):
    d = make_daemon()
    for _ in range(3):
        d.exec("print(1)")
    base = f"http://127.0.0.1:{d.port}"
    loop = (f"for id in $(curl -s -H 'X-API-Key: {KEY}' {base}/v1/librechat/sessions | "
            f"jq -r '.sessions[].session_id'); do "
            f"curl -s -o /dev/null -w '%{{http_code}} ' -X DELETE -H 'X-API-Key: {KEY}' "
            f"{base}/v1/librechat/sessions/$id; done")
    out = subprocess.run(["bash", "-c", loop], capture_output=True, text=True, timeout=60).stdout
    assert out.split() == ["200"] * 3
    assert listed(d) == {} and d.containers() == []


def test_ttl_ends_sessions_and_removes_containers(make_daemon):
    # 12 s: a new session's first exec took over 3 s on Podman beside the
    # other lane and an image build, and a 3 s TTL then ended it before
    # the first check below.
    d = make_daemon(CI_SESSION_TTL_MINUTES="0.2", CI_SWEEP_INTERVAL_SECONDS="0.5")
    sid = d.exec("print(1)")["session_id"]
    assert sid in listed(d) and len(d.containers(sid)) == 1
    wait_for(lambda: sid not in listed(d) and d.containers(sid) == [], "session expired")
    assert "expired" in d.logtext()


def test_a_session_mid_run_is_not_expired(make_daemon):
    d = make_daemon(CI_SESSION_TTL_MINUTES="0.02", CI_SWEEP_INTERVAL_SECONDS="0.3")
    sid = d.exec("print(1)")["session_id"]
    r = d.exec("import time; time.sleep(3); open('late.txt','w').write('x'); print('done')",
               session=sid)
    assert r["stdout"] == "done\n" and r["session_id"] == sid
    assert [f["name"] for f in r["files"]] == ["late.txt"]
    wait_for(lambda: d.containers(sid) == [], "expired after the run")


def test_idle_mode_counts_from_last_use(make_daemon):
    d = make_daemon(CI_SESSION_TTL_MINUTES="0.05", CI_SESSION_TTL_MODE="idle",
                    CI_SWEEP_INTERVAL_SECONDS="0.5")
    sid = d.exec("print(1)")["session_id"]
    for _ in range(4):          # 4 x 1.5 s of use: past 3 s since creation
        time.sleep(1.5)
        assert d.exec("print(2)", session=sid)["session_id"] == sid
    wait_for(lambda: sid not in listed(d), "idle session expired")


def test_files_are_deleted_after_retention(make_daemon):
    d = make_daemon(CI_FILE_RETENTION_HOURS="0.0005", CI_SWEEP_INTERVAL_SECONDS="0.5")
    r = d.exec("open('short.txt','w').write('x')")
    sid, fid = r["session_id"], r["files"][0]["id"]
    assert d.request("GET", f"/download/{sid}/{fid}").status == 200
    wait_for(lambda: d.request("GET", f"/download/{sid}/{fid}").status == 404, "file deleted")
    assert d.request("GET", f"/files/{sid}").json() == []


def test_sigterm_removes_containers_by_default(make_daemon):
    d = make_daemon()
    sids = [d.exec("print(1)")["session_id"] for _ in range(2)]
    assert len(d.containers()) == 2
    d.stop()
    assert d.proc.returncode == 0
    assert d.containers() == []
    # The sessions and their files outlive the proxy: the next start serves them.
    d.start()
    assert d.exec("print('back')", session=sids[0])["session_id"] == sids[0]


def test_sigterm_keeps_containers_when_asked(make_daemon):
    d = make_daemon(CI_CLOSE_SESSIONS_ON_SHUTDOWN="false")
    sid = d.exec("open('k.txt','w').write('kept')")["session_id"]
    (cid,) = d.containers(sid)
    d.stop()
    assert d.proc.returncode == 0 and d.containers(sid) == [cid]
    d.start()
    r = d.exec("print(open('k.txt').read())", session=sid)
    assert r["stdout"] == "kept\n" and d.containers(sid) == [cid]


def test_sigterm_lets_an_inflight_run_finish(make_daemon):
    d = make_daemon()
    sid = d.exec("print(1)")["session_id"]
    out = {}
    t = threading.Thread(target=lambda: out.update(
        r=d.exec("import time; time.sleep(2); print('finished')", session=sid)))
    t.start()
    time.sleep(0.7)
    d.proc.terminate()
    # While it drains, a new request is answered, with why.
    wait_for(lambda: "finishing in-flight requests" in d.logtext(), "the drain to start")
    late = d.request("POST", "/exec", {"lang": "py", "code": "print(2)"})
    assert late.status == 503 and late.json()["details"] == "shutting down", late.raw
    t.join()
    assert out["r"]["stdout"] == "finished\n"
    assert d.proc.wait(timeout=60) == 0
    assert d.containers() == []


def test_a_vanished_container_is_rehydrated_from_storage(daemon):
    from conftest import docker
    r = daemon.exec("import os\nos.makedirs('out', exist_ok=True)\n"
                    "open('out/v.txt','w').write('v1')\nopen('keep.csv','w').write('a,b')")
    sid = r["session_id"]
    daemon.exec("open('out/v.txt','w').write('v2')", session=sid)
    (cid,) = daemon.containers(sid)
    docker("rm", "-f", cid)
    after = daemon.exec("print(open('out/v.txt').read(), open('keep.csv').read())", session=sid)
    assert after["session_id"] == sid and after["stdout"] == "v2 a,b\n"
    assert after["files"] == []          # restored files are not new outputs
    assert "re-hydrated: 2 file(s) restored" in daemon.logtext()


def test_after_a_default_shutdown_the_next_start_rehydrates(make_daemon):
    d = make_daemon()
    sid = d.exec("open('data.txt','w').write('survives the restart')")["session_id"]
    d.stop()
    assert d.containers() == []
    d.start()
    r = d.exec("print(open('data.txt').read())", session=sid)
    assert r["stdout"] == "survives the restart\n" and r["files"] == []


def test_kill9_then_restart_keeps_sessions_listed_and_working(make_daemon):
    d = make_daemon()
    sid = d.exec("open('f.txt','w').write('x')")["session_id"]
    d.kill9()
    d.start()
    assert sid in listed(d)
    assert d.exec("print(open('f.txt').read())", session=sid)["stdout"] == "x\n"


def test_startup_removes_labelled_orphans_and_leaves_others_alone(make_daemon):
    from conftest import IMAGE, docker, rand
    d = make_daemon(start=False, CI_SANDBOX_IMAGE_PREFIXES="cip-e2e-seedlike")
    other = f"cip.e2e.other.{rand()}"    # not d's label: d must not touch these
    orphan = docker("create", "--label", f"{d.label}=1", "--label",
                    "cip.session=AAAAAAAAAAAAAAAAAAAAA", IMAGE).strip()
    stranger = docker("create", "--label", f"{other}=1", IMAGE).strip()
    docker("tag", IMAGE, "cip-e2e-seedlike:old")
    seedlike = docker("create", "--label", f"{other}=1", "cip-e2e-seedlike:old").strip()
    try:
        d.start()
        ids = docker("ps", "-aq", "--no-trunc").split()
        assert orphan not in ids            # ours, of no session
        assert seedlike not in ids          # the seed's, by image prefix
        assert stranger in ids              # not ours: left alone
        assert "removed container" in d.logtext()
    finally:
        # One at a time: podman 4.3's rm -f of several, one of them gone
        # (seedlike, the daemon removed it), removes none and exits 0.
        for c in (stranger, seedlike):
            docker("rm", "-f", c, check=False)
        docker("rmi", "cip-e2e-seedlike:old", check=False)


def test_startup_adopts_the_container_of_a_live_session(make_daemon):
    d = make_daemon(CI_CLOSE_SESSIONS_ON_SHUTDOWN="false")
    sid = d.exec("open('a.txt','w').write('adopted')")["session_id"]
    (cid,) = d.containers(sid)
    d.stop()
    d.start()
    assert "1 container(s) adopted" in d.logtext()
    assert d.containers(sid) == [cid]
    assert d.exec("print(open('a.txt').read())", session=sid)["stdout"] == "adopted\n"
