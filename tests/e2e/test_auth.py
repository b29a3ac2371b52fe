"""Bearer JWTs as LibreChat signs them, and one user's data kept from another."""
import base64
import json
import time

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from conftest import KEY, PROXY

# Runs on the core image (but the tests marked full_image): pytest.ini.
pytestmark = pytest.mark.core_image


def pem_public(key):
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def claims(sub="alice", **over):
    now = int(time.time())
    c = {"iss": "librechat", "aud": "codeapi", "sub": sub, "iat": now, "nbf": now,
         "exp": now + 300, "jti": "x", "tenant_id": "legacy"}
    c.update(over)
    return {k: v for k, v in c.items() if v is not None}


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def post_exec(d, headers, code="print('hi')", **body):
    return d.request("POST", "/exec", {"lang": "py", "code": code, **body}, key=None,
                     headers=headers)


def test_ed25519_tokens(make_daemon, tmp_path):
    key, other = ed25519.Ed25519PrivateKey.generate(), ed25519.Ed25519PrivateKey.generate()
    (tmp_path / "pub.pem").write_text(pem_public(key))
    d = make_daemon(CI_AUTH="jwt", CI_JWT_PUBLIC_KEY=str(tmp_path / "pub.pem"))
    good = pyjwt.encode(claims(), key, algorithm="EdDSA", headers={"kid": "lc-codeapi-2026-05"})
    r = post_exec(d, bearer(good))
    assert r.status == 200 and r.json()["stdout"] == "hi\n"
    # The token's sub is the user, whatever the client asserts beside it.
    sid = r.json()["session_id"]
    mine = d.request("GET", "/v1/librechat/sessions", key=None, headers=bearer(good)).json()
    assert [s["user_id"] for s in mine["sessions"] if s["session_id"] == sid] == ["alice"]
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(time.time())
    refused = {
        "expired": pyjwt.encode(claims(exp=now - 120, nbf=now - 400), key, algorithm="EdDSA"),
        "not yet": pyjwt.encode(claims(nbf=now + 600), key, algorithm="EdDSA"),
        "wrong audience": pyjwt.encode(claims(aud="other"), key, algorithm="EdDSA"),
        "wrong issuer": pyjwt.encode(claims(iss="evil"), key, algorithm="EdDSA"),
        "no sub": pyjwt.encode(claims(sub=None), key, algorithm="EdDSA"),
        "no exp": pyjwt.encode(claims(exp=None), key, algorithm="EdDSA"),
        "wrong key": pyjwt.encode(claims(), other, algorithm="EdDSA"),
        "RS256 by another key": pyjwt.encode(claims(), rsa_key, algorithm="RS256"),
        "alg none": b64(b'{"alg":"none","typ":"JWT"}') + "." + b64(json.dumps(claims()).encode()) + ".",
        # HS256 keyed with the public key's PEM: the classic confusion.
        "HS256 confusion": b64(b'{"alg":"HS256","typ":"JWT"}') + "." +
                           b64(json.dumps(claims()).encode()) + "." + b64(b"\0" * 32),
        "garbage": "not.a.jwt",
        "tampered": good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB"),
    }
    for why, token in refused.items():
        r = post_exec(d, bearer(token))
        assert r.status == 401, why
    assert post_exec(d, {}).status == 401
    assert post_exec(d, {"X-API-Key": "e2e-key"}).status == 401      # api-key not enabled
    assert "bearer token refused" in d.logtext()
    assert good not in d.logtext()                                     # no secret in the log


def test_hs256_signed_with_the_public_pem_is_refused(make_daemon, tmp_path):
    import hashlib
    import hmac
    key = ed25519.Ed25519PrivateKey.generate()
    pem = pem_public(key)
    d = make_daemon(CI_AUTH="jwt", CI_JWT_PUBLIC_KEY=pem)          # PEM text, not a path
    signing = b64(b'{"alg":"HS256","typ":"JWT"}') + "." + b64(json.dumps(claims()).encode())
    mac = hmac.new(pem.encode(), signing.encode(), hashlib.sha256).digest()
    assert post_exec(d, bearer(signing + "." + b64(mac))).status == 401
    good = pyjwt.encode(claims(), key, algorithm="EdDSA")
    assert post_exec(d, bearer(good)).status == 200


