"""The HTTP routes: the seed's /6minutes paths, status, live events and /metrics."""
from __future__ import annotations

import contextlib
from typing import Any, AsyncIterator

import orjson
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from ..incidents import carriers
from ..movers import baselines, destinations, last_complete
from ..service import Service
from ..windows import WINDOW
from .body import check_token
from .events import events_endpoint
from .guard import CHALLENGES, Guard, origins_of
from .hotpath import HotApp
from .ingest import NEEDS_TOKEN, Ingest
from .metrics import ServiceCollector
from .page import PAGE
from .static import static_routes
from .token import resolve_token

__all__ = ["create_app"]

_RESERVED = {"start", "end", "name", "before", "limit"}


class JSONResponse(Response):
    media_type = "application/json"

    def __init__(self, content: Any, status_code: int = 200, **kwargs: Any) -> None:
        super().__init__(content, status_code, **kwargs)
        # CDR strings (script payloads too) go out as JSON text: never let a browser sniff HTML
        self.headers["X-Content-Type-Options"] = "nosniff"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)


def _error(status: int, error: str, message: str) -> JSONResponse:
    return JSONResponse({"error": error, "message": message}, status_code=status)


def _by_state_and_limit(request: Request, rows: list[Any]) -> list[Any] | JSONResponse:
    """Alerts or incidents filtered by ``?state=firing|resolved`` and cut at ``?limit=N``;
    the 400 answer when the state is neither."""
    state = request.query_params.get("state")
    if state is not None:
        if state not in ("firing", "resolved"):
            return _error(400, "bad_parameter", "state must be firing or resolved")
        rows = [row for row in rows if row.state == state]
    limit = _int_param(request, "limit")
    return rows[:limit] if limit else rows


def _int_param(request: Request, name: str) -> int | None:
    value = request.query_params.get(name)
    if value is None or value == "":
        return None
    try:
        return int(float(value))
    except (ValueError, OverflowError):
        raise HTTPException(400, f"{name} must be a number of seconds (epoch), got {value!r}")


def _before(request: Request) -> int | None:
    """DELETE's cut-off; an empty ``before=`` is an error, not "everything"."""
    if "before" in request.query_params and not request.query_params["before"].strip():
        raise HTTPException(400, "before= is empty: give an epoch, or leave it out to delete all")
    return _int_param(request, "before")


