"""Faults injected into the real daemon and the real engine (issue 15).

Each case checks that nothing is lost and that the client gets a clear
answer while the fault lasts: a full storage volume, kill -9 of the proxy
mid-upload, mid-capture and mid-delete, a runner killed from outside, the
database locked by another process, and (last in this file: it disrupts
everyone on the machine) the engine restarting mid-run and between runs.

After each, storage is checked as a whole: no row without its blob, no blob
without its row once a sweep ran, no leftover temporary file, no container
of ours that no session or pool owns.  Needs root (mount, the engine).
"""
import hashlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import threading
import time
import uuid

import pytest

from conftest import KEY, docker, wait_for

# Runs on the core image (but the tests marked full_image): pytest.ini.
pytestmark = pytest.mark.core_image

USER = "665f1c2e9b1e8a0012345678"
ENSURE_DOCKERD = os.path.join(os.path.dirname(__file__), "..", "..", "contrib",
                              "ensure-dockerd.sh")


# ---------------------------------------------------------------- helpers

def multipart(files, fields=()):
    boundary = "----cip" + uuid.uuid4().hex
    out = []
    for name, value in fields:
        out.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                   f"{value}\r\n".encode())
    for filename, data in files:
        out.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
                   f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
                   .encode() + data + b"\r\n")
    out.append(f"--{boundary}--\r\n".encode())
    return b"".join(out), {"Content-Type": f"multipart/form-data; boundary={boundary}",
                           "User-Id": USER}


def upload(d, files, path="/upload", **kw):
    body, headers = multipart(files)
    return d.request("POST", path, body, headers=headers, **kw)


def ref(bucket, file_id, name):
    return {"id": file_id, "name": name, "storage_session_id": bucket, "kind": "user"}


def json_error(r, *statuses):
    """r is one of statuses with a JSON object body naming the error."""
    assert r.status in statuses, f"{r.status}: {r.raw[:500]!r}"
    body = r.json()
    assert isinstance(body, dict) and body.get("error"), body
    return body


def store(d):
    return d.env["CI_FILE_STORAGE_PATH"]


def db_path(d):
    return d.env.get("CI_DB_PATH") or os.path.join(store(d), "proxy.db")


def db_query(d, sql, *args):
    con = sqlite3.connect(db_path(d), timeout=30)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def blobs_on_disk(d):
    """{(bucket, id): path} of the stored blobs, and the leftover temporary files."""
    root = os.path.join(store(d), "blobs")
    found, tmp = {}, []
    if not os.path.isdir(root):
        return found, tmp
    for bucket in os.listdir(root):
        path = os.path.join(root, bucket)
        if bucket == ".tmp":
            tmp = os.listdir(path)
            continue
        for fid in os.listdir(path):
            found[(bucket, fid)] = os.path.join(path, fid)
    return found, tmp


def check_storage(d, orphans_ok=False):
    """Rows and blobs agree (byte for byte); no temporary file is left."""
    rows = {(b, i): (size, sha) for b, i, size, sha in
            db_query(d, "SELECT bucket, id, size, sha256 FROM files")}
    blobs, tmp = blobs_on_disk(d)
    missing = sorted(set(rows) - set(blobs))
    assert not missing, f"rows without a blob: {missing[:5]}"
    if not orphans_ok:
        orphans = sorted(set(blobs) - set(rows))
        assert not orphans, f"blobs without a row: {orphans[:5]}"
    assert tmp == [], f"temporary files left: {tmp[:5]}"
    for key, (size, sha) in rows.items():
        with open(blobs[key], "rb") as f:
            data = f.read()
        assert len(data) == size and hashlib.sha256(data).hexdigest() == sha, key
    (ok,) = db_query(d, "PRAGMA integrity_check")[0]
    assert ok == "ok"
    return rows


