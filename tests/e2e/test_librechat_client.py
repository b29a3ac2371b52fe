"""LibreChat's own client code against the daemon, both generations.

tests/librechat/client-test.mjs runs @librechat/agents 3.2.21 (the client
the wire contract was first read from): its execute_code and bash_tool
executors, driven by its ToolNode so files travel between calls as
`_injected_files`, plus LibreChat's server-side upload / freshness check /
download done with axios + form-data as LibreChat's server does them.
tests/librechat/agents-3.9/client-test.mjs does the same with 3.9.2, the
newest: bash_tool python3 heredocs, the windowed image reader, the
originalFilename mount name, the profile header and Stop.  See the scripts.

The npm dependencies are installed with `npm ci --ignore-scripts` (never
running install scripts: @scarf/scarf's would phone home) when
tests/librechat/node_modules is missing or does not match package-lock.json;
a failed install fails the test, it never skips.  When the source tree is
read-only (make distcheck), the package is copied to the build tree, or to
a temporary directory, and installed there.
"""
import json
import os
import shutil
import subprocess
import tempfile

import pytest

from conftest import BUILDDIR, KEY, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
SRC_32 = os.path.normpath(os.path.join(HERE, "..", "librechat"))
SRC_39 = os.path.join(SRC_32, "agents-3.9")
PACKAGE_FILES = ("package.json", "package-lock.json", "client-test.mjs")
FINAL = "librechat-client: "


def _node():
    for cand in ("/usr/bin/node", shutil.which("node")):
        if cand and os.access(cand, os.X_OK):
            return cand
    pytest.fail("node (v20+) is required for the LibreChat client test and was not found")


def _npm():
    for cand in ("/usr/bin/npm", shutil.which("npm")):
        if cand and os.access(cand, os.X_OK):
            return cand
    pytest.fail("npm is required to install the LibreChat client test's dependencies")


def _locked_packages(path):
    with open(path, encoding="utf-8") as f:
        packages = dict(json.load(f).get("packages", {}))
    packages.pop("", None)          # the root project: absent from the hidden lockfile
    return packages


def _installed_is_current(d):
    """npm's hidden lockfile records what node_modules holds; compare it."""
    hidden = os.path.join(d, "node_modules", ".package-lock.json")
    if not os.path.isfile(hidden):
        return False
    try:
        return _locked_packages(hidden) == _locked_packages(os.path.join(d, "package-lock.json"))
    except (OSError, ValueError):
        return False


def _writable(d):
    try:
        probe = tempfile.NamedTemporaryFile(dir=d, prefix=".cip-probe-")
    except OSError:
        return False
    probe.close()
    return True


def _npm_env():
    env = dict(os.environ)
    env.update({
        "SCARF_ANALYTICS": "false",
        "npm_config_ignore_scripts": "true",
        "npm_config_audit": "false",
        "npm_config_fund": "false",
        "npm_config_update_notifier": "false",
        "npm_config_loglevel": "warn",
    })
    return env


def _npm_ci(d):
    r = subprocess.run([_npm(), "ci", "--ignore-scripts", "--no-audit", "--no-fund"],
                       cwd=d, env=_npm_env(), capture_output=True, text=True, timeout=1200)
    if r.returncode != 0:
        pytest.fail(f"npm ci in {d} failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-5000:]}")
    if not _installed_is_current(d):
        pytest.fail(f"npm ci in {d} left node_modules out of step with package-lock.json")


def _copy_package(src, dst):
    os.makedirs(dst, exist_ok=True)
    for name in PACKAGE_FILES:
        shutil.copyfile(os.path.join(src, name), os.path.join(dst, name))
    return dst


