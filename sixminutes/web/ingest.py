"""POST /6minutes/cdr: one CDR in, answered once durable and its outcome known (or said why not).

A plain ASGI endpoint, not a Starlette one: the body of every FreeSWITCH POST passes here,
thousands a second, and a Starlette Request (its Headers, looked through once per header
asked for), a JSONResponse (its MutableHeaders) and the copies of the body were a good part
of what a POST cost the event loop besides counting it. The answers are the app's own
(JSON ``{"error", "message"}``, ``X-Content-Type-Options: nosniff``); the usual one is
made once.
"""
from __future__ import annotations

from typing import Any, Awaitable, Callable

import orjson

from ..group import GroupUnavailable
from .body import BodyError, cdr_from_post, check_token, repaired
from .guard import CHALLENGES, TOKEN_CHECKED

__all__ = ["Ingest", "NEEDS_TOKEN"]

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

NEEDS_TOKEN = ("this needs the token: Authorization: Bearer <token> "
               "(or HTTP Basic with the token as password)")
_JSON = (b"content-type", b"application/json")
_NOSNIFF = (b"x-content-type-options", b"nosniff")


def _start(status: int, body: bytes, *extra: tuple[bytes, bytes]) -> dict[str, Any]:
    return {"type": "http.response.start", "status": status,
            "headers": [(b"content-length", b"%d" % len(body)), _JSON, _NOSNIFF, *extra]}


_OUTCOMES = {reason: (_start(200, body), {"type": "http.response.body", "body": body})
             for reason in ("accepted", "duplicate")
             for body in [orjson.dumps({"ok": True, "outcome": reason})]}
"""The answers of a CDR counted, or known already (made once, sent as they are)."""


class Ingest:
    """The ASGI endpoint of POST /6minutes/cdr for ``service`` (web/app.py's)."""

    def __init__(self, service: Any, token: str) -> None:
        self.service = service
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        service = self.service
        content_type = declared = authorization = None
        for name, value in scope["headers"]:  # (the first of each, as Starlette's Headers.get)
            if name == b"content-type":
                content_type = value.decode("latin-1") if content_type is None else content_type
            elif name == b"content-length":
                declared = value.decode("latin-1") if declared is None else declared
            elif name == b"authorization":
                authorization = value.decode("latin-1") if authorization is None else authorization
        # (the guard refused a POST without the token already, and says so: this holds
        # without it)
        if not scope.get(TOKEN_CHECKED) and not check_token(
                {} if authorization is None else {"authorization": authorization}, self.token):
            return await _error(send, 401, "http_401", NEEDS_TOKEN,
                                (b"www-authenticate", CHALLENGES[0]))
        limit = service.config.max_body_bytes
        over = bool(declared and declared.isdigit() and int(declared) > limit)
        body = b""
        if not over:  # (no Content-Length, e.g. chunked: the limit holds while reading)
            chunks: list[bytes] = []
            size = 0
            while True:
                message = await receive()
                if message["type"] != "http.request":  # gone: nothing to answer or count
                    return
                chunk = message.get("body", b"")
                if chunk:
                    chunks.append(chunk)
                    size += len(chunk)
                    if size > limit:
                        over = True
                        break
                if not message.get("more_body", False):
                    break
            body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        if over:
            return await self._too_large(send, content_type, declared, body)
        try:
            cdr, unchecked = cdr_from_post(content_type, body)
        except BodyError as error:
            await service.keep_bad_body("http", content_type, str(error), body)
            return await _error(send, 400, error.reason, str(error))
        try:  # (an encode=true document is checked by the group commit's decode, not here)
            reason = await (service.ingest(repaired(cdr) if unchecked else cdr, "http")
                            if service.group is not None
                            else service.journaled(cdr, "http", unchecked))
        except GroupUnavailable as error:  # not stored: FreeSWITCH keeps the file and retries
            return await _error(send, 503, "unavailable", str(error), (b"retry-after", b"1"))
        answer = _OUTCOMES.get(reason or "accepted")
        if answer is not None:
            await send(answer[0])
            await send(answer[1])
            return
        await service.keep_bad_body("http", content_type, reason, body, count=False)
        detail = service.engine.last_rejection.get(reason, "")
        await _error(send, 422, reason, f"CDR not counted: {reason}" + (f" ({detail})" if detail else ""))

    async def _too_large(self, send: Send, content_type: str | None, declared: str | None,
                         body: bytes) -> None:
        """413 without reading the rest; counted, and its head kept for /6minutes/rejected."""
        service = self.service
        limit = service.config.max_body_bytes
        service.engine.outcomes[("http", "too_large")] += 1
        message = f"body over the {limit}-byte limit"
        head = f" (Content-Length {declared})" if declared else ""
        await service.keep_bad_body("http", content_type, f"too_large: {message}{head}",
                                    bytes(body[:1024]), count=False)
        await _error(send, 413, "too_large", message)


async def _error(send: Send, status: int, error: str, message: str,
                 *extra: tuple[bytes, bytes]) -> None:
    body = orjson.dumps({"error": error, "message": message})
    await send(_start(status, body, *extra))
    await send({"type": "http.response.body", "body": body})
