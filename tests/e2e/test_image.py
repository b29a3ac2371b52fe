"""The proxy image: README's `docker run` line gives a working proxy.

run-e2e.sh builds code-interpreter-proxy:latest (docker/build-proxy-image.sh,
skipped when current) before the tests.  Here the line is taken from README
as written; only the host port (a free one, on loopback), the volume name
and the sandbox label (so the test's sandboxes are its own) are changed.
The sandboxes are siblings on the host engine, reached through the mounted
socket alone: nothing else is shared with the proxy's container.
"""
import json
import os
import re
import shlex
import subprocess
import time

import pytest

from conftest import DOCKER, IMAGE, docker, free_port, rand
from test_librechat_client import _run_client, client_dir  # noqa: F401 (a fixture)

HERE = os.path.dirname(os.path.abspath(__file__))
README = os.path.join(HERE, "..", "..", "README.md")
PROXY_IMAGE = os.environ.get("CI_PROXY_IMAGE", "code-interpreter-proxy:latest")
README_LINE = ("docker run -d -p 8000:8000 -v /var/run/docker.sock:/var/run/docker.sock "
               "-v ci-data:/data/code-interpreter code-interpreter-proxy")

pytestmark = pytest.mark.skipif(os.path.basename(DOCKER) != "docker",
                                reason="the image is built and run with docker only")


def readme_run_line():
    with open(README, encoding="utf-8") as f:
        lines = [ln.strip() for ln in f if ln.strip().startswith("docker run -d ")]
    assert README_LINE in lines, f"README's docker run line changed: {lines}"
    return shlex.split(README_LINE)


