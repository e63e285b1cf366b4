"""Alert lifecycle: records fire, join their condition across windows, and resolve together."""
from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import WINDOW, raw
from sixminutes.alerts import SEED_RULES, Alerts
from sixminutes.call import decode
from sixminutes.config import Config
from sixminutes.engine import Engine
from sixminutes.lifecycle import Lifecycle

GRACE = 30.0
CARRIER = {"ccnq_profile": "carrier1", "ccnq_direction": "egress", "ccnq_account": "acct1"}
ONLY_ASR = {name: {"enabled": False} for name in
            ("zero_duration_ratio", "network_failure_ratio", "account_zero_duration_ratio", "mos")}
ONLY_ASR["asr"] = SEED_RULES["asr"]  # the seed's line: one window of < 20 % fires
_ids = itertools.count()


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def asr_engine(now: float = WINDOW + 60, live: bool = True, **config) -> Engine:
    """An engine where only the ASR rule (< 20 % over ≥ 20 calls) can fire."""
    config.setdefault("alert_clear_windows", 1)
    e = Engine(Config(retention_hours=None, rules=ONLY_ASR, **config), clock=Clock(now))
    e.live = live
    return e


def calls(e: Engine, window: int, answered: int, failed: int) -> None:
    for i in range(answered + failed):
        ok = i < answered
        e.feed(raw(_id=f"c{next(_ids)}", end_epoch=str(window + 100), billsec="30" if ok else "0",
                   sip_term_status="200" if ok else "486", **CARRIER))
    e.flush()


def at(e: Engine, now: float) -> list:
    """Move the clock and let the engine resolve what it can; the alerts, oldest window first."""
    e.clock.now = now
    e.flush()
    return sorted(e.alerts.list(), key=lambda a: a.timestamp)


def after(window: int) -> float:
    """The first moment the window is complete."""
    return window + 360 + GRACE


def test_threshold_alert_resolves_when_the_next_complete_window_is_within_bound():
    e = asr_engine()
    calls(e, WINDOW, answered=2, failed=30)
    [alert] = e.alerts.list()
    assert (alert.state, alert.starts_at, alert.ends_at) == ("firing", WINDOW, None)
    calls(e, WINDOW + 360, answered=25, failed=5)
    assert at(e, after(WINDOW + 360) - 1)[0].state == "firing"  # not complete yet
    [alert] = at(e, after(WINDOW + 360))
    assert (alert.state, alert.resolution) == ("resolved", "recovered")
    assert (alert.starts_at, alert.ends_at) == (WINDOW, WINDOW + 360)
    assert alert.to_json()["state"] == "resolved"


def test_consecutive_bad_windows_are_one_condition_resolving_together():
    e = asr_engine()
    calls(e, WINDOW, answered=1, failed=30)
    calls(e, WINDOW + 360, answered=1, failed=30)
    at(e, after(WINDOW + 360))
    first, second = e.alerts.list()[::-1]
    assert (first.state, second.state) == ("firing", "firing")
    assert first.starts_at == second.starts_at == WINDOW
    calls(e, WINDOW + 720, answered=30, failed=0)
    resolved = at(e, after(WINDOW + 720))
    assert [a.state for a in resolved] == ["resolved", "resolved"]
    assert {a.ends_at for a in resolved} == {WINDOW + 720}


def test_a_next_window_with_too_few_samples_keeps_it_firing_until_quiet():
    e = asr_engine(alert_quiet_windows=2)
    calls(e, WINDOW, answered=1, failed=30)
    calls(e, WINDOW + 360, answered=5, failed=0)  # 5 calls < 20: says nothing
    assert at(e, after(WINDOW + 360))[0].state == "firing"
    assert at(e, after(WINDOW + 720) - 1)[0].state == "firing"
    [alert] = at(e, after(WINDOW + 720))
    assert (alert.state, alert.resolution, alert.ends_at) == ("resolved", "quiet", WINDOW + 360)


def test_a_window_that_crosses_again_later_opens_a_new_condition():
    e = asr_engine()
    calls(e, WINDOW, answered=1, failed=30)
    calls(e, WINDOW + 360, answered=30, failed=0)
    at(e, after(WINDOW + 360))
    calls(e, WINDOW + 1080, answered=1, failed=30)
    old, new = at(e, WINDOW + 1080 + 60)
    assert (old.state, new.state) == ("resolved", "firing")
    assert new.starts_at == WINDOW + 1080


def plugin_engine(now: float, quiet: int = 2) -> Engine:
    """Only the unexpected_sip plugin alerts (a 503 is unexpected: one is enough, as in the
    seed); no threshold rule fires."""
    rules = {**ONLY_ASR, "asr": {"enabled": False}}
    e = Engine(Config(retention_hours=None, rules=rules, alert_quiet_windows=quiet,
                      plugin_options={"unexpected_sip": {"min_count": 1, "min_calls": 1, "share": 0}}),
               clock=Clock(now))
    e.live = True
    return e


