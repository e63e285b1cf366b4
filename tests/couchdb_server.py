"""A real CouchDB-protocol server for the tests: pouchdb-server from npm (tests/couchdb).

Fixtures (registered in tests/conftest.py):

- ``pouchdb``: a running in-memory server shared by the whole session (startup costs ~2 s), so
  each test should work in its own database: ``db = pouchdb.new_db()``. A test that stopped it
  gets it started again (empty) by the next test that asks for it.
- ``pouchdb_factory(on_disk=False)``: a server of this test's own, killed at its teardown; with
  ``on_disk=True`` its data lives in a temporary folder, so ``stop()`` then ``start()`` (same port,
  same folder) is a real server restart that keeps the databases.

``make test`` installs the server (``npm ci --prefix tests/couchdb``); without it the fixtures
fail with that hint instead of skipping, so a missing install never passes for a green run.
"""
from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

HERE = Path(__file__).resolve().parent
BINARY = HERE / "couchdb" / "node_modules" / ".bin" / "pouchdb-server"
START_TIMEOUT = 30.0
_names = itertools.count(1)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PouchServer:
    """One pouchdb-server process on 127.0.0.1, with the few requests the tests need."""

    def __init__(self, workdir: Path, *, on_disk: bool = False,
                 port: int | None = None) -> None:
        if not BINARY.exists():
            pytest.fail(f"{BINARY} is missing: run `make test` (it runs `npm ci --prefix "
                        f"tests/couchdb`) to install pouchdb-server", pytrace=False)
        self.workdir = workdir
        self.on_disk = on_disk
        self.port = port or _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._port_tries = 5 if port is None else 0  # ours to change until a first start succeeds
        self.auth: tuple[str, str] | None = None
        self.log_path = workdir / "pouchdb-server.log"
        self._process: subprocess.Popen[bytes] | None = None
        self.http = httpx.Client(timeout=10.0)

    # -- lifecycle -------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> PouchServer:
        """Start (or restart) on the same port with the same folder; wait until GET / answers."""
        if self.running:
            return self
        data = ["--dir", str(self.workdir / "data")] if self.on_disk else ["--in-memory"]
        (self.workdir / "data").mkdir(parents=True, exist_ok=True)
        # cwd and --config keep its config.json and log.txt out of the source tree.
        command = [str(BINARY), "--port", str(self.port), "--host", "127.0.0.1", "--no-color",
                   "--config", str(self.workdir / "config.json"), *data]
        with open(self.log_path, "ab") as log:
            self._process = subprocess.Popen(command, cwd=self.workdir, stdout=log,
                                             stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                             start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                if self._port_tries > 0 and "already in use" in self.log_tail(3):
                    # another process took the free port between our probe and node's bind
                    # (other test runs share the machine): a first start may take another
                    self._process, self._port_tries = None, self._port_tries - 1
                    self.port = _free_port()
                    self.url = f"http://127.0.0.1:{self.port}"
                    return self.start()
                raise RuntimeError(f"pouchdb-server exited ({self._process.returncode}):\n"
                                   f"{self.log_tail()}")
            try:
                if httpx.get(self.url + "/", timeout=1.0).status_code == 200:
                    self._port_tries = 0  # a restart comes back on the same port
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"pouchdb-server did not answer within {START_TIMEOUT} s:\n"
                           f"{self.log_tail()}")

    def stop(self) -> None:
        """Kill the server's whole process group (node may have children) and wait for it."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                return
            try:
                process.wait(wait)
                return
            except subprocess.TimeoutExpired:
                continue

    def close(self) -> None:
        self.stop()
        self.http.close()

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    # -- requests --------------------------------------------------------------------------
    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(method, f"{self.url}/{path.lstrip('/')}",
                                     auth=self.auth, **kwargs)
        response.raise_for_status()
        return response.json()

    def create_db(self, name: str) -> str:
        self.request("PUT", name)
        return name

    def new_db(self, prefix: str = "cdrs") -> str:
        """A database with a name no other test of this session uses."""
        return self.create_db(f"{prefix}-{os.getpid()}-{next(_names)}")

    def info(self, db: str) -> dict:
        return self.request("GET", db)

    def put(self, db: str, doc: dict) -> dict:
        """PUT a document with an _id (a design doc too); returns {"ok","id","rev"}."""
        return self.request("PUT", f"{db}/{doc['_id']}", json=doc)

    def post_many(self, db: str, docs: list[dict]) -> list[dict]:
        return self.request("POST", f"{db}/_bulk_docs", json={"docs": docs})

    def delete(self, db: str, doc_id: str) -> dict:
        rev = self.request("GET", f"{db}/{doc_id}")["_rev"]
        return self.request("DELETE", f"{db}/{doc_id}", params={"rev": rev})

    def set_admin(self, user: str, password: str) -> None:
        """Leave "admin party": from now on a wrong password gets 401 (reads stay public)."""
        self.request("PUT", f"_config/admins/{user}", json=password)
        self.auth = (user, password)


@pytest.fixture
def pouchdb_factory(
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., PouchServer]]:
    servers: list[PouchServer] = []

    def make(on_disk: bool = False) -> PouchServer:
        server = PouchServer(tmp_path_factory.mktemp("pouchdb"), on_disk=on_disk)
        servers.append(server)
        return server.start()

    yield make
    for server in servers:
        server.close()


@pytest.fixture(scope="session")
def _pouchdb_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PouchServer]:
    server = PouchServer(tmp_path_factory.mktemp("pouchdb-shared"))
    try:
        yield server.start()
    finally:
        server.close()


@pytest.fixture
def pouchdb(_pouchdb_session: PouchServer) -> PouchServer:
    """The session's shared in-memory server, running; use ``pouchdb.new_db()``."""
    server = _pouchdb_session
    if server.auth is not None:  # a test left an admin on it: start afresh without
        server.stop()
        (server.workdir / "config.json").unlink(missing_ok=True)
        server.auth = None
    return server.start()
