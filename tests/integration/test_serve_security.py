"""There is always a token, compared in constant time and shown nowhere; credentials in a CouchDB
URL never show anywhere either; a body over the limit is refused before it is read."""
from __future__ import annotations

import base64
import socket
import subprocess
import time

import httpx
import orjson

from service_process import Realistic, basic, config_toml, small_cdr


def test_listening_on_all_addresses_without_a_token_option_still_needs_one_and_says_so(serve):
    service = serve(host="0.0.0.0")
    err = service.stderr_text()
    assert "0.0.0.0" in err and "beyond this machine" in err and "--auth-reads" in err, err
    assert "Traceback" not in err
    generated = service.token_file.read_text().strip()
    response = service.post_cdr(orjson.dumps(small_cdr()), auth=False)
    assert response.status_code == 401
    response = service.post_cdr(orjson.dumps(small_cdr()),
                                headers={"Authorization": f"Bearer {generated}"})
    assert response.status_code == 200, response.text
    # The token from the environment is used instead (and no file is made for it).
    with_env = serve(host="0.0.0.0", env={"SIXMINUTES_TOKEN": "env-token"})
    assert not with_env.token_file.exists()
    response = with_env.post_cdr(orjson.dumps(small_cdr()), auth=False)
    assert response.status_code == 401
    response = with_env.post_cdr(orjson.dumps(small_cdr()),
                                 headers={"Authorization": "Bearer env-token"})
    assert response.status_code == 200, response.text


def test_couchdb_credentials_never_show_in_status_page_metrics_or_logs(pouchdb_factory, serve):
    server = pouchdb_factory()
    db, other = server.new_db(), server.new_db()
    server.set_admin("admin", "s3cret")  # from now on a wrong password is a 401
    good = f"http://admin:s3cret@127.0.0.1:{server.port}/{db}"
    bad = f"http://admin:wr0ng%40pass@127.0.0.1:{server.port}/{other}"  # "wr0ng@pass"
    service = serve(couchdb=[good, bad], since="0", config=config_toml(), log_level="debug",
                    token="tok-9f2c1e")
    server.post_many(db, Realistic(seed=601).docs(5))
    service.wait_total(5, timeout=15)  # read once, by the feed with the right password

    def failing() -> dict | None:
        for source in service.status()["sources"]:
            if "401" in (source.get("last_error") or ""):
                return source
        return None

    refused = service.wait(failing, what="the wrong password's feed to report the 401")
    assert not refused["connected"] and "credentials" in refused["last_error"]
    names = [s["name"] for s in service.status()["sources"] if s["name"].startswith("couchdb:")]
    assert names == [f"couchdb:http://***@127.0.0.1:{server.port}/{db}",
                     f"couchdb:http://***@127.0.0.1:{server.port}/{other}"]

    secrets = ["s3cret", "wr0ng%40pass", "wr0ng@pass", "wr0ng", "tok-9f2c1e",
               base64.b64encode(b"admin:s3cret").decode(),
               base64.b64encode(b"admin:wr0ng@pass").decode()]
    texts = {
        "status": service.get("/6minutes/status").text,
        "page": service.get("/6minutes").text,
        "page/": service.get("/6minutes/").text,
        "metrics": service.get("/metrics").text,
        "data": service.get("/6minutes/data").text,
        "alerts": service.get("/6minutes/alerts").text,
    }
    service.stop()  # the shutdown logs too
    texts["stderr"] = service.stderr_text()
    assert "couchdb" in texts["stderr"].lower()  # the feeds were logged (redacted)
    for where, text in texts.items():
        for secret in secrets:
            assert secret not in text, f"{secret!r} shows in {where}"


def test_status_never_needs_credentials_but_mutations_do(serve):
    service = serve(token="tok")
    for path in ("/6minutes/status", "/6minutes/data", "/6minutes/alerts", "/metrics",
                 "/6minutes"):
        assert httpx.get(service.url + path).status_code == 200, path


# -- the token: every mutation needs it, compared in constant time, shown nowhere ---------------

