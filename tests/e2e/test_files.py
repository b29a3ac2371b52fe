"""Files the code writes: captured, stored, reported and downloadable."""
import hashlib
import re
import urllib.parse

import pytest

from conftest import KEY

# Runs on the core image (but the tests marked full_image): pytest.ini.
pytestmark = pytest.mark.core_image


def download(daemon, bucket, file_id, query=""):
    return daemon.request("GET", f"/download/{bucket}/{file_id}{query}")


def by_name(reply):
    return {f["name"]: f for f in reply["files"]}


def test_new_files_are_captured_and_downloadable(daemon):
    r = daemon.exec("import os\nos.makedirs('out/deep', exist_ok=True)\n"
                    "open('out/deep/r.csv','w').write('a,b\\n1,2\\n')\n"
                    "open('data.bin','wb').write(bytes(range(256)) * 40)\n"
                    "print('done')", user_id="665f1c2e9b1e8a0012345678")
    sid = r["session_id"]
    files = by_name(r)
    assert set(files) == {"out/deep/r.csv", "data.bin"}
    for f in files.values():
        assert f["storage_session_id"] == sid and f["session_id"] == sid
        assert len(f["id"]) == 21
    got = download(daemon, sid, files["out/deep/r.csv"]["id"], "?kind=user&id=665f1c2e9b1e8a0012345678")
    assert got.status == 200 and got.raw == b"a,b\n1,2\n"
    assert got.headers["Content-Type"] == "text/csv"
    assert got.headers["Content-Disposition"] == "attachment; filename=\"r.csv\"; filename*=UTF-8''r.csv"
    got = download(daemon, sid, files["data.bin"]["id"])
    assert hashlib.sha256(got.raw).hexdigest() == hashlib.sha256(bytes(range(256)) * 40).hexdigest()
    assert got.headers["Content-Type"] == "application/octet-stream"


@pytest.mark.full_image
def test_plot_is_a_png(daemon):
    r = daemon.exec("import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.savefig('plot.png')",
                    user_id="u")
    (f,) = r["files"]
    got = download(daemon, r["session_id"], f["id"], "?kind=user&id=u")
    assert got.status == 200 and got.headers["Content-Type"] == "image/png"
    assert got.raw.startswith(b"\x89PNG\r\n\x1a\n")


def test_only_new_or_changed_files_are_reported(daemon):
    first = daemon.exec("open('a.txt','w').write('1')\nopen('b.txt','w').write('2')")
    sid = first["session_id"]
    assert set(by_name(first)) == {"a.txt", "b.txt"}
    second = daemon.exec("open('a.txt','w').write('1')\nopen('b.txt','w').write('changed')\n"
                         "open('c.txt','w').write('new')", session=sid)
    files = by_name(second)
    assert set(files) == {"b.txt", "c.txt"}
    assert files["b.txt"]["id"] != by_name(first)["b.txt"]["id"]
    assert download(daemon, sid, files["b.txt"]["id"]).raw == b"changed"
    assert download(daemon, sid, by_name(first)["b.txt"]["id"]).raw == b"2"
    third = daemon.exec("print('nothing written')", session=sid)
    assert third["files"] == []


def test_outputs_are_captured_whatever_the_exit(daemon):
    r = daemon.exec("open('partial.txt','w').write('x')\nraise SystemExit(4)")
    assert r["code"] == 4 and set(by_name(r)) == {"partial.txt"}
    r = daemon.exec("open('slow.txt','w').write('y')\nwhile True: pass", timeout=3000)
    assert r["message"] == "Execution timed out" and set(by_name(r)) == {"slow.txt"}


def test_code_file_symlinks_hidden_dirs_and_fifos_are_not_outputs(daemon):
    r = daemon.exec("ln -s /etc/passwd pw; ln -s /etc etc; mkfifo fifo; mkdir -p .cache/x; "
                    "echo h > .cache/x/h.txt; echo v > visible.txt; ln visible.txt hard.txt",
                    lang="bash")
    assert set(by_name(r)) == {"visible.txt", "hard.txt"}


def test_caps_on_size_and_count(make_daemon):
    d = make_daemon(CI_MAX_FILE_SIZE_BYTES=1000, CI_MAX_FILES_PER_RUN=5)
    r = d.exec("open('big.bin','wb').write(b'x' * 1001)\nopen('ok.bin','wb').write(b'x' * 1000)")
    assert set(by_name(r)) == {"ok.bin"}
    r = d.exec("for i in range(20): open(f'f{i:02}.txt','w').write(str(i))")
    assert len(r["files"]) == 5


def test_many_tiny_files_and_a_sparse_giant(daemon):
    r = daemon.exec("import os\nos.makedirs('many')\n"
                    "for i in range(10000): open(f'many/{i}.txt','w').write('x')\n"
                    "f = open('sparse.bin','wb'); f.truncate(1 << 30); f.close()")
    assert r["code"] == 0 and r["status"] is None
    assert len(r["files"]) == 50
    assert "sparse.bin" not in by_name(r)


