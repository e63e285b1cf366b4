"""The hot route of the live path, past the whole stack it does not need.

Every CDR FreeSWITCH POSTs would go through Starlette's whole stack: the error middleware,
the guard, gzip, the exception middleware, the router matching some twenty routes, each a
coroutine that its request is suspended in and resumed through when the group commit has
made its CDR durable. For POST /6minutes/cdr only the guard (which must see every request)
and the endpoint matter: its answer is a few bytes (gzip never applies) and it answers its
own errors (web/ingest.py; an unexpected one gets uvicorn's 500). So the application itself
sends it there, after its own guard's checks; every other request goes through the stack,
after ``before`` (the service counts the POSTs' rows still waiting, so that every read, and
every change, sees each CDR answered before it: service.py's ``count_waiting``).
"""
from __future__ import annotations

from typing import Any, Callable

from starlette.applications import Starlette
from starlette.types import ASGIApp, Receive, Scope, Send

from .guard import Guard

__all__ = ["HotApp"]


class HotApp(Starlette):
    """A Starlette application that sends ``method path``, once ``guard`` lets it through,
    straight to the ASGI ``endpoint``. (The guard in the stack, for every other request,
    is another instance made with the same options.) Every other HTTP or WebSocket request
    calls ``before`` first."""

    def __init__(self, *, hot: tuple[str, str, ASGIApp], guard: dict[str, Any],
                 before: Callable[[], None] = lambda: None, **options: Any) -> None:
        super().__init__(**options)
        self.hot_method, self.hot_path, self.hot_endpoint = hot
        self.hot_guard = Guard(self.hot_endpoint, **guard)
        self.before = before

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] == "http" and scope["method"] == self.hot_method
                and _path(scope) == self.hot_path):
            if not await self.hot_guard.refused(scope, send):
                await self.hot_endpoint(scope, receive, send)
            return
        if scope["type"] != "lifespan":
            self.before()
        await super().__call__(scope, receive, send)


def _path(scope: Scope) -> str:
    """The path the router would match (without the root path a proxy mounts the app at)."""
    path, root = scope["path"], scope.get("root_path", "")
    return path[len(root):] if root and path.startswith(root) else path
