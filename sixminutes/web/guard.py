"""The HTTP guard: a pure ASGI middleware in front of every route, the event stream and /metrics.

In this order, before any route sees a request:

1. **Host** (421 Misdirected Request). A web page the operator opens can make its own DNS name
   resolve to 127.0.0.1 (DNS rebinding) and then talk to the service as if same-origin; its
   requests still carry its own name in `Host`. Accepted: localhost names, the bound address,
   the `--public-url` host, `--allow-host` names (`*`: any), and, when bound to every address
   (0.0.0.0, ::), any IP literal — an address cannot be rebound, only a name can. Ports are
   not compared: a port proves nothing here, and a port mapping (Docker) changes it.
2. **Origin** (403), for every method but GET and HEAD: a browser names the page behind a form
   POST or a fetch in `Origin` (else `Referer`); when that is neither this service (the request's
   own scheme and Host, or the public URL) nor an `--allow-origin`, the request is refused, token
   or not. Clients that send neither (curl, FreeSWITCH) are not refused for it.
3. **Token** (401 with `WWW-Authenticate`): every mutation needs it; with `auth_reads`, every
   read too, except the page's shell and its static files, which hold no data. The event stream
   alone also takes it as `?token=`, because a browser's EventSource cannot send headers; a query
   string is never sent implicitly by the browser, unlike a cookie.

Every refusal is a small JSON document saying why.
"""
from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any, Awaitable, Callable, Mapping
from urllib.parse import parse_qsl, urlsplit

import orjson

from .body import check_token

__all__ = ["Guard", "parse_origin", "origins_of", "CHALLENGES", "TOKEN_CHECKED"]

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CHALLENGES = (b'Bearer realm="sixminutes"', b'Basic realm="sixminutes", charset="UTF-8"')
TOKEN_CHECKED = "sixminutes.token_checked"
"""Set in the scope of a request whose token the guard has checked: the endpoint behind it
(web/ingest.py, thousands of POSTs a second) need not check it again."""
"""Bearer for people and scripts; Basic for FreeSWITCH's `cred` (curl may wait for a challenge)."""
_LOCAL_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "localhost.localdomain"})
_WILDCARDS = frozenset({"", "0.0.0.0", "::"})
_SAFE_METHODS = frozenset({"GET", "HEAD"})
_DEFAULT_PORTS = {"http": 80, "https": 443}
Origin = tuple[str, str, int]


def parse_origin(value: str) -> Origin | None:
    """`scheme://host[:port]` (an Origin, or any URL such as a Referer) as a comparable triple,
    the port made explicit; None when it is not an http(s) URL with a host (e.g. `null`)."""
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    return scheme, parts.hostname.lower().rstrip("."), port or _DEFAULT_PORTS[scheme]


def origins_of(values: Iterable[str]) -> set[Origin]:
    """Configured origins, parsed; ValueError names the first that is not one."""
    origins = set()
    for value in values:
        origin = parse_origin(value)
        if origin is None:
            raise ValueError(f"allowed origin {value!r} is not an origin: "
                             "scheme://host[:port], e.g. https://noc.example.net")
        origins.add(origin)
    return origins