def check_containers(d):
    """Every container of d's label belongs to an active session that holds it."""
    held = {cid for (cid,) in db_query(
        d, "SELECT container_id FROM sessions WHERE state = 'active' AND container_id <> ''")}
    for cid in d.containers():
        labels = json.loads(docker("inspect", "-f", "{{json .Config.Labels}}", cid))
        if labels.get("cip.pool") == "1" and "cip.session" not in labels and cid not in held:
            continue        # pooled: checked by the pool's own tests
        assert cid in held, f"container {cid[:12]} ({labels}) leaked: no session holds it"


def fill_up(directory, leave=0):
    """Fill the filesystem of directory, then give back `leave` bytes; the filler's path."""
    path = os.path.join(directory, "filler")
    chunk = b"\0" * (64 << 10)
    with open(path, "wb") as f:
        try:
            while True:
                f.write(chunk)
                f.flush()
        except OSError as e:
            assert e.errno == 28, e       # ENOSPC
        # Whatever is still buffered cannot be written: drop it.
        size = f.tell()
    os.truncate(path, max(0, os.path.getsize(path) - leave))
    return path


@pytest.fixture
def small_fs(tmp_path):
    """Mount small tmpfs file systems; unmounted after the test's daemons stop
    (this fixture is listed before make_daemon, so it is torn down after)."""
    mounted = []

    def mount(name, size="8m"):
        path = str(tmp_path / name)
        os.makedirs(path, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", path],
                       check=True, capture_output=True)
        mounted.append(path)
        return path

    yield mount
    for path in reversed(mounted):
        subprocess.run(["umount", path], capture_output=True)
        subprocess.run(["umount", "-l", path], capture_output=True)


def raw_connect(d):
    s = socket.create_connection(("127.0.0.1", d.port), timeout=30)
    return s


def log_count(d, text):
    return d.logtext().count(text)


# ---------------------------------------------------------------- a full disk

def test_full_disk_upload_is_507_leaves_nothing_and_recovers(small_fs, make_daemon):
    storage = small_fs("store", "8m")
    d = make_daemon(CI_FILE_STORAGE_PATH=storage)
    before = upload(d, [("before.txt", b"stored before the disk filled")])
    assert before.status == 200
    b_bucket, b_id = before.json()["storage_session_id"], before.json()["files"][0]["fileId"]
    filler = fill_up(storage, leave=64 << 10)
    rows = check_storage(d)

    r = upload(d, [("big.bin", os.urandom(1 << 20))])
    print("upload on a full disk:", r.status, r.raw[:200])
    body = json_error(r, 507)
    assert "storage" in (body["error"] + body.get("details", "")).lower(), body
    r = upload(d, [("a.txt", b"a"), ("big.bin", os.urandom(1 << 20))], path="/upload/batch")
    assert r.status in (200, 507), r.raw
    if r.status == 200:           # partial: the small one may fit
        assert r.json()["failed"] >= 1
    # Nothing half-stored: every row has its whole blob, no blob lacks a row.
    after = check_storage(d)
    assert set(after) - set(rows) <= {(r.json()["storage_session_id"], f["fileId"])
                                      for f in r.json()["files"] if f.get("fileId")}
    # What was stored before is still served.
    got = d.request("GET", f"/download/{b_bucket}/{b_id}")
    assert got.status == 200 and got.raw == b"stored before the disk filled"

    os.unlink(filler)
    r = upload(d, [("big.bin", b"x" * (1 << 20))])
    assert r.status == 200, r.raw
    bucket, fid = r.json()["storage_session_id"], r.json()["files"][0]["fileId"]
    out = d.exec("print(len(open('big.bin','rb').read()))", files=[ref(bucket, fid, "big.bin")],
                 user_id=USER)
    assert out["stdout"] == f"{1 << 20}\n"
    check_storage(d)


