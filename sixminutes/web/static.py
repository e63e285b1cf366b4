"""The dashboard's files: GET /6minutes/static/... (its HTML, CSS and ES modules) and the
charting library, plotly.js, served from the `plotly` Python package's own data — nothing from
a CDN, nothing third-party copied into this repository, so the page works offline.

Every file is read once, kept in memory with a gzip copy, and answered with an ETag and
`Cache-Control: no-cache`: a browser revalidates (a cheap 304) and never runs stale code after
an upgrade. plotly.min.js (~5 MB, ~1.4 MB gzipped) is read and compressed on first request.
"""
from __future__ import annotations

import gzip
import hashlib
import mimetypes
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

__all__ = ["static_routes", "STATIC_DIR", "PREFIX", "PLOTLY_PATH"]

PREFIX = "/6minutes/static"
PLOTLY_PATH = PREFIX + "/vendor/plotly.min.js"
STATIC_DIR = Path(__file__).with_name("static")
_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
          ".html": "text/html; charset=utf-8", ".svg": "image/svg+xml", ".json": "application/json"}


@dataclass(frozen=True)
class Asset:
    body: bytes
    gzipped: bytes
    etag: str
    media_type: str

    @classmethod
    def of(cls, body: bytes, name: str) -> Asset:
        suffix = Path(name).suffix
        media_type = _TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"
        return cls(body, gzip.compress(body, 6, mtime=0),
                   '"%s"' % hashlib.sha256(body).hexdigest()[:32], media_type)

    def response(self, request: Request) -> Response:
        headers = {"ETag": self.etag, "Cache-Control": "no-cache", "Vary": "Accept-Encoding",
                   "X-Content-Type-Options": "nosniff"}
        if self.etag in request.headers.get("if-none-match", ""):
            return Response(status_code=304, headers=headers)
        body = self.body
        if "gzip" in request.headers.get("accept-encoding", ""):
            body, headers["Content-Encoding"] = self.gzipped, "gzip"
        return Response(body, media_type=self.media_type, headers=headers)


def _assets(root: Path) -> dict[str, Asset]:
    """Every file under static/ (except the vendor folder, which this module fills), by path."""
    return {path.relative_to(root).as_posix(): Asset.of(path.read_bytes(), path.name)
            for path in sorted(root.rglob("*"))
            if path.is_file() and not path.name.startswith(".") and path.suffix in _TYPES}


def plotly_js_path() -> Path:
    """plotly.min.js as the `plotly` wheel ships it (plotly/package_data/plotly.min.js)."""
    return Path(str(resources.files("plotly") / "package_data" / "plotly.min.js"))


@cache
def _plotly() -> Asset:
    return Asset.of(plotly_js_path().read_bytes(), "plotly.min.js")


def static_routes() -> list[BaseRoute]:
    """The routes to add to the application: the dashboard's files and plotly.js."""
    assets = _assets(STATIC_DIR)

    async def plotly_js(request: Request) -> Response:
        try:
            asset = await run_in_threadpool(_plotly)
        except (ModuleNotFoundError, OSError) as error:
            return Response(f"/* plotly.js is not available: {error} */", status_code=404,
                            media_type="text/javascript")
        return asset.response(request)

    async def static_file(request: Request) -> Response:
        asset = assets.get(request.path_params["path"])
        if asset is None:
            return Response("not found", status_code=404, media_type="text/plain")
        return asset.response(request)

    return [Route(PLOTLY_PATH, plotly_js, methods=["GET", "HEAD"]),
            Route(PREFIX + "/{path:path}", static_file, methods=["GET", "HEAD"])]
