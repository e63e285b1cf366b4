"""The hot route: POST /6minutes/cdr straight to its endpoint; everything else through the app."""
from __future__ import annotations

import asyncio

from starlette.responses import JSONResponse, PlainTextResponse

from sixminutes.web.hotpath import HotRoute


def call(middleware: HotRoute, method: str, path: str, root_path: str = "") -> tuple[int, bytes]:
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path, "root_path": root_path,
             "headers": [], "query_string": b""}
    asyncio.run(middleware(scope, receive, send))
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


async def app(scope, receive, send) -> None:
    await PlainTextResponse("the app", status_code=299)(scope, receive, send)


async def endpoint(scope, receive, send) -> None:
    await JSONResponse({"ok": True})(scope, receive, send)


HOT = HotRoute(app, "POST", "/6minutes/cdr", endpoint)


def test_the_hot_route_goes_straight_to_its_endpoint() -> None:
    assert call(HOT, "POST", "/6minutes/cdr") == (200, b'{"ok":true}')


def test_other_methods_and_paths_go_through_the_app() -> None:
    assert call(HOT, "GET", "/6minutes/cdr") == (299, b"the app")
    assert call(HOT, "POST", "/6minutes/cdr/") == (299, b"the app")
    assert call(HOT, "POST", "/6minutes/data") == (299, b"the app")


def test_the_path_is_matched_below_the_root_path_a_proxy_mounts_the_app_at() -> None:
    assert call(HOT, "POST", "/monitor/6minutes/cdr", root_path="/monitor") == (200, b'{"ok":true}')
