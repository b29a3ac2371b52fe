"""Soak: 200 sessions created and expired leave nothing behind.

Not a timing test: it checks the end state (no container, no file row past
retention, no orphan blob) after the sweeper has done its work.
"""
import os
import sqlite3
import threading
import time

import pytest

from test_lifecycle import listed, wait_for

# Runs on the core image (but the tests marked full_image): pytest.ini.
pytestmark = pytest.mark.core_image

SESSIONS = int(os.environ.get("CIP_SOAK_SESSIONS", "200"))


def test_200_sessions_expire_and_leave_nothing(make_daemon):
    d = make_daemon(CI_SESSION_TTL_MINUTES="0.05", CI_SWEEP_INTERVAL_SECONDS="0.5",
                    CI_FILE_RETENTION_HOURS="0.001", CI_MAX_RUN_TIMEOUT_SECONDS="20")
    errors, made = [], []
    lock = threading.Lock()

    def worker(n):
        for i in range(n):
            r = d.request("POST", "/exec", {"lang": "py", "code":
                          f"open('out.txt','w').write('{i}')\nprint({i})"})
            with lock:
                (made if r.status == 200 else errors).append(r)

    threads = [threading.Thread(target=worker, args=(SESSIONS // 4,)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, [(e.status, e.raw[:200]) for e in errors[:5]]
    assert len(made) == SESSIONS
    assert len({r.json()["session_id"] for r in made}) == SESSIONS
    wait_for(lambda: not listed(d) and not d.containers(), "every session expired", timeout=180)
    db = os.path.join(d.storage, "proxy.db")

    def no_files_left():
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
            rows = con.execute("SELECT COUNT(*) FROM files").fetchone()[0]
        blobs = [os.path.join(root, f) for root, _, files in
                 os.walk(os.path.join(d.storage, "blobs")) for f in files]
        return rows == 0 and not blobs

    wait_for(no_files_left, "every file past retention deleted, no orphan blob", timeout=60)
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
        states = dict(con.execute("SELECT state, COUNT(*) FROM sessions GROUP BY state").fetchall())
    assert states == {"expired": SESSIONS}
    assert "sweep:" in d.logtext()