def create_app(service: Service) -> Starlette:
    """The Starlette application around a Service; its lifespan starts and stops the service.

    Every request goes through the Guard first (Host, Origin, token: see guard.py). There is
    always a token: without one configured, the one kept beside the state file is used.
    """
    config = service.config
    if config.token is None:
        config.token = resolve_token(None, config.state).value
    token = config.token
    registry = CollectorRegistry(auto_describe=True)
    registry.register(ServiceCollector(service))

    def require_token(request: Request) -> None:
        if not check_token(request.headers, token):
            raise HTTPException(401, NEEDS_TOKEN,
                                headers={"WWW-Authenticate": CHALLENGES[0].decode()})

    ingest = Ingest(service, token)

    async def page(request: Request) -> HTMLResponse:
        # no framing: the page's Clear button must not be clickable from another site
        return HTMLResponse(PAGE, headers={"Content-Security-Policy": "frame-ancestors 'none'",
                                           "X-Frame-Options": "DENY"})

    async def data(request: Request) -> JSONResponse:
        names = request.query_params.getlist("name") or None
        labels = {k: v for k, v in request.query_params.items() if k not in _RESERVED}
        return JSONResponse(service.engine.store.to_json(
            _int_param(request, "start"), _int_param(request, "end"), names, labels or None))

    async def delete_data(request: Request) -> JSONResponse:
        require_token(request)
        if service.group is not None:  # one member's view would come back from the bucket
            return _error(409, "group", "in a group the data is the group's: it expires with "
                          "the stream's retention, and one member does not delete it")
        return JSONResponse({"ok": True, "windows_deleted": service.delete_data(_before(request))})

    async def alerts(request: Request) -> JSONResponse:
        rows = _by_state_and_limit(request, service.engine.alerts.list())
        if isinstance(rows, JSONResponse):
            return rows
        with_doc = request.query_params.get("doc", "1") not in ("0", "false", "no")
        return JSONResponse([a.to_json(with_doc) for a in rows])

    async def alert(request: Request) -> JSONResponse:
        found = service.engine.alerts.get(request.path_params["id"])
        if found is None:
            return _error(404, "not_found", "no such alert (cleared, or past retention)")
        return JSONResponse(found.to_json())

    async def incidents(request: Request) -> JSONResponse:
        found = service.engine.alerts.incidents()
        if request.query_params.get("group") == "carrier":
            return JSONResponse(carriers(found))
        found = _by_state_and_limit(request, found)
        if isinstance(found, JSONResponse):
            return found
        return JSONResponse([i.to_json() for i in found])

    async def incident(request: Request) -> JSONResponse:
        wanted = request.path_params["id"]
        found = next((i for i in service.engine.alerts.incidents() if i.id == wanted), None)
        if found is None:
            return _error(404, "not_found", "no such incident (cleared, or past retention)")
        return JSONResponse({**found.to_json(), "records": [a.to_json(False) for a in found.alerts]})

    def _window(request: Request) -> int | None:
        asked = _int_param(request, "window")
        return asked - asked % WINDOW if asked is not None else last_complete(service.engine.store)

    async def baselines_route(request: Request) -> JSONResponse:
        window = _window(request)
        name = request.query_params.get("name", "calls")
        labels = {k: v for k, v in request.query_params.items() if k not in ("window", "name")}
        engine = service.engine
        rows = [] if window is None else baselines(engine.store, engine.traffic.history, window,
                                                   name, labels)
        return JSONResponse({"window": window, "name": name, "series": rows})

    async def destinations_route(request: Request) -> JSONResponse:
        window = _window(request)
        limit = _int_param(request, "limit") or 10
        if window is None:
            return JSONResponse({"window": None, "days": 0, "top": [], "movers": []})
        engine = service.engine
        return JSONResponse(destinations(engine.store, engine.traffic.history, window, limit))

    async def delete_alerts(request: Request) -> JSONResponse:
        require_token(request)
        return JSONResponse({"ok": True, "alerts_deleted": service.delete_alerts(_before(request))})

    async def restart(request: Request) -> JSONResponse:
        require_token(request)
        plugins = service.reload_plugins()
        return JSONResponse({"ok": not plugins.errors, "plugins": plugins.names(),
                             "errors": [{"file": e.file, "line": e.line, "error": e.error}
                                        for e in plugins.errors]})

    async def status(request: Request) -> JSONResponse:
        # auth_reads tells the page to give its event stream the token (?token=)
        return JSONResponse({**service.status(), "auth_reads": config.auth_reads})

    async def rejected(request: Request) -> JSONResponse:
        limit = min(max(_int_param(request, "limit") or 100, 1), 1000)
        assert service.state is not None
        return JSONResponse(await service._run(lambda: service.state.bad_bodies(limit)))

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        response = _error(exc.status_code, "http_" + str(exc.status_code), str(exc.detail))
        response.headers.update(exc.headers or {})
        return response

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await service.start()
        try:
            yield
        finally:
            await service.stop()

    routes = [
        Route("/6minutes", page),
        Route("/6minutes/", page),
        Route("/6minutes/data", data, methods=["GET"]),
        Route("/6minutes/data", delete_data, methods=["DELETE"]),
        Route("/6minutes/alerts", alerts, methods=["GET"]),
        Route("/6minutes/alerts", delete_alerts, methods=["DELETE"]),
        Route("/6minutes/alerts/{id}", alert, methods=["GET"]),
        Route("/6minutes/incidents", incidents, methods=["GET"]),
        Route("/6minutes/incidents/{id}", incident, methods=["GET"]),
        Route("/6minutes/baselines", baselines_route, methods=["GET"]),
        Route("/6minutes/destinations", destinations_route, methods=["GET"]),
        Route("/6minutes/restart", restart, methods=["POST"]),
        Route("/6minutes/cdr", ingest, methods=["POST"]),  # (other methods: 405)
        Route("/6minutes/status", status),
        Route("/6minutes/rejected", rejected),
        Route("/6minutes/events", events_endpoint(service.hub)),
        Route("/metrics", metrics),
        *static_routes(),
    ]
    guarded = dict(token=token, host=config.host, public_url=config.public_url,
                   allowed_hosts=config.allowed_hosts, allowed_origins=config.allowed_origins,
                   auth_reads=config.auth_reads)
    origins_of(config.allowed_origins)  # a bad one is an error now, not at the first request
    # The POSTs of CDRs straight to their endpoint after the guard's checks (hotpath.py); every
    # other request: the guard first, before anything else sees it; then gzip (24 hours of
    # series are megabytes of JSON; it skips the event stream by itself). Before every other
    # request, the POSTs' rows still waiting are counted: it reads (or changes) them all.
    return HotApp(hot=("POST", "/6minutes/cdr", ingest), guard=guarded,
                  before=service.count_waiting,
                  routes=routes, lifespan=lifespan,
                  middleware=[Middleware(Guard, **guarded),
                              Middleware(GZipMiddleware, minimum_size=1024)],
                  exception_handlers={HTTPException: http_error})