TOKEN = "S3cret-Tok3n/with+odd=chars"
WRONG_AUTH = {
    "missing": {},
    "wrong bearer": {"Authorization": "Bearer not-the-token"},
    "empty bearer": {"Authorization": "Bearer"},
    "longer": {"Authorization": f"Bearer {TOKEN}x"},
    "shorter": {"Authorization": f"Bearer {TOKEN[:-1]}"},
    "other case": {"Authorization": f"Bearer {TOKEN.lower()}"},
    "token as basic user": {"Authorization": "Basic " + base64.b64encode(
        f"{TOKEN}:freeswitch".encode()).decode()},
    "token as basic user, no password": {"Authorization": "Basic " + base64.b64encode(
        f"{TOKEN}:".encode()).decode()},
    "basic without colon": {"Authorization": "Basic " + base64.b64encode(TOKEN.encode()).decode()},
    "basic wrong password": {"Authorization": "Basic " + base64.b64encode(
        b"freeswitch:wrong").decode()},
    "basic not base64": {"Authorization": f"Basic {TOKEN}"},
    "other scheme": {"Authorization": f"Token {TOKEN}"},
    "no scheme": {"Authorization": TOKEN},
    "in another header": {"X-Token": TOKEN, "Cookie": f"token={TOKEN}"},
}


def _mutating_routes() -> list[tuple[str, str]]:
    """Every (method, path) of the app that is not a GET, read from the app itself, so that a
    route added later is checked too."""
    from starlette.routing import Route

    from sixminutes.config import Config
    from sixminutes.service import Service
    from sixminutes.web.app import create_app

    app = create_app(Service(Config(token=TOKEN)))
    found = []
    for route in app.routes:
        if isinstance(route, Route):
            for method in sorted((route.methods or set()) - {"GET", "HEAD"}):
                found.append((method, route.path.replace("{id}", "some-id")))
    return found


def test_every_mutation_is_refused_without_the_token(serve):
    routes = _mutating_routes()
    assert {("POST", "/6minutes/cdr"), ("POST", "/6minutes/restart"),
            ("DELETE", "/6minutes/data"), ("DELETE", "/6minutes/alerts")} <= set(routes)
    service = serve(env={"SIXMINUTES_TOKEN": TOKEN}, config=config_toml())
    doc = small_cdr(sip_term_status="503")  # also raises an alert, for the DELETEs to keep
    assert service.post_cdr(orjson.dumps(doc), headers={"Authorization": f"Bearer {TOKEN}"},
                            auth=False).status_code == 200
    service.wait(lambda: service.alerts(), what="the alert")
    before = (service.data(), service.alerts(), service.status()["by_source"])
    body = orjson.dumps(small_cdr())
    for method, path in routes:
        for name, headers in WRONG_AUTH.items():
            for params in ({}, {"token": TOKEN}):  # never from the query string
                response = service.http.request(method, path, headers=headers, params=params,
                                                 content=body if method == "POST" else None)
                assert response.status_code == 401, (method, path, name, response.text)
                assert response.json()["error"] == "http_401"
                assert TOKEN not in response.text
    assert (service.data(), service.alerts(), service.status()["by_source"]) == before
    # With the token, each is done (Bearer, and Basic with the token as password).
    for method, path in sorted(routes, key=lambda r: r == ("POST", "/6minutes/cdr")):
        response = service.http.request(method, path, headers=basic("freeswitch", TOKEN),
                                        content=body if method == "POST" else None)
        assert response.status_code not in (401, 403), (method, path, response.text)
    assert service.alerts() == [] and service.total() == 1  # deleted, then the last POST


def test_the_token_is_compared_with_hmac_compare_digest(monkeypatch):
    from sixminutes.web import body

    calls = []

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return True  # the decision must be this function's, not an == elsewhere

    monkeypatch.setattr(body.hmac, "compare_digest", spy)
    assert body.check_token({"authorization": "Bearer wrong"}, TOKEN) is True
    assert calls == [(b"wrong", TOKEN.encode())]
    calls.clear()
    assert body.check_token(basic("fs", "guess"), TOKEN) is True
    assert calls == [(b"guess", TOKEN.encode())]
    monkeypatch.undo()
    assert body.check_token({"authorization": "Bearer wrong"}, TOKEN) is False
    assert body.check_token({"authorization": f"Bearer {TOKEN}"}, TOKEN) is True


