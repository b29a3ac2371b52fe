"""Uploads as LibreChat's server sends them, and what /exec does with them."""
import uuid

import pytest

from conftest import KEY

# Runs on the core image (but the tests marked full_image): pytest.ini.
pytestmark = pytest.mark.core_image


def multipart(fields=(), files=()):
    """A multipart/form-data body; files are (field, filename, bytes)."""
    boundary = "----cip" + uuid.uuid4().hex
    out = []
    for name, value in fields:
        out.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                   f"{value}\r\n".encode())
    for name, filename, data in files:
        out.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
                   f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'.encode()
                   + data + b"\r\n")
    out.append(f"--{boundary}--\r\n".encode())
    return b"".join(out), {"Content-Type": f"multipart/form-data; boundary={boundary}"}


USER = "665f1c2e9b1e8a0012345678"


def upload(daemon, path="/upload", fields=(), files=(), user=USER, **kw):
    body, headers = multipart(fields, files)
    headers["User-Id"] = user
    return daemon.request("POST", path, body, headers=headers, **kw)


def ref(bucket, file_id, name):
    return {"id": file_id, "name": name, "storage_session_id": bucket, "kind": "user",
            "resource_id": "665f1c2e9b1e8a0012345678"}


def test_upload_current_and_legacy_shapes(daemon):
    r = upload(daemon, "/v1/upload", [("kind", "user"), ("id", "665f")],
               [("file", "sales.csv", b"q,n\n1,10\n")])
    assert r.status == 200
    body = r.json()
    assert body["message"] == "success"
    assert body["session_id"] == body["storage_session_id"] and len(body["session_id"]) == 21
    (f,) = body["files"]
    assert f["filename"] == "sales.csv" and len(f["fileId"]) == 21
    legacy = upload(daemon, "/upload", [("entity_id", "agent_abc")], [("file", "a.txt", b"x")])
    assert legacy.status == 200 and legacy.json()["session_id"] != body["session_id"]
    alias = upload(daemon, "/v1/librechat/files", [], [("file", "b.txt", b"y")])
    assert alias.status == 200


@pytest.mark.full_image  # pandas
def test_uploaded_csv_is_read_modified_and_reported(daemon):
    up = upload(daemon, files=[("file", "data/sales.csv", b"q,n\n1,10\n2,20\n")]).json()
    bucket, fid = up["storage_session_id"], up["files"][0]["fileId"]
    assert up["files"][0]["filename"] == "data/sales.csv"      # nested path kept
    r = daemon.exec("import pandas as pd\ndf = pd.read_csv('data/sales.csv')\n"
                    "df['n'] = df['n'] * 2\ndf.to_csv('data/sales.csv', index=False)\n"
                    "print(df['n'].sum())", files=[ref(bucket, fid, "data/sales.csv")],
                    user_id=USER)
    assert r["stdout"] == "60\n"
    (out,) = r["files"]
    assert out["name"] == "data/sales.csv" and out["id"] != fid
    assert out["modified_from"] == {"id": fid, "storage_session_id": bucket, "session_id": bucket}
    got = daemon.request("GET", f"/download/{out['storage_session_id']}/{out['id']}")
    assert got.raw == b"q,n\n1,20\n2,40\n"
    # The upload itself is unchanged and still served.
    assert daemon.request("GET", f"/download/{bucket}/{fid}").raw == b"q,n\n1,10\n2,20\n"
    fresh = daemon.request("GET", f"/sessions/{bucket}/objects/{fid}?kind=user&id={USER}")
    assert fresh.status == 200 and fresh.json()["originalFilename"] == "data/sales.csv"


def test_batch_with_partial_failure_and_read_only(daemon):
    r = upload(daemon, "/upload/batch", [("kind", "skill"), ("id", "66a0e1"), ("version", "3"),
                                         ("read_only", "true")],
               [("file", "SKILL.md", b"# skill"), ("file", "scripts/build.py", b"print('b')"),
                ("file", "../evil.sh", b"x"), ("file", "a\\b", b"x")])
    assert r.status == 200
    body = r.json()
    assert body["message"] == "partial_success" and body["succeeded"] == 2 and body["failed"] == 2
    ok = {f["filename"]: f for f in body["files"] if f["status"] == "success"}
    assert set(ok) == {"SKILL.md", "scripts/build.py"}
    assert all(f["error"] for f in body["files"] if f["status"] == "error")
    bucket = body["storage_session_id"]
    got = daemon.request("GET", f"/download/{bucket}/{ok['SKILL.md']['fileId']}")
    assert got.headers.get("X-Read-Only") == "true"
    # A read-only input changed by the code is not reported as an output.
    r = daemon.exec("open('SKILL.md','a').write('changed')\nprint(open('scripts/build.py').read())",
                    files=[ref(bucket, ok["SKILL.md"]["fileId"], "SKILL.md"),
                           ref(bucket, ok["scripts/build.py"]["fileId"], "scripts/build.py")],
                    user_id=USER)
    assert r["stdout"] == "print('b')\n"
    assert all(not (f["name"] == "SKILL.md" and not f.get("inherited")) for f in r["files"])


def test_batch_all_failed_and_too_many(make_daemon):
    d = make_daemon(CI_MAX_FILES_PER_SESSION=2)
    r = upload(d, "/upload/batch", files=[("file", "/abs", b"x")])
    assert r.status == 400 and r.json()["message"] == "error" and r.json()["failed"] == 1
    r = upload(d, "/upload/batch", files=[("file", f"f{i}.txt", b"x") for i in range(3)])
    body = r.json()
    assert r.status == 200 and body["succeeded"] == 2 and body["failed"] == 1
    assert body["filesLimitReached"] is True and body["maxFiles"] == 2


def test_upload_errors(make_daemon):
    d = make_daemon(CI_MAX_FILE_SIZE_BYTES=1000, CI_MAX_REQUEST_BYTES=100000)
    r = d.request("POST", "/upload", {"not": "multipart"})
    assert r.status == 400 and r.json() == {"error": "Invalid content type. Must be multipart/form-data."}
    r = upload(d, files=[("file", "big.bin", b"x" * 1001)])
    assert r.status == 413 and r.json()["error"] == "File size limit exceeded"
    r = upload(d, fields=[("kind", "user")])
    assert r.status == 400 and r.json()["error"] == "No file uploaded"
    for bad in ("../x", "/etc/passwd", "a/./b", "x" * 300, "a\\b"):
        r = upload(d, files=[("file", bad, b"x")])
        assert r.status == 400 and r.json()["error"] == "Invalid file name", bad
    r = upload(d, files=[("file", "f.bin", b"x" * 200000)])
    assert r.status == 413
    r = upload(d, files=[("file", "ok.txt", b"x")], key="wrong")
    assert r.status == 401
    assert upload(d, files=[("file", "ok.txt", b"fine")]).status == 200


def test_librechat_files_by_id(daemon):
    up = upload(daemon, files=[("file", "notes.txt", b"hello")]).json()
    bucket, fid = up["storage_session_id"], up["files"][0]["fileId"]
    got = daemon.request("GET", f"/v1/librechat/files/{fid}")
    assert got.status == 200 and got.raw == b"hello"
    listing = daemon.request("GET", f"/v1/librechat/files?session_id={bucket}").json()
    assert listing["session_id"] == bucket and listing["files"][0]["id"] == fid
    assert daemon.request("DELETE", f"/v1/librechat/files/{fid}").status == 200
    assert daemon.request("GET", f"/v1/librechat/files/{fid}").status == 404
    assert daemon.request("DELETE", f"/v1/librechat/files/{fid}").status == 404
