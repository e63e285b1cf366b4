"""The hot route of the live path, past the middleware it does not need.

Every CDR FreeSWITCH POSTs goes through Starlette's whole stack: the error middleware, the
guard, gzip, the exception middleware, the router matching some twenty routes. For POST
/6minutes/cdr, after the guard (which must see every request), only the endpoint matters:
its answer is a few bytes (gzip never applies) and it answers its own errors (web/ingest.py).
py-spy put the layers skipped at about a fifth of a POST's time on the event loop; every
other request goes on through the stack.
"""
from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["HotRoute"]


class HotRoute:
    """ASGI middleware: ``method path`` straight to the ASGI ``endpoint``; the rest to ``app``."""

    def __init__(self, app: ASGIApp, method: str, path: str, endpoint: ASGIApp) -> None:
        self.app, self.method, self.path, self.endpoint = app, method, path, endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == self.method and _path(scope) == self.path:
            await self.endpoint(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _path(scope: Scope) -> str:
    """The path the router would match (without the root path a proxy mounts the app at)."""
    path, root = scope["path"], scope.get("root_path", "")
    return path[len(root):] if root and path.startswith(root) else path