def test_download_errors(daemon):
    r = daemon.exec("open('x.txt','w').write('x')")
    sid, fid = r["session_id"], r["files"][0]["id"]
    other = daemon.exec("print(1)")["session_id"]
    for path in (f"/download/{other}/{fid}", f"/download/{sid}/AAAAAAAAAAAAAAAAAAAAA",
                 f"/download/{sid}/{fid}x", f"/download/{sid}/.."):
        got = daemon.request("GET", path)
        assert got.status == 404 and got.json()["error"] == "File not found", path
    # Traversal attempts: a 404 JSON error either from the route (a bucket
    # that is no id) or from routing (decoded %2F adds segments).
    for path in (f"/download/{sid}/..%2F..%2Fetc%2Fpasswd", f"/download/../{fid}"):
        got = daemon.request("GET", path)
        assert got.status == 404 and got.json()["error"] in ("Not found", "File not found"), path
    assert daemon.request("GET", f"/download/{sid}/{fid}", key="wrong").status == 401


def test_unicode_names_are_encoded_per_rfc5987(daemon):
    r = daemon.exec("open('résumé 2024.txt','w').write('cv')")
    (f,) = r["files"]
    assert f["name"] == "résumé 2024.txt"
    got = download(daemon, r["session_id"], f["id"])
    disp = got.headers["Content-Disposition"]
    assert disp.startswith('attachment; filename="r__sum__ 2024.txt"')
    assert disp.endswith("filename*=UTF-8''" + urllib.parse.quote("résumé 2024.txt", safe=""))


def test_listings_have_the_contracts_shapes(daemon):
    r = daemon.exec("import os\nos.makedirs('rep', exist_ok=True)\n"
                    "open('rep/q1.csv','w').write('a,b\\n')\nopen('README','w').write('x')")
    sid = r["session_id"]
    ids = {f["name"]: f["id"] for f in r["files"]}
    csv_key = f"{sid}/{ids['rep/q1.csv']}.csv"
    plain_key = f"{sid}/{ids['README']}"
    simple = daemon.request("GET", f"/files/{sid}").json()
    assert sorted(simple) == sorted([csv_key, plain_key])
    summary = daemon.request("GET", f"/v1/files/{sid}?detail=summary&entity_id=agent_x").json()
    entry = next(e for e in summary if e["name"] == csv_key)
    assert entry["size"] == 4 and len(entry["etag"]) == 64
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entry["lastModified"])
    full = daemon.request("GET", f"/files/{sid}?detail=full").json()
    entry = next(e for e in full if e["name"] == csv_key)
    assert entry["metadata"]["original-filename"] == "rep/q1.csv"
    assert entry["contentType"] == "text/csv"
    norm = daemon.request("GET", f"/files/{sid}?detail=normalized").json()
    entry = next(e for e in norm if e["id"] == ids["rep/q1.csv"])
    assert entry["name"] == "rep/q1.csv" and entry["storage_session_id"] == sid
    assert daemon.request("GET", "/files/AAAAAAAAAAAAAAAAAAAAA?detail=summary").json() == []


def test_freshness_check_and_delete(daemon):
    r = daemon.exec("open('out.txt','w').write('hello')", user_id="665f")
    sid, fid = r["session_id"], r["files"][0]["id"]
    obj = daemon.request("GET", f"/v1/sessions/{sid}/objects/{fid}?kind=user&id=665f")
    assert obj.status == 200
    body = obj.json()
    assert body["name"] == f"{sid}/{fid}.txt" and body["originalFilename"] == "out.txt"
    assert body["size"] == 5 and body["readOnly"] is False and "lastModified" in body
    gone = daemon.request("DELETE", f"/files/{sid}/{fid}?kind=user&id=665f")
    assert gone.status == 200
    assert gone.json() == {"message": "File deleted successfully", "session_id": sid, "fileId": fid}
    assert daemon.request("DELETE", f"/files/{sid}/{fid}").status == 404
    assert daemon.request("GET", f"/sessions/{sid}/objects/{fid}").status == 404
    assert daemon.request("GET", f"/download/{sid}/{fid}").status == 404
    assert daemon.request("GET", f"/files/{sid}").json() == []


def ref(f):
    return {"id": f["id"], "name": f["name"], "storage_session_id": f["storage_session_id"],
            "kind": "user", "resource_id": "665f1c2e9b1e8a0012345678"}


def test_inputs_are_materialized_and_echoed_or_lineaged(daemon):
    made = daemon.exec("import os\nos.makedirs('in', exist_ok=True)\n"
                       "open('in/sales.csv','w').write('q,n\\n1,10\\n')\nopen('keep.txt','w').write('k')")
    sales, keep = (by_name(made)[n] for n in ("in/sales.csv", "keep.txt"))
    # As LibreChat does: no session id, the refs of the last call's outputs.
    r = daemon.exec("print(open('in/sales.csv').read().strip())\n"
                    "open('in/sales.csv','a').write('2,20\\n')",
                    files=[ref(sales), ref(keep)])
    assert r["session_id"] == made["session_id"]
    assert r["stdout"] == "q,n\n1,10\n"
    files = by_name(r)
    changed, echoed = files["in/sales.csv"], files["keep.txt"]
    assert changed["id"] != sales["id"] and changed["storage_session_id"] == r["session_id"]
    assert changed["modified_from"]["id"] == sales["id"]
    assert changed["modified_from"]["storage_session_id"] == made["session_id"]
    assert echoed == {"id": keep["id"], "name": "keep.txt", "inherited": True,
                      "storage_session_id": made["session_id"], "session_id": made["session_id"]}
    got = daemon.request("GET", f"/download/{r['session_id']}/{changed['id']}")
    assert got.raw == b"q,n\n1,10\n2,20\n"


