"""The snapshot writer: what changed is saved with the positions; a failed write loses nothing."""
from __future__ import annotations

import asyncio
from typing import Any, Callable

import orjson

from helpers import END, WINDOW, raw
from sixminutes.alerts import Alerts
from sixminutes.call import decode
from sixminutes.config import Config
from sixminutes.engine import Engine
from sixminutes.snapshots import SnapshotWriter, alert_record
from sixminutes.state import State

NOW = END + 60


async def inline(fn: Callable[[], Any]) -> Any:
    """The state's thread, here the caller's: the same calls, in order."""
    return fn()


def live_engine() -> Engine:
    engine = Engine(Config(), clock=lambda: NOW)
    engine.track_seen = True
    engine.store.track_changes = True
    return engine


def feed(engine: Engine, writer: SnapshotWriter, *ids: str, profile: str = "kestrel") -> None:
    engine.feed_batch([raw(_id=i, ccnq_profile=profile) for i in ids], "http")
    writer.cells_changed(engine.store.drain_changes())


def saved_cells(path: str) -> dict[tuple[int, str], int]:
    state = State(path)
    try:
        return {(t, key): count for t, key, _, count, *_ in state.load().cells}
    finally:
        state.close()


def test_a_snapshot_saves_the_changed_cells_with_the_positions(tmp_path):
    path = str(tmp_path / "s.sqlite")
    engine = live_engine()
    writer = SnapshotWriter(engine, inline, clock=lambda: NOW)
    feed(engine, writer, "a", "b")
    state = State(path)
    asyncio.run(writer.write(state, {"couchdb:x": "7", "journal": "2"}, 2))
    state.close()
    assert saved_cells(path)[(WINDOW, 'calls{direction="unknown",profile="kestrel"}')] == 2
    assert writer.unsaved == {} and writer.stats["count"] == 1 and writer.stats["last_error"] is None
    assert writer.stats["last_at"] == NOW
    state = State(path)
    assert state.load().positions == {"couchdb:x": "7", "journal": "2"}
    state.close()


def test_what_a_failed_write_took_is_saved_by_the_next_one(tmp_path):
    engine = live_engine()
    writer = SnapshotWriter(engine, inline, clock=lambda: NOW)
    feed(engine, writer, "a")
    broken = State(str(tmp_path / "broken.sqlite"))
    broken.close()  # every write to it fails
    asyncio.run(writer.write(broken, {}, 0))
    assert writer.stats["count"] == 0 and "closed" in writer.stats["last_error"]
    assert writer.unsaved  # put back, with the dedup hashes taken
    assert engine.seen_new or engine.seen.take_packed()
    feed(engine, writer, "b", profile="osprey")  # another cell: kestrel's is not touched again
    path = str(tmp_path / "s.sqlite")
    state = State(path)
    asyncio.run(writer.write(state, {}, 0))
    state.close()
    assert writer.stats["count"] == 1 and writer.stats["last_error"] is None
    cells = saved_cells(path)
    assert cells[(WINDOW, 'calls{direction="unknown",profile="kestrel"}')] == 1
    assert cells[(WINDOW, 'calls{direction="unknown",profile="osprey"}')] == 1
    restored = State(path)
    seen = restored.load().seen
    restored.close()
    assert sum(len(hashes) for hashes in seen.values()) == 2  # "a" too: not counted again


def test_forgotten_windows_are_deleted_and_their_unsaved_cells_not_written(tmp_path):
    path = str(tmp_path / "s.sqlite")
    engine = live_engine()
    writer = SnapshotWriter(engine, inline, clock=lambda: NOW)
    feed(engine, writer, "a")
    state = State(path)
    asyncio.run(writer.write(state, {}, 0))
    feed(engine, writer, "b")
    engine.store.purge(None)
    writer.forget(None, ("cells",))
    assert writer.unsaved == {} and writer.deletions == [("cells", None)]
    asyncio.run(writer.write(state, {}, 0))
    state.close()
    assert saved_cells(path) == {}


def test_an_alert_whose_sample_cannot_be_written_is_saved_with_a_note():
    alert = Alerts().raise_alert("p", "m", None, WINDOW, decode(raw(_id="odd")), {})
    alert.sample = {"variables": {"n": 2**70}}  # a number orjson cannot write
    record = orjson.loads(alert_record(alert))
    assert record["id"] == alert.id and "could not be saved" in record["doc"]["unsaved"]


def test_a_failed_write_puts_back_the_history_hours_and_plugin_state_it_took(tmp_path):
    engine = live_engine()
    writer = SnapshotWriter(engine, inline, clock=lambda: NOW)
    feed(engine, writer, "a")
    key = 'calls{direction="egress",profile="kestrel"}'
    engine.traffic.history.fold(WINDOW - 86400, [key], [30.0])
    engine.traffic.history.dropped = WINDOW - 9 * 86400
    broken = State(str(tmp_path / "broken.sqlite"))
    broken.close()  # every write to it fails
    asyncio.run(writer.write(broken, {}, 0))
    assert writer.stats["count"] == 0
    assert engine.traffic.history.changed == {(WINDOW - 86400) - (WINDOW - 86400) % 3600}
    assert engine.traffic.history.dropped == WINDOW - 9 * 86400
    assert "fraud" not in writer.plugin_saved  # (written again next time)
    path = str(tmp_path / "s.sqlite")
    state = State(path)
    asyncio.run(writer.write(state, {}, 0))
    state.close()
    state = State(path)
    loaded = state.load()
    hour = (WINDOW - 86400) - (WINDOW - 86400) % 3600
    slot = 1 << ((WINDOW - 86400) - hour) // 360  # (the window of the hour that had the calls)
    assert list(loaded.history) == [(hour, key, 30.0, slot)]
    assert loaded.history_hours == {hour: (1, slot)}
    assert "fraud" in loaded.plugin_state
    state.close()
