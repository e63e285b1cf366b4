"""Find, load, reload and isolate plugins, and the ``ctx`` handed to them.

A plugin is a ``*.py`` file. A **batch plugin** declares what it counts: ``SERIES``, a
list of :class:`~sixminutes.series.Series` (or ``series(options)`` returning one), counted
over a whole batch of CDRs at once, and may define ``batch(batch, ctx)`` for vectorised
logic of its own (:class:`BatchContext`). The seed's **per-CDR plugin** defines
``plugin(ctx)``, called once per accepted CDR with a :class:`Context`. The built-in KPIs
in ``sixminutes/builtin`` are batch plugins loaded first, the same way, then the
configured directories in order. A file whose name (stem) matches one already loaded
replaces it, so a site can override a built-in; ``disabled`` names are skipped. An
optional ``setup(options)`` receives the plugin's ``[plugins.<name>]`` table; optional
``export_state()`` and ``import_state(data)`` keep what it remembers across restarts and
reloads (:mod:`sixminutes.plugin_state`).
"""
from __future__ import annotations

import importlib.util
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable

from .occupancy import Spans
from .plugin_state import check_state_hooks
from .series import Series, count
from .stats import _CACHE, SeriesKeyError, Stat, cached_key as _key, parse_series_key

if TYPE_CHECKING:
    from .batch import Batch
    from .call import Call, Decoded
    from .store import Store

__all__ = ["Context", "BatchContext", "Duration", "Plugin", "PluginSet", "LoadError",
           "load_plugins", "BUILTIN_DIR"]

BUILTIN_DIR = Path(__file__).parent / "builtin"
SAMPLE_EVERY = 64
"""One run in this many is timed per plugin: timing every call would cost more than a plugin."""
_MAX_ERROR = 500

class Duration:
    """``ctx.duration``: billable (billsec) and total (duration) seconds, as the seed had."""

    __slots__ = ("billable", "total")

    def __init__(self, billable: int, total: int) -> None:
        self.billable = billable
        self.total = total


class Context:
    """What a plugin sees of one CDR, and what it may do: increment (or series and add), alert, stat."""

    __slots__ = ("call", "timestamp", "profile", "direction", "account", "from_", "to",
                 "duration", "plugin_name", "_decoded", "_cells", "_live", "_changed", "_store",
                 "_alert")

    def __init__(self, decoded: Decoded, timestamp: int, store: Store,
                 alert: Callable[..., None]) -> None:
        call: Call = decoded.call
        self.call = call
        self.timestamp = timestamp
        self.profile = call.profile
        self.direction = call.direction
        self.account = call.account
        self.from_ = call.from_
        self.to = call.to
        self.duration = Duration(call.billsec, call.duration)
        self.plugin_name = ""
        self._decoded = decoded
        self._store = store
        self._cells = store.window(timestamp)
        self._live = self._cells.live
        self._changed = self._cells.changed
        self._alert = alert

    @property
    def doc(self) -> dict:
        """The original CDR document (variables URL-decoded), built on first use."""
        return self._decoded.doc

    def increment(self, name: str, value: float = 1, **labels: Any) -> None:
        """Add ``value`` to the series ``name{labels}`` of this CDR's window."""
        self.add(_CACHE.get((name, *labels.items())) or _key(name, labels), value)

    def series(self, name: str, **labels: Any) -> str:
        """The key of the series ``name{labels}``, for :meth:`add`: a plugin that keeps the keys
        it uses (say, per carrier) skips building them for every CDR."""
        key = _CACHE.get((name, *labels.items())) or _key(name, labels)
        _VALID_KEYS.add(key)  # built here: add() need not parse it
        return key

    def add(self, key: str, value: float = 1) -> None:
        """Add ``value`` to the series of this key (from :meth:`series`): ``increment``'s fast path."""
        cell = self._live.get(key)
        if cell is None:  # a new cell holds floats: a huge int or text raises here, in the plugin
            if key not in _VALID_KEYS:
                _check_key(key)
            value += 0.0
            if key in self._cells.offsets:  # a late CDR for a compacted window
                self._cells.add(key, value)
            else:
                self._live[key] = [value, 1, value * value, value, value]
                self._changed.add(key)
            return
        self._changed.add(key)
        cell[0] += value
        cell[1] += 1
        cell[2] += value * value
        if value < cell[3]:
            cell[3] = value
        elif value > cell[4]:
            cell[4] = value

    def stat(self, name: str, **labels: Any) -> Stat | None:
        """This window's Stat of a series, or None when nothing was counted in it yet."""
        return self._store.get(self.timestamp, _key(name, labels))

    def alert(self, msg: str, key: Any = None, **fields: Any) -> None:
        """Raise an alert; the same (plugin, key or msg, window) again only increments its count."""
        self._alert(self._decoded, self.timestamp, self.plugin_name, msg, key, fields)


