"""Baselines and the traffic rules; a 26-hour world with a drop, a fraud burst and quiet others."""
from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import raw
from sixminutes.baselines import DAY, History, TrafficRule, baseline, count_at
from sixminutes.config import Config
from sixminutes.engine import LATE, Engine
from sixminutes.stats import Stat, series_key
from sixminutes.store import Store
from sixminutes.windows import WINDOW

START = 1_699_963_200  # a UTC noon: the drop falls at 13:00 the next day
DROP = START + 25 * 3600
BURST = DROP + 1800
CARRIERS = ("alpha", "bravo", "charlie", "delta")
COUNTRIES = {"FR": "3361234", "DE": "4915112", "GB": "4478012", "US": "1212555", "ES": "3491123",
             "ER": "2917123"}  # (E.164 prefixes: ER is Eritrea, which no account calls before)


def number(rng: random.Random, country: str) -> str:
    prefix = COUNTRIES[country]
    return prefix + "".join(rng.choice("0123456789") for _ in range(11 - len(prefix) + (country == "GB")))


def world(seed: int = 1) -> list[tuple[int, bytes]]:
    """(end, CDR) of 26 hours of 4 carriers and 40 accounts, in order of end; charlie falls
    to a fifth of its traffic at DROP; account acct-7 bursts 40 short calls to ER from BURST."""
    rng = random.Random(seed)
    habits = {f"acct-{i}": rng.sample(["FR", "DE", "GB", "US", "ES"], 2) for i in range(40)}
    accounts = list(habits)
    out = []
    n = 0
    for window in range(START, START + 26 * 3600, WINDOW):
        for carrier in CARRIERS:
            calls = rng.randint(45, 75)
            if carrier == "charlie" and window >= DROP:
                calls //= 5
            for _ in range(calls):
                end = window + rng.randrange(WINDOW)
                account = rng.choice(accounts)
                answered = rng.random() < 0.65
                billsec = rng.randint(20, 400) if answered else 0
                n += 1
                out.append((end, raw(
                    _id=f"c{n}", end_epoch=end, start_epoch=end - billsec - rng.randint(2, 9),
                    ccnq_profile=carrier, ccnq_direction="egress", ccnq_account=account,
                    ccnq_to_e164=number(rng, rng.choice(habits[account])), billsec=billsec,
                    answer_epoch=end - billsec if answered else 0,
                    sip_term_status="200" if answered else rng.choice(["486", "487"]))))
    for i in range(40):  # 40 short answered calls over 8 minutes, to a country never called
        end = BURST + i * 12
        n += 1
        out.append((end, raw(
            _id=f"f{i}", end_epoch=end, start_epoch=end - 9, ccnq_profile="bravo",
            ccnq_direction="egress", ccnq_account="acct-7", ccnq_to_e164=number(rng, "ER"),
            billsec=3, answer_epoch=end - 3, sip_term_status="200")))
    out.sort(key=lambda pair: pair[0])
    return out


@pytest.fixture(scope="module")
def replayed():
    """The world fed window by window as a live service would, the rules checked after each:
    alert id → the data time when it was first seen."""
    engine = Engine(Config(retention_hours=None))
    docs = world()
    seen: dict[str, int] = {}
    i = 0
    for now in range(START + WINDOW, START + 26 * 3600 + 1, 60):  # a minute at a time, to the end
        batch = []
        while i < len(docs) and docs[i][0] < now:
            batch.append(docs[i][1])
            i += 1
        if batch:
            engine.feed_batch(batch)
        engine._newest_epoch = max(engine._newest_epoch, now)  # (data time flows when quiet too)
        engine.flush()
        for alert in engine.alerts.to_json():
            seen.setdefault(alert["id"], now)
    return engine, seen


