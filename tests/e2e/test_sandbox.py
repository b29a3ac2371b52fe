"""The sandbox holds: privileges, the runner's isolation, bombs, restarts."""
import json
import time

import pytest

from conftest import GVISOR, docker

# Runs on the core image (but the tests marked full_image): pytest.ini.
pytestmark = pytest.mark.core_image


def sh(daemon, script, sid=None):
    r = daemon.exec(script, lang="bash", session=sid)
    return r


def test_user_code_runs_unprivileged_without_network(daemon):
    # no_new_privs through prctl(PR_GET_NO_NEW_PRIVS): gVisor's /proc/self/status lacks the line.
    # /var/tmp is the sandbox user's to write on any Debian, but on the read-only root.
    r = sh(daemon, "id -u; id -g; grep CapEff /proc/self/status; "
           "echo NoNewPrivs: $(python3 -c 'import ctypes; print(ctypes.CDLL(None).prctl(39, 0, 0, 0, 0))');"
           "cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' '; "
           "touch /var/tmp/x 2>&1 | grep -c 'Read-only' ; echo $HOME")
    lines = r["stdout"].split("\n")
    assert lines[0:2] == ["1000", "1000"]
    assert lines[2].split() == ["CapEff:", "0000000000000000"]
    assert lines[3].split() == ["NoNewPrivs:", "1"]
    assert lines[4] == "lo"
    assert lines[5] == "1"
    assert lines[6] == "/mnt/data"


def test_user_code_cannot_reach_or_signal_the_runner(daemon):
    r = sh(daemon, "ls /run/cip 2>&1; ls /proc/1/fd 2>&1; cat /proc/1/environ 2>&1;"
           "kill -9 1 2>&1; echo rc=$?; kill -9 $(pgrep -f 'runner relay') 2>&1; echo rc=$?;"
           "python3 -c \"import socket; s=socket.socket(socket.AF_UNIX); s.connect('/run/cip/runner.sock')\" 2>&1 | tail -1")
    out = r["stdout"]
    if GVISOR:
        # gVisor's /proc ignores PR_SET_DUMPABLE for environ: the runner's
        # environment is readable, and it is the container's, which the
        # user's own run is given anyway: nothing of the proxy's is in it.
        assert "ls: cannot access '/run/cip': Invalid argument" in out
        assert "ls: cannot access '/proc/1/fd': Invalid argument" in out
        assert "CIP_PYTHON_PRELOAD=" in out and "KEY" not in out and "TOKEN" not in out
    else:
        assert "ls: cannot open directory '/run/cip': Permission denied" in out
        assert "ls: cannot open directory '/proc/1/fd': Permission denied" in out
        assert "/proc/1/environ: Permission denied" in out
    assert out.count("rc=1") == 2
    assert "PermissionError" in out
    assert sh(daemon, "echo still", r["session_id"])["stdout"] == "still\n"


def test_container_is_hardened(daemon):
    sid = daemon.exec("print(1)")["session_id"]
    (cid,) = daemon.containers(sid)
    # The whole inspect as JSON: Go-template lists print with spaces inside.
    (info,) = json.loads(docker("inspect", cid))
    hc = info["HostConfig"]
    assert (hc["ReadonlyRootfs"], hc["NetworkMode"]) == (True, "none")
    if "BoundingCaps" in info:
        # Podman lists in CapDrop the defaults it dropped, not "ALL", and
        # shows CapAdd empty: what the container keeps is here.
        assert sorted(info["BoundingCaps"]) == ["CAP_KILL", "CAP_SETGID", "CAP_SETUID"]
    else:
        assert "ALL" in hc["CapDrop"]
    assert "no-new-privileges" in hc["SecurityOpt"]
    # CI_MAX_MEMORY_MB for the runs, plus CI_PYTHON_PRELOAD_MB for the
    # pre-loaded Python server (on by default).
    # Under gVisor the host's pids cap leaves room for the Sentry's threads
    # and stubs (128 * 64 + 1024), and RLIMIT_NPROC caps the user at 128.
    pids = 128 * 64 + 1024 if GVISOR else 128
    assert [hc["Memory"], hc["MemorySwap"], hc["PidsLimit"], hc["NanoCpus"]] == \
        [(512 + 160) << 20, (512 + 160) << 20, pids, 1000000000]
    # Podman names the limits as setrlimit(2) does: RLIMIT_NPROC.
    nproc = [u["Soft"] for u in hc["Ulimits"]
             if u["Name"].lower().removeprefix("rlimit_") == "nproc"]
    assert nproc == [128 if GVISOR else 8192]
    assert "CIP_PYTHON_PRELOAD=numpy pandas matplotlib.pyplot" in info["Config"]["Env"]
    labels = info["Config"]["Labels"]
    assert labels["cip.session"] == sid and "cip.created" in labels