class BatchContext:
    """What a batch plugin's ``batch(batch, ctx)`` may do besides reading the batch."""

    __slots__ = ("_batch", "_store", "_alert", "plugin_name")

    def __init__(self, batch: Batch, store: Store, alert: Callable[..., None],
                 plugin_name: str = "") -> None:
        self._batch = batch
        self._store = store
        self._alert = alert
        self.plugin_name = plugin_name

    def alert(self, row: int, msg: str, key: Any = None, **fields: Any) -> None:
        """Raise an alert about the CDR of a row (its window; it is the alert's sample)."""
        batch = self._batch
        self._alert(batch.decoded[row], int(batch.window[row]), self.plugin_name, msg, key, fields)

    def stat(self, window: int, name: str, **labels: Any) -> Stat | None:
        """A window's Stat of a series (this batch's declared series already counted)."""
        return self._store.get(window, _key(name, labels))


_VALID_KEYS: set[str] = set()


def _check_key(key: Any) -> None:
    """A key handed to ``ctx.add`` must parse back (it is exported); checked once per key."""
    if type(key) is not str:
        raise SeriesKeyError(f"a series key is a str from ctx.series(), not {type(key).__name__}")
    parse_series_key(key)
    if len(_VALID_KEYS) > 1_000_000:
        _VALID_KEYS.clear()
    _VALID_KEYS.add(key)


@dataclass
class Plugin:
    """One loaded plugin and how it has fared."""

    name: str
    path: str
    fn: Callable[[Context], Any] | None
    """``plugin(ctx)``, run per CDR (None for a batch plugin)."""
    builtin: bool
    series: tuple[Series | Spans, ...] = ()
    batch: Callable[[Batch, BatchContext], Any] | None = None
    errors: int = 0
    last_error: str | None = None
    last_error_at: int = -1
    """Where (the owner's ``position`` then) the last error happened."""
    timed_calls: int = 0
    """Calls timed: one in SAMPLE_EVERY (timing every call would cost more than most plugins)."""
    timed_seconds: float = 0.0
    max_seconds: float = 0.0
    """The slowest timed call."""
    owner: PluginSet | None = field(default=None, repr=False, compare=False)
    module: Any = field(default=None, repr=False, compare=False)
    """The loaded file: its optional state hooks are read there (plugin_state.py)."""

    @property
    def calls(self) -> int:
        """CDRs this plugin was called for (every run of its set)."""
        return self.owner.runs if self.owner is not None else self.timed_calls

    def status(self) -> dict[str, Any]:
        """Health and cost, so that an operator sees which plugin fails or is slow and why."""
        mean = self.timed_seconds / self.timed_calls if self.timed_calls else 0.0
        return {"name": self.name, "path": self.path, "builtin": self.builtin,
                "errors": self.errors, "last_error": self.last_error,
                "calls": self.calls, "seconds": round(mean * self.calls, 6),
                "mean_us": round(mean * 1e6, 2), "max_us": round(self.max_seconds * 1e6, 2),
                "timed_calls": self.timed_calls}


@dataclass(frozen=True)
class LoadError:
    """A plugin file that could not be loaded: where and why."""

    file: str
    line: int | None
    error: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.error}"


@dataclass
class PluginSet:
    """The plugins in the order they run, and the files that failed to load."""

    plugins: list[Plugin] = field(default_factory=list)
    errors: list[LoadError] = field(default_factory=list)
    runs: int = 0
    """CDRs run through the set."""
    cdr_runs: int = 0
    """CDRs run through the per-CDR plugins (one in SAMPLE_EVERY is timed)."""
    position: int = 0
    """Set by the engine: where the CDR being run is in the inputs (kept with an error)."""
    clock: Callable[[], float] = time.perf_counter
    """What times the plugins (injectable: a test's clock moves when its plugin says)."""

    @property
    def per_cdr(self) -> list[Plugin]:
        """The plugins with ``plugin(ctx)``, in order."""
        return [p for p in self.plugins if p.fn is not None]

    def run_batch(self, batch: Batch, store: Store, alert: Callable[..., None],
                  positions: list[int]) -> None:
        """Count a batch: every batch plugin over the whole of it (one that raises is counted
        and skipped for this batch), then every per-CDR plugin over its rows in order."""
        clock = self.clock
        for p in self.plugins:
            p.owner = self
            if not p.series and p.batch is None:
                continue
            started = clock()
            try:
                for series in p.series:
                    if isinstance(series, Spans):
                        series.count(batch, store)
                    else:
                        count(series, batch, store)
                if p.batch is not None:
                    p.batch(batch, BatchContext(batch, store, alert, p.name))
            except BaseException as error:
                _failed(p, error)
                p.last_error_at = positions[0] if positions else self.position
            spent = clock() - started
            p.timed_calls += batch.n
            p.timed_seconds += spent
            if batch.n and spent / batch.n > p.max_seconds:
                p.max_seconds = spent / batch.n
        self.runs += batch.n
        per_cdr = self.per_cdr
        if not per_cdr:
            return
        for row, (decoded, timestamp) in enumerate(zip(batch.decoded, batch.window.tolist())):
            self.position = positions[row]
            self._run(Context(decoded, timestamp, store, alert), per_cdr)

    def run(self, ctx: Context) -> None:
        """Call every per-CDR plugin; one that raises is counted and the others still run."""
        self.runs += 1
        self._run(ctx, self.per_cdr)

    def _run(self, ctx: Context, per_cdr: list[Plugin]) -> None:
        self.cdr_runs += 1
        if self.cdr_runs % SAMPLE_EVERY == 1:  # the first call, then one in SAMPLE_EVERY
            return self._run_timed(ctx, per_cdr)
        for p in per_cdr:
            ctx.plugin_name = p.name
            try:
                p.fn(ctx)
            except BaseException as error:  # a plugin must never stop the others
                _failed(p, error)
                p.last_error_at = self.position

    def _run_timed(self, ctx: Context, per_cdr: list[Plugin]) -> None:
        """The same, timing each plugin (the sample that status extrapolates from)."""
        clock = self.clock
        for p in per_cdr:
            p.owner = self
            ctx.plugin_name = p.name
            started = clock()
            try:
                p.fn(ctx)
            except BaseException as error:
                _failed(p, error)
                p.last_error_at = self.position
            spent = clock() - started
            p.timed_calls += 1
            p.timed_seconds += spent
            if spent > p.max_seconds:
                p.max_seconds = spent

    def names(self) -> list[str]:
        return [p.name for p in self.plugins]


