"""Plugins: finding and loading files, isolating failures, and the ctx they are handed."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from helpers import END, WINDOW, builtins, raw
from sixminutes.batch import Batch
from sixminutes.call import decode
from sixminutes.config import Config
from sixminutes.engine import Engine
from sixminutes.plugins import BUILTIN_DIR, Context, LoadError, PluginSet, load_plugins
from sixminutes.stats import SeriesKeyError, Stat
from sixminutes.store import Store

BUILTINS = builtins()


def write(directory: Path, name: str, source: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(textwrap.dedent(source))
    return path


def context(store: Store | None = None, alerts: list | None = None, **variables) -> Context:
    store = store if store is not None else Store()
    sink = alerts if alerts is not None else []
    decoded = decode(raw(**variables))
    end = decoded.call.end_epoch
    return Context(decoded, end - end % 360, store, lambda *args: sink.append(args))


COUNTER = """
def plugin(ctx):
    ctx.increment("seen", profile=ctx.profile)
"""


# --- loading --------------------------------------------------------------------------------

def test_builtins_load_by_default():
    plugins = load_plugins()
    assert sorted(plugins.names()) == BUILTINS
    assert plugins.errors == []
    assert all(p.builtin for p in plugins.plugins)
    assert all(Path(p.path).parent == BUILTIN_DIR for p in plugins.plugins)


def test_builtin_false_loads_only_given_dirs(tmp_path):
    write(tmp_path, "counter.py", COUNTER)
    plugins = load_plugins([tmp_path], builtin=False)
    assert plugins.names() == ["counter"]
    assert plugins.plugins[0].builtin is False
    assert plugins.plugins[0].path == str(tmp_path / "counter.py")


def test_plugin_file_loads_and_runs(tmp_path):
    write(tmp_path, "counter.py", COUNTER)
    plugins = load_plugins([tmp_path], builtin=False)
    store = Store()
    plugins.run(context(store, ccnq_profile="p1"))
    plugins.run(context(store, ccnq_profile="p1"))
    assert store.get(WINDOW, 'seen{profile="p1"}') == Stat.of(1.0, 1.0)


def test_plugins_come_after_builtins(tmp_path):
    write(tmp_path, "counter.py", COUNTER)
    names = load_plugins([tmp_path]).names()
    assert names[:len(BUILTINS)] == BUILTINS and names[len(BUILTINS):] == ["counter"]


def test_file_without_plugin_function_is_ignored(tmp_path):
    write(tmp_path, "helper.py", "VALUE = 1\n")
    write(tmp_path, "counter.py", COUNTER)
    plugins = load_plugins([tmp_path], builtin=False)
    assert plugins.names() == ["counter"]
    assert plugins.errors == []


def test_underscore_and_non_py_files_are_ignored(tmp_path):
    write(tmp_path, "_private.py", COUNTER)
    write(tmp_path, "notes.txt", COUNTER)
    write(tmp_path, "counter.py", COUNTER)
    assert load_plugins([tmp_path], builtin=False).names() == ["counter"]


def test_syntax_error_is_reported_with_file_and_line_and_others_load(tmp_path):
    bad = write(tmp_path, "broken.py", "def plugin(ctx):\n    pass\n\ndef oops(:\n")
    write(tmp_path, "counter.py", COUNTER)
    plugins = load_plugins([tmp_path], builtin=False)
    assert plugins.names() == ["counter"]
    [error] = plugins.errors
    assert isinstance(error, LoadError)
    assert error.file == str(bad)
    assert error.line == 4
    assert error.error.startswith("SyntaxError")
    assert str(error).startswith(f"{bad}:4: SyntaxError")


def test_import_time_exception_is_reported_with_line(tmp_path):
    bad = write(tmp_path, "raises.py", """\
        import math

        LIMIT = 1 / 0

        def plugin(ctx):
            pass
        """)
    write(tmp_path, "counter.py", COUNTER)
    plugins = load_plugins([tmp_path], builtin=False)
    assert plugins.names() == ["counter"]
    [error] = plugins.errors
    assert (error.file, error.line) == (str(bad), 3)
    assert error.error == "ZeroDivisionError: division by zero"


def test_import_error_and_system_exit_are_reported(tmp_path):
    write(tmp_path, "a_import.py", "import no_such_module_here\ndef plugin(ctx): pass\n")
    write(tmp_path, "b_exit.py", "raise SystemExit(3)\ndef plugin(ctx): pass\n")
    write(tmp_path, "counter.py", COUNTER)
    plugins = load_plugins([tmp_path], builtin=False)
    assert plugins.names() == ["counter"]
    assert [(Path(e.file).name, e.line) for e in plugins.errors] == [("a_import.py", 1), ("b_exit.py", 1)]
    assert plugins.errors[0].error.startswith("ModuleNotFoundError")
    assert plugins.errors[1].error.startswith("SystemExit")


def test_plugin_not_callable_is_reported(tmp_path):
    write(tmp_path, "notfn.py", "plugin = 5\n")
    plugins = load_plugins([tmp_path], builtin=False)
    assert plugins.names() == []
    [error] = plugins.errors
    assert "TypeError" in error.error and "not callable" in error.error


def test_missing_directory_is_reported(tmp_path):
    missing = tmp_path / "nowhere"
    write(tmp_path / "ok", "counter.py", COUNTER)
    plugins = load_plugins([missing, tmp_path / "ok"], builtin=False)
    assert plugins.names() == ["counter"]
    assert plugins.errors == [LoadError(str(missing), None, "not a directory")]
    assert str(plugins.errors[0]) == f"{missing}: not a directory"


def test_user_file_named_like_builtin_replaces_it(tmp_path):
    user = write(tmp_path, "kpis.py", COUNTER)
    plugins = load_plugins([tmp_path])
    assert sorted(plugins.names()) == BUILTINS  # still one kpis
    [kpis] = [p for p in plugins.plugins if p.name == "kpis"]
    assert kpis.path == str(user) and kpis.builtin is False
    store = Store()
    plugins.run(context(store, ccnq_profile="p1", ccnq_direction="egress"))
    assert store.get(WINDOW, 'seen{profile="p1"}') == Stat.of(1.0)
    assert store.get(WINDOW, 'calls{direction="egress",profile="p1"}') is None


def test_later_directory_overrides_earlier(tmp_path):
    write(tmp_path / "one", "same.py", 'def plugin(ctx):\n    ctx.increment("one")\n')
    second = write(tmp_path / "two", "same.py", 'def plugin(ctx):\n    ctx.increment("two")\n')
    plugins = load_plugins([tmp_path / "one", tmp_path / "two"], builtin=False)
    assert [p.path for p in plugins.plugins] == [str(second)]
    store = Store()
    plugins.run(context(store))
    assert store.get(WINDOW, "two") == Stat.of(1.0) and store.get(WINDOW, "one") is None


def test_disabled_skips_by_name(tmp_path):
    write(tmp_path, "counter.py", COUNTER)
    plugins = load_plugins([tmp_path], disabled=["accounts", "counter"])
    assert sorted(plugins.names()) == [name for name in BUILTINS if name != "accounts"]


def test_disabled_file_is_not_even_imported(tmp_path):
    write(tmp_path, "broken.py", "raise RuntimeError('imported')\n")
    plugins = load_plugins([tmp_path], disabled=["broken"], builtin=False)
    assert plugins.errors == [] and plugins.names() == []


def test_setup_receives_its_options(tmp_path):
    write(tmp_path, "opts.py", """\
        got = None

        def setup(options):
            global got
            got = options

        def plugin(ctx):
            ctx.increment("threshold", got["threshold"])
        """)
    plugins = load_plugins([tmp_path], options={"opts": {"threshold": 7}, "other": {"x": 1}},
                           builtin=False)
    store = Store()
    plugins.run(context(store))
    assert store.get(WINDOW, "threshold") == Stat.of(7.0)


def test_setup_gets_an_empty_dict_without_options(tmp_path):
    write(tmp_path, "opts.py", """\
        def setup(options):
            assert options == {}, options

        def plugin(ctx):
            ctx.increment("ok")
        """)
    plugins = load_plugins([tmp_path], builtin=False)
    assert plugins.names() == ["opts"] and plugins.errors == []


def test_setup_raising_is_a_load_error(tmp_path):
    bad = write(tmp_path, "opts.py", """\
        def setup(options):
            raise ValueError("bad option")

        def plugin(ctx):
            pass
        """)
    plugins = load_plugins([tmp_path], builtin=False)
    assert plugins.names() == []
    assert plugins.errors == [LoadError(str(bad), 2, "ValueError: bad option")]


def test_builtin_setup_option_short_call_seconds():
    plugins = load_plugins(options={"kpis": {"short_call_seconds": 30}})
    store = Store()
    ctx = context(store, ccnq_profile="p", ccnq_direction="egress", billsec="20")
    plugins.run_batch(Batch([ctx._decoded], [ctx.timestamp]), store, lambda *a: None, [0])
    assert store.get(WINDOW, 'short_calls{direction="egress",profile="p"}') == Stat.of(1.0)


# --- running --------------------------------------------------------------------------------

def test_plugin_that_raises_is_counted_and_later_plugins_still_run(tmp_path):
    bad = write(tmp_path, "a_bad.py", """\
        def plugin(ctx):
            ctx.increment("before")
            raise KeyError("boom")
        """)
    write(tmp_path, "b_good.py", 'def plugin(ctx):\n    ctx.increment("after")\n')
    plugins = load_plugins([tmp_path], builtin=False)
    store = Store()
    plugins.run(context(store))
    plugins.run(context(store))
    failing, good = plugins.plugins
    assert failing.errors == 2
    assert failing.last_error == "KeyError: 'boom' (line 3)"
    assert good.errors == 0 and good.last_error is None
    assert store.get(WINDOW, "after") == Stat.of(1.0, 1.0)
    assert store.get(WINDOW, "before") == Stat.of(1.0, 1.0)
    status = failing.status()
    assert {k: status[k] for k in ("name", "path", "builtin", "errors", "last_error", "calls")} \
        == {"name": "a_bad", "path": str(bad), "builtin": False, "errors": 2,
            "last_error": "KeyError: 'boom' (line 3)", "calls": 2}


def test_last_error_keeps_the_latest(tmp_path):
    write(tmp_path, "flaky.py", """\
        def plugin(ctx):
            if ctx.duration.billable:
                raise ValueError("answered")
            raise RuntimeError("unanswered")
        """)
    plugins = load_plugins([tmp_path], builtin=False)
    plugins.run(context(billsec="3"))
    plugins.run(context(billsec="0"))
    assert plugins.plugins[0].errors == 2
    assert plugins.plugins[0].last_error == "RuntimeError: unanswered (line 4)"


def test_sys_exit_and_base_exceptions_in_a_plugin_are_its_errors(tmp_path):
    write(tmp_path, "a_exit.py", "import sys\ndef plugin(ctx):\n    sys.exit(3)\n")
    write(tmp_path, "b_good.py", 'def plugin(ctx):\n    ctx.increment("after")\n')
    plugins = load_plugins([tmp_path], builtin=False)
    store = Store()
    plugins.run(context(store))
    assert plugins.plugins[0].errors == 1
    assert plugins.plugins[0].last_error == "SystemExit: 3 (line 3)"
    assert store.get(WINDOW, "after") == Stat.of(1.0)


def test_keyboard_interrupt_is_not_swallowed(tmp_path):
    write(tmp_path, "stop.py", "def plugin(ctx):\n    raise KeyboardInterrupt\n")
    plugins = load_plugins([tmp_path], builtin=False)
    with pytest.raises(KeyboardInterrupt):
        plugins.run(context())


def test_an_error_whose_message_raises_and_a_huge_message_are_reported(tmp_path):
    write(tmp_path, "a_weird.py", """\
        class Weird(Exception):
            def __str__(self):
                raise RuntimeError("no message for you")
        def plugin(ctx):
            raise Weird()
        """)
    write(tmp_path, "b_huge.py", 'def plugin(ctx):\n    raise ValueError("x" * 10_000_000)\n')
    write(tmp_path, "c_good.py", 'def plugin(ctx):\n    ctx.increment("after")\n')
    plugins = load_plugins([tmp_path], builtin=False)
    store = Store()
    plugins.run(context(store))
    weird, huge, good = plugins.plugins
    assert weird.errors == 1 and weird.last_error.startswith("Weird")
    assert huge.errors == 1 and huge.last_error.startswith("ValueError: xxx")
    assert len(huge.last_error) <= 500
    assert store.get(WINDOW, "after") == Stat.of(1.0)


def test_status_reports_each_plugins_calls_and_time_from_a_sample(tmp_path, monkeypatch):
    """One run in SAMPLE_EVERY is timed per plugin; status extrapolates, so a slow plugin shows.
    (The plugins' clock is the test's: the slow one moves it 2 ms per call, the fast one not.)"""
    import sixminutes.plugins as plugins_module

    write(tmp_path, "a_slow.py", "def plugin(ctx):\n    pass\n")
    write(tmp_path, "b_fast.py", "def plugin(ctx):\n    pass\n")
    plugins = load_plugins([tmp_path], builtin=False)
    now = [100.0]
    plugins.clock = lambda: now[0]

    def slow_call(ctx):
        now[0] += 0.002

    plugins.plugins[0].fn = slow_call
    assert plugins_module.SAMPLE_EVERY == 64
    monkeypatch.setattr(plugins_module, "SAMPLE_EVERY", 8)  # (fewer calls in this test)
    ctx = context()
    for _ in range(20):
        plugins.run(ctx)
    slow, fast = (p.status() for p in plugins.plugins)
    assert slow["calls"] == fast["calls"] == 20
    assert slow["timed_calls"] == fast["timed_calls"] == 3  # runs 1, 9 and 17
    assert slow["mean_us"] == pytest.approx(2000) and slow["max_us"] == pytest.approx(2000)
    assert fast["mean_us"] == fast["max_us"] == 0
    assert slow["seconds"] == pytest.approx(0.04)  # 2 ms × 20 calls, from 3 timed ones


def test_a_value_no_float_holds_is_the_plugins_error_and_the_store_stays_readable(tmp_path):
    """10**400 or text as a value must fail in the plugin (counted), not later when the window
    is compacted or read (outside any plugin: every CDR of a new window would fail)."""
    write(tmp_path, "a_huge.py", 'def plugin(ctx):\n    ctx.increment("huge", 10 ** 400)\n')
    write(tmp_path, "b_text.py", 'def plugin(ctx):\n    ctx.increment("text", "12")\n')
    write(tmp_path, "c_later.py", """\
        def plugin(ctx):
            ctx.increment("later", 1)
            ctx.increment("later", 10 ** 400)
        """)
    plugins = load_plugins([tmp_path], builtin=False)
    store = Store()
    plugins.run(context(store))
    plugins.run(context(store))
    huge, text, later = plugins.plugins
    assert huge.errors == 2 and huge.last_error.startswith("OverflowError")
    assert text.errors == 2 and text.last_error.startswith("TypeError")  # even "12"
    assert later.errors == 2 and later.last_error.startswith("OverflowError")
    store.compact()
    assert store.get(WINDOW, "huge") is None
    assert store.get(WINDOW, "text") is None
    assert store.get(WINDOW, "later") == Stat.of(1.0, 1.0)
    assert store.to_json()  # readable, writable as JSON


def test_a_plugin_never_run_reports_zero_calls(tmp_path):
    write(tmp_path, "idle.py", "def plugin(ctx):\n    pass\n")
    status = load_plugins([tmp_path], builtin=False).plugins[0].status()
    assert status["calls"] == status["timed_calls"] == 0
    assert status["seconds"] == status["mean_us"] == status["max_us"] == 0


def test_empty_plugin_set_runs():
    empty = PluginSet()
    store = Store()
    empty.run(context(store))
    assert empty.names() == [] and store.cells == 0


# --- ctx ------------------------------------------------------------------------------------

def test_ctx_fields():
    ctx = context(_id="x", ccnq_profile="carrier%201", ccnq_direction="egress",
                  ccnq_account="acct", ccnq_from_e164="%2B33123", ccnq_to_e164="1555",
                  billsec="42", duration="50", sip_term_status="200")
    assert ctx.timestamp == WINDOW
    assert (ctx.profile, ctx.direction, ctx.account) == ("carrier 1", "egress", "acct")
    assert (ctx.from_, ctx.to) == ("+33123", "1555")
    assert (ctx.duration.billable, ctx.duration.total) == (42, 50)
    assert ctx.call.sip_code == "200" and ctx.call.end_epoch == END
    assert ctx.doc["variables"]["ccnq_profile"] == "carrier 1"
    assert ctx.doc["variables"]["billsec"] == "42"


def test_ctx_doc_is_only_built_when_read():
    ctx = context(ccnq_profile="p")
    assert ctx._decoded._doc is None
    assert ctx.doc["variables"]["ccnq_profile"] == "p"
    assert ctx._decoded._doc is not None


def test_ctx_increment_without_labels():
    store = Store()
    ctx = context(store)
    ctx.increment("plain")
    ctx.increment("plain", 2.5)
    assert store.get(WINDOW, "plain") == Stat.of(1.0, 2.5)


def test_ctx_increment_with_labels_builds_the_series_key():
    store = Store()
    ctx = context(store)
    ctx.increment("server_errors", profile="p1", code="503")
    ctx.increment("server_errors", code="503", profile="p1")  # label order does not matter
    ctx.increment("server_errors", profile="p1", code=502)    # values are text
    assert store.get(WINDOW, 'server_errors{code="503",profile="p1"}') == Stat.of(1.0, 1.0)
    assert store.get(WINDOW, 'server_errors{code="502",profile="p1"}') == Stat.of(1.0)


def test_ctx_increment_escapes_label_values():
    store = Store()
    context(store).increment("x", account='a "b"\\c\nd')
    assert store.get(WINDOW, 'x{account="a \\"b\\"\\\\c\\nd"}') == Stat.of(1.0)


def test_ctx_increment_decreasing_values_tracks_min_and_max():
    store = Store()
    ctx = context(store)
    for v in (5, 3, 9, 1):
        ctx.increment("v", v)
    assert store.get(WINDOW, "v") == Stat.of(5.0, 3.0, 9.0, 1.0)


def test_ctx_increment_into_compacted_window():
    store = Store()
    ctx = context(store)
    ctx.increment("v", 2)
    store.compact()
    context(store).increment("v", 4)
    assert store.get(WINDOW, "v") == Stat.of(2.0, 4.0)


def test_ctx_series_and_add_count_exactly_as_increment():
    by_increment, by_add = Store(), Store()
    key = context(by_add).series("server_errors", profile="p1", code=503)
    assert key == 'server_errors{code="503",profile="p1"}'
    for v in (5, 3, 9, 1):
        context(by_increment).increment("server_errors", v, profile="p1", code="503")
        context(by_add).add(key, v)
    assert by_add.to_json() == by_increment.to_json()


@pytest.mark.parametrize("key", ['x{a="1"', "1x", 'x{a=1}', 42, None])
def test_ctx_add_refuses_a_key_that_does_not_parse_back(key):
    store = Store()
    with pytest.raises((SeriesKeyError, TypeError)):
        context(store).add(key)
    assert store.to_json() == {}


def test_a_plugin_adding_to_a_bad_key_is_counted_and_the_others_count(tmp_path):
    write(tmp_path, "bad_key.py", """
        def plugin(ctx):
            ctx.add("not a key")
    """)
    e = Engine(Config(retention_hours=None, plugin_dirs=[str(tmp_path)]))
    e.feed(raw(_id="a", ccnq_profile="p"))
    [bad] = [p for p in e.plugins.plugins if p.name == "bad_key"]
    assert bad.errors == 1 and "not a series key" in bad.last_error
    window = e.store.to_json()[str(WINDOW)]
    assert sum(stat["count"] for k, stat in window.items() if k.startswith("calls{")) == 1


def test_ctx_stat_returns_this_windows_stat_or_none():
    store = Store()
    store.add(WINDOW - 360, "calls", 1)  # another window: not seen through ctx.stat
    ctx = context(store)
    assert ctx.stat("calls") is None
    assert ctx.stat("calls", profile="p") is None
    ctx.increment("calls")
    ctx.increment("calls", profile="p")
    ctx.increment("calls", profile="p")
    assert ctx.stat("calls") == Stat.of(1.0)
    assert ctx.stat("calls", profile="p") == Stat.of(1.0, 1.0)
    assert ctx.stat("calls", profile="q") is None


def test_ctx_stat_sees_earlier_plugins_of_the_same_cdr(tmp_path):
    write(tmp_path, "a_count.py", 'def plugin(ctx):\n    ctx.increment("n", profile=ctx.profile)\n')
    write(tmp_path, "b_ratio.py", """\
        def plugin(ctx):
            stat = ctx.stat("n", profile=ctx.profile)
            ctx.increment("seen_count", stat.count)
        """)
    plugins = load_plugins([tmp_path], builtin=False)
    store = Store()
    plugins.run(context(store, ccnq_profile="p"))
    plugins.run(context(store, ccnq_profile="p"))
    assert store.get(WINDOW, "seen_count") == Stat.of(1.0, 2.0)


def test_ctx_alert_passes_plugin_name_msg_key_and_fields(tmp_path):
    write(tmp_path, "alerter.py", """\
        def plugin(ctx):
            ctx.alert(f"{ctx.profile}: SIP {ctx.call.sip_code}", key=(ctx.profile, ctx.call.sip_code),
                      code=ctx.call.sip_code)
        """)
    plugins = load_plugins([tmp_path], builtin=False)
    engine = Engine(Config(), clock=lambda: END, plugins=plugins)
    assert engine.feed(raw(_id="x", ccnq_profile="p", sip_term_status="503")) is None
    assert plugins.plugins[0].errors == 0, plugins.plugins[0].last_error
    [alert] = engine.alerts.list()
    assert (alert.plugin, alert.msg, alert.key, alert.fields) == (
        "alerter", "p: SIP 503", ["p", "503"], {"code": "503"})
    assert alert.timestamp == WINDOW and alert.doc["_id"] == "x"


# --- batch plugins --------------------------------------------------------------------------

def batch_of(*docs: bytes) -> Batch:
    decoded = [decode(d) for d in docs]
    return Batch(decoded, [d.call.end_epoch - d.call.end_epoch % 360 for d in decoded])


def test_a_user_batch_plugin_declares_series_with_options_and_alerts_from_its_hook(tmp_path):
    write(tmp_path, "long_calls.py", """\
        import numpy as np
        from sixminutes.series import Series

        def series(options):
            return [Series("long_calls", when=lambda b: b.billsec >= options["seconds"])]

        def batch(batch, ctx):
            for row in np.flatnonzero(batch.billsec > 3600).tolist():
                ctx.alert(row, "a call over an hour", key=batch.decoded[row].call.id)
        """)
    plugins = load_plugins([tmp_path], builtin=False, options={"long_calls": {"seconds": 60}})
    store, alerts = Store(), []
    b = batch_of(raw(_id="a", billsec="30"), raw(_id="b", billsec="90"), raw(_id="c", billsec="4000"))
    plugins.run_batch(b, store, lambda *args: alerts.append(args), [0, 1, 2])
    assert store.get(WINDOW, 'long_calls{direction="unknown",profile="unknown"}') == Stat.of(1.0, 1.0)
    assert [(a[0].call.id, a[1], a[2], a[3], a[4]) for a in alerts] == [
        ("c", WINDOW, "long_calls", "a call over an hour", "c")]
    assert plugins.plugins[0].status()["calls"] == 3 and plugins.plugins[0].errors == 0


def test_a_raising_batch_plugin_is_counted_once_per_batch_and_the_others_still_count(tmp_path):
    write(tmp_path, "a_bad.py", """\
        from sixminutes.series import Series
        SERIES = [Series("bad", when=lambda b: b.nope)]
        """)
    write(tmp_path, "b_hook.py", "def batch(batch, ctx):\n    raise KeyError('boom')\n")
    write(tmp_path, "c_good.py", "from sixminutes.series import Series\nSERIES = [Series('good', labels=())]\n")
    write(tmp_path, "d_cdr.py", 'def plugin(ctx):\n    ctx.increment("per_cdr")\n')
    plugins = load_plugins([tmp_path], builtin=False)
    store = Store()
    plugins.run_batch(batch_of(raw(), raw()), store, lambda *a: None, [7, 8])
    bad, hook, good, cdr = plugins.plugins
    assert (bad.errors, hook.errors, good.errors, cdr.errors) == (1, 1, 0, 0)
    assert "no column 'nope'" in bad.last_error and bad.last_error_at == 7
    assert hook.last_error == "KeyError: 'boom' (line 2)"
    assert store.get(WINDOW, "good") == Stat.of(1.0, 1.0)
    assert store.get(WINDOW, "per_cdr") == Stat.of(1.0, 1.0)


def test_series_that_are_not_series_are_a_load_error(tmp_path):
    path = write(tmp_path, "wrong.py", "SERIES = ['calls']\n")
    plugins = load_plugins([tmp_path], builtin=False)
    assert plugins.names() == []
    assert plugins.errors == [LoadError(str(path), None,
                                        "TypeError: SERIES holds str, not sixminutes.series.Series")]


def test_the_builtins_are_batch_plugins_on_the_public_api():
    plugins = load_plugins()
    assert all(p.fn is None and (p.series or p.batch) for p in plugins.plugins)
    assert {s.name for p in plugins.plugins for s in p.series} == {
        "calls", "answered", "zero_duration", "billsec", "short_calls", "pdd_ms",
        "network_failures", "mos", "sip_status", "hangup_cause",
        "account_calls", "account_zero_duration", "account_billsec",
        "destination_calls", "destination_answered", "destination_billsec", "peak_concurrent",
        "account_short_calls"}
