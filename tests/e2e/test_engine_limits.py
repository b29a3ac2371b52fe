"""The startup refusal of an engine that would drop a sandbox cap.

An engine can accept a create with a memory, pids or CPU cap and apply
none: rootless Podman on cgroup v1 does, with an empty Warnings list.  The
daemon asks GET /info at startup and refuses to start, naming the caps and
the reason, unless CI_ACCEPT_UNENFORCED_LIMITS accepts them.

Two engines here.  A fake one on a unix socket (any machine) answers /info
as scripted, so each rule is seen end to end through the real daemon.  The
real rootless Podman service (marker rootless_podman) is started by
tests/engines/podman.sh, which passes its socket in CIP_ROOTLESS_PODMAN_HOST
and an image its store holds in CIP_ROOTLESS_PODMAN_IMAGE; there the test
also shows, from inside a sandbox, that the cap really is not applied.
"""
import http.server
import json
import os
import socketserver
import tempfile
import threading

import pytest

from conftest import KEY, Daemon, rand, wait_for

# Runs on the core image (but the tests marked full_image): pytest.ini.
pytestmark = pytest.mark.core_image

ROOTLESS_HOST = os.environ.get("CIP_ROOTLESS_PODMAN_HOST", "")
ROOTLESS_IMAGE = os.environ.get("CIP_ROOTLESS_PODMAN_IMAGE", "")

# GET /info of rootless Podman 4.3.1 on cgroup v1 (this machine), trimmed.
ROOTLESS_PODMAN_V1 = {"MemoryLimit": True, "SwapLimit": True, "CpuCfsQuota": True,
                      "CpuCfsPeriod": True, "PidsLimit": True, "CgroupDriver": "cgroupfs",
                      "SecurityOptions": ["name=seccomp,profile=default"],
                      "CgroupVersion": "1", "Rootless": True, "ServerVersion": "4.3.1"}
DOCKERD = {"MemoryLimit": True, "SwapLimit": True, "CpuCfsQuota": True, "PidsLimit": True,
           "CgroupDriver": "cgroupfs", "CgroupVersion": "1",
           "SecurityOptions": ["name=seccomp,profile=default"]}