def sip_503(e: Engine, window: int) -> None:
    e.feed(raw(_id=f"c{next(_ids)}", end_epoch=str(window + 10), billsec="0",
               sip_term_status="503", **CARRIER))
    e.flush()


def test_a_plugin_alert_resolves_after_quiet_windows_without_recurring():
    e = plugin_engine(WINDOW + 60, quiet=3)
    sip_503(e, WINDOW)
    sip_503(e, WINDOW + 360)  # recurs: the condition goes on
    assert at(e, after(WINDOW + 360 * 4) - 1)[1].state == "firing"
    resolved = at(e, after(WINDOW + 360 * 4))
    assert [(a.state, a.resolution) for a in resolved] == [("resolved", "quiet")] * 2
    assert {a.ends_at for a in resolved} == {WINDOW + 720}


def test_listeners_hear_the_resolution_and_a_resolved_record_only_counts_more():
    e = plugin_engine(WINDOW + 60, quiet=1)
    heard = []
    e.alerts.listeners.append(lambda a: heard.append(a.state))
    sip_503(e, WINDOW)
    at(e, after(WINDOW + 360))
    assert heard == ["firing", "resolved"]
    sip_503(e, WINDOW)  # late: the same record counts it and stays resolved
    [alert] = e.alerts.list()
    assert (alert.count, alert.state) == (2, "resolved")


def test_a_replay_resolves_by_the_newest_cdr_not_the_wall_clock():
    e = asr_engine(now=WINDOW + 10**7, live=False)  # the wall clock is far ahead
    calls(e, WINDOW, answered=1, failed=30)
    assert e.alerts.list()[0].state == "firing"  # nothing later in the data yet
    calls(e, WINDOW + 360, answered=30, failed=0)
    assert e.alerts.list()[0].state == "firing"  # that window is not complete in data time
    calls(e, WINDOW + 1080, answered=1, failed=0)
    assert e.alerts.list()[0].state == "resolved"


def test_a_restored_firing_alert_resolves_later_and_a_resolved_one_stays():
    e = asr_engine()
    calls(e, WINDOW, answered=1, failed=30)
    at(e, after(WINDOW + 360))  # the next window had no calls: still firing
    again = asr_engine(now=after(WINDOW + 360))
    again.restore([], [a.to_record() for a in e.alerts.list()], [], {})
    assert [a.state for a in again.alerts.list()] == ["firing"]
    assert at(again, after(WINDOW + 720) - 1)[0].state == "firing"
    [alert] = at(again, after(WINDOW + 720))
    assert (alert.state, alert.resolution, alert.ends_at) == ("resolved", "quiet", WINDOW + 360)
    third = asr_engine(now=after(WINDOW + 720))
    third.restore([], [a.to_record() for a in again.alerts.list()], [], {})
    assert [(a.state, a.starts_at, a.ends_at) for a in third.alerts.list()] == [
        ("resolved", WINDOW, WINDOW + 360)]
    assert third.alerts.lifecycle.open == {}


def test_deleting_alerts_closes_their_conditions():
    e = asr_engine()
    calls(e, WINDOW, answered=1, failed=30)
    assert len(e.alerts.lifecycle.open) == 1
    e.alerts.purge()
    assert e.alerts.lifecycle.open == {}


# --- the Lifecycle alone, as a property -----------------------------------------------------

@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("ab"), st.integers(0, 12)), min_size=1, max_size=30),
       st.integers(1, 4))
def test_plugin_conditions_resolve_exactly_quiet_windows_after_their_last_alert(raised, quiet):
    """Whatever the order the alerts come in, each subject ends at its newest alert's window end,
    and resolves at the first check after quiet windows more have completed."""
    alerts = Alerts(clock=lambda: 0.0, lifecycle=Lifecycle(quiet, GRACE))
    sample = decode(raw(_id="s", **CARRIER))
    for subject, n in raised:
        alerts.raise_alert("p", "m", subject, WINDOW + 360 * n, sample, {})
    newest_of = {s: max(WINDOW + 360 * n for t, n in raised if t == s) for s, _ in raised}
    late_of = {s: newest + (quiet + 1) * 360 + GRACE for s, newest in newest_of.items()}
    for late in sorted(set(late_of.values())):
        assert alerts.resolve(late - 1, lambda c, w: None) == []
        ended = alerts.resolve(late, lambda c, w: None)
        assert {a.key for a in ended} == {s for s, t in late_of.items() if t == late}
        for a in ended:
            oldest = min(WINDOW + 360 * n for s, n in raised if s == a.key)
            assert (a.state, a.starts_at, a.ends_at) == ("resolved", oldest, newest_of[a.key] + 360)
    assert all(a.state == "resolved" for a in alerts.list())