def test_a_carrier_falling_to_a_fifth_is_reported_within_three_windows(replayed):
    engine, seen = replayed
    drops = [a for a in engine.alerts.to_json() if a["plugin"] == "traffic_drop"]
    assert drops and {a["profile"] for a in drops} == {"charlie"}
    first = min(seen[a["id"]] for a in drops)
    assert DROP < first <= DROP + 3 * WINDOW
    assert min(a["timestamp"] for a in drops) == DROP
    assert all(a["value"] <= 0.3 * a["baseline"] for a in drops)


def test_an_accounts_burst_of_short_calls_to_a_new_country_is_reported_while_it_happens(replayed):
    engine, seen = replayed
    fraud = [a for a in engine.alerts.to_json() if a["plugin"] == "fraud"]
    assert {a["account"] for a in fraud} == {"acct-7"}
    assert {a["country"] for a in fraud} == {"ER"} and {a["profile"] for a in fraud} == {"bravo"}
    new_country = [a for a in fraud if "never called" in a["msg"]]
    burst = [a for a in fraud if "short calls" in a["msg"]]
    assert new_country and burst
    for found in (new_country, burst):
        assert min(seen[a["id"]] for a in found) < BURST + 40 * 12  # before the burst ends


def test_healthy_carriers_and_accounts_stay_quiet(replayed):
    engine, _ = replayed
    about = {(a["plugin"], a["account"] or a["profile"]) for a in engine.alerts.to_json()}
    assert about <= {("traffic_drop", "charlie"), ("fraud", "acct-7"),
                     ("account_volume_spike", "acct-7")}, about


def test_the_api_puts_baselines_beside_values(replayed):
    engine, _ = replayed
    key = series_key("calls", {"direction": "egress", "profile": "charlie"})
    now = baseline(engine.store, None, DROP, key)
    assert now.yesterday == engine.store.get(DROP - DAY, key).count
    assert now.days == 1 and now.median == now.yesterday and now.expected == now.yesterday
    assert now.value == engine.store.get(DROP, key).count


def test_the_median_of_seven_days_and_the_hourly_history():
    store, history = Store(), History()
    key = series_key("calls", {"direction": "egress", "profile": "p"})
    t = START + 8 * DAY
    for day, calls in zip(range(1, 8), (10, 50, 30, 20, 40, 60, 70)):
        if day <= 3:
            store.window(t - day * DAY).add(key, 1.0)
            store.window(t - day * DAY).merge(key, Stat(calls - 1.0, calls - 1, calls - 1.0, 1.0, 1.0))
        else:  # older days: only their hour, in the coarse history
            history.fold(t - day * DAY, [key], [float(calls)])
            history.fold(t - day * DAY + WINDOW, [key], [0.0])
    assert count_at(store, history, t - 5 * DAY, key) == 40
    assert count_at(store, history, t - 5 * DAY + WINDOW, key) == 0  # (folded, without calls)
    assert count_at(store, history, t - 5 * DAY + 2 * WINDOW, key) is None  # (never folded)
    assert count_at(store, history, t - 9 * DAY, key) is None  # no history: no evidence
    found = baseline(store, history, t, key)
    assert (found.yesterday, found.median, found.days) == (10, 40, 7)
    history.purge(t)
    assert set(history.hours) == {h - h % 3600 for h in (t - d * DAY for d in range(4, 8))}


@pytest.mark.parametrize("k, b, fires", [(20, 100, True), (45, 100, False), (0, 19, False),
                                         (0, 25, True), (30, 50, False)])
def test_a_drop_fires_on_evidence_only(k, b, fires):
    rule = TrafficRule("traffic_drop", "calls", ("direction", "profile"), "<", 0.5, for_windows=1)
    assert rule.evident(k, b) is fires