class FakeEngine:
    """Just enough of the Engine API for a daemon to start: _ping, /info
    as given, any image present, no containers."""

    def __init__(self, info, podman=False):
        self.path = os.path.join(tempfile.gettempdir(), f"cip-fake-engine-{rand()}.sock")
        self.info, self.podman = info, podman
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def address_string(self):
                return "fake"

            def reply(self, status, body, ctype="application/json"):
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Api-Version", "1.41")
                if fake.podman:
                    self.send_header("Libpod-Api-Version", "4.3.1")
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            def do_GET(self):
                p = self.path.split("?")[0]
                if p == "/_ping":
                    self.reply(200, "OK", "text/plain")
                elif p.endswith("/info"):
                    self.reply(200, json.dumps(fake.info))
                elif "/images/" in p:
                    self.reply(200, json.dumps({"Id": "sha256:" + "0" * 64}))
                elif p.endswith("/containers/json"):
                    self.reply(200, "[]")
                else:
                    self.reply(404, json.dumps({"message": "fake engine: no " + p}))

            do_HEAD = do_GET

        class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
            daemon_threads = True

        self.server = Server(self.path, Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        os.unlink(self.path)

    @property
    def host(self):
        return "unix://" + self.path


def refused(d):
    """Start d, expect it to exit non-zero; its log."""
    d.start(wait=False)
    rc = d.proc.wait(timeout=60)
    text = d.logtext()
    assert rc != 0, f"the daemon started:\n{text}"
    d.proc = None
    d.log.close()
    return text


def refusal_line(text):
    lines = [ln for ln in text.splitlines() if "refusing to start" in ln]
    assert len(lines) == 1, text
    return lines[0]


def test_rootless_cgroup_v1_is_refused_then_accepted(make_daemon):
    with FakeEngine(ROOTLESS_PODMAN_V1, podman=True) as eng:
        line = refusal_line(refused(make_daemon(start=False, CI_DOCKER_HOST=eng.host)))
        assert " error " in line or '"error"' in line
        assert "memory (CI_MAX_MEMORY_MB), pids (CI_MAX_PIDS) and cpu (CI_MAX_CPUS)" in line
        assert "rootless on cgroup v1" in line
        assert "CI_ACCEPT_UNENFORCED_LIMITS=memory,pids,cpu " in line

        # Two of three accepted: still refused, for the third alone.
        line = refusal_line(refused(make_daemon(start=False, CI_DOCKER_HOST=eng.host,
                                                CI_ACCEPT_UNENFORCED_LIMITS="memory,cpu")))
        assert "caps on pids (CI_MAX_PIDS):" in line and "memory (" not in line

        d = make_daemon(CI_DOCKER_HOST=eng.host, CI_ACCEPT_UNENFORCED_LIMITS="all")
        warn = [ln for ln in d.logtext().splitlines() if "starting anyway" in ln]
        assert len(warn) == 1 and "rootless on cgroup v1" in warn[0], d.logtext()
        assert d.request("GET", "/health", key=None).status == 200


def test_each_missing_cap_is_named_with_its_reason(make_daemon):
    info = dict(DOCKERD, MemoryLimit=False)
    del info["CpuCfsQuota"]
    with FakeEngine(info) as eng:
        line = refusal_line(refused(make_daemon(start=False, CI_DOCKER_HOST=eng.host)))
        assert ("memory (CI_MAX_MEMORY_MB) and cpu (CI_MAX_CPUS): "
                "memory: GET /info says MemoryLimit=false; "
                "cpu: GET /info does not say CpuCfsQuota") in line
        assert "pids (" not in line
        assert "CI_ACCEPT_UNENFORCED_LIMITS=memory,cpu " in line


def test_an_engine_that_applies_the_caps_starts_quietly(make_daemon):
    with FakeEngine(DOCKERD) as eng:
        d = make_daemon(CI_DOCKER_HOST=eng.host)
        assert "enforce" not in d.logtext()


def test_a_bad_list_is_a_config_error(make_daemon):
    d = make_daemon(start=False, CI_ACCEPT_UNENFORCED_LIMITS="memory,disk")
    text = refused(d)
    assert 'CI_ACCEPT_UNENFORCED_LIMITS="memory,disk" is not valid' in text


@pytest.mark.rootless_podman
def test_rootless_podman_is_refused_and_its_caps_are_really_dropped(make_daemon):
    """Against the real rootless Podman service on this cgroup v1 machine."""
    assert ROOTLESS_HOST and ROOTLESS_IMAGE, (
        "CIP_ROOTLESS_PODMAN_HOST and CIP_ROOTLESS_PODMAN_IMAGE unset: "
        "run through tests/engines/podman.sh")
    env = {"CI_DOCKER_HOST": ROOTLESS_HOST, "CI_SANDBOX_IMAGE": ROOTLESS_IMAGE,
           "CI_PYTHON_PRELOAD": ""}
    line = refusal_line(refused(make_daemon(start=False, **env)))
    assert "memory (CI_MAX_MEMORY_MB), pids (CI_MAX_PIDS) and cpu (CI_MAX_CPUS)" in line
    assert "rootless on cgroup v1" in line

    d = make_daemon(CI_ACCEPT_UNENFORCED_LIMITS="memory,pids,cpu", CI_MAX_MEMORY_MB="64",
                    CI_MAX_PIDS="32", **env)
    assert "starting anyway" in d.logtext()
    # What the refusal was about: the sandbox's cgroup carries no cap.
    r = d.exec("cat /sys/fs/cgroup/memory/memory.limit_in_bytes; "
               "cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || echo none", lang="bash")
    memory, pids = r["stdout"].split()
    assert int(memory) > 64 << 20 and pids != "32", r
