"""contrib/: the LibreChat compose override, the systemd unit, the Helm chart.

Only one test starts a proxy (in a container, through compose).  Checked:
  * every YAML file parses, and every Helm template renders (with a small
    Go-template evaluator below, for the subset the chart uses) to YAML;
  * the compose service matches the README's `docker run` line (image,
    socket mount, data volume, port) and the daemon's defaults, and
    `docker-compose config` accepts it merged over a LibreChat-shaped base;
  * the override, brought up for real over a LibreChat stand-in (the sandbox
    image running `sleep`), serves /exec by service name, publishes no port,
    runs as uid 10001, and on `stop` drains and removes its sandboxes;
  * every CI_* name anywhere under contrib/ is one the daemon knows
    (`code-interpreter-proxy --config-table`), and the settings each file
    gives are accepted by the daemon's own parser (`--healthcheck` exits 2
    on a bad value, 1 when the config is good but nothing listens);
  * every .Values.x.y in the chart's templates exists in values.yaml;
  * SECURITY.md lists exactly the Engine API routes src/docker.c calls;
  * `systemd-analyze verify` passes on the unit.
A missing tool is a failure, never a skip (contrib/install-deps.sh installs
them all).
"""
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import time

import pytest
import yaml

from conftest import DOCKER, IMAGE, PROXY, docker, rand

SRCDIR = os.environ.get("CIP_SRCDIR") or os.path.join(os.path.dirname(__file__), "..", "..")
CONTRIB = os.path.join(SRCDIR, "contrib")
COMPOSE = os.path.join(CONTRIB, "librechat", "docker-compose.override.yml")
ENV_EXAMPLE = os.path.join(CONTRIB, "librechat", "env.example")
UNIT = os.path.join(CONTRIB, "systemd", "code-interpreter-proxy.service")
UNIT_ENV = os.path.join(CONTRIB, "systemd", "code-interpreter-proxy.env")
CHART = os.path.join(CONTRIB, "helm", "code-interpreter-proxy")
SERVICE = "code-interpreter"
PROXY_IMAGE = os.environ.get("CI_PROXY_IMAGE", "code-interpreter-proxy:latest")

# CI_* names that are variables of contrib's own scripts, not the daemon's.
SCRIPT_VARS = {"CI_DOCKERD_ARGS": "ensure-dockerd.sh", "CI_DOCKERD_WAIT": "ensure-dockerd.sh",
               "CI_DOCKER_CONFIG": "setup-runsc.sh"}


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def tool(name):
    path = shutil.which(name)
    if not path:
        pytest.fail(f"{name} is not installed: run contrib/install-deps.sh")
    return path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- the daemon