def test_nothing_resolves_while_the_sources_are_behind():
    e = asr_engine()
    calls(e, WINDOW, answered=1, failed=30)
    e.hold_resolution = True  # the service sets it while a feed is down or lagging
    assert at(e, WINDOW + 3600)[0].state == "firing"
    e.hold_resolution = False
    assert at(e, WINDOW + 3600)[0].state == "resolved"


def test_an_alert_saved_before_the_lifecycle_comes_back_resolved():
    e = asr_engine()
    calls(e, WINDOW, answered=1, failed=30)
    record = e.alerts.list()[0].to_record()
    for name in ("state", "starts_at", "ends_at", "resolution"):
        del record[name]
    again = asr_engine()
    again.restore([], [record], [], {})
    [alert] = again.alerts.list()
    assert (alert.state, alert.resolution, alert.ends_at) == ("resolved", "restored", WINDOW + 360)
    assert again.alerts.lifecycle.open == {}


def test_a_plugin_alert_with_a_field_named_rule_resolves_as_a_plugin_alert():
    e = plugin_engine(WINDOW + 60, quiet=1)
    sample = decode(raw(_id="r", **CARRIER))
    e.alerts.raise_alert("myplugin", "m", "k", WINDOW, sample, {"rule": "asr", "labels": {}})
    [alert] = at(e, after(WINDOW + 360))
    assert (alert.state, alert.resolution) == ("resolved", "quiet")


# --- hysteresis: resolving takes clean windows; a thin window still beyond keeps it open ---------

def test_with_two_clear_windows_one_clean_window_between_bad_ones_does_not_resolve():
    e = asr_engine(alert_clear_windows=2)
    calls(e, WINDOW, answered=1, failed=30)
    calls(e, WINDOW + 360, answered=30, failed=0)  # clean
    calls(e, WINDOW + 720, answered=1, failed=30)  # bad again: the same incident
    assert {a.state for a in at(e, after(WINDOW + 720))} == {"firing"}
    assert {a.starts_at for a in e.alerts.list()} == {WINDOW}
    calls(e, WINDOW + 1080, answered=30, failed=0)
    assert {a.state for a in at(e, after(WINDOW + 1080))} == {"firing"}  # one clean window
    calls(e, WINDOW + 1440, answered=30, failed=0)
    resolved = at(e, after(WINDOW + 1440))
    assert {(a.state, a.resolution, a.ends_at) for a in resolved} == {
        ("resolved", "recovered", WINDOW + 1080)}


def test_a_thin_window_still_beyond_the_bound_keeps_the_incident_open():
    e = asr_engine(alert_quiet_windows=1)
    calls(e, WINDOW, answered=1, failed=30)
    calls(e, WINDOW + 360, answered=0, failed=5)  # 5 calls, all failed: still beyond the bound
    calls(e, WINDOW + 720, answered=30, failed=0)
    [alert] = at(e, after(WINDOW + 720))
    assert (alert.state, alert.resolution, alert.ends_at) == ("resolved", "recovered", WINDOW + 720)


def test_the_lifecycle_refuses_zero_clear_windows():
    import pytest

    with pytest.raises(ValueError, match="clear_windows"):
        Lifecycle(2, 30.0, clear_windows=0)


def test_a_window_beyond_the_bound_starts_the_clean_count_again_and_none_is_skipped():
    """clear_windows = 2: clean, beyond, beyond, clean, clean. Each window beyond the bound
    moves the condition's last window on and the count of clean ones back to zero, so it
    recovers only after the two clean windows that follow the last bad one, not after the
    first clean window and one of the bad ones."""
    from types import SimpleNamespace

    from sixminutes.lifecycle import FIRING, RESOLVED

    life = Lifecycle(clear_windows=2, grace=0)
    alert = SimpleNamespace(plugin="rule", subject=("carrier1",), timestamp=WINDOW, state=None,
                            ends_at=None, resolution=None, starts_at=None)
    life.fired(alert)
    verdicts = dict(zip((WINDOW + i * 360 for i in range(1, 6)), (False, True, True, False, False)))
    judged = []

    def judge(condition, window):
        judged.append(window)
        return verdicts.get(window)

    assert life.resolve(WINDOW + 5 * 360, judge) == [] and alert.state == FIRING
    assert judged == [WINDOW + i * 360 for i in range(1, 5)]  # every complete window, in turn
    assert life.resolve(WINDOW + 6 * 360, judge) == [alert]
    assert (alert.state, alert.resolution) == (RESOLVED, "recovered")
    assert alert.ends_at == WINDOW + 4 * 360  # the end of the last window beyond the bound