def load_plugins(
    dirs: Iterable[str | Path] = (),
    disabled: Iterable[str] = (),
    options: dict[str, dict] | None = None,
    builtin: bool = True,
) -> PluginSet:
    """Load the built-ins then every directory; a broken file is reported, the rest load."""
    options = options or {}
    skip = set(disabled)
    found: dict[str, tuple[Path, bool]] = {}
    sources = ([(BUILTIN_DIR, True)] if builtin else []) + [(Path(d), False) for d in dirs]
    result = PluginSet()
    for directory, is_builtin in sources:
        if not directory.is_dir():
            result.errors.append(LoadError(str(directory), None, "not a directory"))
            continue
        for path in sorted(directory.glob("*.py")):
            if not path.name.startswith("_"):
                found[path.stem] = (path, is_builtin)  # a later directory overrides by name
    for name, (path, is_builtin) in found.items():
        if name in skip:
            continue
        loaded = _load_file(name, path, options.get(name, {}), result.errors)
        if loaded is not None:
            fn, series, batch, module = loaded
            result.plugins.append(Plugin(name, str(path), fn, is_builtin, series, batch,
                                         module=module))
    return result


def _load_file(name: str, path: Path, options: dict, errors: list[LoadError]
               ) -> tuple[Callable | None, tuple[Series | Spans, ...], Callable | None, Any] | None:
    try:
        spec = importlib.util.spec_from_file_location(f"sixminutes_plugin_{name}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        fn = getattr(module, "plugin", None)
        batch = getattr(module, "batch", None)
        declared = getattr(module, "series", None) or getattr(module, "SERIES", None)
        if fn is None and batch is None and declared is None:
            return None  # a helper file without plugin(ctx), batch() or series is not a plugin
        for what, value in (("plugin", fn), ("batch", batch)):
            if value is not None and not callable(value):
                raise TypeError(f"`{what}` is not callable")
        check_state_hooks(module)
        setup = getattr(module, "setup", None)
        if callable(setup):
            setup(dict(options))
        if callable(declared):
            declared = declared(dict(options))
        series = tuple(declared or ())
        for item in series:
            if not isinstance(item, (Series, Spans)):
                raise TypeError(f"SERIES holds {type(item).__name__}, not sixminutes.series.Series")
        return fn, series, batch, module
    except BaseException as error:  # SyntaxError, ImportError, SystemExit in a user file
        if isinstance(error, KeyboardInterrupt):
            raise
        errors.append(LoadError(str(path), _line_in(error, str(path)), _describe(error)))
        return None


def _failed(plugin: Plugin, error: BaseException) -> None:
    if isinstance(error, KeyboardInterrupt):
        raise error
    plugin.errors += 1  # sys.exit() in a plugin is an error of the plugin, not a way out
    try:
        plugin.last_error = _describe(error, plugin.path)[:_MAX_ERROR]
    except Exception:  # an exception whose str() raises
        plugin.last_error = f"{type(error).__name__} (its message could not be read)"


def _line_in(error: BaseException, path: str) -> int | None:
    if isinstance(error, SyntaxError) and error.filename == path:
        return error.lineno
    lines = [f.lineno for f in traceback.extract_tb(error.__traceback__) if f.filename == path]
    return lines[-1] if lines else None


def _describe(error: BaseException, path: str | None = None) -> str:
    text = f"{type(error).__name__}: {error}"
    if path is not None:
        line = _line_in(error, path)
        if line is not None:
            text += f" (line {line})"
    return text
