"""The service's CouchDB feeds: one follower per database, counted in batches, positions kept.

A follower reads ahead of what is counted (sources/batching.py), so the position a snapshot
may save is the seq of the last row counted, not the follower's own; when counting stops, the
follower rewinds to it.
"""
from __future__ import annotations

import contextlib
import json
import re
from typing import Any, Awaitable, Callable

from .config import Config
from .engine import BATCH, Engine
from .sources.batching import ready_batches
from .sources.couchdb import ChangesFollower, redact
from .state import Delta

__all__ = ["Followers"]

LAGGING = 500
"""Changes behind beyond which a feed is late: a window that looks quiet may only be late."""
_ROW_ID = re.compile(rb'"id"\s*:\s*"((?:[^"\\]|\\.){0,200})"')

SavePositions = Callable[[Delta], Awaitable[None]]
Count = Callable[[list[bytes], str], Awaitable[list[str | None]]]
Rejected = Callable[..., None]
"""``rejected(source, reason, id=..., seq=...)``: one rejection, for the status."""


class Followers:
    """Every ``--couchdb`` feed of the service, by name (``couchdb:<url without credentials>``)."""

    def __init__(self, config: Config, engine: Engine, save: SavePositions,
                 rejected: Rejected, count: Count | None = None,
                 counted: Callable[[], None] = lambda: None) -> None:
        self.config = config
        self.engine = engine
        self.saved: dict[str, str] = {}
        """Positions as saved in the state file (and "now" once it is resolved)."""
        self.counted: dict[str, str] = {}
        """Follower → the seq of the last row counted (its reader runs ahead of it)."""
        self._save = save
        self._rejected = rejected
        self.followers: dict[str, ChangesFollower] = {}
        self.count = count or self._count
        self.after = counted
        """Called after each batch is counted (the service then publishes it promptly)."""
        """Counts a batch of rows; in a group, stores them in the stream (group/cluster.py)."""

    async def _count(self, rows: list[bytes], source: str) -> list[str | None]:
        return self.engine.feed_batch(rows, source)

    def open(self, saved: dict[str, str]) -> None:
        """A follower per ``--couchdb`` URL, each from its saved position (else ``since``)."""
        self.saved = saved
        config = self.config
        for url in config.couchdb:
            name = f"couchdb:{redact(url)}"
            while name in self.followers:  # the same database under other credentials
                name += "+"
            self.followers[name] = ChangesFollower(
                url, saved.get(name, config.since), heartbeat_ms=config.couchdb_heartbeat_ms,
                backoff_max=config.couchdb_backoff_max)

    def runs(self) -> dict[str, Callable[[], Awaitable[None]]]:
        """Name → the coroutine function that counts that feed (for the service's tasks)."""
        return {name: (lambda n=name, f=follower: self.follow(n, f))
                for name, follower in self.followers.items()}

    async def follow(self, name: str, follower: ChangesFollower) -> None:
        """Count a feed's rows in batches of those waiting (a catch-up brings thousands)."""
        begun, counted = follower.position, None
        try:
            async with contextlib.aclosing(ready_batches(follower.rows(), BATCH)) as batches:
                async for batch in batches:
                    if name not in self.saved and follower.started_from is not None:
                        # "now" was resolved: save it before counting anything from it, or a
                        # kill -9 before the first snapshot would resolve a later "now"
                        start = {name: follower.started_from}
                        await self._save(Delta(positions=start))
                        self.saved.update(start)
                    reasons = await self.count([row for row, _ in batch], name)
                    self.after()
                    counted = self.counted[name] = batch[-1][1]
                    for (row, seq), reason in zip(batch, reasons):
                        if reason is not None:
                            found = _ROW_ID.search(row, 0, 4096)
                            self._rejected(name, reason, id=found[1].decode("utf-8", "replace")
                                           if found else None, seq=seq)
        finally:
            if counted is None:  # nothing counted: where this run began ("now" as it resolved)
                counted = follower.started_from if begun == "now" and follower.started_from \
                    else begun
            follower.rewind(counted)

    def positions(self) -> dict[str, str]:
        """What a snapshot saves: the saved positions, "now" as resolved before any row came,
        and the seq of the last row counted of each feed."""
        resolved = {name: f.started_from for name, f in self.followers.items()
                    if name not in self.counted and f.started_from is not None}
        return {**self.saved, **resolved, **self.counted}

    def behind(self) -> bool:
        """A feed down or more than LAGGING changes behind: quiet may mean late."""
        counted = self.positions()
        for name, follower in self.followers.items():
            status = follower.status(counted.get(name))  # (lag: the changes not counted yet)
            if not status.get("connected") or (status.get("lag") or 0) > LAGGING:
                return True
        return False

    def status(self) -> list[dict[str, Any]]:
        """Each follower's status, and ``counted``: the seq up to which its rows are counted
        (what a snapshot saves; ``position`` is the reader's, which runs ahead)."""
        counted = self.positions()
        return [{"name": name, **f.status(counted.get(name)),  # (lag: not counted yet)
                 "counted": _seq_value(counted.get(name))} for name, f in self.followers.items()]


def _seq_value(position: str | None) -> Any:
    """A position as kept (JSON text) as the seq it is; text that is not JSON stays text."""
    if position is None:
        return None
    try:
        return json.loads(position)
    except ValueError:
        return position
