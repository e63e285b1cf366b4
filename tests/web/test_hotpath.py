"""The hot route: POST /6minutes/cdr straight to its endpoint once the guard lets it through;
everything else through the application's stack."""
from __future__ import annotations

import asyncio

from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from sixminutes.web.hotpath import HotApp

TOKEN = "tok-hot-2b71"
BEARER = [(b"authorization", f"Bearer {TOKEN}".encode())]
HOST = [(b"host", b"127.0.0.1:8360")]


def call(app: HotApp, method: str, path: str, root_path: str = "",
         headers: list[tuple[bytes, bytes]] = HOST + BEARER) -> tuple[int, bytes]:
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path, "root_path": root_path,
             "headers": headers, "query_string": b"", "scheme": "http"}
    asyncio.run(app(scope, receive, send))
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


async def through_the_app(request) -> PlainTextResponse:
    return PlainTextResponse("the app", status_code=299)


async def endpoint(scope, receive, send) -> None:
    await JSONResponse({"ok": True})(scope, receive, send)


def app() -> HotApp:
    routes = [Route(p, through_the_app, methods=["GET", "POST"])
              for p in ("/6minutes/cdr", "/6minutes/cdr/", "/6minutes/data")]
    return HotApp(hot=("POST", "/6minutes/cdr", endpoint), guard={"token": TOKEN}, routes=routes)


def test_the_hot_route_goes_straight_to_its_endpoint() -> None:
    assert call(app(), "POST", "/6minutes/cdr") == (200, b'{"ok":true}')


def test_the_guard_comes_first_on_the_hot_route_too() -> None:
    status, body = call(app(), "POST", "/6minutes/cdr", headers=HOST)
    assert status == 401 and b"needs the token" in body
    status, body = call(app(), "POST", "/6minutes/cdr", headers=[(b"host", b"evil.example")] + BEARER)
    assert status == 421
    status, body = call(app(), "POST", "/6minutes/cdr",
                        headers=HOST + BEARER + [(b"origin", b"http://evil.example")])
    assert status == 403


def test_other_methods_and_paths_go_through_the_app() -> None:
    assert call(app(), "GET", "/6minutes/cdr") == (299, b"the app")
    assert call(app(), "POST", "/6minutes/cdr/") == (299, b"the app")
    assert call(app(), "POST", "/6minutes/data") == (299, b"the app")


def test_the_path_is_matched_below_the_root_path_a_proxy_mounts_the_app_at() -> None:
    assert call(app(), "POST", "/monitor/6minutes/cdr", root_path="/monitor") == (200, b'{"ok":true}')


def test_before_runs_ahead_of_every_other_request_never_of_the_hot_route() -> None:
    seen: list[str] = []
    routes = [Route("/6minutes/data", through_the_app, methods=["GET", "POST"])]
    hot = HotApp(hot=("POST", "/6minutes/cdr", endpoint), guard={"token": TOKEN}, routes=routes,
                 before=lambda: seen.append("before"))
    assert call(hot, "POST", "/6minutes/cdr") == (200, b'{"ok":true}') and seen == []
    assert call(hot, "GET", "/6minutes/data")[0] == 299 and seen == ["before"]
    assert call(hot, "GET", "/6minutes/cdr")[0] == 404 and seen == ["before"] * 2  # (not the hot one)
    assert call(hot, "GET", "/nowhere")[0] == 404 and seen == ["before"] * 3
