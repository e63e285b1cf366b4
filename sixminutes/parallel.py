"""A replay over several processes: each counts whole windows, then one engine joins them.

Everything the engine keeps per CDR lives in one 6-minute window: the Stats, the dedup of
``_id``, the threshold rules, the plugin alerts and what ``ctx.stat`` reads. So every
process goes through all the inputs and counts only the documents whose window falls to it
(the window number modulo the number of processes, read cheaply from the raw ``end_epoch``).
From three processes on, a big JSON Lines file, the usual input, is read a segment per
process: each splits its own segments and the others read from their indexes only the lines
they count (:mod:`sixminutes.sources.segments`), so the work of reading does not grow with
``--jobs``.
Each checks the rules at the same documents as one process would (every ``check_every``
documents read, its own or not), so the same alerts fire with the same sample CDRs. The
join adds up the stores, alerts and counts, and :meth:`Engine.settle` resolves the alert
conditions over the whole store, as a one-process replay does at its end.

The end time is read from the raw bytes only when it is plain (one ``end_epoch`` key, 1 to
12 digits); otherwise the document is decoded to read it, so that it always goes to the
process of the window the engine files it in. Each process's reader hands over the other
processes' documents undecoded (:mod:`sixminutes.sources.shards`; in a plain JSON Lines file
they are not even copied out of the read buffer). Outcomes, the last rejection of each reason
and each plugin's last error are joined in the order of the inputs (each process counts
every document it reads, its own or not), so the report reads the same.

What may differ from one process: a plugin that keeps its own state across windows (a
module global, say) sees only its process's share, and one that starts processes of its own
cannot in the other processes (daemons). ``tests/test_parallel.py`` compares the two on
real, generated and odd inputs.
"""
from __future__ import annotations

import mmap
import multiprocessing
import os
import pickle
import queue
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any, Callable

from .call import _prescan  # noqa: F401 (the tests compare the peeks)
from .config import Config
from .engine import Engine
from .heap import fewer_collections, keep_freed_memory
from .sources.files import InputError, read_documents
from .sources import segments
from .sources.segments import Exchange, Stopped
from .sources.shards import PASSED, Shard, _peek_slowly, end_epoch_of, shard_of  # noqa: F401

__all__ = ["replay", "shard_of", "start_method"]

def _count(engine: Engine, paths: list[str], index: int, jobs: int,
           progress: Callable[[int], None] | None = None,
           exchange: Exchange | None = None) -> Engine:
    """Count this share's documents of ``paths`` into ``engine``; pass over the others."""
    engine.hold_resolution = True  # conditions span the windows of other shares: see settle()
    engine.keep_rejections = True  # (for the report: where each was read)
    engine.store.freezes = False  # (a replay's windows are joined and written once: see Store)
    try:
        engine.feed_many(read_documents(paths, progress=progress,
                                        shard=Shard(index, jobs, exchange),
                                        chunks=True))  # (another process's documents: SKIP)
    except Stopped:
        raise
    except BaseException:
        if exchange is not None:  # (the others stop waiting for this one's segments)
            exchange.fail()
        raise
    finally:
        if exchange is not None:
            exchange.done(index)
    engine.flush()
    engine.store.compact()
    return engine


def _count_share(paths: list[str], config: Config, index: int, jobs: int, results: Any,
                 folder: str, exchange: Exchange | None = None) -> None:
    """Another process: count its share, send back what was counted.

    The share is pickled here, not by the queue's feeder thread, so that what cannot be
    sent (an alert field pickle cannot write) is reported instead of silently lost. It goes
    through a file in ``folder`` (memory, where /dev/shm is), and only the file's name
    through the queue: the pipe took ~0.07 s for the 22 MB of a 60,000-CDR share, a
    context switch per 64 KB while the parent waited."""
    keep_freed_memory()
    try:
        with fewer_collections():  # (inherited when forked, not when spawned)
            share = pickle.dumps(_count(Engine(config), paths, index, jobs,
                                        exchange=exchange).share(),
                                 protocol=pickle.HIGHEST_PROTOCOL)
    except Stopped:  # another process failed: its own report says why
        results.put((index, None))
    except BaseException as error:  # the parent reports it; a worker must never hang it
        results.put((index, f"process {index}: {type(error).__name__}: {error}"))
    else:
        results.put((index, _hand_over(share, Path(folder) / f"share-{index}.pickle")))


def _hand_over(share: bytes, path: Path) -> Path | bytes:
    """The share written to ``path``, or itself when it cannot be (a container's /dev/shm is
    64 MB, a day's share may be more): it then goes through the queue, as slowly as before."""
    try:
        with open(path, "wb") as f:
            f.write(share)
    except OSError:
        path.unlink(missing_ok=True)
        return share
    return path


def _load(path: Path) -> Any:
    """A share a worker wrote, unpickled from its pages in place (mapped: nothing else
    writes the file once its name has been sent), then removed."""
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as pages:
        share = pickle.loads(pages)
    path.unlink()
    return share