def test_a_drop_to_nothing_with_no_cdr_at_all_is_seen():
    engine = Engine(Config(retention_hours=None))
    docs = []
    for window in (START, START + DAY):
        for i in range(40):
            docs.append(raw(_id=f"{window}-{i}", end_epoch=window + i, ccnq_profile="quiet",
                            ccnq_direction="egress"))
    docs.append(raw(_id="other", end_epoch=START + DAY + 3 * WINDOW, ccnq_profile="other",
                    ccnq_direction="egress"))  # data time goes on; "quiet" sends nothing
    engine.feed_many([d for d in docs if b'"end_epoch":"%d"' % (START + DAY) not in d or True][:40])
    engine.feed_many(docs[80:])
    engine.flush()
    drops = [a for a in engine.alerts.to_json() if a["plugin"] == "traffic_drop"]
    assert [(a["profile"], a["timestamp"], a["value"]) for a in drops] == [("quiet", START + DAY, 0)]
    assert LATE < WINDOW


def test_purged_windows_live_on_as_hourly_history():
    """A live service purges windows past retention: their counts go to the hourly history,
    which the baselines then read (a tenth of the hour per window), for eight days."""
    clock = [START + 10 * DAY]
    engine = Engine(Config(retention_hours=24), clock=lambda: clock[0])
    key = series_key("calls", {"direction": "egress", "profile": "p"})
    for day in (3, 2):
        clock[0] = START + 10 * DAY - day * DAY + 3600
        engine.feed_many([raw(_id=f"{day}-{i}", end_epoch=clock[0] - 3600 + i * 36,
                              ccnq_profile="p", ccnq_direction="egress") for i in range(100)])
        engine.flush()
    clock[0] = START + 10 * DAY
    engine.purge()
    assert engine.store.windows() == []
    history = engine.traffic.history
    assert {h: history.calls(h, key) for h in history.hours} == {START + 7 * DAY: 100,
                                                                   START + 8 * DAY: 100}
    found = baseline(engine.store, engine.traffic.history, START + 8 * DAY + 2 * DAY, key)
    assert (found.value, found.days, found.median) == (0, 2, 10)
    assert found.yesterday is None  # (no history of yesterday at all: no evidence)


def test_a_restart_judges_no_restored_window_again():
    """After a restore the windows saved were judged before the stop: no alert again for them
    (it would count, and notify, once more); the windows after are judged as usual."""
    docs = [raw(_id=f"{w}-{i}", end_epoch=w + i, ccnq_profile="quiet", ccnq_direction="egress")
            for w in (START, START + DAY) for i in range(40)]
    docs.append(raw(_id="other", end_epoch=START + DAY + 3 * WINDOW, ccnq_profile="other",
                    ccnq_direction="egress"))
    before = Engine(Config(retention_hours=None))
    before.feed_many(docs[:40] + docs[80:])
    before.flush()
    [drop] = [a for a in before.alerts.list() if a.plugin == "traffic_drop"]
    after = Engine(Config(retention_hours=None))
    after.restore([(t, key, s.sum, s.count, s.squares, s.min, s.max)
                   for t, key, s in before.store.items()],
                  [a.to_record() for a in before.alerts.list()], [], {})
    after.feed(raw(_id="later", end_epoch=START + DAY + 5 * WINDOW, ccnq_profile="other",
                   ccnq_direction="egress"))
    after.flush()
    drops = [a for a in after.alerts.list() if a.plugin == "traffic_drop"]
    assert [(a.timestamp, a.count) for a in drops] == [(drop.timestamp, 1)]
    assert after.traffic.judged > START + DAY + 3 * WINDOW  # (and it went on judging)


def test_a_spike_of_a_carrier_and_of_an_account_fires():
    docs = []
    for day, calls in ((0, 30), (1, 150)):
        for window in range(START + day * DAY, START + day * DAY + 3 * WINDOW, WINDOW):
            docs += [raw(_id=f"{window}-{i}", end_epoch=window + i, ccnq_profile="busy",
                         ccnq_direction="egress", ccnq_account="a1" if i % 2 else "a2")
                     for i in range(calls)]
    docs.append(raw(_id="end", end_epoch=START + DAY + 4 * WINDOW, ccnq_profile="busy",
                    ccnq_direction="egress"))
    engine = Engine(Config(retention_hours=None))
    engine.hold_resolution = True  # (as a replay: judged at its end)
    engine.feed_many(docs)
    engine.settle()
    found = {(a.plugin, a.profile or a.account, a.timestamp) for a in engine.alerts.list()
             if a.plugin.endswith("spike")}
    windows = range(START + DAY, START + DAY + 3 * WINDOW, WINDOW)
    assert found == {(rule, who, t) for t in windows for rule, who in (
        ("traffic_spike", "busy"), ("account_volume_spike", "a1"), ("account_volume_spike", "a2"))}