def test_fork_bomb_is_contained(daemon):
    r = sh(daemon, "bomb() { bomb | bomb & }; bomb; sleep 2; echo survived")
    sid = r["session_id"]
    after = sh(daemon, "ps -e --no-headers | wc -l; echo ok", sid)
    lines = after["stdout"].split("\n")
    assert len(lines) > 1 and lines[1] == "ok", (r, after["stderr"][-2000:], after)
    assert int(lines[0]) < 10, after


def test_memory_bomb_is_contained_and_explained(make_daemon):
    # Time to fill the cap: under gVisor each new page is a trip through the
    # Sentry, and there the whole sandbox is OOM-killed, then replaced.
    daemon = make_daemon(CI_MAX_RUN_TIMEOUT_SECONDS="30")
    # Filled, not zeroed: a zeroed bytearray is calloc'd pages that are
    # never touched, which no memory cap counts.
    r = daemon.exec("x = []\nwhile True: x.append(b'x' * (64 << 20))")
    assert r["code"] == 137 and r["signal"] == 9
    assert "ran out of memory" in r["stderr"] and "512 MiB" in r["stderr"]
    assert daemon.exec("print('after')", session=r["session_id"])["stdout"] == "after\n"


def test_disk_bomb_is_contained(daemon):
    r = sh(daemon, "dd if=/dev/zero of=/mnt/data/big bs=1M count=400 2>&1; "
           "rm -f /mnt/data/big; echo done")
    assert "No space left on device" in r["stdout"] and "256 MiB" in r["stdout"]
    assert r["stdout"].endswith("done\n")


def test_proxy_restart_reattaches_to_the_running_container(make_daemon):
    d = make_daemon()
    sid = d.exec("open('state.txt','w').write('survives')")["session_id"]
    (cid,) = d.containers(sid)
    d.kill9()
    d.start()
    r = d.exec("print(open('state.txt').read())", session=sid)
    assert r["session_id"] == sid and r["stdout"] == "survives\n"
    assert d.containers(sid) == [cid]


def test_container_removed_behind_the_proxy_is_replaced(daemon):
    sid = daemon.exec("print(1)")["session_id"]
    (cid,) = daemon.containers(sid)
    docker("rm", "-f", cid)
    r = daemon.exec("print('new home')", session=sid)
    assert r["session_id"] == sid and r["stdout"] == "new home\n"
    (new,) = daemon.containers(sid)
    assert new != cid


def test_container_killed_mid_run_gives_a_clear_error(daemon):
    sid = daemon.exec("print(1)")["session_id"]
    (cid,) = daemon.containers(sid)
    import threading
    killer = threading.Timer(1.0, lambda: docker("kill", cid))
    killer.start()
    r = daemon.request("POST", "/exec", {"lang": "py", "code": "import time; time.sleep(3)",
                                         "session_id": sid})
    killer.join()
    assert r.status == 502 and "sandbox" in r.json()["error"]
    assert daemon.exec("print('recovered')", session=sid)["stdout"] == "recovered\n"


def test_a_lost_channel_keeps_the_container_and_its_files(daemon):
    """As after an engine service restart: the stream dies, the container runs on."""
    sid = daemon.exec("open('kept.txt','w').write('still here')")["session_id"]
    (cid,) = daemon.containers(sid)
    docker("exec", "-u", "0", cid, "pkill", "-x", "-f", "/opt/cip/runner relay")
    r = daemon.exec("print(open('kept.txt').read())", session=sid)
    assert r["stdout"] == "still here\n"
    assert daemon.containers(sid) == [cid]
