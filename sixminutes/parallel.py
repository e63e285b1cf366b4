"""A replay over several processes: each counts whole windows, then one engine joins them.

Everything the engine keeps per CDR lives in one 6-minute window: the Stats, the dedup of
``_id``, the threshold rules, the plugin alerts and what ``ctx.stat`` reads. So every
process reads all the inputs and counts only the documents whose window falls to it (the
window number modulo the number of processes, read cheaply from the raw ``end_epoch``).
Each checks the rules at the same documents as one process would (every ``check_every``
documents read, its own or not), so the same alerts fire with the same sample CDRs. The
join adds up the stores, alerts and counts, and :meth:`Engine.settle` resolves the alert
conditions over the whole store, as a one-process replay does at its end.

What may differ from one process: a plugin that keeps its own state across windows (a
module global, say) sees only its process's share; and a document whose first
``end_epoch`` is not the one decoded (a repeated key) may be counted by a process that does
not hold the rest of its window, where a duplicate of it would go unnoticed.
``tests/test_parallel.py`` compares the two on real and generated inputs.
"""
from __future__ import annotations

import multiprocessing
import queue
import re
from typing import Any, Callable

from .call import _prescan
from .config import Config
from .engine import Engine, Share
from .sources.files import InputError, read_documents
from .windows import WINDOW

__all__ = ["replay", "shard_of"]

_END_EPOCH = re.compile(rb'"end_epoch"[ \t\n\r]*:[ \t\n\r]*"?(\d{1,12})')


def _peek_slowly(raw: bytes) -> int | None:
    """What ``_prescan.end_epoch`` says, without the extension (ten times slower)."""
    found = _END_EPOCH.search(raw)
    return int(found.group(1)) if found else None


_peek = _prescan.end_epoch if _prescan is not None else _peek_slowly


def shard_of(item: bytes | dict | Any, jobs: int) -> int:
    """Which of ``jobs`` processes counts this document: the one its window falls to.

    The end time is read without decoding (the first ``end_epoch`` in the bytes); a
    document without a readable one goes to process 0, which rejects it as the engine
    would. Two copies of one document always go to the same process.
    """
    epoch = None
    if isinstance(item, bytes):
        epoch = _peek(item)
        if epoch is not None and epoch < 0:
            epoch = None
    elif isinstance(item, dict):
        doc = item.get("doc") if "variables" not in item else item
        variables = doc.get("variables") if isinstance(doc, dict) else None
        if isinstance(variables, dict):
            try:
                epoch = int(variables.get("end_epoch"))  # type: ignore[arg-type]
            except (TypeError, ValueError, OverflowError):
                pass
    return 0 if epoch is None else (epoch // WINDOW) % jobs


def _count(engine: Engine, paths: list[str], index: int, jobs: int,
           progress: Callable[[int], None] | None = None) -> Engine:
    """Count this share's documents of ``paths`` into ``engine``; pass over the others."""
    engine.hold_resolution = True  # conditions span the windows of other shares: see settle()
    feed, pass_over = engine.feed, engine.pass_over
    for item in read_documents(paths, progress=progress):
        if shard_of(item, jobs) == index:
            feed(item)
        else:
            pass_over()
    engine.flush()
    engine.store.compact()
    return engine


def _count_share(paths: list[str], config: Config, index: int, jobs: int, results: Any) -> None:
    """Another process: count its share, send back what was counted."""
    try:
        results.put((index, _count(Engine(config), paths, index, jobs).share()))
    except BaseException as error:  # the parent reports it; a worker must never hang it
        results.put((index, f"{type(error).__name__}: {error}"))


def replay(paths: list[str], config: Config, jobs: int,
           progress: Callable[[int], None] | None = None) -> Engine:
    """Count the documents of ``paths`` in ``jobs`` processes, this one among them; return one
    engine holding it all, its alerts still to be settled (:meth:`Engine.settle`).

    ``progress(n)`` receives the bytes this process has read, as ``read_documents`` reports.
    """
    engine = Engine(config)  # first: a bad rule or plugin directory fails here, once
    context = multiprocessing.get_context("spawn")  # no fork of a process that may hold threads
    results = context.Queue()
    workers = {i: context.Process(target=_count_share, args=(paths, config, i, jobs, results),
                                  daemon=True) for i in range(1, jobs)}
    try:
        for worker in workers.values():
            worker.start()
        _count(engine, paths, 0, jobs, progress)
        shares: dict[int, Share | str] = {}
        while len(shares) < len(workers):
            try:
                index, share = results.get(timeout=0.2)
                shares[index] = share
            except queue.Empty:
                dead = [w for i, w in workers.items() if i not in shares and w.exitcode is not None]
                if dead:
                    raise InputError(f"a replay process ended with exit code {dead[0].exitcode}")
        for index in sorted(shares):
            share = shares[index]
            if isinstance(share, str):
                raise InputError(share)
            engine.absorb(share)
        for worker in workers.values():
            worker.join()
    finally:
        for worker in workers.values():
            if worker.is_alive():
                worker.terminate()
    return engine