def test_the_hourly_history_survives_a_restart_through_the_state_file(tmp_path):
    """The hours folded are saved with the snapshot that deletes their windows (only the hours
    that changed), restored at start; yesterday's baseline then still makes a drop fire, as
    it would not for an engine that lost it. Eight days on, the file forgets them too."""
    import asyncio

    from sixminutes.snapshots import SnapshotWriter
    from sixminutes.state import State

    async def inline(fn):
        return fn()

    clock = [START + 600]
    config = Config(retention_hours=24)
    before = Engine(config, clock=lambda: clock[0])
    key = series_key("calls", {"direction": "egress", "profile": "p"})
    before.feed_many([raw(_id=f"y{i}", end_epoch=START + i, ccnq_profile="p",
                          ccnq_direction="egress") for i in range(300)])  # 300 in an hour
    clock[0] = START + 2 * DAY - 600  # yesterday's hour is past retention now
    before.purge()
    assert before.store.windows() == [] and before.traffic.history.calls(START, key) == 300
    path = str(tmp_path / "s.sqlite")
    state = State(path)
    writer = SnapshotWriter(before, inline, clock=lambda: clock[0])
    saved = []
    original = state.save
    state.save = lambda delta: (saved.append(delta), original(delta))[1]  # (what each wrote)
    asyncio.run(writer.write(state, {}, 0))
    asyncio.run(writer.write(state, {}, 0))
    assert [len(d.history) for d in saved] == [len(before.traffic.history.hours[START]), 0]
    assert saved[0].history_hours == {START: (1, 1)}  # one window of the hour folded: the first
    state.close()

    def restarted(restore: bool) -> Engine:
        engine = Engine(config, clock=lambda: clock[0])
        if restore:
            state = State(path)
            loaded = state.load()
            engine.traffic.history.restore(loaded.history, loaded.history_hours)
            state.close()
        clock[0] = START + DAY + 3 * WINDOW
        engine.feed_many([raw(_id=f"t{i}", end_epoch=START + DAY + i, ccnq_profile="p",
                              ccnq_direction="egress") for i in range(3)])
        clock[0] = START + DAY + 2 * WINDOW + 120  # the fall's window is complete
        engine.live = True  # (the clock says which windows are complete, as in the service)
        engine.flush()
        return engine

    after = restarted(restore=True)
    assert after.traffic.history.hours == before.traffic.history.hours
    assert baseline(after.store, after.traffic.history, START + DAY, key).yesterday == 300
    drops = [(a.profile, a.timestamp, a.fields["baseline"]) for a in after.alerts.list()
             if a.plugin == "traffic_drop"]
    assert min(drops) == ("p", START + DAY, 300) and {d[0] for d in drops} == {"p"}
    assert not [a for a in restarted(restore=False).alerts.list() if a.plugin == "traffic_drop"]

    clock[0] = START + 9 * DAY - 3600  # eight days later: the hour is forgotten, in the file too
    after.feed(raw(_id="much-later", end_epoch=clock[0] - 60, ccnq_profile="p", ccnq_direction="egress"))
    after.purge()
    state = State(path)
    asyncio.run(SnapshotWriter(after, inline, clock=lambda: clock[0]).write(state, {}, 0))
    loaded = state.load()
    assert {row[0] for row in loaded.history} == set(loaded.history_hours) == {START + DAY}
    state.close()


