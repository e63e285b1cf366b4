"""Plugin failures logged once per change of state (sixminutes/plugin_health.py)."""
from __future__ import annotations

import logging

from sixminutes.plugin_health import PluginHealth

log = logging.getLogger("sixminutes.test_plugin_health")


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def status(load_errors=(), **plugins: tuple[int, int]) -> dict:
    """An engine status document: plugin name → (errors, calls)."""
    return {"plugin_load_errors": list(load_errors),
            "plugins": [{"name": n, "errors": e, "calls": c,
                         "last_error": f"ValueError: broken #{e}" if e else None}
                        for n, (e, c) in plugins.items()]}


def lines(caplog) -> list[str]:
    out = [f"{r.levelname} {r.getMessage()}" for r in caplog.records]
    caplog.clear()
    return out


def test_a_raising_plugin_is_logged_when_it_starts_failing_and_when_it_recovers(caplog):
    clock = Clock()
    health = PluginHealth(clock, log, recovery=60)
    caplog.set_level(logging.INFO, logger=log.name)
    health.check(status(ok=(0, 10), raiser=(0, 10)))
    assert lines(caplog) == [] and health.to_json()["failing"] == []
    for n in range(1, 50):  # fails on every CDR for a while: one line, not 49
        clock.now += 0.25
        health.check(status(ok=(0, 10 + n), raiser=(n, 10 + n)))
    assert lines(caplog) == ["WARNING plugin raiser raises: ValueError: broken #1 (1 errors so far); "
                             "the other plugins keep counting"]
    failing = health.to_json()["failing"]
    assert [(f["name"], f["errors"], f["last_error"]) for f in failing] == [
        ("raiser", 49, "ValueError: broken #49")]
    assert failing[0]["since"] == 1_000.25
    # Called without error, but not for long enough yet; then long enough.
    clock.now += 59
    health.check(status(ok=(0, 100), raiser=(49, 100)))
    assert lines(caplog) == [] and health.to_json()["failing"]
    clock.now += 2
    health.check(status(ok=(0, 101), raiser=(49, 101)))
    assert lines(caplog) == ["INFO plugin raiser: no error in 42 calls over 61 s; it is failing no more"]
    assert health.to_json()["failing"] == []
    clock.now += 1
    health.check(status(ok=(0, 102), raiser=(50, 102)))  # fails again: logged again
    assert [line.split(":")[0] for line in lines(caplog)] == ["WARNING plugin raiser raises"]


def test_not_called_is_not_recovered(caplog):
    clock = Clock()
    health = PluginHealth(clock, log, recovery=60)
    health.check(status(raiser=(3, 3)))
    clock.now += 3600  # no CDR at all for an hour: no evidence it works now
    health.check(status(raiser=(3, 3)))
    assert [f["name"] for f in health.to_json()["failing"]] == ["raiser"]


def test_load_errors_are_logged_when_they_appear_and_when_they_are_gone(caplog):
    health = PluginHealth(Clock(), log)
    caplog.set_level(logging.INFO, logger=log.name)
    broken = "/etc/sixminutes/plugins/bad.py:3: SyntaxError: invalid syntax"
    for _ in range(3):
        health.check(status([broken], ok=(0, 1)))
    assert lines(caplog) == [f"ERROR plugin not loaded: {broken}"]
    assert health.to_json()["load_errors"] == [broken]
    health.check(status([], ok=(0, 1)))  # fixed, then POST /6minutes/restart
    assert lines(caplog) == [f"INFO plugin load error gone (after a reload): {broken}"]
    assert health.to_json() == {"failing": [], "load_errors": []}


def test_a_reload_starts_the_counts_again_and_a_plugin_gone_is_forgotten(caplog):
    clock = Clock()
    health = PluginHealth(clock, log)
    caplog.set_level(logging.INFO, logger=log.name)
    health.check(status(raiser=(5, 5)))
    health.check(status(raiser=(0, 0)))  # reloaded: errors back to 0, still failing until it works
    health.check(status(raiser=(1, 1)))
    assert [line.split(":")[0] for line in lines(caplog)] == ["WARNING plugin raiser raises"]
    health.check(status(other=(0, 1)))  # its file removed, then reloaded
    assert lines(caplog) == ["INFO plugin raiser is no longer loaded (it was failing)"]
    assert health.to_json()["failing"] == []
