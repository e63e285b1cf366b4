"""Plugin failures as an operator should hear of them: logged once per change of state.

A plugin file that fails to load is logged when its error appears (at start, or after a reload)
and again when it is gone. A plugin that raises is logged when it starts failing, with its error,
and once more when it has been called for ``recovery`` seconds without a new error. Nothing in
between: a plugin that fails on every CDR at 1,000 CDR/s must not write 1,000 lines a second.
The status endpoint and the page show the same states (``plugin_health``).

It reads only the engine's status document (`plugins`, `plugin_load_errors`), so it stays
outside the core.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["PluginHealth", "RECOVERY_SECONDS"]

RECOVERY_SECONDS = 60.0


@dataclass
class _Plugin:
    errors: int = 0  # the error count at the last check
    calls: int = 0  # the call count when its last error was seen
    failing_since: float | None = None
    last_error_seen: float = 0.0
    last_error: str | None = None


class PluginHealth:
    """Which plugins fail now, from successive engine status documents; logs each change."""

    def __init__(self, clock: Callable[[], float], log: logging.Logger,
                 recovery: float = RECOVERY_SECONDS) -> None:
        self.clock = clock
        self.log = log
        self.recovery = recovery
        self.load_errors: list[str] = []
        self._plugins: dict[str, _Plugin] = {}

    def check(self, status: Mapping[str, Any]) -> None:
        """Compare with the last check and log what changed."""
        now = self.clock()
        errors = [str(e) for e in status.get("plugin_load_errors", [])]
        for error in errors:
            if error not in self.load_errors:
                self.log.error("plugin not loaded: %s", error)
        for error in self.load_errors:
            if error not in errors:
                self.log.info("plugin load error gone (after a reload): %s", error)
        self.load_errors = errors
        seen = set()
        for plugin in status.get("plugins", []):
            name = plugin["name"]
            seen.add(name)
            self._check_one(name, plugin, now)
        for name in [n for n in self._plugins if n not in seen]:
            if self._plugins.pop(name).failing_since is not None:
                self.log.info("plugin %s is no longer loaded (it was failing)", name)

    def _check_one(self, name: str, plugin: Mapping[str, Any], now: float) -> None:
        state = self._plugins.setdefault(name, _Plugin())
        errors, calls = int(plugin.get("errors", 0)), int(plugin.get("calls", 0))
        if errors < state.errors:  # reloaded: its counts start again
            state.errors = 0
        if errors > state.errors:
            state.last_error_seen, state.calls = now, calls
            state.last_error = plugin.get("last_error")
            if state.failing_since is None:
                state.failing_since = now
                self.log.warning("plugin %s raises: %s (%d errors so far); the other plugins "
                                 "keep counting", name, state.last_error, errors)
        elif (state.failing_since is not None and calls > state.calls
              and now - state.last_error_seen >= self.recovery):
            state.failing_since = None
            self.log.info("plugin %s: no error in %d calls over %.0f s; it is failing no more",
                          name, calls - state.calls, now - state.last_error_seen)
        state.errors = errors

    def to_json(self) -> dict[str, Any]:
        """For the status endpoint: the plugins failing now, and the files not loaded."""
        failing = [{"name": name, "since": p.failing_since, "errors": p.errors,
                    "last_error": p.last_error}
                   for name, p in self._plugins.items() if p.failing_since is not None]
        return {"failing": failing, "load_errors": list(self.load_errors)}
