"""The dashboard's files (sixminutes/web/static.py) without a browser: what is served, how it is
cached, and rules its code keeps (no markup built from strings, nothing fetched from elsewhere)."""
from __future__ import annotations

import asyncio
import gzip
import re
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from sixminutes.web.page import PAGE
from sixminutes.web.static import PLOTLY_PATH, STATIC_DIR, plotly_js_path, static_routes

CODE = sorted(STATIC_DIR.rglob("*.js")) + sorted(STATIC_DIR.rglob("*.css")) + [STATIC_DIR / "index.html"]


class Client:
    """GET on the static routes in-process (httpx's ASGI transport)."""

    def __init__(self) -> None:
        self.app = Starlette(routes=static_routes())

    def get(self, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                return await client.get(path, headers=headers)
        return asyncio.run(go())


@pytest.fixture(scope="module")
def client() -> Client:
    return Client()


def test_files_are_served_with_an_etag_and_revalidated(client: Client) -> None:
    response = client.get("/6minutes/static/js/main.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/javascript")
    assert response.headers["cache-control"] == "no-cache"
    assert response.text == (STATIC_DIR / "js" / "main.js").read_text()
    etag = response.headers["etag"]
    again = client.get("/6minutes/static/js/main.js", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert client.get("/6minutes/static/style.css").headers["content-type"].startswith("text/css")


def test_gzip_when_accepted(client: Client) -> None:
    raw = client.get("/6minutes/static/js/main.js", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in raw.headers
    zipped = client.get("/6minutes/static/js/main.js", headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip"  # httpx decodes it for us
    assert zipped.content == raw.content


def test_unknown_files_and_escapes_are_404(client: Client) -> None:
    for path in ("nope.js", "../static.py", "..%2Fstatic.py", "js/../../page.py"):
        assert client.get(f"/6minutes/static/{path}").status_code == 404, path


def test_plotly_comes_from_the_plotly_package(client: Client) -> None:
    path = plotly_js_path()
    assert path.is_file() and "plotly" in path.parts
    response = client.get(PLOTLY_PATH, headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200
    assert response.headers["content-encoding"] == "gzip"
    assert response.content == path.read_bytes()
    assert b"window.Plotly" in response.content[-2000:]
    assert not any(p.name.startswith("plotly") for p in STATIC_DIR.rglob("*")), \
        "third-party JavaScript copied into the repository"


def test_the_page_is_the_static_index() -> None:
    assert PAGE == (STATIC_DIR / "index.html").read_text()
    assert '<script type="module" src="/6minutes/static/js/main.js">' in PAGE
    assert "Content-Security-Policy" in PAGE


@pytest.mark.parametrize("path", CODE, ids=lambda p: str(p.relative_to(STATIC_DIR)))
def test_code_builds_no_markup_and_loads_nothing_from_elsewhere(path: Path) -> None:
    text = path.read_text()
    for banned in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(",
                   "new Function"):
        assert banned not in text, f"{path.name} uses {banned}"
    urls = re.findall(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, re.I)
    assert not urls, f"{path.name} refers to other hosts: {urls}"


def test_modules_are_small() -> None:
    """A newcomer reads them in one sitting."""
    for path in STATIC_DIR.rglob("*.js"):
        assert len(path.read_text().splitlines()) <= 300, path.name


def test_gzip_copy_matches() -> None:
    from sixminutes.web.static import Asset
    asset = Asset.of(b"x" * 1000, "a.js")
    assert gzip.decompress(asset.gzipped) == asset.body