def test_full_disk_during_output_capture(small_fs, make_daemon):
    storage = small_fs("store", "16m")
    d = make_daemon(CI_FILE_STORAGE_PATH=storage)
    sid = d.exec("open('first.txt','w').write('kept')")["session_id"]
    filler = fill_up(storage, leave=1 << 20)
    # Outputs in listing order: a small one, one that cannot fit, a small one.
    code = ("import os\n"
            "open('a_small.txt','w').write('a' * 1000)\n"
            "open('b_big.bin','wb').write(os.urandom(3 << 20))\n"
            "open('c_small.txt','w').write('c' * 1000)\n"
            "print('written')")
    r = d.exec(code, session=sid)
    assert r["stdout"] == "written\n"
    names = {f["name"]: f for f in r["files"]}
    delivery = r.get("artifact_delivery")
    assert delivery, r
    print("capture on a full disk:", delivery, sorted(names))
    assert delivery["code"] == "artifact_delivery_failed"
    assert delivery["attempted"] == 3 and delivery["failed"] >= 1
    assert delivery["delivered"] == len(names) and delivery["status"] in ("partial", "failed")
    assert "b_big.bin" not in names
    # The files it could store are served, whole.
    for name, f in names.items():
        got = d.request("GET", f"/download/{f['storage_session_id']}/{f['id']}")
        assert got.status == 200 and got.raw == name[0].encode() * 1000, name
    check_storage(d)

    os.unlink(filler)
    r = d.exec("import os\nopen('d.bin','wb').write(os.urandom(2 << 20))\n"
               "print(open('first.txt').read())", session=sid)
    assert r["stdout"] == "kept\n" and "artifact_delivery" not in r
    assert [f["name"] for f in r["files"]] == ["d.bin"]
    check_storage(d)


def test_database_volume_full(small_fs, make_daemon):
    """The database on its own small volume fills up: writes fail cleanly, then recover."""
    dbdir = small_fs("db", "1m")
    d = make_daemon(CI_DB_PATH=os.path.join(dbdir, "proxy.db"))
    sid = d.exec("open('kept.txt','w').write('kept')")["session_id"]
    up = upload(d, [("in.txt", b"input")]).json()
    filler = fill_up(dbdir)
    # Enough new rows to outgrow the write-ahead log's free pages.
    seen = []
    for i in range(6):
        r = upload(d, [(f"f{i}.txt", os.urandom(100))] * 40, path="/upload/batch")
        seen.append(r.status)
        if r.status != 200:     # the batch's own shape, every file saying why
            assert r.status == 507 and r.json()["message"] == "error", r.raw[:300]
            assert all("storage" in f["error"] for f in r.json()["files"]), r.raw[:300]
        elif r.json()["failed"]:
            assert r.json()["message"] == "partial_success"
        r = d.request("POST", "/exec", {"lang": "py", "code": "print(1)"})
        seen.append(r.status)
        if r.status != 200:
            json_error(r, 507, 503)
    print("statuses with the database volume full:", seen)
    assert set(seen) - {200}, f"the database never filled: {seen}"
    health = d.request("GET", "/health", key=None)
    assert health.status in (200, 503) and health.json()["status"] in ("ok", "unavailable")
    # Reads still work while writes cannot.
    assert d.request("GET", f"/download/{up['storage_session_id']}/"
                            f"{up['files'][0]['fileId']}").raw == b"input"
    os.unlink(filler)
    wait_for(lambda: d.request("GET", "/health", key=None).status == 200, "healthy again")
    r = d.exec("print(open('kept.txt').read())", session=sid)
    assert r["session_id"] == sid and r["stdout"] == "kept\n"
    assert upload(d, [("after.txt", b"after")]).status == 200
    check_storage(d, orphans_ok=True)


# ---------------------------------------------------------------- kill -9 of the proxy

def sweeps(d):
    r = d.request("GET", "/metrics")
    for line in r.raw.decode().splitlines():
        if line.startswith("cip_sweeps_total "):
            return float(line.split()[1])
    return 0


def restart(d):
    """Start d again on its storage and label, once its startup sweep is done."""
    d.log.close()
    d.start()
    wait_for(lambda: sweeps(d) >= 1, "the startup sweep")