def test_inputs_survive_a_lost_container(daemon):
    made = daemon.exec("open('data.txt','w').write('precious')")
    sid, f = made["session_id"], made["files"][0]
    (cid,) = daemon.containers(sid)
    from conftest import docker
    docker("rm", "-f", cid)
    r = daemon.exec("print(open('data.txt').read())", files=[ref(f)])
    assert r["session_id"] == sid and r["stdout"] == "precious\n"
    assert r["files"] == [{"id": f["id"], "name": "data.txt", "inherited": True,
                           "storage_session_id": sid, "session_id": sid}]


def test_unknown_or_hostile_refs(daemon):
    made = daemon.exec("open('x.txt','w').write('x')")
    good = ref(made["files"][0])
    missing = dict(good, id="AAAAAAAAAAAAAAAAAAAAA")
    r = daemon.request("POST", "/exec", {"lang": "py", "code": "print(1)", "files": [missing]})
    assert r.status == 200 and r.json()["stderr"] == \
        "files[0] (x.txt) does not exist or has expired\n" and r.json()["files"] == []
    for name in ("../x.txt", "/etc/passwd", "a\\b", "a/./b", "x" * 300):
        r = daemon.request("POST", "/exec", {"lang": "py", "code": "print(1)",
                                             "files": [dict(good, name=name)]})
        assert r.status == 400 and r.json()["error"].startswith("files[].name"), name
    legacy = {"id": good["id"], "name": "x.txt", "session_id": good["storage_session_id"]}
    r = daemon.exec("print(open('x.txt').read())", files=[legacy])
    assert r["stdout"] == "x\n"


@pytest.mark.full_image
def test_bare_show_saves_pngs_without_warnings(daemon):
    r = daemon.exec("import matplotlib.pyplot as plt\nimport seaborn as sns\n"
                    "plt.plot([1, 2, 3])\nplt.show()\n"
                    "sns.histplot([1, 2, 2, 3])\nplt.show()\nplt.show()\nprint('shown')")
    assert r["stdout"] == "shown\n"
    assert r["stderr"] == "", r["stderr"]
    files = by_name(r)
    assert set(files) == {"plot_0.png", "plot_1.png"}
    got = daemon.request("GET", f"/download/{r['session_id']}/{files['plot_1.png']['id']}")
    assert got.status == 200 and got.headers["Content-Type"] == "image/png"
    assert got.raw.startswith(b"\x89PNG")
    # Earlier plots in the session are not overwritten.
    again = daemon.exec("import matplotlib.pyplot as plt\nplt.plot([3, 1])\nplt.show()",
                        session=r["session_id"])
    assert set(by_name(again)) == {"plot_2.png"}


@pytest.mark.full_image
def test_plotly_show_writes_html(daemon):
    r = daemon.exec("import plotly.express as px\npx.bar(x=[1, 2], y=[3, 4]).show()")
    assert r["stderr"] == ""
    (f,) = r["files"]
    assert f["name"] == "plot_0.html"
    got = daemon.request("GET", f"/download/{r['session_id']}/{f['id']}")
    assert got.headers["Content-Type"] == "text/html"
    assert b"<html>" in got.raw and b"plotly" in got.raw


def test_depth_cap(daemon):
    r = daemon.exec("import os\nten = '/'.join('abcdefghi') + '/ten.txt'\n"
                    "eleven = '/'.join('abcdefghij') + '/eleven.txt'\n"
                    "for p in (ten, eleven):\n    os.makedirs(os.path.dirname(p), exist_ok=True)\n"
                    "    open(p, 'w').write(p)")
    names = set(by_name(r))
    assert "a/b/c/d/e/f/g/h/i/ten.txt" in names
    assert not any(n.endswith("eleven.txt") for n in names)


def test_a_renaming_background_process_cannot_race_the_scan(daemon):
    r = daemon.exec("echo x > a; (while true; do mv a b 2>/dev/null; mv b a 2>/dev/null; done) & "
                    "sleep 0.5; echo started", lang="bash")
    assert r["stdout"] == "started\n"
    names = set(by_name(r))
    assert len(names) == 1 and names <= {"a", "b"}


def test_a_resent_ref_is_not_copied_again(daemon):
    made = daemon.exec("open('big.txt','w').write('y' * 100000)")
    f = made["files"][0]
    refs = [{"id": f["id"], "name": "big.txt", "storage_session_id": made["session_id"]}]
    for _ in range(3):
        assert daemon.exec("print(len(open('big.txt').read()))", files=refs)["stdout"] == "100000\n"
    log = daemon.logtext()
    assert f"session {made['session_id']}: 1 input file(s) put in place" not in log