def test_a_delete_before_a_time_forgets_the_hours_that_begin_before_it_here_and_in_the_file():
    """History.forget (DELETE /6minutes/data?before=): the hours beginning before the cut-off
    go, the later stay; the next snapshot deletes them from the state file (``dropped``)."""
    history = History()
    key = series_key("calls", {"direction": "egress", "profile": "p"})
    for hour in (START, START + 3600, START + 7200):
        history.fold(hour, [key], [30.0])
    history.take()
    history.forget(START + 3600 + WINDOW)  # (inside the second hour: it goes whole)
    assert set(history.hours) == set(history.folded) == {START + 7200}
    assert history.take() == ([], {}, START + 3600 + WINDOW)
    history.forget(None)
    assert history.hours == {} and history.take()[2] >= START + 10 * DAY


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.none(), st.integers(0, 50)), min_size=10, max_size=10),
       st.integers(0, 9))
def test_the_history_reads_a_window_as_what_its_hour_can_tell(counts, asked):
    """One key over the ten windows of an hour (None: a window never folded, the service held
    nothing then): a window never folded is no evidence; a folded one where the key had no
    call is 0, not the hour's mean; the others share the key's calls (exactly when equal),
    and what the windows read adds up to the calls folded."""
    history = History()
    key = series_key("calls", {"direction": "egress", "profile": "p"})
    for slot, count in enumerate(counts):
        if count is not None:
            history.fold(START + slot * WINDOW, [key], [float(count)])
    read = history.per_window(START + asked * WINDOW, key)
    if not any(c is not None for c in counts):
        assert read is None
    elif counts[asked] is None:
        assert read is None
    elif counts[asked] == 0:
        assert read == 0
    elif len({c for c in counts if c}) == 1:
        assert read == counts[asked]
    total = sum(c for c in counts if c)
    readings = [history.per_window(START + s * WINDOW, key) for s in range(10)]
    assert sum(r for r in readings if r is not None) == pytest.approx(total)


def test_a_carrier_silent_yesterday_in_part_of_an_hour_is_no_drop_there_today():
    """Yesterday carrier p had 300 calls in the first window of an hour and none in the nine
    others (q had calls in every one); today the same. Past retention, yesterday is hourly
    history: p's baseline in the silent windows is 0 (the history can tell), not the hour's
    mean of 30, so the rules see no drop in them."""
    clock = [START + 2 * DAY]
    engine = Engine(Config(retention_hours=24), clock=lambda: clock[0])
    engine.live = True

    def day(at: int, tag: str) -> list[bytes]:
        docs = [raw(_id=f"{tag}p{i}", end_epoch=at + i, ccnq_profile="p", ccnq_direction="egress")
                for i in range(300)]
        return docs + [raw(_id=f"{tag}q{w}-{i}", end_epoch=at + w * WINDOW + i, ccnq_profile="q",
                           ccnq_direction="egress") for w in range(10) for i in range(30)]

    clock[0] = START + 3600
    engine.feed_many(day(START, "y"))
    clock[0] = START + DAY + 3600 + 120  # yesterday's hour is past retention: hourly history
    engine.purge()
    assert engine.store.windows() == []
    key = series_key("calls", {"direction": "egress", "profile": "p"})
    assert count_at(engine.store, engine.traffic.history, START + WINDOW, key) == 0
    assert count_at(engine.store, engine.traffic.history, START, key) == 300
    engine.feed_many(day(START + DAY, "t"))  # (today's hour: complete by the clock)
    engine.flush()
    assert [a.msg for a in engine.alerts.list() if a.plugin.startswith("traffic")] == []