def restart_after_kill(d):
    d.kill9()
    restart(d)


def test_kill9_mid_upload(make_daemon):
    d = make_daemon()
    kept = upload(d, [("kept.txt", b"kept")]).json()
    body, headers = multipart([("huge.bin", os.urandom(20 << 20))])
    s = raw_connect(d)
    head = (f"POST /upload HTTP/1.1\r\nHost: x\r\nX-API-Key: {KEY}\r\n"
            f"Content-Type: {headers['Content-Type']}\r\nUser-Id: {USER}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    s.sendall(head)
    sent = 0
    while sent < len(body) // 2:
        s.sendall(body[sent:sent + (256 << 10)])
        sent += 256 << 10
        time.sleep(0.01)
    restart_after_kill(d)
    s.close()
    check_storage(d)
    assert d.request("GET", f"/download/{kept['storage_session_id']}/"
                            f"{kept['files'][0]['fileId']}").raw == b"kept"
    assert upload(d, [("after.txt", b"after")]).status == 200
    check_containers(d)


def test_kill9_mid_capture(make_daemon):
    d = make_daemon(CI_MAX_FILES_PER_RUN=400, CI_MAX_RUN_TIMEOUT_SECONDS=30)
    sid = d.exec("open('before.txt','w').write('before')")["session_id"]
    code = ("import os\nos.makedirs('out', exist_ok=True)\n"
            "for i in range(300):\n"
            "    open(f'out/{i:03}.bin','wb').write(os.urandom(30000))\n")
    out = {}

    def run():
        try:
            out["r"] = d.request("POST", "/exec", {"lang": "py", "code": code,
                                                   "session_id": sid})
        except OSError as e:
            out["e"] = e

    base = log_count(d, "captured ")
    t = threading.Thread(target=run)
    t.start()
    wait_for(lambda: log_count(d, "captured ") >= base + 30, "capture under way", timeout=60)
    restart_after_kill(d)
    t.join(timeout=60)
    assert not t.is_alive()
    print("mid-capture client saw:", out)
    # The client saw the connection end, not a reply that claims success.
    assert "e" in out or out["r"].status >= 500, out
    rows = check_storage(d)
    assert any(b == sid for b, _ in rows)
    check_containers(d)
    # The session goes on, with its files.
    r = d.exec("import os\nprint(open('before.txt').read(), len(os.listdir('out')))",
               session=sid)
    assert r["session_id"] == sid and r["stdout"] == "before 300\n"
    check_storage(d)


def planted_orphan(d):
    """A blob with no row, as a crash between its rename and its row leaves it."""
    bucket, fid = "ORPHANORPHANORPHAN0_0", "ORPHANBLOBORPHANBLOB1"
    os.makedirs(os.path.join(store(d), "blobs", bucket), exist_ok=True)
    with open(os.path.join(store(d), "blobs", bucket, fid), "wb") as f:
        f.write(b"orphan")
    return bucket, fid


def test_kill9_leaves_no_orphan_past_the_next_sweep(make_daemon):
    d = make_daemon()
    kept = upload(d, [("kept.txt", b"kept")]).json()
    d.kill9()
    bucket, fid = planted_orphan(d)
    with open(os.path.join(store(d), "blobs", ".tmp", "half-written"), "wb") as f:
        f.write(b"x")
    restart(d)
    assert (bucket, fid) not in blobs_on_disk(d)[0]
    check_storage(d)
    assert d.request("GET", f"/download/{kept['storage_session_id']}/"
                            f"{kept['files'][0]['fileId']}").raw == b"kept"


def test_kill9_mid_delete(make_daemon):
    d = make_daemon(CI_CLOSE_SESSIONS_ON_SHUTDOWN="false")
    sid = d.exec("import os\nfor i in range(20): open(f'f{i}.txt','w').write(str(i))")["session_id"]
    (cid,) = d.containers(sid)
    assert len(db_query(d, "SELECT id FROM files WHERE bucket = ?", sid)) == 20
    # Another process holds the database: the delete removes the container,
    # then waits on its first write; the proxy dies right there.
    con = sqlite3.connect(db_path(d), isolation_level=None, timeout=30)
    con.execute("BEGIN EXCLUSIVE")
    out = {}

    def delete():
        try:
            out["r"] = d.request("DELETE", f"/v1/librechat/sessions/{sid}")
        except OSError as e:
            out["e"] = e

    t = threading.Thread(target=delete)
    t.start()
    try:
        wait_for(lambda: d.containers(sid) == [], "container removed", timeout=60)
        d.kill9()
    finally:
        con.execute("ROLLBACK")
        con.close()
    t.join(timeout=60)
    assert "e" in out, out
    restart(d)
    check_storage(d)
    check_containers(d)
    # The delete was never answered: the session is still whole, and works.
    r = d.exec("print(open('f7.txt').read())", session=sid)
    assert r["session_id"] == sid and r["stdout"] == "7\n"
    assert d.request("DELETE", f"/v1/librechat/sessions/{sid}").status == 200
    assert db_query(d, "SELECT id FROM files WHERE bucket = ?", sid) == []
    assert d.containers(sid) == []
    check_storage(d)


def test_kill9_after_a_delete_was_recorded(make_daemon):
    """A crash right after the delete marked the session: the next sweep finishes it."""
    d = make_daemon()
    sid = d.exec("import os\nfor i in range(5): open(f'f{i}.txt','w').write(str(i))")["session_id"]
    fids = [i for (i,) in db_query(d, "SELECT id FROM files WHERE bucket = ?", sid)]
    assert len(fids) == 5
    d.kill9()
    # Where sessions_delete stands after its first write: the container
    # gone, the session marked deleted, its files not yet.
    for cid in d.containers(sid):
        docker("rm", "-f", cid)
    con = sqlite3.connect(db_path(d), isolation_level=None)
    con.execute("UPDATE sessions SET state = 'deleted', container_id = NULL WHERE id = ?", (sid,))
    con.close()
    restart(d)
    assert db_query(d, "SELECT id FROM files WHERE bucket = ?", sid) == []
    assert db_query(d, "SELECT id FROM sessions WHERE id = ?", sid) == []
    assert d.request("GET", f"/download/{sid}/{fids[0]}").status == 404
    check_storage(d)
    check_containers(d)


# ---------------------------------------------------------------- the runner dies

@pytest.mark.parametrize("how", ["docker-kill", "host-pid"])
def test_runner_killed_from_outside(make_daemon, how):
    d = make_daemon()
    sid = d.exec("open('mine.txt','w').write('still here')")["session_id"]
    (cid,) = d.containers(sid)
    if how == "docker-kill":
        docker("kill", "--signal=KILL", cid)
    else:
        pid = int(docker("inspect", "-f", "{{.State.Pid}}", cid))
        os.kill(pid, signal.SIGKILL)
    wait_for(lambda: docker("inspect", "-f", "{{.State.Running}}", cid).strip() == "false",
             "the container stopped")
    r = d.exec("print(open('mine.txt').read())", session=sid)
    assert r["session_id"] == sid and r["stdout"] == "still here\n"
    assert d.containers(sid) != [cid]
    check_containers(d)


def test_runner_killed_mid_run(make_daemon):
    d = make_daemon()
    sid = d.exec("open('mine.txt','w').write('still here')")["session_id"]
    (cid,) = d.containers(sid)
    out = {}
    t = threading.Thread(target=lambda: out.update(r=d.request(
        "POST", "/exec", {"lang": "py", "code": "import time; time.sleep(3)", "session_id": sid})))
    t.start()
    time.sleep(1)
    docker("kill", "--signal=KILL", cid)
    t.join(timeout=60)
    assert not t.is_alive()
    print("runner killed mid-run:", out["r"].status, out["r"].raw)
    body = json_error(out["r"], 502, 503)
    assert "sandbox" in body["error"] or "sandbox" in body.get("details", ""), body
    r = d.exec("print(open('mine.txt').read())", session=sid)
    assert r["session_id"] == sid and r["stdout"] == "still here\n"
    check_containers(d)


# ---------------------------------------------------------------- SQLite locked

def hold_lock(d, seconds):
    """Hold the database's write lock from another process-like connection."""
    con = sqlite3.connect(db_path(d), isolation_level=None, timeout=30,
                          check_same_thread=False)
    con.execute("BEGIN EXCLUSIVE")
    t = threading.Timer(seconds, lambda: (con.execute("ROLLBACK"), con.close()))
    t.start()
    return t


def requests_under_lock(d, sid, up):
    """The calls LibreChat makes, all at once; their replies."""
    bucket, fid = up["storage_session_id"], up["files"][0]["fileId"]
    calls = {
        "exec_same": lambda: d.request("POST", "/exec", {
            "lang": "py", "session_id": sid,
            "code": "print(open('s.txt').read()); open('new.txt','w').write('n')"}),
        "exec_new": lambda: d.request("POST", "/exec", {
            "lang": "py", "code": "print(open('in.txt').read())", "user_id": USER,
            "files": [ref(bucket, fid, "in.txt")]}),
        "upload": lambda: upload(d, [("u.txt", b"under lock")]),
        "download": lambda: d.request("GET", f"/download/{bucket}/{fid}"),
        "sessions": lambda: d.request("GET", "/v1/librechat/sessions"),
        "health": lambda: d.request("GET", "/health", key=None),
    }
    out = {}
    threads = [threading.Thread(target=lambda k=k, f=f: out.update({k: f()}))
               for k, f in calls.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert len(out) == len(calls), "a request hung"
    return out


@pytest.mark.parametrize("seconds", [3, 8])
def test_database_locked_by_another_process(make_daemon, seconds):
    d = make_daemon()
    sid = d.exec("open('s.txt','w').write('session file')")["session_id"]
    up = upload(d, [("in.txt", b"input")]).json()
    timer = hold_lock(d, seconds)
    try:
        out = requests_under_lock(d, sid, up)
    finally:
        timer.join()
    print(f"lock held {seconds} s:", {k: (r.status, r.raw[:120]) for k, r in out.items()})
    for name, r in out.items():
        if r.status == 200:
            continue
        # Failing is allowed only cleanly: JSON, 503, with a retry hint.
        if name == "health":
            assert r.status == 503 and r.json()["status"] == "unavailable", r.raw
        else:
            json_error(r, 503)
    if seconds < 5:     # within the busy timeout: everything waited and succeeded
        assert {k: r.status for k, r in out.items()} == {k: 200 for k in out}
        assert out["exec_same"].json()["stdout"] == "session file\n"
        assert out["exec_new"].json()["stdout"] == "input\n"
    if out["exec_same"].status == 200:
        assert out["exec_same"].json()["session_id"] == sid
    (ok,) = db_query(d, "PRAGMA integrity_check")[0]
    assert ok == "ok"
    # Afterwards everything works, and the session kept its files.
    r = d.exec("print(open('s.txt').read())", session=sid)
    assert r["session_id"] == sid and r["stdout"] == "session file\n"
    assert upload(d, [("after.txt", b"after")]).status == 200
    assert d.request("GET", "/health", key=None).status == 200
    check_storage(d)
    check_containers(d)


# ---------------------------------------------------------------- the engine restarts
# Last in the file: restarting dockerd stops every container on the machine.

def dockerd_pid():
    with open("/run/dockerd-cip.pid") as f:
        return int(f.read().strip())


def restart_engine():
    """SIGTERM the dockerd of contrib/ensure-dockerd.sh, wait for it to exit, start it again."""
    pid = dockerd_pid()
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        raise AssertionError("dockerd did not stop within 90 s")
    subprocess.run(["bash", ENSURE_DOCKERD], check=True, timeout=120)


def pool_running(d):
    """Running warm-pool containers no session has taken (taken ones keep the label)."""
    held = {cid for (cid,) in db_query(
        d, "SELECT container_id FROM sessions WHERE container_id <> ''")}
    return [c for c in docker("ps", "-q", "--no-trunc", "--filter", f"label={d.label}=1",
                              "--filter", "label=cip.pool=1", "--filter",
                              "status=running").split() if c not in held]


@pytest.mark.serial
def test_zz_engine_restart_mid_run_and_between_runs(make_daemon):
    if not os.path.exists("/run/dockerd-cip.pid"):
        pytest.fail("the engine-restart case needs the dockerd of contrib/ensure-dockerd.sh")
    d = make_daemon(CI_POOL_SIZE=2, CI_MAX_RUN_TIMEOUT_SECONDS=60)
    wait_for(lambda: len(pool_running(d)) == 2, "pool full", timeout=60)
    sids = []
    for i in range(3):
        sids.append(d.exec(f"open('s{i}.txt','w').write('file {i}')")["session_id"])
    wait_for(lambda: len(pool_running(d)) == 2, "pool refilled", timeout=60)
    out, health, stop = {}, [], threading.Event()

    def long_run():
        t0 = time.monotonic()
        out["r"] = d.request("POST", "/exec", {"lang": "py", "session_id": sids[0],
                                               "code": "import time; time.sleep(20)"})
        out["took"] = time.monotonic() - t0

    def watch_health():
        while not stop.is_set():
            try:
                r = d.request("GET", "/health", key=None, timeout=30)
                health.append((r.status, r.json()))
            except OSError as e:
                health.append((None, str(e)))
            time.sleep(0.3)

    t = threading.Thread(target=long_run)
    t.start()
    w = threading.Thread(target=watch_health)
    w.start()
    time.sleep(2)
    try:
        restart_engine()
        t.join(timeout=120)
        assert not t.is_alive(), "the in-flight run hung"
        wait_for(lambda: health and health[-1][0] == 200, "healthy again", timeout=60)
    finally:
        stop.set()
        w.join()
    print("in-flight reply:", out["r"].status, out["r"].raw[:300], f"after {out['took']:.1f}s")
    body = json_error(out["r"], 502, 503)
    assert "sandbox" in json.dumps(body) or "engine" in json.dumps(body), body
    # /health said the engine was away, and then that it is back.
    down = [b for status, b in health if status == 503]
    assert down, health
    print("health while down:", down[0])
    assert down[0]["status"] == "unavailable"
    assert "docker engine unavailable" in down[0]["reason"]
    assert health[-1][0] == 200 and health[-1][1]["status"] == "ok"
    # Every container is gone: stopped without live-restore; removed if it is on.
    assert docker("info", "-f", "{{.LiveRestoreEnabled}}").strip() in ("false", "true")
    running = docker("ps", "-q", "--filter", f"label={d.label}=1").split()
    if running:
        docker("rm", "-f", *running)
    # The pool refills with working sandboxes, before any session asks.
    wait_for(lambda: len(pool_running(d)) == 2, "pool refilled after the restart", timeout=90)
    wait_for(lambda: d.request("GET", "/health", key=None).json().get("pool_size") == 2,
             "pool_size 2", timeout=30)
    # Every session's next call re-creates and re-hydrates it.
    for i, sid in enumerate(sids):
        r = d.exec(f"print(open('s{i}.txt').read())", session=sid)
        assert r["session_id"] == sid and r["stdout"] == f"file {i}\n"
    r = d.exec("print('fresh')")
    assert r["stdout"] == "fresh\n"
    wait_for(lambda: len(pool_running(d)) == 2, "pool refilled after the takes", timeout=90)
    check_storage(d)
    # What the restart left stopped is removed, not leaked.
    wait_for(lambda: all(docker("inspect", "-f", "{{.State.Running}}", c).strip() == "true"
                         for c in d.containers()), "no stopped container left", timeout=60)
    check_containers(d)