def _installed(src, tag, tmp_path_factory):
    """A directory holding src's client-test.mjs with its node_modules current."""
    missing = [n for n in PACKAGE_FILES if not os.path.isfile(os.path.join(src, n))]
    if missing:
        pytest.fail(f"{src} lacks {', '.join(missing)}")
    if _installed_is_current(src):
        return src
    if _writable(src):
        _npm_ci(src)
        return src
    # Read-only source tree (make distcheck): install beside the build,
    # where a rerun finds it; else in a temporary directory.
    for base in (os.path.join(BUILDDIR, "tests"), None):
        if base is not None:
            if not (os.path.isdir(base) and _writable(base)):
                continue
            dst = _copy_package(src, os.path.join(base, f"librechat-client-{tag}"))
        else:
            dst = _copy_package(src, str(tmp_path_factory.mktemp(f"librechat-client-{tag}")))
        if not _installed_is_current(dst):
            _npm_ci(dst)
        return dst
    pytest.fail("no writable directory to install the LibreChat client test in")


@pytest.fixture(scope="module")
def client_dir(tmp_path_factory):
    """@librechat/agents 3.2.21."""
    return _installed(SRC_32, "3.2", tmp_path_factory)


@pytest.fixture(scope="module")
def client_dir_39(tmp_path_factory):
    """@librechat/agents 3.9.2."""
    return _installed(SRC_39, "3.9", tmp_path_factory)


def _run_client(client_dir, daemon, key=None, min_checks=30):
    env = {k: v for k, v in os.environ.items()
           if k.upper() not in ("PROXY", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY",
                                "LIBRECHAT_CODE_BASEURL", "LIBRECHAT_CODE_API_KEY", "CIP_KEY")}
    env["CIP_BASEURL"] = f"http://127.0.0.1:{daemon.port}/v1"
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    if key:
        env["CIP_KEY"] = key
    r = subprocess.run([_node(), os.path.join(client_dir, "client-test.mjs")], cwd=client_dir,
                       env=env, capture_output=True, text=True, timeout=600)
    out = r.stdout + (f"\n[stderr]\n{r.stderr[-4000:]}" if r.stderr.strip() else "")
    lines = [ln for ln in r.stdout.splitlines() if ln.strip()]
    last = lines[-1] if lines else ""
    assert r.returncode == 0 and last.startswith(FINAL) and last.endswith(" passed, 0 failed"), (
        f"client-test.mjs exited {r.returncode}; last line {last!r}\n{out}\n"
        f"--- daemon log (tail) ---\n{daemon.logtext()[-4000:]}")
    passed = int(last[len(FINAL):].split()[0])
    assert passed >= min_checks, f"only {passed} checks ran:\n{out}"
    return passed


def test_librechat_client_no_auth(client_dir, make_daemon):
    """The LibreChat setup: no auth header at all (no CodeAPI JWT configured)."""
    d = make_daemon(CI_AUTH="none", CI_MAX_RUN_TIMEOUT_SECONDS="30", CI_POOL_SIZE="2")
    _run_client(client_dir, d)


def test_librechat_client_key_through_auth_headers(client_dir, make_daemon):
    """A host passing X-API-Key through 3.2.21's `authHeaders` hook; without it, 401."""
    d = make_daemon(CI_AUTH="api-key", CI_MAX_RUN_TIMEOUT_SECONDS="30", CI_POOL_SIZE="2")
    _run_client(client_dir, d, key=KEY)


def test_librechat_client_39_no_auth(client_dir_39, make_daemon):
    """agents 3.9.2 as current LibreChat runs it: no auth header, the profile header."""
    d = make_daemon(CI_AUTH="none", CI_MAX_RUN_TIMEOUT_SECONDS="30", CI_POOL_SIZE="2")
    _run_client(client_dir_39, d, min_checks=23)
    # The client exits as soon as its aborted call throws; the daemon sees the
    # closed socket on its next poll (every 100 ms), which may be after that.
    wait_for(lambda: "ptc: the client went away; run cancelled" in d.logtext(),
             "the daemon cancels the PTC run whose client went away")


def test_librechat_client_39_key(client_dir_39, make_daemon):
    """The same through an X-API-Key given to the tools' authHeaders."""
    d = make_daemon(CI_AUTH="api-key", CI_MAX_RUN_TIMEOUT_SECONDS="30", CI_POOL_SIZE="2")
    _run_client(client_dir_39, d, key=KEY, min_checks=23)