def _restart_world(clock: list[float]) -> tuple[Engine, int]:
    """Carrier p: 100 calls in each of two windows yesterday, 35 in the first today (a drop
    evident only over two windows); q has calls in the second already (data goes on)."""
    engine = Engine(Config(retention_hours=None), clock=lambda: clock[0])
    engine.live = True
    today = START + DAY
    clock[0] = today + WINDOW + 30  # (the second window of today is under way)
    docs = [raw(_id=f"y{w}-{i}", end_epoch=START + w * WINDOW + i, ccnq_profile="p",
                ccnq_direction="egress") for w in (0, 1) for i in range(100)]
    docs += [raw(_id=f"t0-{i}", end_epoch=today + i, ccnq_profile="p", ccnq_direction="egress")
             for i in range(35)]
    docs += [raw(_id=f"q{i}", end_epoch=today + WINDOW + i, ccnq_profile="q",
                 ccnq_direction="egress") for i in range(5)]
    engine.feed_many(docs)
    clock[0] = today + WINDOW + LATE + 1  # the first window of today is judged: not evident yet
    engine.flush()
    return engine, today


def _second_window(engine: Engine, clock: list[float], today: int) -> list[tuple[str, int]]:
    engine.feed_many([raw(_id=f"t1-{i}", end_epoch=today + WINDOW + 50 + i, ccnq_profile="p",
                          ccnq_direction="egress") for i in range(35)])
    clock[0] = today + 2 * WINDOW + LATE + 1
    engine.flush()
    return sorted((a.profile, a.timestamp) for a in engine.alerts.list() if a.plugin == "traffic_drop")


def test_a_run_of_windows_under_way_goes_on_across_a_restart():
    """What the traffic rules judged is saved (``Traffic.export``) and taken back
    (``resume``): the first window of a drop that needs two, judged before the restart, still
    counts after it, as it would have without the restart; and it is not judged again."""
    clock = [0.0]
    engine, today = _restart_world(clock)
    assert [a for a in engine.alerts.list() if a.plugin == "traffic_drop"] == []
    saved = engine.traffic.export()
    assert saved is not None and saved["judged"] == today + WINDOW
    assert saved["evident"] == [["traffic_drop", ["egress", "p"], [[today, 35.0, 100.0]]]]

    after = Engine(Config(retention_hours=None), clock=lambda: clock[0])
    after.live = True
    after.restore([(t, key, s.sum, s.count, s.squares, s.min, s.max)
                   for t, key, s in engine.store.items()], [], [], {})
    after.traffic.resume(saved)
    assert after.traffic.judged == today + WINDOW
    without = [("p", today), ("p", today + WINDOW)]
    assert _second_window(after, clock, today) == without
    clock[0] = 0.0
    assert _second_window(_restart_world(clock)[0], clock, today) == without  # (no restart)


def test_a_rule_enabled_since_the_judgement_saved_judges_the_newest_window_restored():
    """``resume`` with a rule the saved judgement did not have: that rule judges from the
    newest window restored, as a start without the saved judgement would; the others do not
    judge again what they judged. Data of another shape is ignored."""
    clock = [0.0]
    engine, today = _restart_world(clock)
    clock[0] = today + 3 * WINDOW + LATE + 1  # (judged past the newest window held)
    engine.flush()
    saved = engine.traffic.export()
    saved["rules"].remove("traffic_spike")
    after = Engine(Config(retention_hours=None), clock=lambda: clock[0])
    after.restore([(t, key, s.sum, s.count, s.squares, s.min, s.max)
                   for t, key, s in engine.store.items()], [], [], {})
    after.live = True
    newest = after.traffic.judged
    after.traffic.resume(saved)
    assert newest == today + WINDOW
    assert after.traffic._late == {"traffic_spike": newest} and after.traffic.judged == today + 3 * WINDOW
    judged: list[tuple[str, int]] = []
    real = after.traffic._candidates
    after.traffic._candidates = lambda store, rule, seen, window: (  # type: ignore[method-assign]
        judged.append((rule.name, window)), real(store, rule, seen, window))[1]
    after.flush()
    assert sorted(judged) == sorted((rule, t) for t in (today + WINDOW, today + 2 * WINDOW)
                                    for rule in ["traffic_spike"])
    assert after.traffic._late == {}
    other = Engine(Config(retention_hours=None))
    for odd in ({"version": 2, "judged": 1}, {"version": 1, "judged": "x"}, [], {"version": 1}):
        other.traffic.resume(odd)
        assert other.traffic.judged is None