def _record(subject, timestamp):
    from types import SimpleNamespace
    return SimpleNamespace(plugin="rule", subject=subject, timestamp=timestamp, state="firing",
                           ends_at=None, resolution=None, starts_at=None)


def test_settle_resolves_each_condition_at_the_first_record_time_it_can():
    """A replay's end: records joined in data-time order; before each, the conditions due by
    then are judged (here s1: beyond the bound one more window, then clean: recovered)."""
    life = Lifecycle(quiet_windows=2, grace=30, clear_windows=1)
    a, b = _record("s1", WINDOW), _record("s2", WINDOW + 1800)
    verdicts = {("s1", WINDOW + 360): True, ("s1", WINDOW + 720): False}
    life.settle([(WINDOW + 10, a), (WINDOW + 1810, b)], WINDOW + 1810,
                lambda condition, window: verdicts.get((condition.subject, window)))
    assert (a.state, a.resolution, a.ends_at) == ("resolved", "recovered", WINDOW + 720)
    assert (b.state, b.ends_at) == ("firing", None) and life.firing() == [b]


@pytest.mark.parametrize("end, resolved", [(WINDOW + 1109, False), (WINDOW + 1110, True)])
def test_settle_keeps_a_condition_judged_too_early_until_it_is_due(end, resolved):
    """Judged at the second record (no verdict: too few samples), the first condition is due
    when quiet: 3 windows and the grace after its window's start."""
    life = Lifecycle(quiet_windows=2, grace=30, clear_windows=1)
    e, f = _record("e", WINDOW), _record("f", WINDOW + 800)
    life.settle([(WINDOW + 10, e), (WINDOW + 810, f)], end, lambda condition, window: None)
    assert (e.state, e.resolution) == (("resolved", "quiet") if resolved else ("firing", None))
    assert f.state == "firing"
    if resolved:
        assert e.ends_at == WINDOW + 360


def test_forget_drops_the_alerts_not_kept_and_the_conditions_left_empty():
    life = Lifecycle()
    a1, a2, b = _record("a", WINDOW), _record("a", WINDOW + 360), _record("b", WINDOW)
    for alert in (a1, a2, b):
        life.fired(alert)
    life.forget(lambda alert: alert is not a1 and alert is not b)
    assert life.firing() == [a2] and list(life.open) == [("rule", "a")]


def test_the_lifecycle_defaults_and_what_it_refuses():
    life = Lifecycle()
    assert (life.quiet_windows, life.grace, life.clear_windows) == (2, 30.0, 1)
    for bad in ({"quiet_windows": 0}, {"clear_windows": 0}):
        with pytest.raises(ValueError) as refused:
            Lifecycle(**bad)
        assert str(refused.value) == "quiet_windows and clear_windows must be at least 1"


def test_settle_closes_a_condition_before_a_later_record_of_its_subject_opens_a_new_one():
    """By W+1450 s1 and s2 have recovered (W+720 was clean, complete at W+1110 with the
    grace): s2's record of W+1440 starts a new condition. (s1 is in the heap twice, one entry
    per record: the second, left when it closed, is passed over and s2 is judged after it.)"""
    life = Lifecycle(quiet_windows=2, grace=30, clear_windows=1)
    s1, s1_second = _record("s1", WINDOW), _record("s1", WINDOW + 360)
    s2, s2_later = _record("s2", WINDOW + 360), _record("s2", WINDOW + 1440)
    life.settle([(WINDOW + 10, s1), (WINDOW + 370, s1_second), (WINDOW + 380, s2),
                 (WINDOW + 1450, s2_later)], WINDOW + 1450,
                lambda condition, window: False if window == WINDOW + 720 else None)
    assert (s1.state, s1.resolution, s1_second.state) == ("resolved", "recovered", "resolved")
    assert (s2.state, s2.resolution, s2.ends_at) == ("resolved", "recovered", WINDOW + 720)
    assert s2_later.state == "firing" and s2_later.starts_at == WINDOW + 1440


@pytest.mark.parametrize("end, resolved", [(WINDOW + 1109, False), (WINDOW + 1110, True)])
def test_settle_looks_again_when_a_later_record_moved_the_condition_on(end, resolved):
    """s1's first look is due at W+750, but its record of W+360 has moved it on: looked at
    again at W+800 (another condition's record), it is not complete until W+1110."""
    life = Lifecycle(quiet_windows=2, grace=30, clear_windows=1)
    first, second, other = _record("s1", WINDOW), _record("s1", WINDOW + 360), _record("s3", WINDOW + 720)
    life.settle([(WINDOW + 10, first), (WINDOW + 370, second), (WINDOW + 800, other)], end,
                lambda condition, window: False if condition.subject == "s1" else None)
    assert first.state == second.state == ("resolved" if resolved else "firing")
    assert other.state == "firing"
    if resolved:
        assert second.ends_at == WINDOW + 720
