"""The POSTs' rows counted after their answer (service.py's count_waiting), on a real state
file and journal: nothing reads them uncounted, and a kill -9 at any point, rows waiting or
not, leaves every CDR counted exactly once after the restart."""
from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from helpers import END, raw
from sixminutes import service as service_module
from sixminutes.config import Config
from sixminutes.service import Service


def new(state: Path) -> Service:
    return Service(Config(token="t", state=str(state)), clock=lambda: END + 60.0)


def calls(svc: Service) -> int:
    """The calls counted in the store (the engine's outcomes are counted at admission)."""
    return sum(s.count for _, _, s in svc.engine.store.items(names=["calls"]))


def killed(state: Path, into: Path) -> Path:
    """What a kill -9 now would leave on disk: the state file (WAL mode: with its log) and
    the journal's segments, copied as they are (nothing of the process's memory)."""
    into.mkdir()
    for path in state.parent.glob(state.name + "*"):
        if path.is_dir():
            shutil.copytree(path, into / path.name)
        elif not path.name.endswith(".lock"):
            shutil.copy2(path, into / path.name)
    return into / state.name


@pytest.fixture
def never_by_time(monkeypatch):
    """Rows wait until something reads them (no timer, no bound, in these tests' time)."""
    monkeypatch.setattr(service_module, "WAIT_SECONDS", 3600.0)
    monkeypatch.setattr(service_module, "WAIT_ROWS", 10**9)


def test_a_posts_row_waits_after_its_answer_for_the_timer_or_the_bound(tmp_path, monkeypatch):
    monkeypatch.setattr(service_module, "WAIT_ROWS", 3)

    async def main() -> None:
        svc = new(tmp_path / "s.sqlite")
        await svc.start()
        try:
            assert await svc.ingest(raw(uuid="a")) is None
            assert len(svc.engine.waiting) == 1 and calls(svc) == 0 and svc.engine.accepted == 1
            timer = svc._waiting
            assert timer is not None and timer.when() <= (asyncio.get_running_loop().time()
                                                          + service_module.WAIT_SECONDS)
            # three more in one group commit: past the bound, all four counted at once
            await asyncio.gather(*(svc.ingest(raw(uuid=f"b{n}")) for n in range(3)))
            assert len(svc.engine.waiting) == 0 and calls(svc) == 4
            assert svc._waiting is None and timer.cancelled()
        finally:
            await svc.stop()
    asyncio.run(main())


def test_the_tick_and_the_events_count_the_rows_waiting(tmp_path, never_by_time):
    async def main() -> None:
        svc = new(tmp_path / "s.sqlite")
        await svc.start()
        try:
            await svc.ingest(raw(uuid="a"))
            svc.tick()
            assert len(svc.engine.waiting) == 0 and calls(svc) == 1
            await svc.ingest(raw(uuid="b"))
            svc._publish_stats()  # (what PROMPT s after a commit does, for open event streams)
            assert len(svc.engine.waiting) == 0 and calls(svc) == 2
            assert svc.journal_position == 2
        finally:
            await svc.stop()
    asyncio.run(main())


def test_kill_9_with_rows_waiting_before_and_after_a_snapshot_counts_each_cdr_once(
        tmp_path, never_by_time):
    state = tmp_path / "s.sqlite"
    images: dict[str, Path] = {}

    async def first() -> None:
        svc = new(state)
        await svc.start()
        try:
            await asyncio.gather(*(svc.ingest(raw(uuid=f"a{n}")) for n in range(5)))
            images["before any snapshot"] = killed(state, tmp_path / "k1")
            await asyncio.gather(*(svc.ingest(raw(uuid=f"b{n}")) for n in range(4)))
            assert len(svc.engine.waiting) == 9
            await svc.snapshot()  # (counts them first: the saved ids go with their counts)
            assert len(svc.engine.waiting) == 0 and svc.journal_position == 9
            await svc.ingest(raw(uuid="a0"))  # a retry of one the snapshot holds
            await asyncio.gather(*(svc.ingest(raw(uuid=f"c{n}")) for n in range(3)))
            assert len(svc.engine.waiting) == 3
            images["after a snapshot"] = killed(state, tmp_path / "k2")
        finally:
            await svc.stop()

    async def restarted(image: Path, resend: list[str]) -> tuple[int, int, list, int]:
        svc = new(image)
        await svc.start()
        try:
            reasons = [await svc.ingest(raw(uuid=u)) for u in resend]
            return svc.engine.accepted, calls(svc), reasons, svc.engine.rejected["duplicate"]
        finally:
            await svc.stop()

    asyncio.run(first())
    accepted, counted, reasons, duplicates = asyncio.run(
        restarted(images["before any snapshot"], ["a4"]))
    assert (accepted, counted, reasons, duplicates) == (5, 5, ["duplicate"], 1)
    every = [f"a{n}" for n in range(5)] + [f"b{n}" for n in range(4)] + [f"c{n}" for n in range(3)]
    accepted, counted, reasons, duplicates = asyncio.run(restarted(images["after a snapshot"], every))
    assert (accepted, counted) == (12, 12) and reasons == ["duplicate"] * 12
    # (the retry of a0 once, journaled after the snapshot; no row the snapshot holds replayed)
    assert duplicates == 1 + 12


def test_a_post_then_at_once_every_read_of_the_api_sees_its_cdr(tmp_path, never_by_time):
    """Through the application (the hot route, then the stack): the data, the status, the
    metrics, the alerts of a plugin that alerts on every call, each right after a POST."""
    import httpx

    from sixminutes.web.app import create_app
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "loud.py").write_text("def plugin(ctx):\n    ctx.alert(f'call {ctx.call.id}')\n")
    bearer = {"Authorization": "Bearer t"}

    async def main() -> None:
        svc = Service(Config(token="t", state=str(tmp_path / "s.sqlite"), plugin_dirs=[str(plugins)]),
                      clock=lambda: END + 60.0)
        await svc.start()
        transport = httpx.ASGITransport(app=create_app(svc))
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8360") as c:
                reads = {"/6minutes/data?name=calls": lambda r, n: sum(
                             s["count"] for w in r.json().values() for s in w.values()) == n,
                         "/6minutes/status": lambda r, n: r.json()["accepted"] == n,
                         "/metrics": lambda r, n: f'sixminutes_plugin_calls_total{{plugin="kpis"}}'
                                                  f' {n}.0\n' in r.text,
                         "/6minutes/alerts": lambda r, n: len(r.json()) == n}
                n = 0
                for path, holds in reads.items():
                    n += 1
                    posted = await c.post("/6minutes/cdr", content=raw(uuid=f"u{n}"), headers=bearer)
                    assert posted.status_code == 200 and len(svc.engine.waiting) == 1
                    response = await c.get(path, headers=bearer)
                    assert response.status_code == 200 and holds(response, n), (path, response.text[:300])
        finally:
            await svc.stop()
    asyncio.run(main())
