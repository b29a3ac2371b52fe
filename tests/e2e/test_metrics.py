"""GET /metrics: valid Prometheus text (promtool and the official Python
parser both read it), guarded like the admin routes, and its counters move
with what the daemon does."""
import subprocess
import time

from prometheus_client.parser import text_string_to_metric_families

import pytest

from conftest import KEY

# Runs on the core image (but the tests marked full_image): pytest.ini.
pytestmark = pytest.mark.core_image


def scrape(d, **kw):
    r = d.request("GET", "/metrics", **kw)
    assert r.status == 200, r.raw[:300]
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return r.raw.decode()


def samples(text):
    """{(name, frozenset(labels)): value} through Prometheus' own parser."""
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(text, name, **labels):
    return samples(text)[(name, frozenset(labels.items()))]


def promtool_check(text):
    p = subprocess.run(["promtool", "check", "metrics"], input=text.encode(),
                       capture_output=True, timeout=60)
    assert p.returncode == 0, p.stdout.decode() + p.stderr.decode()


def test_metrics_is_valid_prometheus_text(daemon):
    daemon.exec("print(1)")
    text = scrape(daemon)
    promtool_check(text)
    fams = {f.name: f.type for f in text_string_to_metric_families(text)}
    for name, kind in {
        "cip_sessions_active": "gauge", "cip_sessions_created": "counter",
        "cip_sessions_expired": "counter", "cip_execs": "counter",
        "cip_exec_duration_seconds": "histogram",
        "cip_container_start_duration_seconds": "histogram",
        "cip_containers_live": "gauge", "cip_files_stored": "gauge",
        "cip_files_stored_bytes": "gauge", "cip_sweeps": "counter",
        "cip_docker_errors": "counter", "process_resident_memory_bytes": "gauge",
    }.items():
        assert fams.get(name) == kind, (name, fams.get(name))
    # Every language and outcome is there from the start.
    for lang in ("py", "js", "ts", "c", "cpp", "java", "php", "rs", "go", "d", "f90", "r", "bash"):
        for outcome in ("ok", "error", "timeout", "oom", "failed"):
            assert ("cip_execs_total", frozenset({"lang": lang, "outcome": outcome}.items())) \
                in samples(text)


def test_metrics_needs_the_admin_credentials(daemon):
    assert daemon.request("GET", "/metrics", key=None).status == 401
    assert daemon.request("GET", "/metrics", key="wrong").status == 401
    # Prometheus sends a bearer credential: the key works as one.
    r = daemon.request("GET", "/v1/metrics", key=None, headers={"Authorization": f"Bearer {KEY}"})
    assert r.status == 200
    assert daemon.request("GET", "/metrics", key=None,
                          headers={"Authorization": "Bearer wrong"}).status == 401


def test_metrics_can_be_opened_to_scrapers(make_daemon):
    d = make_daemon(CI_METRICS_AUTH="false")
    assert d.request("GET", "/metrics", key=None).status == 200
    # Only /metrics: the admin routes keep their key.
    assert d.request("GET", "/v1/librechat/sessions", key=None).status == 401


@pytest.mark.full_image  # a Node run
def test_counters_move_with_execs_sessions_and_files(make_daemon):
    d = make_daemon(CI_MAX_RUN_TIMEOUT_SECONDS="2", CI_MAX_MEMORY_MB="128")
    before = scrape(d)
    assert value(before, "cip_sessions_created_total") == 0
    assert value(before, "cip_sweeps_total") == 1  # the startup sweep
    r = d.exec("open('out.csv','w').write('a,b\\n1,2\\n')")
    sid = r["session_id"]
    d.exec("import sys; sys.exit(3)", session=sid)
    d.exec("console.log(1)", lang="js", session=sid)
    d.exec("import time; time.sleep(30)", session=sid)
    d.exec("x = []\nwhile True: x.append(bytearray(32 << 20))", session=sid)
    after = scrape(d)
    promtool_check(after)
    for lang, outcome, n in (("py", "ok", 1), ("py", "error", 1), ("js", "ok", 1),
                             ("py", "timeout", 1), ("py", "oom", 1), ("py", "failed", 0)):
        assert value(after, "cip_execs_total", lang=lang, outcome=outcome) == n, (lang, outcome)
    assert value(after, "cip_exec_duration_seconds_count") == 5
    # The timed-out run alone took 2 s; the buckets are cumulative.
    assert value(after, "cip_exec_duration_seconds_sum") >= 2
    assert value(after, "cip_exec_duration_seconds_bucket", le="1") <= 4
    assert value(after, "cip_exec_duration_seconds_bucket", le="+Inf") == 5
    assert value(after, "cip_sessions_created_total") == 1
    assert value(after, "cip_sessions_active") == 1
    assert value(after, "cip_containers_live") == 1
    assert value(after, "cip_container_start_duration_seconds_count") >= 1
    assert value(after, "cip_files_stored") == 1
    assert value(after, "cip_files_stored_bytes") == 8
    # An admin delete ends the session: the gauges fall, its counter rises.
    assert d.request("DELETE", f"/v1/librechat/sessions/{sid}").status == 200
    gone = scrape(d)
    assert value(gone, "cip_sessions_deleted_total") == 1
    assert value(gone, "cip_sessions_active") == 0
    assert value(gone, "cip_containers_live") == 0
    assert value(gone, "cip_files_stored") == 0
    assert value(gone, "cip_docker_errors_total") == 0
    assert value(gone, "cip_store_failures_total") == 0


def test_expiry_and_sweeps_are_counted(make_daemon):
    d = make_daemon(CI_SESSION_TTL_MINUTES="0.03", CI_SWEEP_INTERVAL_SECONDS="0.5")
    d.exec("print(1)")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        text = scrape(d)
        if value(text, "cip_sessions_expired_total") == 1:
            break
        time.sleep(0.3)
    assert value(text, "cip_sessions_expired_total") == 1
    assert value(text, "cip_sessions_active") == 0
    assert value(text, "cip_sweeps_total") >= 2