_PREFIX = "sixminutes-replay-"


def _shares_folder() -> tempfile.TemporaryDirectory:
    """Where the workers leave their shares and segment indexes: in memory when the system
    has /dev/shm. Its name holds this process's id; the folders of replays that were killed
    (SIGKILL leaves them, holding memory) are removed first."""
    shm = "/dev/shm"
    fast = shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else None
    _sweep(fast or tempfile.gettempdir())
    return tempfile.TemporaryDirectory(prefix=f"{_PREFIX}{os.getpid()}-", dir=fast)


def _sweep(parent: str) -> list[str]:
    """Remove the replay folders in ``parent`` that this user's replays left when killed
    (their process is gone); return their names."""
    removed = []
    try:
        names = [name for name in os.listdir(parent) if name.startswith(_PREFIX)]
    except OSError:
        return removed
    for name in names:
        pid = name[len(_PREFIX):].split("-", 1)[0]
        path = os.path.join(parent, name)
        try:
            if not pid.isdigit() or os.stat(path).st_uid != os.getuid():
                continue  # (an older replay's name, or another user's: not ours to judge)
            os.kill(int(pid), 0)
        except ProcessLookupError:  # its replay is gone
            shutil.rmtree(path, ignore_errors=True)
            removed.append(name)
        except OSError:  # (it went meanwhile, or a process we may not signal: alive)
            continue
    return removed


def start_method() -> str:
    """``fork`` while this process has one thread (the workers start without importing
    anything again: about 0.3 s of CPU each), else ``spawn``: a fork copies a lock another
    thread may hold (a plugin's, say) and can hang the worker."""
    if threading.active_count() == 1 and "fork" in multiprocessing.get_all_start_methods():
        return "fork"
    return "spawn"


SEGMENTS_FROM = 3
"""Processes from which a big JSON Lines file is read a segment each. ``bench/reading.py``
printed, for the readers alone on the 566 MB corpus, the CPU of every process reading every
byte over that of a segment each: 0.83 at 2 processes (two reading everything cost less than
the exchange), 1.32 at 4, 2.03 at 8."""


def _exchange(folder: str, jobs: int, context: Any, segment: int) -> Exchange | None:
    """Where the processes leave the indexes of the segments they read; None (each process
    then reads every byte) below ``SEGMENTS_FROM`` processes, or when no folder can be made
    for them."""
    if jobs < SEGMENTS_FROM:
        return None
    try:
        os.mkdir(os.path.join(folder, "segments"))
    except OSError:
        return None
    return Exchange(os.path.join(folder, "segments"), jobs, context, segment)


def replay(paths: list[str], config: Config, jobs: int,
           progress: Callable[[int], None] | None = None, segment: int | None = None) -> Engine:
    """Count the documents of ``paths`` in ``jobs`` processes, this one among them; return one
    engine holding it all, its alerts still to be settled (:meth:`Engine.settle`).

    ``progress(n)`` receives the bytes this process has read, as ``read_documents`` reports.
    """
    engine = Engine(config)  # first: a bad rule or plugin directory fails here, once
    context = multiprocessing.get_context(start_method())
    results = context.Queue()
    folder = _shares_folder()
    exchange = _exchange(folder.name, jobs, context, segment or segments.SEGMENT)
    workers = {i: context.Process(target=_count_share,
                                  args=(paths, config, i, jobs, results, folder.name, exchange),
                                  daemon=True) for i in range(1, jobs)}

    def alive(owner: int) -> None:
        """While this process waits for a segment: its reader must still be running."""
        code = workers[owner].exitcode
        if code is not None:
            raise InputError(f"replay process {owner} ended with exit code {code}")

    if exchange is not None:
        exchange.alive = alive
    try:
        for worker in workers.values():
            worker.start()
        try:
            _count(engine, paths, 0, jobs, progress, exchange)
        except Stopped:  # another process failed: its report comes below
            pass
        shares: dict[int, Path | bytes | str | None] = {}
        while len(shares) < len(workers):
            try:
                index, share = results.get(timeout=0.2)
                shares[index] = share
                continue
            except queue.Empty:
                pass
            dead = [i for i, w in workers.items() if i not in shares and w.exitcode is not None]
            if dead:
                try:  # (it may have sent its share just before it ended)
                    index, share = results.get(timeout=1.0)
                    shares[index] = share
                except queue.Empty:
                    raise InputError(f"replay process {dead[0]} ended with exit code "
                                     f"{workers[dead[0]].exitcode}") from None
        for index in sorted(shares):  # (a process stopped by another's failure says None)
            if isinstance(shares[index], str):
                raise InputError(shares[index])
        for index in sorted(shares):
            share = shares[index]
            if share is None:
                raise InputError(f"replay process {index} stopped, and no other said why")
            engine.absorb(pickle.loads(share) if isinstance(share, bytes) else _load(share))
        for worker in workers.values():
            worker.join()
    finally:
        for worker in workers.values():
            if worker.is_alive():
                worker.terminate()
        folder.cleanup()
    return engine
