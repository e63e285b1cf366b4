"""`sixminutes serve` as a real subprocess, and what the integration tests need around it.

``ServiceProcess`` starts ``python -m sixminutes.cli serve`` on a free port with a state file in
a temporary folder, waits until GET /6minutes/status answers, keeps the service's stderr in a
file (appended across restarts, quoted in every timeout message), and stops it with SIGTERM —
or SIGKILL for the crash tests. ``restart()`` keeps the port and the state file.

Also here: CDR makers (tiny ones from tests/helpers.py, realistic ones from the project's
synthetic generator), FreeSWITCH's mod_json_cdr encodings, and polling with a deadline.
"""
from __future__ import annotations

import base64
import itertools
import math
import os
import random
import re
import signal
import subprocess
import sys
import time
import uuid as uuidlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import orjson

from couchdb_server import _free_port
from helpers import cdr as tiny_cdr, seed_rules_toml
from sixminutes.sources.couchdb import _seq_number
from sixminutes.sources.synthetic import Generator

T = TypeVar("T")
WINDOW = 360
START_TIMEOUT = 20.0
_counter = itertools.count(1)


free_port = _free_port


def window_of(epoch: float) -> int:
    epoch = int(epoch)
    return epoch - epoch % WINDOW


def wait_for(check: Callable[[], T], timeout: float = 10.0, what: str = "condition",
             interval: float = 0.05, diagnostics: Callable[[], str] | None = None) -> T:
    """Poll ``check`` until it returns something truthy; fail with ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = check()
        except (httpx.HTTPError, OSError) as error:  # the service may be (re)starting
            last = error
        else:
            if last:
                return last
        if time.monotonic() > deadline:
            extra = f"\n--- diagnostics ---\n{diagnostics()}" if diagnostics else ""
            raise AssertionError(f"timed out after {timeout} s waiting for {what}; "
                                 f"last value: {last!r}{extra}")
        time.sleep(interval)


# -- the service process -------------------------------------------------------------------

class ServiceProcess:
    """One `sixminutes serve` subprocess on 127.0.0.1 (unless ``host`` says otherwise)."""

    def __init__(self, workdir: Path, *, token: str | None = None,
                 couchdb: Iterable[str] = (), since: str | None = None,
                 config: str | None = None, args: Iterable[str] = (),
                 port: int | None = None, host: str | None = None,
                 log_level: str = "info", env: dict[str, str] | None = None) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.host = host
        self._token = token
        self.state = self.workdir / "s.sqlite"
        self.stderr_path = self.workdir / "service.stderr"
        self.config_path: Path | None = None
        if config is not None:
            self.config_path = self.workdir / "config.toml"
            self.config_path.write_text(config)
        self.command = [sys.executable, "-m", "sixminutes.cli", "serve",
                        "--port", str(self.port), "--state", str(self.state),
                        "--log-level", log_level]
        if host:
            self.command += ["--host", host]
        if self.config_path:
            self.command += ["--config", str(self.config_path)]
        for url in couchdb:
            self.command += ["--couchdb", url]
        if since is not None:
            self.command += ["--since", since]
        if token is not None:
            self.command += ["--token", token]
        self.command += list(args)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SIXMINUTES_")}
        self.env.update(env or {})
        self.url = f"http://127.0.0.1:{self.port}"
        self.http = httpx.Client(base_url=self.url, timeout=10.0)
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    # -- life cycle -----------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def launch(self) -> subprocess.Popen[bytes]:
        """Start the process without waiting for it to answer."""
        assert not self.running, "already running"
        with open(self.stderr_path, "ab") as err:
            # (credentials in URLs, tokens and secrets masked here: the tests look for them in
            # this file, which must hold only what the service itself wrote)
            command = re.sub(r"//[^/@\s]*@", "//<credentials>@", " ".join(self.command))
            command = re.sub(r"(--(?:token|webhook-secret) )\S+", r"\1<secret>", command)
            err.write(f"\n===== start #{self.starts + 1}: {command}\n".encode())
            err.flush()
            self.process = subprocess.Popen(self.command, cwd=self.workdir, env=self.env,
                                            stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                            start_new_session=True)
        self.starts += 1
        return self.process

    def start(self, timeout: float = START_TIMEOUT) -> ServiceProcess:
        """Start and wait until GET /6minutes/status answers 200."""
        process = self.launch()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise AssertionError(f"sixminutes serve exited with {process.returncode}:\n"
                                     f"{self.stderr_tail()}")
            try:  # (with the token: reads may need it, --auth-reads)
                if self.http.get("/6minutes/status", headers=self._known_auth(),
                                 timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.03)
        self.kill()
        raise AssertionError(f"sixminutes serve did not answer within {timeout} s:\n"
                             f"{self.stderr_tail()}")

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM and wait (the service saves its last snapshot); SIGKILL if it hangs."""
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
                raise AssertionError(f"sixminutes serve ignored SIGTERM for {timeout} s:\n"
                                     f"{self.stderr_tail()}")
        return process.returncode

    def kill(self) -> int | None:
        """kill -9: no chance to save anything."""
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait(10)
        return process.returncode

    def restart(self, *, crash: bool = False) -> ServiceProcess:
        self.kill() if crash else self.stop()
        return self.start()

    def close(self) -> None:
        try:
            if self.running:
                try:
                    self.stop(timeout=10)
                except AssertionError:
                    pass
        finally:
            self.http.close()

    def stderr_text(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")
        except OSError:
            return ""

    def stderr_tail(self, lines: int = 40) -> str:
        return "\n".join(self.stderr_text().splitlines()[-lines:])

    # -- requests -------------------------------------------------------------------------
    @property
    def token_file(self) -> Path:
        """Where the service keeps the token it generated (none given): beside the state."""
        return self.state.with_name(self.state.name + ".token")

    @property
    def token(self) -> str:
        """The token the service uses: the one given (--token, or SIXMINUTES_TOKEN), else the
        one it generated at its first start and keeps beside the state file."""
        if self._token is not None:
            return self._token
        if self.env.get("SIXMINUTES_TOKEN"):
            return self.env["SIXMINUTES_TOKEN"]
        return self.token_file.read_text().strip()

    def _known_auth(self) -> dict[str, str]:
        """The auth headers, or none while the token file is not written yet (or not at all:
        an in-memory state)."""
        try:
            return self.auth_headers()
        except FileNotFoundError:
            return {}

    def auth_headers(self, token: str | None = None) -> dict[str, str]:
        token = token if token is not None else self.token
        return {"Authorization": f"Bearer {token}"} if token else {}

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.get(path, **kwargs)

    def json(self, path: str, **params: Any) -> Any:
        response = self.http.get(path, params=params)
        assert response.status_code == 200, (path, response.status_code, response.text)
        return response.json()

    def status(self) -> dict:
        return self.json("/6minutes/status")

    def data(self, params: Any = None) -> dict[str, dict[str, dict]]:
        response = self.http.get("/6minutes/data", params=params)
        assert response.status_code == 200, response.text
        return response.json()

    def alerts(self) -> list[dict]:
        return self.json("/6minutes/alerts")

    def total(self, name: str = "calls", **labels: str) -> int:
        """The `count` of a series summed over every window and label set."""
        data = self.data([("name", name), *labels.items()])
        return sum(stat["count"] for series in data.values() for stat in series.values())

    def post_cdr(self, body: bytes, content_type: str = "application/json",
                 headers: dict[str, str] | None = None, auth: bool = True,
                 **kwargs: Any) -> httpx.Response:
        all_headers = {"Content-Type": content_type, "User-Agent": "freeswitch-json/1.0"}
        if auth:
            all_headers.update(self.auth_headers())
        all_headers.update(headers or {})
        return self.http.post("/6minutes/cdr", content=body, headers=all_headers, **kwargs)

    def source(self, prefix: str = "couchdb:") -> dict:
        sources = [s for s in self.status()["sources"] if s["name"].startswith(prefix)]
        assert len(sources) == 1, sources
        return sources[0]

    def wait(self, check: Callable[[], T], timeout: float = 10.0, what: str = "condition",
             interval: float = 0.05) -> T:
        return wait_for(check, timeout, what, interval, self._diagnostics)

    def wait_total(self, expected: int, name: str = "calls", timeout: float = 10.0,
                   **labels: str) -> None:
        """Wait until the total reaches ``expected``, then check it is exactly that."""
        self.wait(lambda: self.total(name, **labels) >= expected, timeout,
                  f"{name}{labels or ''} total to reach {expected}")
        got = self.total(name, **labels)
        assert got == expected, f"{name} total is {got}, expected exactly {expected}"

    def wait_caught_up(self, server: Any, db: str, timeout: float = 10.0) -> None:
        """Wait until the CouchDB source has counted up to the database's current update_seq
        (``counted``: its ``position`` is the reader's, ahead of what is counted)."""
        target = _seq_number(server.info(db)["update_seq"])

        def caught_up() -> bool:
            source = self.source()
            position = _seq_number(source.get("counted"))
            # (not "connected": pouchdb-server sends a feed's headers with its first row, and a
            # service restored at the database's last seq gets none until the heartbeat)
            return position is not None and position >= target

        self.wait(caught_up, timeout, f"the CouchDB source to reach seq {target}")

    def wait_feed_live(self, server: Any, db: str, timeout: float = 10.0) -> int:
        """Make sure the CouchDB feed is live (with --since now, pouchdb-server sends no byte,
        not even the headers, before the first change or the 10 s heartbeat): put design
        documents (never counted as calls) until one comes through as rejected `design_doc`.
        Returns how many design documents the service has rejected so far."""
        deadline = time.monotonic() + timeout
        before = self.status()["rejected"].get("design_doc", 0)
        while time.monotonic() < deadline:
            server.put(db, {"_id": f"_design/{unique('marker')}"})
            step = time.monotonic() + 0.3
            while time.monotonic() < step:
                rejected = self.status()["rejected"].get("design_doc", 0)
                if rejected > before:
                    return rejected
                time.sleep(0.03)
        raise AssertionError(f"the CouchDB feed never went live\n{self._diagnostics()}")

    def _diagnostics(self) -> str:
        try:
            status = orjson.dumps(self.status(), option=orjson.OPT_INDENT_2).decode()
        except Exception as error:  # noqa: BLE001 - diagnostics only
            status = f"(no status: {error!r})"
        return f"status: {status}\nstderr tail:\n{self.stderr_tail()}"


SEED_ALERTS = "[plugins.unexpected_sip]\nmin_count = 1\nmin_calls = 1\nshare = 0.0\n" + seed_rules_toml()
"""Every unexpected SIP code alerts at once and every rule fires on one window crossing its
bound, as in the seed: the tests of the service's plumbing (events, restarts, notifications,
the API) raise an alert with a few CDRs. The default statistical guards are tested in
tests/test_alerts.py, tests/test_thresholds.py and by the tests that leave this out."""


def config_toml(snapshot_seconds: float | None = 0.2, *, seed_alerts: bool = True,
                **serve: Any) -> str:
    """A TOML configuration with a [serve] table (small snapshot interval by default), and the
    seed's alerting on any unexpected SIP code unless ``seed_alerts`` is false."""
    if snapshot_seconds is not None:
        serve["snapshot_seconds"] = snapshot_seconds
    lines = ["[serve]"]
    for key, value in serve.items():
        lines.append(f"{key} = {orjson.dumps(value).decode()}")
    return "\n".join(lines) + "\n" + (SEED_ALERTS if seed_alerts else "")


# -- CDRs --------------------------------------------------------------------------------------

def unique(prefix: str = "x") -> str:
    return f"{prefix}-{os.getpid()}-{next(_counter)}-{uuidlib.uuid4().hex[:8]}"


def small_cdr(end_epoch: int | None = None, *, profile: str = "carrier1",
              direction: str = "egress", account: str = "acct1", uuid: str | None = None,
              _id: str | None = None, **variables: Any) -> dict:
    """A small valid CDR (tests/helpers.py) near now, with its own uuid."""
    end_epoch = int(time.time()) - 30 if end_epoch is None else end_epoch
    return tiny_cdr(_id, ccnq_profile=profile, ccnq_direction=direction, ccnq_account=account,
                    end_epoch=end_epoch, uuid=uuid or str(uuidlib.uuid4()), **variables)


class Realistic:
    """Realistic FreeSWITCH CDRs from the project's generator, ending in the last minutes."""

    def __init__(self, seed: int) -> None:
        self.generator = Generator(seed=seed)
        self.seed = seed
        self._jitter = random.Random(seed)

    def raw(self, end_epoch: int | None = None) -> tuple[bytes, Any]:
        end = int(time.time()) - 5 - self._jitter.randrange(600) if end_epoch is None else end_epoch
        return self.generator.cdr(end)

    def doc(self, end_epoch: int | None = None) -> dict:
        """A CouchDB document: the CDR with its call uuid as _id."""
        raw, truth = self.raw(end_epoch)
        doc = orjson.loads(raw)
        doc["_id"] = f"{truth.uuid}"
        return doc

    def docs(self, n: int) -> list[dict]:
        return [self.doc() for _ in range(n)]


# -- mod_json_cdr encodings ---------------------------------------------------------------------

SWITCH_URL_UNSAFE = b"\r\n #%&+:;<=>?@[\\]^`{|}\""
_HEX = b"0123456789ABCDEF"


def switch_url_encode(data: bytes, double_encode: bool = False) -> bytes:
    """FreeSWITCH's switch_url_encode_opt(): every byte below ' ', above '~' or in
    SWITCH_URL_UNSAFE becomes %XX (upper-case hex). Without ``double_encode`` (what
    switch_url_encode() does) a '%' already followed by two upper-case hex digits is kept."""
    out = bytearray()
    n = len(data)
    for i, byte in enumerate(data):
        keep = False
        if not double_encode and byte == 0x25 and i + 2 < n:
            keep = data[i + 1] in _HEX and data[i + 2] in _HEX
        if not keep and (byte < 0x20 or byte > 0x7E or byte in SWITCH_URL_UNSAFE):
            out += b"%" + bytes([_HEX[byte >> 4], _HEX[byte & 15]])
        else:
            out.append(byte)
    return bytes(out)


def encode_body(document: bytes, encode: str, double_encode: bool = True) -> tuple[bytes, str]:
    """(body, Content-Type) exactly as mod_json_cdr POSTs ``document`` for its `encode` setting."""
    if encode == "false":
        return document, "application/x-www-form-plaintext"
    if encode == "json":  # other clients
        return document, "application/json"
    if encode == "true":
        return b"cdr=" + switch_url_encode(document, double_encode), \
            "application/x-www-form-urlencoded"
    if encode == "base64":
        return b"cdr=" + base64.b64encode(document), "application/x-www-form-base64-encoded"
    raise ValueError(encode)


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


# -- the reference: the same CDRs counted offline by the engine --------------------------------

def reference_data(documents: Iterable[bytes | dict]) -> dict[str, dict[str, dict]]:
    """/6minutes/data as the engine alone computes it for these documents (no service)."""
    from sixminutes.config import Config
    from sixminutes.engine import Engine

    engine = Engine(Config(retention_hours=None))
    for document in documents:
        engine.feed(document)
    engine.flush()
    return engine.store.to_json()


def data_differences(got: dict[str, dict[str, dict]], want: dict[str, dict[str, dict]],
                     limit: int = 8) -> str:
    """'' when both /6minutes/data documents hold the same series with the same counts (and
    sums, min, max up to rounding); else a short description of what differs."""
    g = {(t, k): v for t, series in got.items() for k, v in series.items()}
    w = {(t, k): v for t, series in want.items() for k, v in series.items()}
    missing = sorted(set(w) - set(g))
    extra = sorted(set(g) - set(w))
    wrong = []
    for cell in sorted(set(g) & set(w)):
        a, b = g[cell], w[cell]
        if a["count"] != b["count"] or not all(
                math.isclose(a[f], b[f], rel_tol=1e-9, abs_tol=1e-6)
                for f in ("sum", "squares", "min", "max")):
            wrong.append((cell, a, b))
    if not (missing or extra or wrong):
        return ""
    lost = sum(w[c]["count"] for c in missing) + sum(b["count"] - a["count"] for _, a, b in wrong)
    return (f"{len(missing)} series missing, {len(extra)} extra, {len(wrong)} with other values "
            f"(net count lost: {lost}) of {len(w)}; missing e.g. {missing[:limit]}; "
            f"extra e.g. {extra[:limit]}; different e.g. {wrong[:limit]}")
