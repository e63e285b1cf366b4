"""The engine: feed → decode → window → plugins → store and alerts, with an injected clock."""
from __future__ import annotations

import gc
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import END, WINDOW, builtins, cdr, raw
from sixminutes.call import REASONS
from sixminutes.config import Config
from sixminutes import columns as columns_module
from sixminutes import engine as engine_module
from sixminutes.engine import Engine
from sixminutes.plugins import load_plugins
from sixminutes.stats import Stat
from sixminutes.windows import Retention

NOW = END + 60
DAY = 24 * 3600
CARRIER = {"ccnq_profile": "carrier1", "ccnq_direction": "egress", "ccnq_account": "acct1"}
C = 'direction="egress",profile="carrier1"'
A = 'account="acct1",direction="egress"'
D = 'country="unknown",direction="egress",profile="carrier1"'  # (no called number)


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def engine(clock=None, **config) -> Engine:
    return Engine(Config(**config), clock=clock or Clock())


def window_json(e: Engine, t: int = WINDOW) -> dict:
    return e.store.to_json().get(str(t), {})


def write(directory: Path, name: str, source: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(textwrap.dedent(source))


# --- feed -----------------------------------------------------------------------------------

def test_feed_returns_none_when_accepted():
    e = engine()
    assert e.feed(raw(_id="a", **CARRIER)) is None
    assert e.accepted == 1 and sum(e.rejected.values()) == 0


def test_feed_accepts_dicts():
    e = engine()
    assert e.feed(cdr(_id="a", **CARRIER)) is None
    assert window_json(e)[f"calls{{{C}}}"]["count"] == 1


def test_feed_returns_the_reason_and_counts_it():
    e = engine()
    assert e.feed(b"{") == "bad_json"
    assert e.feed(b"[]") == "not_object"
    assert e.feed(raw(end_epoch="abc")) == "bad_end_epoch"
    assert e.feed(raw(end_epoch="abc")) == "bad_end_epoch"
    assert e.feed(raw(_id="_design/x")) == "design_doc"
    assert e.accepted == 0
    assert dict(e.rejected) == {"bad_json": 1, "not_object": 1, "bad_end_epoch": 2, "design_doc": 1}
    assert "abc" in e.last_rejection["bad_end_epoch"]
    assert e.store.cells == 0


def test_accepted_and_rejected_counters_add_up():
    e = engine()
    items = [raw(_id=str(i), **CARRIER) for i in range(5)] + [b"x", raw(_id="0", **CARRIER)]
    results = [e.feed(item) for item in items]
    assert results == [None] * 5 + ["bad_json", "duplicate"]
    assert e.accepted == 5 and sum(e.rejected.values()) == 2


def test_duplicate_id_in_the_same_window_is_rejected():
    e = engine()
    assert e.feed(raw(_id="a", **CARRIER)) is None
    assert e.feed(raw(_id="a", billsec="30", **CARRIER)) == "duplicate"
    assert e.rejected["duplicate"] == 1
    assert window_json(e)[f"calls{{{C}}}"]["count"] == 1
    assert f"billsec{{{C}}}" not in window_json(e)


def test_duplicate_id_from_a_change_row_is_rejected():
    e = engine()
    doc = cdr(_id="a", **CARRIER)
    assert e.feed(raw(_id="a", **CARRIER)) is None
    assert e.feed({"seq": "9", "id": "a", "doc": doc}) == "duplicate"


def test_duplicate_uuid_without_id_is_rejected():
    e = engine()
    assert e.feed(raw(uuid="u-1", **CARRIER)) is None
    assert e.feed(raw(uuid="u-1", **CARRIER)) == "duplicate"
    assert e.feed(raw(uuid="u-2", **CARRIER)) is None
    assert e.accepted == 2


def test_without_id_or_uuid_every_cdr_counts():
    e = engine()
    assert e.feed(raw(**CARRIER)) is None
    assert e.feed(raw(**CARRIER)) is None
    assert e.accepted == 2


def test_same_id_in_another_window_is_counted():
    e = engine()
    assert e.feed(raw(_id="a", **CARRIER)) is None
    assert e.feed(raw(_id="a", end_epoch=END - 360, **CARRIER)) is None
    assert e.accepted == 2


def test_future_is_rejected():
    clock = Clock(NOW)
    e = engine(clock)
    assert e.feed(raw(_id="a", end_epoch=int(NOW) + 3601)) == "future"
    assert e.feed(raw(_id="b", end_epoch=int(NOW) + 3600)) is None  # exactly an hour: kept
    assert e.rejected["future"] == 1


def test_future_follows_the_clock():
    clock = Clock(NOW)
    e = engine(clock)
    assert e.feed(raw(_id="a", end_epoch=int(NOW) + 7200)) == "future"
    clock.now += 3600
    assert e.feed(raw(_id="a", end_epoch=int(NOW) + 7200)) is None


def test_too_old_with_retention():
    e = engine(retention_hours=24)
    oldest = (int(NOW) - DAY) - (int(NOW) - DAY) % 360
    assert e.feed(raw(_id="a", end_epoch=oldest - 1)) == "too_old"
    assert e.feed(raw(_id="b", end_epoch=oldest)) is None
    assert e.rejected["too_old"] == 1
    assert e.store.windows() == [oldest]


def test_late_cdr_within_retention_lands_in_its_own_window():
    e = engine()
    assert e.feed(raw(_id="now", **CARRIER)) is None
    assert e.feed(raw(_id="late", end_epoch=END - 3 * 3600, **CARRIER)) is None
    late = window_json(e, WINDOW - 30 * 360)
    assert late[f"calls{{{C}}}"]["count"] == 1


def test_late_cdr_into_a_compacted_window_is_counted():
    e = engine()
    e.feed(raw(_id="a", **CARRIER))
    e.feed(raw(_id="b", end_epoch=END + 3600, **CARRIER))  # moves on: WINDOW gets compacted
    assert not e.store.window(WINDOW).live
    e.feed(raw(_id="c", billsec="0", **CARRIER))
    assert e.store.get(WINDOW, f"calls{{{C}}}") == Stat.of(1.0, 1.0)
    assert e.store.get(WINDOW, f"zero_duration{{{C}}}") == Stat.of(1.0, 1.0)


def test_retention_none_accepts_old_cdrs():
    e = engine(Clock(NOW))
    e.retention = Retention(None, Clock(NOW))  # as a file replay runs
    assert e.feed(raw(_id="a", end_epoch=946_684_800)) is None
    assert e.store.windows() == [946_684_800]


def test_retention_none_from_config_accepts_old_cdrs():
    e = Engine(Config(retention_hours=None), clock=Clock(NOW))
    assert e.feed(raw(_id="a", end_epoch=END - 30 * DAY)) is None
    assert e.purge() is None
    assert len(e.store.windows()) == 1


SEED_ALERTS = {"unexpected_sip": {"min_count": 1, "min_calls": 1, "share": 0}}
"""unexpected_sip as in the seed: one unexpected code alerts (the guard is tested in test_alerts)."""


def test_purge_drops_old_windows_alerts_and_dedup_memory():
    clock = Clock(NOW)
    e = engine(clock, plugin_options=SEED_ALERTS)
    assert e.feed(raw(_id="a", sip_term_status="503", **CARRIER)) is None
    clock.now = END + 2 * 3600
    assert e.feed(raw(_id="b", end_epoch=END + 2 * 3600, sip_term_status="503", **CARRIER)) is None
    assert len(e.alerts) == 2
    clock.now = END + DAY + 720
    cut = e.purge()
    assert cut == (int(clock.now) - DAY) - (int(clock.now) - DAY) % 360
    assert e.store.windows() == [window_of(END + 2 * 3600)]
    assert [a.timestamp for a in e.alerts.list()] == [window_of(END + 2 * 3600)]
    # The dedup memory of the dropped window is gone too: with no retention, "a" counts again.
    e.retention = Retention(None, clock)
    assert e.feed(raw(_id="a", **CARRIER)) is None
    assert e.feed(raw(_id="b", end_epoch=END + 2 * 3600, **CARRIER)) == "duplicate"


def window_of(t: int) -> int:
    return t - t % 360


def test_reload_swaps_the_plugin_set(tmp_path):
    write(tmp_path, "mine.py", 'def plugin(ctx):\n    ctx.increment("first")\n')
    e = engine(plugin_dirs=[str(tmp_path)], disabled=builtins())
    old = e.plugins
    e.feed(raw(_id="a"))
    write(tmp_path, "mine.py", 'def plugin(ctx):\n    ctx.increment("second")\n')
    new = e.reload()
    assert new is e.plugins and new is not old
    assert e.plugins.names() == ["mine"]
    e.feed(raw(_id="b"))
    assert set(window_json(e)) == {"first", "second"}
    assert window_json(e)["first"]["count"] == 1 and window_json(e)["second"]["count"] == 1


def test_reload_reports_a_broken_file_and_keeps_the_rest(tmp_path):
    write(tmp_path, "mine.py", 'def plugin(ctx):\n    ctx.increment("mine")\n')
    e = engine(plugin_dirs=[str(tmp_path)])
    write(tmp_path, "broken.py", "def plugin(ctx:\n")
    e.reload()
    assert "mine" in e.plugins.names() and "broken" not in e.plugins.names()
    assert [Path(err.file).name for err in e.plugins.errors] == ["broken.py"]
    assert e.status()["plugin_load_errors"][0].startswith(str(tmp_path / "broken.py"))


def test_injected_plugin_set_is_used(tmp_path):
    write(tmp_path, "only.py", 'def plugin(ctx):\n    ctx.increment("only")\n')
    e = Engine(Config(), clock=Clock(), plugins=load_plugins([tmp_path], builtin=False))
    e.feed(raw(_id="a"))
    assert list(window_json(e)) == ["only"]


def test_a_plugin_raising_does_not_stop_counting(tmp_path):
    write(tmp_path, "aaa_raises.py", "def plugin(ctx):\n    raise RuntimeError('bad plugin')\n")
    e = engine(plugin_dirs=[str(tmp_path)])
    assert e.feed(raw(_id="a", **CARRIER)) is None
    assert e.feed(raw(_id="b", **CARRIER)) is None
    assert e.accepted == 2
    assert window_json(e)[f"calls{{{C}}}"]["count"] == 2
    [status] = [p for p in e.status()["plugins"] if p["name"] == "aaa_raises"]
    assert status["errors"] == 2
    assert status["last_error"] == "RuntimeError: bad plugin (line 2)"


def test_status():
    e = engine(plugin_options=SEED_ALERTS)
    e.feed(raw(_id="a", sip_term_status="503", **CARRIER))
    e.feed(b"{")
    status = e.status()
    assert status["accepted"] == 1
    assert status["rejected"] == {"bad_json": 1}
    assert sorted(p["name"] for p in status["plugins"]) == builtins()
    assert status["plugin_load_errors"] == []
    assert status["alerts"] == 1


# --- built-in series ------------------------------------------------------------------------

def test_builtin_series_of_an_answered_short_call():
    e = engine()
    e.feed(raw(_id="a", **CARRIER, billsec="3", duration="10", answer_epoch=str(END - 3),
               sip_term_status="200", hangup_cause="NORMAL_CLEARING", hangup_cause_q850="16",
               progress_mediamsec="1500", rtp_audio_in_mos="4.25"))
    one = {"sum": 1, "count": 1, "squares": 1, "min": 1, "max": 1}
    assert window_json(e) == {
        f"calls{{{C}}}": one,
        f"answered{{{C}}}": one,
        f"billsec{{{C}}}": {"sum": 3, "count": 1, "squares": 9, "min": 3, "max": 3},
        f"short_calls{{{C}}}": one,
        f"pdd_ms{{{C}}}": {"sum": 1500, "count": 1, "squares": 2_250_000, "min": 1500, "max": 1500},
        f"mos{{{C}}}": {"sum": 4.25, "count": 1, "squares": 18.0625, "min": 4.25, "max": 4.25},
        'sip_status{code="200",direction="egress",profile="carrier1"}': one,
        'hangup_cause{cause="NORMAL_CLEARING",direction="egress",profile="carrier1"}': one,
        f"account_calls{{{A}}}": one,
        f"account_billsec{{{A}}}": {"sum": 3, "count": 1, "squares": 9, "min": 3, "max": 3},
        f"destination_calls{{{D}}}": one,
        f"destination_answered{{{D}}}": one,
        f"destination_billsec{{{D}}}": {"sum": 3, "count": 1, "squares": 9, "min": 3, "max": 3},
        # in progress for its 10 seconds (END - 10 to END) of the window's 360
        f"peak_concurrent{{{C}}}": {"sum": 10, "count": 360, "squares": 10, "min": 0, "max": 1},
        f"account_short_calls{{{A}}}": one,
    }


def test_builtin_series_of_a_failed_call():
    e = engine()
    e.feed(raw(_id="a", **CARRIER, billsec="0", sip_term_status="503",
               hangup_cause="NORMAL_TEMPORARY_FAILURE", hangup_cause_q850="41"))
    one = {"sum": 1, "count": 1, "squares": 1, "min": 1, "max": 1}
    assert window_json(e) == {
        f"calls{{{C}}}": one,
        f"zero_duration{{{C}}}": one,
        f"network_failures{{{C}}}": one,
        'sip_status{code="503",direction="egress",profile="carrier1"}': one,
        'hangup_cause{cause="NORMAL_TEMPORARY_FAILURE",direction="egress",profile="carrier1"}': one,
        f"account_calls{{{A}}}": one,
        f"account_zero_duration{{{A}}}": one,
        f"destination_calls{{{D}}}": one,
    }


def test_builtin_series_without_ccnq_variables():
    e = engine()
    e.feed(raw(_id="a", sip_gateway_name="gw1", direction="ingress", accountcode="1001"))
    keys = set(window_json(e))
    assert 'calls{direction="ingress",profile="gw1"}' in keys
    assert 'sip_status{code="none",direction="ingress",profile="gw1"}' in keys
    assert 'hangup_cause{cause="none",direction="ingress",profile="gw1"}' in keys
    assert 'account_calls{account="1001",direction="ingress"}' in keys


def test_builtin_series_of_a_bare_cdr_use_unknown():
    e = engine()
    e.feed(raw(_id="a"))
    assert 'calls{direction="unknown",profile="unknown"}' in window_json(e)
    assert 'account_calls{account="unknown",direction="unknown"}' in window_json(e)


def test_builtin_series_escape_label_values():
    e = engine()
    e.feed(raw(_id="a", ccnq_profile='acme "gold"', ccnq_direction="egress",
               ccnq_account="back%5Cslash%0Aline"))  # URL-decoded to back\slash<newline>line
    keys = set(window_json(e))
    assert 'calls{direction="egress",profile="acme \\"gold\\""}' in keys
    assert 'account_calls{account="back\\\\slash\\nline",direction="egress"}' in keys


def test_billsec_sums_and_acd():
    e = engine()
    for i, billsec in enumerate((10, 20, 0, 60)):
        e.feed(raw(_id=str(i), billsec=str(billsec), **CARRIER))
    stat = e.store.get(WINDOW, f"billsec{{{C}}}")
    assert stat == Stat.of(10.0, 20.0, 60.0)
    assert stat.mean == 30
    assert e.store.get(WINDOW, f"zero_duration{{{C}}}").count == 1
    assert e.store.get(WINDOW, f"account_billsec{{{A}}}") == Stat.of(10.0, 20.0, 60.0)


@pytest.mark.parametrize("billsec, short", [("1", True), ("5", True), ("6", False), ("0", False)])
def test_short_calls_default_threshold(billsec, short):
    e = engine()
    e.feed(raw(_id="a", billsec=billsec, **CARRIER))
    assert (f"short_calls{{{C}}}" in window_json(e)) is short


@pytest.mark.parametrize("billsec, short", [("9", True), ("10", False)])
def test_short_calls_threshold_option(billsec, short):
    e = engine(plugin_options={"kpis": {"short_call_seconds": 10}})
    e.feed(raw(_id="a", billsec=billsec, **CARRIER))
    assert (f"short_calls{{{C}}}" in window_json(e)) is short


@pytest.mark.parametrize("sip, q850, failure", [
    ("408", None, True), ("500", None, True), ("502", None, True), ("503", None, True),
    ("504", None, True),
    ("404", None, False), ("486", None, False), ("200", "16", False), ("501", None, False),
    (None, "27", True), (None, "34", True), (None, "38", True), (None, "41", True),
    (None, "42", True), (None, "102", True),
    (None, "16", False), (None, "17", False), (None, None, False),
    ("486", "34", False),  # a SIP code wins over the Q.850 cause
])
def test_network_failures(sip, q850, failure):
    e = engine()
    e.feed(raw(_id="a", billsec="0", sip_term_status=sip, hangup_cause_q850=q850, **CARRIER))
    assert (f"network_failures{{{C}}}" in window_json(e)) is failure


def test_network_failure_from_invite_failure_status():
    e = engine()
    e.feed(raw(_id="a", sip_invite_failure_status="502", **CARRIER))
    assert window_json(e)[f"network_failures{{{C}}}"]["count"] == 1
    assert 'sip_status{code="502",direction="egress",profile="carrier1"}' in window_json(e)


def test_pdd_and_mos_only_when_known():
    e = engine()
    e.feed(raw(_id="a", progress_mediamsec="0", progressmsec="0", rtp_audio_in_mos="nan", **CARRIER))
    keys = set(window_json(e))
    assert f"pdd_ms{{{C}}}" not in keys and f"mos{{{C}}}" not in keys


def test_disabled_builtin_series_are_absent():
    e = engine(disabled=["accounts", "codes", "concurrent", "destinations", "fraud"])
    e.feed(raw(_id="a", **CARRIER))
    names = {key.split("{")[0] for key in window_json(e)}
    assert names == {"calls", "zero_duration"}


# --- odd input never costs more than its own document ---------------------------------------

@pytest.mark.parametrize("doc_id", [["a"], {"a": 1}])
def test_non_string_id_gets_a_documented_outcome(doc_id):
    e = engine()
    result = e.feed({"_id": doc_id, "variables": {"end_epoch": str(END)}})
    assert result is None or result in REASONS


def test_rule_labelled_by_a_non_call_field_never_hides_a_counted_cdr():
    rules = {"per_code": {"series": "calls", "per": None, "op": ">", "bound": 1, "min_count": 1,
                          "labels": ["code"]}}
    try:
        e = engine(rules=rules)
    except ValueError:
        return  # refusing the rule up front is fine
    result = e.feed(raw(_id="a", **CARRIER))
    counted = e.store.cells > 0
    assert (result is None) == counted, (result, e.last_rejection)


@pytest.mark.parametrize("increment", [
    'ctx.increment("5xx-errors", profile=ctx.profile)',      # not a Prometheus metric name
    'ctx.increment("errors", **{"sip-code": "503"})',        # not a label name
])
def test_a_plugins_odd_series_name_never_breaks_filtered_queries(tmp_path, increment):
    from sixminutes.board import carrier_rows
    write(tmp_path, "odd.py", f"def plugin(ctx):\n    {increment}\n")
    e = engine(plugin_dirs=[str(tmp_path)])
    assert e.feed(raw(_id="a", **CARRIER)) is None
    # Either ctx.increment refuses the name (a plugin error) or the store keeps it queryable;
    # a filtered read of the built-in series must work in both cases.
    assert e.store.to_json(names=["calls"]) == {
        str(WINDOW): {f"calls{{{C}}}": {"sum": 1, "count": 1, "squares": 1, "min": 1, "max": 1}}}
    assert list(e.store.to_json(labels={"profile": "carrier1"})[str(WINDOW)])
    assert [r.calls for r in carrier_rows(e.store)] == [1]

documents = st.one_of(
    st.builds(lambda i, dt, billsec: raw(_id=f"id-{i}", end_epoch=END + dt, billsec=billsec, **CARRIER),
              st.integers(0, 20), st.integers(-2 * DAY, 2 * 3600), st.sampled_from(["0", "3", "60"])),
    st.builds(lambda dt: raw(end_epoch=END + dt, **CARRIER), st.integers(-3600, 3600)),
    st.sampled_from([b"{", b"[]", raw(_id="_design/x"), raw(end_epoch="x"), b'{"variables":5}']),
)


@settings(max_examples=100)
@given(st.lists(documents, max_size=30))
def test_every_document_is_accepted_or_rejected_and_every_accepted_one_counted(items):
    e = engine()
    results = [e.feed(item) for item in items]
    assert e.accepted == results.count(None)
    assert sum(e.rejected.values()) == len(items) - e.accepted
    assert all(r is None or r in REASONS for r in results)
    calls = sum(s.count for _, key, s in e.store.items(names=["calls"]))
    assert calls == e.accepted


# --- feed_many --------------------------------------------------------------------------------

ODD_PLUGIN = """
def plugin(ctx):
    if ctx.duration.billable == 3:
        raise RuntimeError(f"odd call {ctx.call.id}")
    if ctx.duration.billable == 0:
        ctx.alert("zero", key=ctx.call.id)
"""


@pytest.fixture(scope="module")
def odd_plugin(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("plugins")
    write(directory, "odd.py", ODD_PLUGIN)
    return directory


def what_was_counted(e: Engine) -> tuple:
    """Everything a report or the status shows, with the positions it keeps."""
    return (list(e.outcomes.items()), e._first_seen, e.last_rejection, e._rejected_at, e.read,
            e.store.to_json(), e.alerts.to_json(),
            [(p.name, p.errors, p.last_error, p.last_error_at) for p in e.plugins.plugins])


@settings(max_examples=60, deadline=None)
@given(st.lists(documents, max_size=30), st.integers(1, 5), st.sampled_from([1, 300, 16 << 20]),
       st.sampled_from([None, 2, 3]))
def test_feed_many_counts_as_feed_one_at_a_time(odd_plugin, items, batch, batch_bytes, shards):
    """Counting a batch at once changes nothing a user sees, against one document at a
    time with the rules checked at the same points (after each batch): outcomes and where
    each was seen, plugin errors and their positions, alerts, the store; and a document
    ``keep`` declines is passed over, as another process's share.

    (feed_many checks after each batch, as feed does every ``check_every`` documents, both
    ``BATCH`` by default: the one-at-a-time side checks only where the batches end, or a rule or
    an alert's resolution would be checked at points the other side never checks.)"""
    plugins = odd_plugin
    keep = None if shards is None else (lambda item: hash(item) % shards == 0)
    one, many = engine(plugin_dirs=[str(plugins)]), engine(plugin_dirs=[str(plugins)])
    one.check_every = 10**9  # only the flush after each chunk, below
    kept = engine_module.BATCH, engine_module.BATCH_BYTES
    engine_module.BATCH, engine_module.BATCH_BYTES = batch, batch_bytes
    try:
        rest = iter(items)
        while chunk := engine_module._batch(rest)[0]:  # feed_many checks the rules after each
            for item in chunk:
                if keep is None or keep(item):
                    one.feed(item)
                else:
                    one.pass_over()
            one.flush()
        many.feed_many(iter(items), keep=keep)
    finally:
        engine_module.BATCH, engine_module.BATCH_BYTES = kept
    many.flush()
    assert what_was_counted(many) == what_was_counted(one)


def test_feed_many_counts_a_decoder_bug_as_undecodable_and_goes_on(monkeypatch):
    real = columns_module.decode

    def decode(item):
        if item == b"boom":
            raise KeyError("surprise")
        return real(item)

    monkeypatch.setattr(columns_module, "decode", decode)
    e = engine()
    e.feed_many([raw(_id="a", **CARRIER), b"boom", raw(_id="b", **CARRIER)])
    assert e.accepted == 2
    assert e.rejected == {"undecodable": 1}
    assert e.last_rejection["undecodable"] == "KeyError: 'surprise'"
    assert e._rejected_at["undecodable"] == 1


def test_rejected_documents_leave_no_reference_cycles():
    """A rejection must not keep its frames, and the document in them, until the cyclic
    collector runs: the live service rejects duplicates by the thousand."""
    e = engine()
    e.feed(raw(_id="a", **CARRIER))
    gc.collect()
    gc.disable()
    try:
        for _ in range(20):
            assert e.feed(raw(_id="a", **CARRIER)) == "duplicate"
        e.feed_many([raw(_id="a", **CARRIER), b"{", raw(end_epoch="x")] * 20)
        assert e.rejected == {"duplicate": 40, "bad_json": 20, "bad_end_epoch": 20}
        assert gc.collect() == 0
    finally:
        gc.enable()


def test_feed_many_counts_what_a_failing_source_gave_before_its_error():
    def source():
        yield raw(_id="a", **CARRIER)
        yield raw(_id="b", **CARRIER)
        raise OSError("the disk went away")

    e = engine()
    with pytest.raises(OSError, match="went away"):
        e.feed_many(source())
    assert e.read == 2 and e.accepted == 2


def test_feed_many_reads_no_further_ahead_than_batch_bytes(monkeypatch):
    """A directory of huge documents must not be held a thousand at a time."""
    monkeypatch.setattr(engine_module, "BATCH_BYTES", 1)
    pulled: list[int] = []

    def source():
        for i in range(4):
            pulled.append(i)
            yield raw(_id=f"x{i}", **CARRIER)

    e = engine()
    counted_after: list[int] = []
    count = e._count_batch
    e._count_batch = lambda items, source: counted_after.append(len(pulled)) or count(items, source)
    e.feed_many(source())
    assert counted_after == [1, 2, 3, 4] and e.accepted == 4


def test_feed_many_checks_the_rules_after_each_batch_with_a_cdr_of_the_crossing_batch(monkeypatch):
    """40 zero-duration calls of one carrier, 10 a batch: the zero-duration rule (20 samples)
    fires once the second batch is counted, and its sample is a CDR of that batch."""
    monkeypatch.setattr(engine_module, "BATCH", 10)
    e = engine()
    e.feed_many(raw(_id=f"z{i:02d}", billsec="0", **CARRIER) for i in range(40))
    [alert] = [a for a in e.alerts.list() if a.plugin == "zero_duration_ratio"]
    assert alert.doc["_id"] == "z10" and alert.fields["samples"] == 20


def test_a_replay_keeps_each_rejection_with_its_position_up_to_a_bound(monkeypatch):
    monkeypatch.setattr(engine_module, "KEPT_REJECTIONS", 2)
    quiet = engine()
    quiet.feed_many([b"{", b"{"])
    assert quiet.rejections == []  # (the live service keeps its own list)
    e = engine()
    e.keep_rejections = True
    e.feed_many([raw(_id="a", **CARRIER), b"{", raw(_id="a", **CARRIER), b"[]", b"{", b"{"])
    assert [(at, reason) for at, reason, _ in e.rejections] == [
        (1, "bad_json"), (2, "duplicate"), (3, "not_object"), (4, "bad_json")]
    assert e.rejections[1][2] == "a"


def test_a_restored_alert_does_not_fire_again_when_its_window_is_counted_into():
    """After a restart the rules know which crossings their restored alerts came from: a late
    CDR in that window neither raises the alert again nor tells the listeners (notifiers, the
    page) of it once more."""
    from sixminutes.snapshots import alert_record
    from sixminutes.thresholds import SEED_RULES
    import orjson

    failing = [raw(_id=f"f{i}", **CARRIER, sip_term_status="503", billsec="0") for i in range(25)]
    first = engine(rules=SEED_RULES, retention_hours=None, disabled=["unexpected_sip"])
    first.feed_many(failing)
    first.flush()
    fired = first.alerts.list()
    assert {a.plugin for a in fired} >= {"network_failure_ratio", "asr"}
    cells = [(t, key, s.sum, s.count, s.squares, s.min, s.max) for t, key, s in first.store.items()]
    again = engine(rules=SEED_RULES, retention_hours=None, disabled=["unexpected_sip"])
    again.restore(cells, [orjson.loads(alert_record(a)) for a in fired], [], {})
    heard = []
    again.alerts.listeners.append(heard.append)
    again.feed_many([raw(_id="late", **CARRIER, sip_term_status="503", billsec="0")])
    again.flush()
    assert heard == []
    assert sorted((a.id, a.count) for a in again.alerts.list()) == sorted((a.id, a.count) for a in fired)


def test_a_purged_windows_crossing_fires_again_when_that_window_is_counted_again():
    """Purging a window forgets everything of it, the crossings the rules remember included:
    counted again (no retention, as after DELETE), it fires again as the first time."""
    from sixminutes.thresholds import SEED_RULES

    clock = Clock(NOW)
    e = engine(clock, rules=SEED_RULES, disabled=["unexpected_sip"])
    failing = [raw(_id=f"f{i}", **CARRIER, sip_term_status="503", billsec="0") for i in range(25)]
    e.feed_many(failing)
    e.flush()
    fired = sorted(a.id for a in e.alerts.list())
    assert fired
    clock.now = END + DAY + 720
    e.purge()
    assert len(e.alerts) == 0 and e.store.windows() == []
    e.retention = Retention(None, clock)
    e.feed_many(failing)
    e.flush()
    assert sorted(a.id for a in e.alerts.list()) == fired


def test_calls_in_progress_are_counted_again_after_all_the_data_was_deleted():
    """DELETE /6minutes/data without ``before``: the windows go, and the next calls' seconds
    in progress are counted again (peak_concurrent) as their calls are."""
    engine = Engine(Config(retention_hours=None))
    engine.feed(raw(_id="a", end_epoch=END, start_epoch=END - 30))
    engine.clear(None)
    assert engine.store.windows() == []
    engine.feed(raw(_id="b", end_epoch=END + 1, start_epoch=END - 29))
    found = {key.split("{")[0]: stat for _, key, stat in engine.store.items()}
    assert found["calls"].count == 1 and found["peak_concurrent"].max == 1


def test_a_restore_freezes_each_window_once_its_rows_are_read_and_reads_them_exactly():
    """A restart never holds the day as Cells: a window is frozen as soon as the rows of the
    next one come (the state reads them window by window); every Stat comes back exactly."""
    from sixminutes.frozen import FrozenCells

    first = engine(retention_hours=None)
    first.feed_many([raw(_id=f"c{i}", end_epoch=str(END + 360 * (i % 3)), billsec=str(i))
                     for i in range(30)])
    cells = [(t, key, s.sum, s.count, s.squares, s.min, s.max) for t, key, s in first.store.items()]
    frozen_when_read: list[bool] = []
    again = engine(retention_hours=None)

    def rows():
        previous = cells[0][0]
        for row in cells:  # (when a row is asked for, the one before it has been filed)
            frozen_when_read.append(all(type(again.store.peek(w)) is FrozenCells
                                        for w in again.store.windows() if w < previous))
            previous = row[0]
            yield row

    again.restore(rows(), [], [], {})
    assert all(frozen_when_read) and len({t for t, *_ in cells}) == 3
    assert all(type(again.store.peek(t)) is FrozenCells for t in again.store.windows())
    assert sorted(again.store.items(), key=lambda item: item[:2]) == \
        sorted(first.store.items(), key=lambda item: item[:2])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(1, 12)), max_size=12), st.integers(1, 9))
def test_chunks_are_batched_where_their_documents_one_by_one_would_be(runs, batch):
    """A source may hand over Chunks (a buffer's lines at once): the batches hold the same
    documents, and end at the same ones, as when each document comes alone."""
    documents, items, n = [], [], 0
    for chunked, size in runs:
        docs = [b'{"n":%d}' % (n + i) for i in range(size)]
        n += size
        documents += docs
        items += [columns_module.Chunk(docs, sum(map(len, docs)))] if chunked else docs

    def batches(source):
        it, held, out = iter(source), [], []
        while chunk := engine_module._batch(it, held)[0]:
            out.append(list(chunk))
        return out

    kept = engine_module.BATCH
    engine_module.BATCH = batch
    try:
        assert batches(items) == batches(documents)
        assert [d for b in batches(items) for d in b] == documents
    finally:
        engine_module.BATCH = kept
