"""The guard (sixminutes/web/guard.py) around a small Starlette app: Host, Origin, token."""
from __future__ import annotations

import base64
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
import asyncio

import httpx

from sixminutes.web.guard import CHALLENGES, Guard, parse_origin

TOKEN = "tok-3f9a"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
LOCAL = "127.0.0.1:8360"


class Client:
    """Requests straight into the ASGI app (httpx's ASGITransport), one event loop each."""

    def __init__(self, app: Starlette) -> None:
        self.app = app

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url=f"http://{LOCAL}") as c:
                return await c.request(method, path, **kwargs)
        return asyncio.run(send())

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", path, **kwargs)


def client(**options: Any) -> Client:
    """A TestClient on an app whose routes all answer 200 "ok" (GET, POST, DELETE)."""
    async def ok(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    paths = ["/6minutes", "/6minutes/", "/6minutes/data", "/6minutes/events", "/6minutes/cdr",
             "/6minutes/static/js/main.js", "/metrics", "/6minutes/status"]
    app = Starlette(routes=[Route(p, ok, methods=["GET", "POST", "DELETE"]) for p in paths],
                    middleware=[Middleware(Guard, token=TOKEN, **options)])
    return Client(app)


def test_parse_origin_makes_the_port_explicit_and_refuses_what_is_no_http_origin():
    assert parse_origin("http://Example.NET") == ("http", "example.net", 80)
    assert parse_origin("https://example.net/some/page?q=1") == ("https", "example.net", 443)
    assert parse_origin("http://[::1]:8360") == ("http", "::1", 8360)
    for value in ("null", "", "file:///etc/passwd", "chrome-extension://abc", "http://",
                  "http://host:99999", "javascript:alert(1)"):
        assert parse_origin(value) is None, value


# -- Host -------------------------------------------------------------------------------------

@pytest.mark.parametrize("host", ["127.0.0.1:8360", "localhost:8360", "[::1]:8360", "LOCALHOST",
                                  "127.0.0.1"])
def test_local_host_names_are_served(host):
    assert client().get("/6minutes/data", headers={"Host": host}).status_code == 200


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
@pytest.mark.parametrize("host", ["evil.example", "evil.example:8360", "127.0.0.1.evil.example",
                                  "localhost.evil.example:8360", "10.1.2.3:8360", ""])
def test_a_foreign_host_is_misdirected_whatever_the_method_and_token(method, host):
    response = client().request(method, "/6minutes/data", headers={"Host": host, **BEARER})
    assert response.status_code == 421, response.text
    assert response.json()["error"] == "misdirected"
    assert "allow-host" in response.json()["message"]


def test_the_public_url_host_and_allowed_hosts_are_served():
    c = client(public_url="https://six.example.net/base", allowed_hosts=["mon.example.org", "Other:99"])
    for host in ("six.example.net", "six.example.net:443", "mon.example.org:8360", "other"):
        assert c.get("/6minutes/data", headers={"Host": host}).status_code == 200, host
    assert c.get("/6minutes/data", headers={"Host": "example.net"}).status_code == 421
    assert client(allowed_hosts=["*"]).get("/metrics", headers={"Host": "any.example"}).status_code == 200


def test_bound_to_every_address_any_ip_literal_is_served_but_no_other_name():
    c = client(host="0.0.0.0")
    for host in ("10.1.2.3:8360", "[fe80::1]:8360", "192.168.0.9"):
        assert c.get("/6minutes/data", headers={"Host": host}).status_code == 200, host
    assert c.get("/6minutes/data", headers={"Host": "evil.example:8360"}).status_code == 421
    bound = client(host="10.1.2.3")
    assert bound.get("/6minutes/data", headers={"Host": "10.1.2.3:8360"}).status_code == 200
    assert bound.get("/6minutes/data", headers={"Host": "10.9.9.9:8360"}).status_code == 421


def test_the_event_stream_and_metrics_go_through_the_host_check_too():
    for path in ("/6minutes/events", "/metrics", "/6minutes", "/6minutes/static/js/main.js"):
        assert client().get(path, headers={"Host": "evil.example"}).status_code == 421, path


# -- Origin -----------------------------------------------------------------------------------

@pytest.mark.parametrize("auth", [{}, BEARER], ids=["no token", "token"])
@pytest.mark.parametrize("header, value", [
    ("Origin", "http://evil.example"), ("Origin", "null"), ("Origin", "https://127.0.0.1:8360"),
    ("Origin", "http://127.0.0.1:8361"), ("Referer", "http://evil.example/page.html"),
])
def test_a_foreign_origin_is_refused_token_or_not(header, value, auth):
    for method, path in (("POST", "/6minutes/cdr"), ("DELETE", "/6minutes/data")):
        response = client().request(method, path, content=b"cdr=%7B%7D",
                                    headers={header: value, **FORM, **auth})
        assert response.status_code == 403, (method, response.text)
        assert response.json()["error"] == "foreign_origin"


def test_the_own_origin_an_allowed_one_and_none_at_all_pass_on_to_the_token_check():
    c = client(allowed_origins=["https://grafana.example.net"], public_url="https://six.example.net")
    for headers in ({"Origin": f"http://{LOCAL}"}, {"Referer": f"http://{LOCAL}/6minutes/"},
                    {"Origin": "https://grafana.example.net:443"},
                    {"Origin": "https://six.example.net"}, {}):
        assert c.post("/6minutes/cdr", headers=headers).status_code == 401, headers
        assert c.post("/6minutes/cdr", headers={**headers, **BEARER}).status_code == 200, headers
    # GET is never refused for its origin (a link, an image): it changes nothing.
    assert c.get("/6minutes/data", headers={"Origin": "http://evil.example"}).status_code == 200


def test_an_allowed_origin_must_be_an_origin():
    with pytest.raises(ValueError, match="is not an origin"):
        Guard(client().app, token=TOKEN, allowed_origins=["evil.example"])


# -- the token --------------------------------------------------------------------------------

def test_every_change_needs_the_token_and_a_401_carries_both_challenges():
    c = client()
    for method, path in (("POST", "/6minutes/cdr"), ("DELETE", "/6minutes/data"),
                         ("POST", "/6minutes/nowhere")):
        response = c.request(method, path, params={"token": TOKEN})  # never from the query
        assert response.status_code == 401, (method, path)
        assert response.headers.get_list("www-authenticate") == [c.decode() for c in CHALLENGES]
        assert response.json()["error"] == "http_401" and TOKEN not in response.text
    basic = base64.b64encode(f"freeswitch:{TOKEN}".encode()).decode()
    assert c.post("/6minutes/cdr", headers={"Authorization": f"Basic {basic}"}).status_code == 200
    assert c.delete("/6minutes/data", headers=BEARER).status_code == 200
    assert c.get("/6minutes/data").status_code == 200  # reads are open by default


def test_the_dashboard_script_gets_no_basic_challenge():
    response = client().post("/6minutes/cdr", headers={"X-Requested-With": "sixminutes"})
    assert response.status_code == 401
    assert response.headers.get_list("www-authenticate") == [CHALLENGES[0].decode()]


def test_auth_reads_makes_reads_need_the_token_but_not_the_page_shell():
    c = client(auth_reads=True)
    for path in ("/6minutes/data", "/6minutes/status", "/metrics", "/6minutes/events"):
        response = c.get(path)
        assert response.status_code == 401, path
        assert "www-authenticate" in response.headers
        assert c.get(path, headers=BEARER).status_code == 200, path
    for path in ("/6minutes", "/6minutes/", "/6minutes/static/js/main.js"):
        assert c.get(path).status_code == 200, path
    # The event stream (an EventSource sends no header) alone takes it from the query.
    assert c.get("/6minutes/events", params={"token": TOKEN}).status_code == 200
    assert c.get("/6minutes/events", params={"token": "wrong"}).status_code == 401
    assert c.get("/6minutes/data", params={"token": TOKEN}).status_code == 401


def test_there_is_always_a_token():
    with pytest.raises(ValueError):
        Guard(lambda *a: None, token="")  # type: ignore[arg-type]


def test_the_guard_marks_a_request_whose_token_it_checked_and_no_other():
    """The hot endpoint behind it (web/ingest.py) then skips its own check: only a request
    whose token the guard verified may carry the mark."""
    from sixminutes.web.guard import TOKEN_CHECKED
    guard = Guard(None, token=TOKEN)
    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    def scope(method: str, authorization: bytes | None) -> dict:
        headers = [(b"host", LOCAL.encode())]
        if authorization is not None:
            headers.append((b"authorization", authorization))
        return {"type": "http", "method": method, "path": "/6minutes/cdr", "headers": headers}

    checked = scope("POST", f"Bearer {TOKEN}".encode())
    assert asyncio.run(guard.refused(checked, send)) is False and checked[TOKEN_CHECKED] is True
    for method, authorization in (("POST", None), ("POST", b"Bearer wrong"), ("GET", None)):
        unchecked = scope(method, authorization)
        asyncio.run(guard.refused(unchecked, send))
        assert TOKEN_CHECKED not in unchecked, (method, authorization)