def test_rs256_tokens(make_daemon, tmp_path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    d = make_daemon(CI_AUTH="jwt,api-key", CI_JWT_PUBLIC_KEY=pem_public(key))
    assert post_exec(d, bearer(pyjwt.encode(claims(), key, algorithm="RS256"))).status == 200
    assert post_exec(d, {"X-API-Key": "e2e-key"}).status == 200          # both modes on
    assert post_exec(d, bearer(pyjwt.encode(claims(aud=["x", "codeapi"]), key,
                                            algorithm="RS256"))).status == 200
    ed = ed25519.Ed25519PrivateKey.generate()
    assert post_exec(d, bearer(pyjwt.encode(claims(), ed, algorithm="EdDSA"))).status == 401


def test_bad_jwt_configuration_stops_the_daemon(make_daemon, tmp_path):
    import subprocess, os
    for env, words in (({"CI_AUTH": "jwt"}, "CI_JWT_PUBLIC_KEY is empty"),
                       ({"CI_AUTH": "jwt", "CI_JWT_PUBLIC_KEY": "/nonexistent.pem"}, "cannot read"),
                       ({"CI_AUTH": "jwt", "CI_JWT_PUBLIC_KEY": "-----BEGIN PUBLIC KEY-----\nAAAA\n"},
                        "not a PEM public key")):
        r = subprocess.run([PROXY], env=dict(os.environ, CI_FILE_STORAGE_PATH=str(tmp_path), **env),
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 2 and words in r.stderr, r.stderr


def test_one_user_cannot_reach_anothers_sessions_or_files(make_daemon):
    key = ed25519.Ed25519PrivateKey.generate()
    d = make_daemon(CI_AUTH="jwt", CI_JWT_PUBLIC_KEY=pem_public(key))
    alice = bearer(pyjwt.encode(claims("alice"), key, algorithm="EdDSA"))
    bob = bearer(pyjwt.encode(claims("bob"), key, algorithm="EdDSA"))
    r = post_exec(d, alice, "open('secret.txt','w').write('alice only')").json()
    sid, fid = r["session_id"], r["files"][0]["id"]
    get = lambda path, who: d.request("GET", path, key=None, headers=who)
    assert get(f"/download/{sid}/{fid}", alice).status == 200
    assert get(f"/download/{sid}/{fid}", bob).status == 404
    assert get(f"/v1/librechat/files/{fid}", bob).status == 404
    assert get(f"/sessions/{sid}/objects/{fid}", bob).status == 404
    assert get(f"/files/{sid}?detail=summary", bob).json() == []
    assert get(f"/files/{sid}?detail=summary", alice).json() != []
    assert all(s["session_id"] != sid for s in get("/v1/librechat/sessions", bob).json()["sessions"])
    assert d.request("DELETE", f"/v1/librechat/sessions/{sid}", key=None, headers=bob).status == 404
    assert d.request("DELETE", f"/files/{sid}/{fid}", key=None, headers=bob).status == 404
    # Bob naming Alice's session gets a session of his own; her file as input is not found.
    r = post_exec(d, bob, "import os; print(os.path.exists('secret.txt'))", session_id=sid)
    assert r.status == 200 and r.json()["session_id"] != sid and r.json()["stdout"] == "False\n"
    ref = {"id": fid, "name": "secret.txt", "storage_session_id": sid, "kind": "user"}
    r = post_exec(d, bob, "print(1)", files=[ref])
    assert r.status == 200 and r.json()["stdout"] == "" and \
        r.json()["stderr"] == "files[0] (secret.txt) does not exist or has expired\n"
    # A client-asserted User-Id does not override the token.
    spoof = dict(bob, **{"User-Id": "alice"})
    assert get(f"/download/{sid}/{fid}", spoof).status == 404
    assert get(f"/download/{sid}/{fid}", alice).status == 200


def test_helper_calls_across_the_auth_modes(make_daemon, tmp_path):
    """The matrix README states: JWT, key, none x a call naming no user, the
    owner, another user.  LibreChat uploads with User-Id; its image reader and
    readSandboxFile post {lang, code, session_id, files} with no user."""
    from test_upload import multipart
    key = ed25519.Ed25519PrivateKey.generate()
    (tmp_path / "pub.pem").write_text(pem_public(key))
    tok = {u: bearer(pyjwt.encode(claims(sub=u), key, algorithm="EdDSA")) for u in ("alice", "bob")}
    modes = {
        "api-key": ({"CI_AUTH": "api-key"}, {"X-API-Key": KEY}),
        "none": ({"CI_AUTH": "none"}, {}),
        "jwt": ({"CI_AUTH": "jwt", "CI_JWT_PUBLIC_KEY": str(tmp_path / "pub.pem")}, None),
    }
    read = "print(open('img/photo.png').read())"
    for mode, (env, auth) in modes.items():
        d = make_daemon(**env)
        as_alice = dict(tok["alice"]) if auth is None else dict(auth, **{"User-Id": "alice"})
        body, hdrs = multipart(files=[("file", "img/photo.png", b"PNGDATA")])
        up = d.request("POST", "/upload", body, key=None, headers=dict(hdrs, **as_alice)).json()
        ref = {"id": up["files"][0]["fileId"], "name": "img/photo.png", "kind": "user",
               "storage_session_id": up["storage_session_id"]}
        first = post_exec(d, as_alice, read, files=[ref]).json()
        assert first["stdout"] == "PNGDATA\n", (mode, first)
        sid = first["session_id"]
        # The helper call: the session and the file, no user named (in jwt
        # mode LibreChat still sends the user's token).
        helper = dict(tok["alice"]) if auth is None else dict(auth)
        r = post_exec(d, helper, read, session_id=sid, files=[ref]).json()
        assert r["stdout"] == "PNGDATA\n" and r["session_id"] == sid, (mode, r)
        # Another user, by token or by name, gets told the file is not there.
        other = dict(tok["bob"]) if auth is None else dict(auth, **{"User-Id": "bob"})
        r = post_exec(d, other, read, session_id=sid, files=[ref]).json()
        assert r["stdout"] == "" and "does not exist" in r["stderr"], (mode, r)
        if auth is None:    # no token at all: refused before anything runs
            assert post_exec(d, {}, read, files=[ref]).status == 401
        d.stop()