def _host_name(host: str) -> str:
    """The name in a Host header, without port or IPv6 brackets, lower case."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host[1:]
    name, colon, port = host.rpartition(":")
    return (name if colon and port.isdigit() else host).rstrip(".")


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class Guard:
    """Host, Origin and token checks around an ASGI app (see the module's docstring)."""

    def __init__(self, app: ASGIApp, *, token: str, host: str = "127.0.0.1",
                 public_url: str | None = None, allowed_hosts: Iterable[str] = (),
                 allowed_origins: Iterable[str] = (), auth_reads: bool = False,
                 open_paths: Iterable[str] = ("/6minutes", "/6minutes/"),
                 open_prefixes: Iterable[str] = ("/6minutes/static/",),
                 query_token_paths: Iterable[str] = ("/6minutes/events",)) -> None:
        if not token:
            raise ValueError("the guard needs a token: there is always one")
        self.app = app
        self.token = token
        self.auth_reads = auth_reads
        self.open_paths = frozenset(open_paths)
        self.open_prefixes = tuple(open_prefixes)
        self.query_token_paths = frozenset(query_token_paths)
        hosts = {_host_name(h) for h in allowed_hosts}
        self.any_host = "*" in hosts
        self.any_ip = _host_name(host) in _WILDCARDS
        self.hosts = (hosts - {"*"}) | _LOCAL_NAMES | {_host_name(host)}
        self.origins = origins_of(allowed_origins)
        public = parse_origin(public_url) if public_url else None
        if public is not None:
            self.origins.add(public)
            self.hosts.add(public[1])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not await self.refused(scope, send):
            await self.app(scope, receive, send)  # (lifespan, and websockets: there are none)

    async def refused(self, scope: Scope, send: Send) -> bool:
        """Answer and True for an HTTP request to refuse; False for one to serve."""
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        refusal = self.refusal(scope, headers)
        if refusal is None:
            return False
        status, error, message = refusal
        extra: list[tuple[bytes, bytes]] = []
        if status == 401:
            extra = [(b"www-authenticate", c) for c in self._challenges(headers)]
        await _answer(send, status, error, message, extra)
        return True

    def refusal(self, scope: Scope, headers: Mapping[str, str]) -> tuple[int, str, str] | None:
        """(status, error, message) for a request to refuse, None for one to serve."""
        host = headers.get("host")
        if host is None:
            return 421, "misdirected", "the request has no Host header"
        if not self.host_allowed(_host_name(host)):
            return 421, "misdirected", (
                f"this service does not answer to the host name {_host_name(host)!r}: give "
                "--allow-host NAME (or --public-url) if that is how it is reached")
        method = scope["method"].upper()
        if method not in _SAFE_METHODS:
            origin = headers.get("origin") or headers.get("referer")
            if origin is not None and not self.origin_allowed(origin, scope, host):
                return 403, "foreign_origin", (
                    f"refused: a {method} from the web page at {_clip(origin)!r}, which is not "
                    "this service (give --allow-origin if it may)")
        elif not self.auth_reads or self._open(scope["path"]):
            return None
        if check_token(headers, self.token) or self._query_token(scope):
            scope[TOKEN_CHECKED] = True
            return None
        what = "every change" if method not in _SAFE_METHODS else "reading (auth_reads is on)"
        return 401, "http_401", (
            f"{what} needs the token: Authorization: Bearer <token> (or HTTP Basic with the "
            "token as password); it was configured, or generated at first start and kept "
            "beside the state file (<state>.token)")

    def host_allowed(self, name: str) -> bool:
        return self.any_host or name in self.hosts or (self.any_ip and _is_ip(name))

    def origin_allowed(self, value: str, scope: Scope, host: str) -> bool:
        origin = parse_origin(value)
        if origin is None:
            return False
        if origin in self.origins:
            return True
        own = parse_origin(f"{scope.get('scheme', 'http')}://{host.strip()}")
        return origin == own

    def _open(self, path: str) -> bool:
        return path in self.open_paths or path.startswith(self.open_prefixes)

    def _query_token(self, scope: Scope) -> bool:
        if scope["method"].upper() not in _SAFE_METHODS or scope["path"] not in self.query_token_paths:
            return False
        query = scope.get("query_string", b"").decode("latin-1")
        presented = [v for k, v in parse_qsl(query) if k == "token"]
        return any(check_token({"authorization": f"Bearer {v}"}, self.token) for v in presented)

    @staticmethod
    def _challenges(headers: Mapping[str, str]) -> tuple[bytes, ...]:
        """Both challenges, except to the dashboard's own script (it says so in X-Requested-With)
        and to an event stream: a Basic challenge there makes the browser pop up its own login
        box, and the credentials typed into it would then go with every request of the site."""
        if "x-requested-with" in headers or "text/event-stream" in headers.get("accept", ""):
            return CHALLENGES[:1]
        return CHALLENGES


def _clip(text: str, limit: int = 100) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


async def _answer(send: Send, status: int, error: str, message: str,
                  extra: list[tuple[bytes, bytes]]) -> None:
    body = orjson.dumps({"error": error, "message": message})
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"x-content-type-options", b"nosniff"), (b"cache-control", b"no-store"), *extra]})
    await send({"type": "http.response.body", "body": body})
