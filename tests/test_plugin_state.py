"""What plugins remember across a restart (a real SQLite state file) and a reload: the
export_state/import_state hooks, and the fraud plugin's memory of each account's countries."""
from __future__ import annotations

import asyncio
import random
from typing import Any, Callable

import pytest

from helpers import raw
from sixminutes.config import Config
from sixminutes.engine import Engine
from sixminutes.plugin_state import export_state, forget_data, import_state
from sixminutes.plugins import load_plugins
from sixminutes.snapshots import SnapshotWriter
from sixminutes.state import Delta, State
from sixminutes.windows import WINDOW

START = 1_699_963_200
DAY = 86400
PREFIX = {"FR": "3361234", "DE": "4915112", "ER": "2917123"}

MEMO = '''
from sixminutes.series import Series

SERIES = [Series("memo_calls")]
seen = []

def batch(batch, ctx):
    seen.extend(sorted(set(batch.profile.tolist()) - set(seen)))

def export_state():
    return {"seen": seen}

def import_state(data):
    seen[:] = data["seen"]
'''


async def inline(fn: Callable[[], Any]) -> Any:
    return fn()


class Recording(State):
    """A real state file that also keeps each snapshot's Delta, to see what was written."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.deltas: list[Delta] = []

    def save(self, delta: Delta) -> None:
        self.deltas.append(delta)
        super().save(delta)


def module(engine: Engine, name: str) -> Any:
    return next(p.module for p in engine.plugins.plugins if p.name == name)


def test_a_plugins_memory_is_saved_when_it_changes_and_restored_after_a_restart(tmp_path):
    (tmp_path / "memo.py").write_text(MEMO)
    path = str(tmp_path / "s.sqlite")
    config = Config(plugin_dirs=[str(tmp_path)], retention_hours=None)
    before = Engine(config)
    writer = SnapshotWriter(before, inline, clock=lambda: 0.0)
    state = Recording(path)
    before.feed_batch([raw(_id="1", ccnq_profile="kestrel"), raw(_id="2", ccnq_profile="osprey")])
    asyncio.run(writer.write(state, {}, 0))
    asyncio.run(writer.write(state, {}, 0))  # nothing changed: nothing written again
    before.feed_batch([raw(_id="3", ccnq_profile="heron")])
    asyncio.run(writer.write(state, {}, 0))
    state.close()
    assert ["memo" in d.plugin_state for d in state.deltas] == [True, False, True]
    assert "fraud" in state.deltas[0].plugin_state  # (the built-in keeps its memory too)

    after = Engine(config)  # a new process: the plugin file loaded afresh, its memory empty
    assert module(after, "memo").seen == []
    restored = State(path)
    import_state(after.plugins, restored.load().plugin_state)
    restored.close()
    assert module(after, "memo").seen == ["kestrel", "osprey", "heron"]


def test_the_hooks_come_together_and_are_functions(tmp_path):
    (tmp_path / "half.py").write_text("SERIES = []\ndef plugin(ctx): pass\ndef export_state(): return 1\n")
    (tmp_path / "odd.py").write_text("def plugin(ctx): pass\nexport_state = 1\nimport_state = 2\n")
    loaded = load_plugins([tmp_path], builtin=False)
    assert loaded.names() == []
    errors = {e.file.rsplit("/", 1)[-1]: e.error for e in loaded.errors}
    assert errors == {"half.py": "TypeError: `export_state` without `import_state`: a plugin's "
                                 "state needs both",
                      "odd.py": "TypeError: `export_state` is not callable"}


def test_a_hook_that_fails_is_the_plugins_error_and_the_others_are_saved(tmp_path):
    (tmp_path / "broken.py").write_text(
        "def plugin(ctx): pass\ndef export_state(): return {1j}\n"
        "def import_state(data): raise RuntimeError('no memory for you')\n")
    (tmp_path / "memo.py").write_text(MEMO)
    plugins = load_plugins([tmp_path], builtin=False)
    saved = export_state(plugins)
    assert set(saved) == {"memo"}
    [broken] = [p for p in plugins.plugins if p.name == "broken"]
    assert broken.errors == 1 and "TypeError" in broken.last_error
    import_state(plugins, {"broken": b"{}", "memo": b'{"seen": ["a"]}'})
    assert broken.errors == 2 and "no memory for you" in broken.last_error
    assert next(p for p in plugins.plugins if p.name == "memo").module.seen == ["a"]


# -- the fraud plugin's memory -------------------------------------------------------------------

def number(rng: random.Random, country: str) -> str:
    return PREFIX[country] + "".join(rng.choice("0123456789") for _ in range(4))


def calls(account: str, country: str, end: int, n: int, rng: random.Random, tag: str) -> list[bytes]:
    return [raw(_id=f"{tag}-{i}", end_epoch=end + i, start_epoch=end + i - 60, billsec=50,
                answer_epoch=end + i - 50, ccnq_profile="bravo", ccnq_direction="egress",
                ccnq_account=account, ccnq_to_e164=number(rng, country)) for i in range(n)]


def new_country_alerts(engine: Engine) -> set[tuple[str, str]]:
    return {(a.account, a.fields["country"]) for a in engine.alerts.list()
            if a.plugin == "fraud" and "never called" in a.msg}


@pytest.mark.parametrize("restart", ["reload", "state file"])
def test_the_fraud_plugin_remembers_an_accounts_countries_across_a_restart(tmp_path, restart):
    """13 hours after acct-1 called FR and DE, 5 calls to DE are not new, 5 to ER are; a
    fresh plugin without the memory would know acct-1 since now (no alert: 12 hours first)."""
    rng = random.Random(1)
    config = Config(retention_hours=None)
    before = Engine(config)
    before.feed_batch(calls("acct-1", "FR", START, 3, rng, "fr") + calls("acct-1", "DE", START, 3, rng, "de"))
    later = START + 13 * 3600
    if restart == "reload":
        after = before
        after.reload()
    else:
        path = str(tmp_path / "s.sqlite")
        state = State(path)
        asyncio.run(SnapshotWriter(before, inline, clock=lambda: 0.0).write(state, {}, 0))
        state.close()
        after = Engine(config)
        state = State(path)
        import_state(after.plugins, state.load().plugin_state)
        state.close()
    after.feed_batch(calls("acct-1", "DE", later, 5, rng, "de2") + calls("acct-1", "ER", later, 5, rng, "er"))
    assert new_country_alerts(after) == {("acct-1", "ER")}
    fresh = Engine(config)
    fresh.feed_batch(calls("acct-1", "DE", later, 5, rng, "de2") + calls("acct-1", "ER", later, 5, rng, "er"))
    assert new_country_alerts(fresh) == set()  # (what the saved memory changes)


def test_the_fraud_memory_drops_accounts_idle_for_eight_days_and_skips_what_it_cannot_read():
    rng = random.Random(2)
    engine = Engine(Config(retention_hours=None))
    engine.feed_batch(calls("old", "FR", START, 2, rng, "old"))
    engine.feed_batch(calls("kept", "DE", START + DAY, 2, rng, "kept1"))
    engine.feed_batch(calls("kept", "FR", START + 9 * DAY, 2, rng, "kept2"))
    fraud = module(engine, "fraud")
    exported = fraud.export_state()
    accounts = {entry[0]: entry for entry in exported["accounts"]}
    assert set(accounts) == {"kept"}  # "old": no call for more than eight days
    window = (START + 9 * DAY) - (START + 9 * DAY) % WINDOW
    first = START + DAY - (START + DAY) % WINDOW
    assert accounts["kept"][1:4] == ["egress", first, window]
    assert sorted(c[0] for c in accounts["kept"][4]) == ["DE", "FR"]
    assert ("old", "egress") not in fraud.known and "old" not in fraud.last_seen  # (memory too)

    other = module(Engine(Config(retention_hours=None)), "fraud")
    other.import_state({"version": 1, "accounts": [
        ["a", "egress", 10, 20, [["FR", 10, 3]]],
        ["b", "egress", "not a window", 20, []],  # skipped whole
        ["c", "egress", 10],                      # skipped whole
    ]})
    other.import_state({"version": 99, "accounts": [["d", "egress", 1, 1, []]]})  # another format
    other.import_state(["not", "a", "dict"])
    assert other.known == {("a", "egress"): (10, {"FR": [10, 3]})}
    assert other.last_seen == {"a": 20}


def test_the_fraud_plugin_forgets_what_a_delete_of_the_data_before_a_time_erased(tmp_path):
    """DELETE /6minutes/data?before=: an account not seen since is forgotten; another keeps
    only the countries it first called after the cut-off, and its history starts there (12
    hours from the cut-off before a country can be new). A hook that is not a function does
    not load."""
    rng = random.Random(3)
    engine = Engine(Config(retention_hours=None))
    engine.feed_batch(calls("gone", "FR", START, 2, rng, "gone"))
    engine.feed_batch(calls("kept", "FR", START, 2, rng, "k1") + calls("kept", "DE", START + DAY, 2, rng, "k2"))
    fraud = module(engine, "fraud")
    cut = START + DAY - (START + DAY) % WINDOW
    forget_data(engine.plugins, cut)
    assert set(fraud.last_seen) == {"kept"} and set(fraud.known) == {("kept", "egress")}
    since, countries = fraud.known[("kept", "egress")]
    assert since == cut and set(countries) == {"DE"}
    engine.feed_batch(calls("kept", "FR", cut + 6 * 3600, 5, rng, "k3"))  # 6 h after the cut
    assert new_country_alerts(engine) == set()  # (too little history left to say)
    engine.feed_batch(calls("kept", "ER", cut + 13 * 3600, 5, rng, "k4"))
    assert new_country_alerts(engine) == {("kept", "ER")}
    forget_data(engine.plugins, None)
    assert fraud.known == {} and fraud.last_seen == {}
    (tmp_path / "odd.py").write_text("def plugin(ctx): pass\nforget_data = 3\n")
    loaded = load_plugins([tmp_path], builtin=False)
    assert [e.error for e in loaded.errors] == ["TypeError: `forget_data` is not callable"]