def test_the_token_never_shows_in_answers_status_page_metrics_or_logs(serve):
    service = serve(env={"SIXMINUTES_TOKEN": TOKEN}, log_level="debug",
                    config=config_toml(max_body_bytes=4096))
    good = {"Authorization": f"Bearer {TOKEN}"}
    texts = {}
    for name, headers in {**WRONG_AUTH, "good": good, "basic": basic("freeswitch", TOKEN)}.items():
        for what, body in {"cdr": orjson.dumps(small_cdr()), "bad": b"cdr=%ZZ",
                           "422": b"[1]", "413": b"x" * 5000}.items():
            response = service.http.post("/6minutes/cdr", content=body, headers={
                **headers, "Content-Type": "application/x-www-form-urlencoded"
                if what == "bad" else "application/json"})
            texts[f"{name}/{what}"] = f"{response.headers}\n{response.text}"
        response = service.http.post("/6minutes/restart", headers=headers)
        texts[f"{name}/restart"] = f"{response.headers}\n{response.text}"
    for path in ("/6minutes/status", "/6minutes", "/6minutes/", "/metrics", "/6minutes/data",
                 "/6minutes/alerts", "/6minutes/rejected", "/6minutes/nowhere"):
        response = service.get(path)
        texts[path] = f"{response.headers}\n{response.text}"
    assert "good/cdr" in texts and '"accepted"' in texts["good/cdr"]
    service.stop()
    texts["stderr"] = service.stderr_text()
    assert "DEBUG" in texts["stderr"] or "INFO" in texts["stderr"]
    secrets = [TOKEN, base64.b64encode(f"freeswitch:{TOKEN}".encode()).decode(),
               TOKEN.replace("/", "%2F"), TOKEN[:12]]
    for where, text in texts.items():
        for secret in secrets:
            assert secret not in text, f"{secret!r} shows in {where}"


# -- bodies over the limit: refused before they are read whole -----------------------------------

LIMIT = 4096


def _raw_request(port: int, head: bytes, chunks: list[bytes], wait: float = 10.0) -> bytes:
    """Send the head and the chunks, then send nothing more (the connection stays open) and
    return what the server answers meanwhile."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as sock:
        sock.sendall(head)
        sent = 0
        for chunk in chunks:
            try:
                sock.sendall(chunk)
                sent += len(chunk)
            except OSError:  # the server answered and closed: it read no further
                break
        answer = b""
        deadline = time.monotonic() + wait
        while not _complete(answer) and time.monotonic() < deadline:
            try:
                data = sock.recv(65536)
            except socket.timeout:
                break
            if not data:
                break
            answer += data
        return answer


def _complete(answer: bytes) -> bool:
    head, sep, body = answer.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return True


def test_a_body_over_the_limit_is_refused_before_it_is_read_whole(serve):
    service = serve(token=TOKEN, config=config_toml(max_body_bytes=LIMIT))
    auth = f"Authorization: Bearer {TOKEN}\r\n".encode()

    def head(extra: bytes, with_auth: bool = True) -> bytes:
        return (b"POST /6minutes/cdr HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                + (auth if with_auth else b"") + extra + b"\r\n")

    # A 10 GB Content-Length, 1 KB sent, then nothing: the answer comes at once.
    started = time.monotonic()
    answer = _raw_request(service.port, head(b"Content-Length: 10000000000\r\n"), [b"{" * 1024])
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b'"too_large"' in answer and time.monotonic() - started < 5
    # Chunked, without Content-Length: a bit over the limit sent, then the stream stalls
    # forever; the answer comes while the client would still be sending.
    chunk = b"{" * 1024
    chunks = [b"%x\r\n%s\r\n" % (len(chunk), chunk)] * (LIMIT // 1024 + 2)
    answer = _raw_request(service.port, head(b"Transfer-Encoding: chunked\r\n"), chunks)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    # Without the token: 401 before reading anything.
    answer = _raw_request(service.port, head(b"Content-Length: 10000000000\r\n", False), [b"{"])
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
    # Counted as too_large, kept (its head only) for inspection, and the service is fine.
    assert service.status()["by_source"]["http"] == {"too_large": 2}
    kept = service.json("/6minutes/rejected")
    assert [r["error"].split(":")[0] for r in kept] == ["too_large", "too_large"]
    assert all(len(r["body"]) <= 1024 for r in kept)
    response = service.post_cdr(orjson.dumps(small_cdr()))
    assert response.status_code == 200, response.text