class Container:
    """One proxy container made from README's line; cleaned up by the fixture."""

    def __init__(self, volume=None, env=None, extra=(), socket=True):
        self.port = free_port()
        self.name = f"cip-e2e-proxy-{rand()}"
        self.label = f"cip.e2e.img.{rand()}"
        self.volume = volume or f"cip-e2e-data-{rand()}"
        args = readme_run_line()
        args[args.index("8000:8000")] = f"127.0.0.1:{self.port}:8000"
        args[args.index("ci-data:/data/code-interpreter")] = f"{self.volume}:/data/code-interpreter"
        image = args.pop()
        args[0] = DOCKER
        if not socket:
            i = args.index("/var/run/docker.sock:/var/run/docker.sock")
            del args[i - 1:i + 1]
        opts = ["--name", self.name, "-e", f"CI_SANDBOX_LABEL={self.label}",
                "-e", f"CI_SANDBOX_IMAGE={IMAGE}", "--health-interval=1s", *extra]
        for k, v in (env or {}).items():
            opts += ["-e", f"{k}={v}"]
        self.argv = args[:2] + opts + args[2:] + [PROXY_IMAGE if image ==
                                                 "code-interpreter-proxy" else image]
        self.id = None

    def run(self):
        p = subprocess.run(self.argv, capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, f"{self.argv}: {p.stderr}"
        self.id = p.stdout.strip()
        return self

    def inspect(self, fmt):
        return docker("inspect", "-f", fmt, self.name).strip()

    def logtext(self):
        p = subprocess.run([DOCKER, "logs", self.name], capture_output=True, text=True)
        return p.stdout + p.stderr

    def wait_health(self, want="healthy", timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.inspect("{{.State.Status}} {{.State.Health.Status}}")
            if state == f"running {want}":
                return
            if not state.startswith("running"):
                break
            time.sleep(0.3)
        raise AssertionError(f"{self.name} not {want}: {state}\n{self.logtext()[-3000:]}")

    def wait_exit(self, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.inspect("{{.State.Status}}") == "exited":
                return int(self.inspect("{{.State.ExitCode}}"))
            time.sleep(0.2)
        raise AssertionError(f"{self.name} still running:\n{self.logtext()[-3000:]}")

    def request(self, method, path, body=None, key="dev-ci-key"):
        import http.client
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        hdrs = {"X-API-Key": key} if key else {}
        if body is not None:
            body = json.dumps(body)
            hdrs["Content-Type"] = "application/json"
        try:
            conn.request(method, path, body=body, headers=hdrs)
            r = conn.getresponse()
            return r.status, r.read()
        finally:
            conn.close()

    def sandboxes(self):
        return docker("ps", "-aq", "--filter", f"label={self.label}=1").split()

    def cleanup(self):
        docker("rm", "-f", "-v", self.name, check=False)
        left = self.sandboxes()
        if left:
            docker("rm", "-f", "-v", *left, check=False)


@pytest.fixture
def containers():
    made, volumes = [], set()

    def make(**kw):
        c = Container(**kw)
        made.append(c)
        volumes.add(c.volume)
        return c

    yield make
    for c in made:
        c.cleanup()
    for v in volumes:
        if not v.startswith("/"):
            docker("volume", "rm", v, check=False)


def test_image_exists_and_is_small():
    size = int(docker("image", "inspect", "-f", "{{.Size}}", PROXY_IMAGE).strip())
    assert size < 300 << 20, f"{PROXY_IMAGE} is {size >> 20} MiB"
    user = docker("image", "inspect", "-f", "{{json .Config.Healthcheck}}", PROXY_IMAGE)
    assert "--healthcheck" in user


def test_readme_docker_run_line_gives_a_working_proxy(containers, client_dir):  # noqa: F811
    c = containers().run()
    c.wait_health()
    # Unprivileged, with the socket's group, and no capabilities at all.
    status = docker("exec", c.name, "cat", "/proc/1/status")
    uid = re.search(r"^Uid:\s+(\d+)", status, re.M).group(1)
    groups = re.search(r"^Groups:\s*(.*)$", status, re.M).group(1).split()
    sock_gid = str(os.stat("/var/run/docker.sock").st_gid)
    gid = re.search(r"^Gid:\s+(\d+)", status, re.M).group(1)
    assert uid == "10001" and gid == "10001" and sock_gid in groups, status
    assert re.search(r"^CapEff:\s+0+$", status, re.M), status
    # From outside: an exec that writes a file, and the file's bytes.
    st, body = c.request("POST", "/exec", {"lang": "py",
                                           "code": "open('out.txt','w').write('hi from the image')"})
    assert st == 200, body
    r = json.loads(body)
    f = r["files"][0]
    st, data = c.request("GET", f"/download/{f['storage_session_id']}/{f['id']}")
    assert st == 200 and data == b"hi from the image"
    # The session's sandbox, and the default warm pool of 2 beside it.
    st, body = c.request("GET", "/v1/librechat/sessions")
    held = [s["container_id"] for s in json.loads(body)["sessions"]]
    assert len(held) == 1 and held[0] in docker("ps", "-q", "--no-trunc").split(), held
    st, body = c.request("GET", "/health")
    h = json.loads(body)
    assert h["live_containers"] == 1 and h["pool_target"] == 2, h
    assert len(c.sandboxes()) <= 3
    st, text = c.request("GET", "/metrics")
    assert st == 200 and b'cip_execs_total{lang="py",outcome="ok"} 1' in text
    # LibreChat's own client, from outside the container.
    _run_client(client_dir, c, key="dev-ci-key")
    # docker stop: SIGTERM reaches the daemon (PID 1), which removes its
    # sandboxes and exits 0 well inside docker's 10 s.
    t0 = time.monotonic()
    docker("stop", c.name)
    assert time.monotonic() - t0 < 9, "SIGTERM was not handled: docker had to kill"
    assert c.wait_exit() == 0, c.logtext()
    assert c.sandboxes() == []
    # The volume keeps sessions and files: a new container serves them.
    c2 = containers(volume=c.volume).run()
    c2.wait_health()
    st, data = c2.request("GET", f"/download/{f['storage_session_id']}/{f['id']}")
    assert st == 200 and data == b"hi from the image"
    st, body = c2.request("POST", "/exec", {"lang": "py", "code": "print(open('out.txt').read())",
                                            "session_id": r["session_id"]})
    assert st == 200 and json.loads(body)["stdout"] == "hi from the image\n", body


def test_host_directory_as_data_is_given_to_the_proxy_user(containers, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    os.chmod(data, 0o700)  # root's: the proxy user could not write here as it is
    c = containers(volume=str(data)).run()
    c.wait_health()
    st, _ = c.request("POST", "/exec", {"lang": "py", "code": "open('x.csv','w').write('1')"})
    assert st == 200
    assert (data / "proxy.db").exists() and os.stat(data / "proxy.db").st_uid == 10001


def test_missing_sandbox_image_stops_the_container_with_the_command(containers):
    c = containers(env={"CI_SANDBOX_IMAGE": f"cip-e2e-missing-{rand()}:none"}).run()
    assert c.wait_exit() != 0
    log = c.logtext()
    assert "is missing" in log and "build-sandbox-image.sh" in log, log


def test_no_socket_fails_clearly(containers):
    c = containers(env={"CI_DOCKER_WAIT_SECONDS": "2"}, socket=False).run()
    assert c.wait_exit() != 0
    log = c.logtext()
    assert "no socket at /var/run/docker.sock" in log and "does not answer after 2 s" in log, log