@pytest.fixture(scope="module")
def config_table():
    """{name: default} from the daemon's own table."""
    r = subprocess.run([PROXY, "--config-table"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    table = {}
    for line in r.stdout.splitlines():
        m = re.match(r"\| `(CI_[A-Z0-9_]+)` \| (?:`([^`]*)`|\(empty\)) \|", line)
        if m:
            table[m.group(1)] = m.group(2) or ""
    assert len(table) > 20 and "CI_AUTH" in table, r.stdout
    return table


def daemon_accepts(env):
    """Run the daemon's config parser on env (CI_* only): '' if accepted, else its message.

    --healthcheck loads the configuration exactly as the daemon does, then asks
    /health on CI_HOST:CI_PORT: 2 means a bad setting, 1 that nothing answers.
    The port is moved to a free one so that nothing does answer.
    """
    full = {k: v for k, v in os.environ.items() if not k.startswith("CI_")}
    full.update(env)
    full["CI_PORT"] = str(free_port())
    if full.get("CI_HOST") not in (None, "0.0.0.0", "127.0.0.1", "::", "::1"):
        full["CI_HOST"] = "127.0.0.1"
    r = subprocess.run([PROXY, "--healthcheck"], env=full, capture_output=True, text=True,
                       timeout=30)
    if r.returncode == 1:
        return ""
    return f"exit {r.returncode}: {r.stdout}{r.stderr}"


# ------------------------------------------------------------- YAML and names

def contrib_files():
    for root, dirs, files in os.walk(CONTRIB):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for f in files:
            yield os.path.join(root, f)


def test_every_yaml_file_parses():
    seen = []
    for path in contrib_files():
        if path.endswith((".yml", ".yaml")) and os.sep + "templates" + os.sep not in path:
            docs = list(yaml.safe_load_all(read(path)))
            assert docs and all(d is not None for d in docs), f"{path}: empty YAML"
            seen.append(os.path.relpath(path, CONTRIB))
    for want in ("librechat/docker-compose.override.yml", "helm/code-interpreter-proxy/Chart.yaml",
                 "helm/code-interpreter-proxy/values.yaml"):
        assert want.replace("/", os.sep) in seen, f"{want} not found"


def test_every_ci_name_is_a_daemon_setting(config_table):
    unknown = {}
    for path in contrib_files():
        try:
            text = read(path)
        except UnicodeDecodeError:
            continue
        for name in set(re.findall(r"\bCI_[A-Z0-9_]*[A-Z0-9]\b", text)):
            if name in config_table:
                continue
            if SCRIPT_VARS.get(name) == os.path.basename(path):
                continue
            unknown.setdefault(name, []).append(os.path.relpath(path, CONTRIB))
    assert not unknown, f"CI_* names the daemon does not know: {unknown}"
    # The exceptions must stay true: each is a variable of its script.
    for name, script in SCRIPT_VARS.items():
        assert re.search(r"\$\{?" + name, read(os.path.join(CONTRIB, script))), name


def test_security_lists_every_engine_call():
    """SECURITY.md's table of Engine API routes is the set src/docker.c uses."""
    src = re.sub(r"/\*.*?\*/", "", read(os.path.join(SRCDIR, "src", "docker.c")), flags=re.S)
    used = set()
    for lit in re.findall(r'"((?:[^"\\]|\\.)*)"', src):
        for p in re.findall(r"/((?:_ping|images|containers|exec)\b[^\"\s?]*)", lit):
            used.add(p.replace("%s", "{}").rstrip(":"))
    sec = read(os.path.join(CONTRIB, "SECURITY.md"))
    table = sec[sec.index("| method | path |"):sec.index("It never calls")]
    documented = {re.sub(r"\{[a-z]+\}", "{}", p)
                  for p in re.findall(r"\| (?:GET|POST|DELETE|HEAD|PUT) \| `/([^`\s?]+)", table)}
    assert used and used == documented, (sorted(used - documented), sorted(documented - used))


# ------------------------------------------------------------------ compose

def readme_docker_run():
    """The README's `docker run ... code-interpreter-proxy` command, parsed."""
    m = re.search(r"docker run [^`\n]*code-interpreter-proxy[^`\n]*", read(os.path.join(SRCDIR, "README.md")))
    if not m:
        pytest.fail("README.md has no `docker run ... code-interpreter-proxy` line to compare with")
    line = m.group(0)
    args = shlex.split(line.split(" #")[0])
    run = {"ports": [], "volumes": [], "image": None}
    i = 2
    while i < len(args):
        a = args[i]
        if a in ("-p", "--publish"):
            run["ports"].append(args[i + 1])
            i += 2
        elif a in ("-v", "--volume"):
            run["volumes"].append(args[i + 1])
            i += 2
        elif a in ("-e", "--env", "--env-file", "--name", "--restart", "--group-add", "--network"):
            i += 2
        elif a.startswith("-"):
            i += 1
        else:
            run["image"] = a
            break
    assert run["image"], line
    return run


def image_ref(name):
    return name if ":" in name.rsplit("/", 1)[-1] else name + ":latest"


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load(read(COMPOSE))


def compose_env(service):
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(e.split("=", 1) for e in env)
    return env


def test_compose_service_matches_the_readme(compose, config_table):
    svc = compose["services"][SERVICE]
    run = readme_docker_run()
    assert image_ref(svc["image"]) == image_ref(run["image"])
    assert svc["image"].split(":")[0] == "code-interpreter-proxy"
    # The socket mount, exactly as the README's.
    sock = [v for v in run["volumes"] if "docker.sock" in v]
    assert sock and sock[0] in svc["volumes"], (sock, svc["volumes"])
    # The data volume: a named volume at the same path, which is the
    # daemon's default storage path and the one the service sets.
    data_target = [v.split(":")[1] for v in run["volumes"] if "docker.sock" not in v]
    assert data_target == [config_table["CI_FILE_STORAGE_PATH"]], run["volumes"]
    named = [v for v in svc["volumes"] if v.split(":")[1] == data_target[0]]
    assert len(named) == 1 and not named[0].startswith(("/", ".")), svc["volumes"]
    assert named[0].split(":")[0] in compose["volumes"]
    env = compose_env(svc)
    assert env["CI_FILE_STORAGE_PATH"] == data_target[0]
    # The port: the README's container port, the daemon's default, and not
    # published on the host by default.
    container_ports = {p.split(":")[-1] for p in run["ports"]}
    assert container_ports == {config_table["CI_PORT"]} == {str(env["CI_PORT"])}
    assert "ports" not in svc, "the override must not publish the port by default"
    assert svc["restart"] == "unless-stopped"
    assert svc.get("pull_policy") == "never", "no registry has the image"


def test_compose_healthcheck_and_stop(compose, config_table):
    svc = compose["services"][SERVICE]
    test = svc["healthcheck"]["test"]
    assert test[0] == "CMD" and test[1:] == ["code-interpreter-proxy", "--healthcheck"], test
    # The flag exists: a config that is good and no proxy listening gives 1.
    assert daemon_accepts({}) == ""
    # SIGTERM drains for the run timeout + 20 s: compose must wait longer.
    grace = svc["stop_grace_period"]
    m = re.fullmatch(r"(\d+)s", grace)
    assert m, grace
    assert int(m.group(1)) > int(config_table["CI_MAX_RUN_TIMEOUT_SECONDS"]) + 20
    assert svc.get("stop_signal", "SIGTERM") == "SIGTERM"


def test_compose_points_librechat_at_the_service(compose, config_table):
    api = compose["services"]["api"]
    env = compose_env(api)
    url = env["LIBRECHAT_CODE_BASEURL"]
    default = re.fullmatch(r"\$\{LIBRECHAT_CODE_BASEURL:-(.*)\}", url).group(1)
    assert default == f"http://{SERVICE}:{config_table['CI_PORT']}"
    assert SERVICE in api["depends_on"]


def env_file(path):
    """KEY=VALUE lines that are not comments."""
    out = {}
    for line in read(path).splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            k, _, v = line.partition("=")
            assert re.fullmatch(r"[A-Z][A-Z0-9_]*", k), line
            out[k] = v
    return out


def test_env_example(compose, config_table):
    env = env_file(ENV_EXAMPLE)
    assert env["LIBRECHAT_CODE_BASEURL"] == f"http://{SERVICE}:{config_table['CI_PORT']}"
    assert env["CI_API_KEY"] == env["LIBRECHAT_CODE_API_KEY"]
    assert env["CI_API_KEY"] != config_table["CI_API_KEY"], "the example must not use the default key"
    ci = {k: v for k, v in env.items() if k.startswith("CI_")}
    assert daemon_accepts(ci) == ""
    # Every CI_* the example sets reaches the service.
    passed = compose_env(compose["services"][SERVICE])
    assert set(ci) <= set(passed), set(ci) - set(passed)
    # The three auth setups it documents are ones the daemon takes.
    for auth in ("none", "api-key", "jwt", "jwt,api-key"):
        assert f"CI_AUTH={auth}" in read(ENV_EXAMPLE), auth
        extra = {"CI_JWT_PUBLIC_KEY": "/nonexistent.pem"} if "jwt" in auth else {}
        assert daemon_accepts({**ci, "CI_AUTH": auth, **extra}) == "", auth


LIBRECHAT_BASE = """
services:
  api:
    container_name: LibreChat
    image: registry.example/librechat:latest
    depends_on:
      - mongodb
    environment:
      - HOST=0.0.0.0
      - MONGO_URI=mongodb://mongodb:27017/LibreChat
    volumes:
      - type: bind
        source: ./.env
        target: /app/.env
  mongodb:
    image: mongo
"""


def compose_config(tmp_path, dotenv):
    """`docker-compose config` of a LibreChat-shaped base plus the override."""
    dc = tool("docker-compose")
    (tmp_path / "docker-compose.yml").write_text(LIBRECHAT_BASE)
    shutil.copy(COMPOSE, tmp_path / "docker-compose.override.yml")
    (tmp_path / ".env").write_text(dotenv)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CI_", "LIBRECHAT_", "COMPOSE_", "DOCKER_"))}
    return subprocess.run([dc, "config"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120)


def test_docker_compose_config(tmp_path, config_table):
    r = compose_config(tmp_path, read(ENV_EXAMPLE))
    assert r.returncode == 0, r.stderr
    merged = yaml.safe_load(r.stdout)
    svc = merged["services"][SERVICE]
    example = env_file(ENV_EXAMPLE)
    env = svc["environment"]
    assert env["CI_API_KEY"] == example["CI_API_KEY"]
    assert env["CI_AUTH"] == example["CI_AUTH"]
    assert daemon_accepts({k: str(v) for k, v in env.items()}) == ""
    api = merged["services"]["api"]
    assert api["environment"]["LIBRECHAT_CODE_BASEURL"] == example["LIBRECHAT_CODE_BASEURL"]
    assert api["environment"]["MONGO_URI"].startswith("mongodb://"), "base env kept"
    deps = api["depends_on"]
    assert SERVICE in deps and "mongodb" in deps, deps
    # compose prints volumes short ("src:target:rw") or long ({type, source, target}).
    vols = [v if isinstance(v, dict) else dict(zip(("source", "target"), v.split(":")))
            for v in svc["volumes"]]
    assert any(v["target"] == config_table["CI_FILE_STORAGE_PATH"] and v["source"].endswith(
        "code-interpreter-data") for v in vols), svc["volumes"]
    assert {"source": "/var/run/docker.sock", "target": "/var/run/docker.sock"}.items() <= \
        [v for v in vols if v["target"] == "/var/run/docker.sock"][0].items(), vols
    assert "ports" not in svc


def test_docker_compose_requires_a_key(tmp_path):
    r = compose_config(tmp_path, "")
    assert r.returncode != 0 and "CI_API_KEY" in r.stderr, (r.returncode, r.stderr)


STUB_STACK = """
services:
  api:
    image: {image}
    entrypoint: ["sleep", "infinity"]
    stop_signal: SIGKILL
    user: "0:0"
    environment:
      - HOST=0.0.0.0
"""

EXEC_FROM_API = """
import json, urllib.request
base = __import__("os").environ["LIBRECHAT_CODE_BASEURL"]
req = urllib.request.Request(base + "/exec", data=json.dumps({"lang": "py", "code": "print(6*7)"}).encode(),
                             headers={"Content-Type": "application/json"})
print(json.dumps(json.load(urllib.request.urlopen(req, timeout=120))))
"""


@pytest.mark.skipif(os.path.basename(DOCKER) != "docker", reason="compose runs on docker only")
def test_compose_stack_runs(tmp_path, compose):
    """The override, up for real: LibreChat's stand-in reaches the proxy by name."""
    dc = tool("docker-compose")
    project = f"cipe2e{rand()}"
    label = f"cip.e2e.compose.{rand()}"
    (tmp_path / "docker-compose.yml").write_text(STUB_STACK.format(image=IMAGE))
    shutil.copy(COMPOSE, tmp_path / "docker-compose.override.yml")
    shutil.copy(ENV_EXAMPLE, tmp_path / ".env")
    # Only what a test must change: its own images, label, and a fast health poll.
    (tmp_path / "test.yml").write_text(yaml.safe_dump({"services": {SERVICE: {
        "image": PROXY_IMAGE,
        "environment": {"CI_SANDBOX_LABEL": label, "CI_SANDBOX_IMAGE": IMAGE},
        "healthcheck": {**compose["services"][SERVICE]["healthcheck"], "interval": "1s",
                        "start_period": "1s"},
    }}}))
    files = ["-f", "docker-compose.yml", "-f", "docker-compose.override.yml", "-f", "test.yml"]
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CI_", "LIBRECHAT_", "COMPOSE_", "DOCKER_"))}
    env["COMPOSE_PROJECT_NAME"] = project

    def dcrun(*args, check=True, timeout=180):
        r = subprocess.run([dc, *files, *args], cwd=tmp_path, env=env, capture_output=True,
                           text=True, timeout=timeout)
        assert r.returncode == 0 or not check, f"docker-compose {' '.join(args)}: {r.stderr}"
        return r

    try:
        dcrun("up", "-d")
        cid = dcrun("ps", "-q", SERVICE).stdout.strip()
        deadline = time.monotonic() + 60
        while docker("inspect", "-f", "{{.State.Health.Status}}", cid).strip() != "healthy":
            assert time.monotonic() < deadline, docker("logs", cid)
            time.sleep(0.5)
        assert docker("port", cid).strip() == "", "port 8000 must not be published"
        status = docker("exec", cid, "cat", "/proc/1/status")
        assert re.search(r"^Uid:\s+10001\s", status, re.M), status
        r = dcrun("exec", "-T", "api", "python3", "-c", EXEC_FROM_API)
        reply = json.loads(r.stdout)
        assert reply["stdout"] == "42\n" and reply["code"] == 0, reply
        assert docker("ps", "-q", "--filter", f"label={label}=1").split(), "no sandbox started"
        # SIGTERM: the proxy drains, removes its sandboxes, and exits 0.
        dcrun("stop", SERVICE)
        assert docker("inspect", "-f", "{{.State.ExitCode}}", cid).strip() == "0", docker("logs", cid)
        assert docker("ps", "-aq", "--filter", f"label={label}=1").split() == []
    finally:
        dcrun("down", "-v", "-t", "30", check=False)
        left = docker("ps", "-aq", "--filter", f"label={label}=1").split()
        if left:
            docker("rm", "-f", "-v", *left, check=False)


# ------------------------------------------------------------------ systemd

def test_systemd_unit_verifies(tmp_path):
    analyze = tool("systemd-analyze")
    text = read(UNIT)
    exec_start = re.search(r"^ExecStart=(\S+)", text, re.M).group(1)
    assert exec_start == "/usr/local/bin/code-interpreter-proxy"   # where make install puts it
    if not os.path.exists(exec_start):
        text = text.replace(f"ExecStart={exec_start}", f"ExecStart={os.path.abspath(PROXY)}")
    unit = tmp_path / "code-interpreter-proxy.service"
    unit.write_text(text)
    r = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and not r.stderr.strip(), r.stderr
    r = subprocess.run([analyze, "security", "--offline=yes", str(unit)], capture_output=True,
                       text=True, timeout=120)
    m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", r.stdout)
    assert m, r.stdout[-2000:] + r.stderr
    assert float(m.group(1)) <= 2.5, r.stdout


def unit_settings():
    out = {}
    for line in read(UNIT).splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            k, _, v = line.partition("=")
            out.setdefault(k, []).append(v)
    return out


def test_systemd_unit_settings(config_table):
    s = unit_settings()
    assert set(s["After"][0].split()) >= {"docker.service"}
    assert "docker.service" in s["Wants"][0].split()
    assert s["EnvironmentFile"] == ["/etc/code-interpreter-proxy.env"]
    assert s["SupplementaryGroups"] == ["docker"]
    assert s["Restart"] == ["on-failure"] and s["KillSignal"] == ["SIGTERM"]
    assert int(s["TimeoutStopSec"][0]) > int(config_table["CI_MAX_RUN_TIMEOUT_SECONDS"]) + 20
    for k, v in {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
                 "PrivateTmp": "yes"}.items():
        assert s[k] == [v], k
    assert set(s["RestrictAddressFamilies"][0].split()) == {"AF_UNIX", "AF_INET", "AF_INET6"}
    assert "PrivateUsers" not in s, "the docker group would be unmapped"
    # Storage: the state directory is where CI_FILE_STORAGE_PATH points.
    env = dict(e.split("=", 1) for e in s["Environment"])
    state = "/var/lib/" + s["StateDirectory"][0]
    assert env["CI_FILE_STORAGE_PATH"] == state
    assert daemon_accepts(env) == ""


def test_systemd_env_file():
    env = env_file(UNIT_ENV)
    assert daemon_accepts(env) == "", env
    assert env["CI_HOST"] == "127.0.0.1"


# -------------------------------------------------------------- helm chart

class TemplateError(Exception):
    pass


class GoTemplate:
    """Enough of Go's text/template and Helm's functions for this chart.

    Anything outside the subset (else if, variable assignment, unknown
    functions) is an error, so the chart cannot drift past what is checked.
    """
    ACTION = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.S)

    def __init__(self, files):
        self.defines = {}
        self.trees = {}
        for name, src in files.items():
            self.trees[name] = self.parse(self.lex(src))

    # ---- lexing and parsing
    def lex(self, src):
        out, pos = [], 0
        for m in self.ACTION.finditer(src):
            text = src[pos:m.start()]
            if m.group(1):
                text = text.rstrip()
            out.append(("text", text))
            out.append(("action", m.group(2).strip(), bool(m.group(3))))
            pos = m.end()
        out.append(("text", src[pos:]))
        # Right-trim: the text after a "-}}" loses its leading white space.
        for i, tok in enumerate(out):
            if tok[0] == "action" and tok[2]:
                out[i + 1] = ("text", out[i + 1][1].lstrip())
        return out

    def parse(self, toks):
        root, stack = [], []
        cur = root
        for tok in toks:
            if tok[0] == "text":
                if tok[1]:
                    cur.append(("text", tok[1]))
                continue
            act = tok[1]
            if act.startswith("/*"):
                continue
            word = act.split(None, 1)[0] if act else ""
            rest = act[len(word):].strip()
            if word in ("if", "with", "range", "define"):
                node = [word, rest, [], None]
                cur.append(node)
                stack.append((cur, node))
                cur = node[2]
            elif word == "else":
                if rest:
                    raise TemplateError(f"unsupported: else {rest}")
                parent, node = stack[-1]
                node[3] = []
                cur = node[3]
            elif word == "end":
                parent, node = stack.pop()
                cur = parent
                if node[0] == "define":
                    self.defines[json.loads(node[1])] = node[2]
                    parent.remove(node)
            else:
                cur.append(("out", act))
        if stack:
            raise TemplateError("unclosed action")
        return root

    # ---- expressions
    TOKEN = re.compile(r'\s*("(?:[^"\\]|\\.)*"|\(|\)|\||:=|,|[^\s()|,]+)')

    def tokens(self, expr):
        toks, pos = [], 0
        expr = expr.strip()
        while pos < len(expr):
            m = self.TOKEN.match(expr, pos)
            if not m:
                raise TemplateError(f"cannot read {expr!r}")
            toks.append(m.group(1))
            pos = m.end()
        return toks

    def pipeline(self, toks, scope):
        """Evaluate tokens (a pipeline); parentheses nest."""
        cmds, cmd, depth, sub = [], [], 0, []
        for t in toks:
            if depth:
                if t == "(":
                    depth += 1
                elif t == ")":
                    depth -= 1
                    if depth == 0:
                        cmd.append(("value", self.pipeline(sub, scope)))
                        sub = []
                        continue
                sub.append(t)
            elif t == "(":
                depth = 1
            elif t == "|":
                cmds.append(cmd)
                cmd = []
            else:
                cmd.append(t)
        cmds.append(cmd)
        value, piped = None, False
        for c in cmds:
            value = self.command(c, scope, value if piped else None, piped)
            piped = True
        return value

    def operand(self, t, scope):
        if isinstance(t, tuple):
            return t[1]
        if t.startswith('"'):
            return json.loads(t)
        if re.fullmatch(r"-?\d+", t):
            return int(t)
        if t in ("true", "false"):
            return t == "true"
        if t == "nil":
            return None
        if t.startswith("$"):
            name, _, path = t.partition(".")
            if name not in scope["vars"]:
                raise TemplateError(f"undefined variable {name}")
            return self.field(scope["vars"][name], path, t)
        if t.startswith("."):
            return self.field(scope["dot"], t[1:], t)
        raise TemplateError(f"unknown operand {t}")

    @staticmethod
    def field(value, path, expr):
        for part in [p for p in path.split(".") if p]:
            if value is None:
                raise TemplateError(f"nil pointer evaluating {expr}")
            if not isinstance(value, dict):
                raise TemplateError(f"{expr}: {part} of a non-map")
            value = value.get(part)
        return value

    def command(self, c, scope, piped_value, piped):
        if not c:
            raise TemplateError("empty command")
        head = c[0]
        if isinstance(head, str) and re.fullmatch(r"[a-zA-Z][a-zA-Z0-9]*", head) and \
                head not in ("true", "false", "nil"):
            args = [self.operand(t, scope) for t in c[1:]]
            if piped:
                args.append(piped_value)
            return self.call(head, args, scope)
        if len(c) != 1 or piped:
            raise TemplateError(f"not a function: {c}")
        return self.operand(head, scope)

    @staticmethod
    def truth(v):
        return not (v is None or v is False or v == 0 or v == "" or v == [] or v == {})

    @staticmethod
    def text(v):
        if v is None:
            return ""
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (dict, list)):
            raise TemplateError(f"printing a collection: {v!r}")
        return str(v)

    def call(self, fn, a, scope):
        t = self.truth
        if fn == "include":
            return self.render(self.defines[a[0]], {"dot": a[1], "vars": {"$": a[1]}})
        if fn == "toYaml":
            return "" if a[0] is None else yaml.safe_dump(a[0], default_flow_style=False,
                                                          sort_keys=True).rstrip("\n")
        if fn in ("nindent", "indent"):
            pad = " " * a[0]
            body = "\n".join(pad + line for line in a[1].split("\n"))
            return ("\n" if fn == "nindent" else "") + body
        if fn == "quote":
            return "" if a[0] is None else json.dumps(self.text(a[0]))
        if fn == "default":
            return a[1] if t(a[1]) else a[0]
        if fn == "required":
            if a[1] is None or a[1] == "":
                raise TemplateError(f"required: {a[0]}")
            return a[1]
        if fn == "trunc":
            return a[1][:a[0]]
        if fn == "trimSuffix":
            return a[1][:-len(a[0])] if a[0] and a[1].endswith(a[0]) else a[1]
        if fn == "printf":
            return re.sub(r"%[sdv]", "{}", a[0]).format(*[self.text(x) for x in a[1:]])
        if fn == "contains":
            return a[0] in self.text(a[1])
        if fn == "eq":
            return a[0] == a[1]
        if fn == "not":
            return not t(a[0])
        if fn == "and":
            for x in a:
                if not t(x):
                    return x
            return a[-1]
        if fn == "or":
            for x in a:
                if t(x):
                    return x
            return a[-1]
        raise TemplateError(f"unsupported function {fn}")

    # ---- rendering
    def render(self, nodes, scope):
        out = []
        for n in nodes:
            if n[0] == "text":
                out.append(n[1])
            elif n[0] == "out":
                out.append(self.text(self.pipeline(self.tokens(n[1]), scope)))
            elif n[0] == "if":
                v = self.pipeline(self.tokens(n[1]), scope)
                branch = n[2] if self.truth(v) else (n[3] or [])
                out.append(self.render(branch, scope))
            elif n[0] == "with":
                v = self.pipeline(self.tokens(n[1]), scope)
                if self.truth(v):
                    out.append(self.render(n[2], {**scope, "dot": v}))
                elif n[3]:
                    out.append(self.render(n[3], scope))
            elif n[0] == "range":
                m = re.fullmatch(r"(\$\w+)\s*,\s*(\$\w+)\s*:=\s*(.+)", n[1], re.S)
                if not m:
                    raise TemplateError(f"unsupported range {n[1]}")
                v = self.pipeline(self.tokens(m.group(3)), scope)
                items = sorted(v.items()) if isinstance(v, dict) else list(enumerate(v or []))
                for k, item in items:
                    inner = {"dot": item, "vars": {**scope["vars"], m.group(1): k, m.group(2): item}}
                    out.append(self.render(n[2], inner))
            else:
                raise TemplateError(f"unexpected {n[0]}")
        return "".join(out)

    def render_file(self, name, context):
        return self.render(self.trees[name], {"dot": context, "vars": {"$": context}})


def deep_merge(base, over):
    out = dict(base)
    for k, v in over.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


@pytest.fixture(scope="module")
def chart():
    meta = yaml.safe_load(read(os.path.join(CHART, "Chart.yaml")))
    values = yaml.safe_load(read(os.path.join(CHART, "values.yaml")))
    tdir = os.path.join(CHART, "templates")
    files = {f: read(os.path.join(tdir, f)) for f in sorted(os.listdir(tdir))}
    return meta, values, files


def render(chart, overrides):
    meta, values, files = chart
    tmpl = GoTemplate(files)
    ctx = {
        "Values": deep_merge(values, overrides),
        "Release": {"Name": "cip", "Namespace": "ci-ns", "Service": "Helm"},
        "Chart": {"Name": meta["name"], "Version": meta["version"], "AppVersion": meta["appVersion"]},
    }
    out = {}
    for name in files:
        if name.startswith("_"):
            continue
        text = tmpl.render_file(name, ctx)
        if name.endswith(".txt"):
            out[name] = text
            continue
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise AssertionError(f"{name} does not render to YAML: {e}\n{text}")
        if doc is not None:
            out[name] = doc
    return out


REQUIRED = {"docker": {"socketGid": 998}, "auth": {"apiKey": "k" * 32}}
EVERYTHING = deep_merge(REQUIRED, {
    "auth": {"mode": "jwt,api-key", "jwtPublicKey": "-----BEGIN PUBLIC KEY-----\nMCow\n-----END PUBLIC KEY-----\n"},
    "metrics": {"enabled": True, "requireAuth": False},
    "networkPolicy": {"enabled": True},
    "nodeSelector": {"kubernetes.io/hostname": "node-1"},
    "tolerations": [{"key": "sandbox", "operator": "Exists"}],
    "podAnnotations": {"a": "b"},
    "podLabels": {"tier": "code"},
    "persistence": {"storageClass": "local-path"},
    "env": {"CI_SANDBOX_RUNTIME": "runsc"},
})


def test_chart_metadata(chart, config_table):
    meta, values, _ = chart
    assert meta["apiVersion"] == "v2" and meta["name"] == "code-interpreter-proxy"
    m = re.search(r"AC_INIT\(\[code-interpreter-proxy\], \[([^\]]+)\]", read(os.path.join(SRCDIR, "configure.ac")))
    assert meta["appVersion"] == m.group(1), "appVersion follows configure.ac"
    assert values["sandbox"]["image"] == config_table["CI_SANDBOX_IMAGE"]
    assert values["image"]["repository"] == "code-interpreter-proxy"


def test_chart_values_referenced_exist(chart):
    _, values, files = chart
    missing = []
    for name, text in files.items():
        for path in re.findall(r"\$?\.Values\.([A-Za-z0-9_.]+)", text):
            v = values
            for part in path.split("."):
                if not isinstance(v, dict) or part not in v:
                    missing.append(f"{name}: .Values.{path}")
                    break
                v = v[part]
    assert not missing, missing


def env_of(container):
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_chart_renders_defaults(chart, config_table):
    out = render(chart, REQUIRED)
    assert set(out) == {"deployment.yaml", "service.yaml", "secret.yaml", "pvc.yaml", "NOTES.txt"}
    dep = out["deployment.yaml"]
    assert dep["kind"] == "Deployment"
    assert dep["spec"]["replicas"] == 1 and dep["spec"]["strategy"] == {"type": "Recreate"}
    pod = dep["spec"]["template"]["spec"]
    assert dep["spec"]["selector"]["matchLabels"].items() <= dep["spec"]["template"]["metadata"]["labels"].items()
    assert out["service.yaml"]["spec"]["selector"] == dep["spec"]["selector"]["matchLabels"]
    assert "annotations" not in dep["spec"]["template"]["metadata"]
    sc = pod["securityContext"]
    assert sc["runAsUser"] == 10001 and sc["runAsNonRoot"] is True
    assert sc["supplementalGroups"] == [998]
    assert pod["terminationGracePeriodSeconds"] > int(config_table["CI_MAX_RUN_TIMEOUT_SECONDS"]) + 20
    (c,) = pod["containers"]
    # Exactly these keys: a wrong nindent shows up as a stray or a null one.
    assert set(c) == {"name", "image", "imagePullPolicy", "ports", "env", "livenessProbe",
                      "readinessProbe", "resources", "securityContext", "volumeMounts"}, set(c)
    assert set(pod) == {"automountServiceAccountToken", "enableServiceLinks", "securityContext",
                        "terminationGracePeriodSeconds", "containers", "volumes"}, set(pod)
    values = chart[1]
    assert c["resources"] == values["resources"]
    assert c["securityContext"] == values["containerSecurityContext"]
    assert c["livenessProbe"] == values["livenessProbe"]
    assert c["image"] == "code-interpreter-proxy:latest" and c["imagePullPolicy"] == "Never"
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    for probe in ("livenessProbe", "readinessProbe"):
        assert c[probe]["httpGet"] == {"path": "/health", "port": "http"}, probe
    assert c["ports"] == [{"name": "http", "containerPort": int(config_table["CI_PORT"]), "protocol": "TCP"}]
    env = env_of(c)
    assert set(env) <= set(config_table), set(env) - set(config_table)
    assert env["CI_FILE_STORAGE_PATH"] == config_table["CI_FILE_STORAGE_PATH"]
    assert env["CI_PORT"] == config_table["CI_PORT"]
    assert env["CI_API_KEY"]["secretKeyRef"] == {"name": "cip-code-interpreter-proxy", "key": "api-key"}
    assert "CI_JWT_PUBLIC_KEY" not in env and "CI_METRICS_AUTH" not in env
    plain = {k: v for k, v in env.items() if isinstance(v, str)}
    assert daemon_accepts({**plain, "CI_API_KEY": "x"}) == ""
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    vols = {v["name"]: v for v in pod["volumes"]}
    assert mounts["data"] == config_table["CI_FILE_STORAGE_PATH"]
    assert vols["data"]["persistentVolumeClaim"]["claimName"] == out["pvc.yaml"]["metadata"]["name"]
    assert mounts["docker-socket"] == "/var/run/docker.sock"
    assert "unix://" + mounts["docker-socket"] == env["CI_DOCKER_HOST"]
    assert vols["docker-socket"]["hostPath"] == {"path": "/var/run/docker.sock", "type": "Socket"}
    assert mounts["tmp"] == "/tmp" and "emptyDir" in vols["tmp"]
    assert out["secret.yaml"]["stringData"] == {"api-key": "k" * 32}
    assert "http://cip-code-interpreter-proxy.ci-ns.svc:8000" in out["NOTES.txt"]


def test_chart_renders_everything(chart):
    out = render(chart, EVERYTHING)
    assert "networkpolicy.yaml" in out
    dep = out["deployment.yaml"]
    meta = dep["spec"]["template"]["metadata"]
    assert meta["annotations"] == {"prometheus.io/scrape": "true", "prometheus.io/port": "8000",
                                   "prometheus.io/path": "/metrics", "a": "b"}
    assert meta["labels"]["tier"] == "code"
    pod = dep["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"kubernetes.io/hostname": "node-1"}
    assert pod["tolerations"] == [{"key": "sandbox", "operator": "Exists"}]
    env = env_of(pod["containers"][0])
    assert env["CI_METRICS_AUTH"] == "false" and env["CI_AUTH"] == "jwt,api-key"
    assert env["CI_SANDBOX_RUNTIME"] == "runsc"
    assert env["CI_JWT_PUBLIC_KEY"]["secretKeyRef"]["key"] == "jwt-public-key"
    assert out["secret.yaml"]["stringData"]["jwt-public-key"].startswith("-----BEGIN PUBLIC KEY-----\n")
    assert out["pvc.yaml"]["spec"]["storageClassName"] == "local-path"
    np = out["networkpolicy.yaml"]
    assert np["spec"]["podSelector"]["matchLabels"] == dep["spec"]["selector"]["matchLabels"]
    assert np["spec"]["ingress"][0]["from"] == chart[1]["networkPolicy"]["from"]


def test_chart_variants(chart):
    out = render(chart, deep_merge(REQUIRED, {"persistence": {"enabled": False},
                                              "auth": {"existingSecret": "mine", "mode": "none"}}))
    assert "pvc.yaml" not in out and "secret.yaml" not in out
    pod = out["deployment.yaml"]["spec"]["template"]["spec"]
    assert {v["name"]: v for v in pod["volumes"]}["data"] == {"name": "data", "emptyDir": {}}
    assert env_of(pod["containers"][0])["CI_API_KEY"]["secretKeyRef"]["name"] == "mine"
    assert "networkPolicy.enabled=true" in out["NOTES.txt"]
    out = render(chart, deep_merge(REQUIRED, {"persistence": {"existingClaim": "old"}}))
    assert "pvc.yaml" not in out
    pod = out["deployment.yaml"]["spec"]["template"]["spec"]
    assert {v["name"]: v for v in pod["volumes"]}["data"]["persistentVolumeClaim"] == {"claimName": "old"}


@pytest.mark.parametrize("overrides, message", [
    ({"auth": {"apiKey": "k"}}, "docker.socketGid is required"),
    ({"docker": {"socketGid": 998}}, "auth.apiKey is required"),
    (deep_merge(REQUIRED, {"auth": {"mode": "jwt"}}), "auth.jwtPublicKey"),
])
def test_chart_required_values(chart, overrides, message):
    with pytest.raises(TemplateError, match=re.escape(message)):
        render(chart, overrides)
