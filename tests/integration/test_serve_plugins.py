"""Plugins that misbehave in a real `sixminutes serve`: one raises on every call, one calls
sys.exit(), one increments by a number no float holds, one is very slow, one has a syntax
error, one raises at import. The built-ins keep counting exactly (reference_data), the service
keeps answering, and /6minutes/status says which plugin fails or is slow, and why."""
from __future__ import annotations

import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import orjson

from helpers import builtins as builtin_names
from service_process import Realistic, config_toml, data_differences, reference_data

TOKEN = "plugins-token"
PLUGINS = {
    "raiser.py": """\
        def plugin(ctx):
            raise ValueError(f"broken for {ctx.profile}")
        """,
    "exiter.py": """\
        import sys
        def plugin(ctx):
            sys.exit("plugin wants out")
        """,
    "overflow.py": """\
        def plugin(ctx):
            ctx.increment("overflow", 10 ** 400)
        """,
    "slow.py": """\
        import time
        first = True
        def plugin(ctx):
            global first
            time.sleep(0.05 if first else 0.002)  # 50 ms once, then 2 ms a call
            first = False
            ctx.increment("slow_calls")
        """,
    "syntax_error.py": """\
        def plugin(ctx):
            x = (
        """,
    "import_error.py": """\
        '''Needs a module nobody installed.'''

        import sixminutes_no_such_module
        def plugin(ctx):
            pass
        """,
}


def _plugin_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "plugins"
    directory.mkdir()
    for name, source in PLUGINS.items():
        (directory / name).write_text(textwrap.dedent(source))
    return directory


def _post_all(service, docs: list[dict]) -> None:
    def post(doc: dict) -> int:
        return service.post_cdr(orjson.dumps(doc)).status_code

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(post, docs))
    assert codes == [200] * len(docs)


def test_misbehaving_plugins_are_reported_and_the_builtins_keep_counting(serve, tmp_path):
    directory = _plugin_dir(tmp_path)
    service = serve(token=TOKEN, args=["--plugins", str(directory)], config=config_toml())
    docs = Realistic(seed=4242).docs(300)
    _post_all(service, docs)

    status = service.status()
    plugins = {p["name"]: p for p in status["plugins"]}
    assert set(plugins) == {*builtin_names(), "raiser", "exiter", "overflow", "slow"}
    n = len(docs)
    assert plugins["raiser"]["errors"] == n
    assert plugins["raiser"]["last_error"].startswith("ValueError: broken for ")
    assert plugins["raiser"]["last_error"].endswith("(line 2)")
    assert plugins["exiter"]["errors"] == n
    assert plugins["exiter"]["last_error"] == "SystemExit: plugin wants out (line 3)"
    assert plugins["overflow"]["errors"] == n
    assert plugins["overflow"]["last_error"].startswith("OverflowError")
    for name in (*builtin_names(), "slow"):
        assert plugins[name]["errors"] == 0 and plugins[name]["last_error"] is None, name

    # Which plugin is slow, and how slow: from one timed call in 64, extrapolated.
    slow = plugins["slow"]
    assert slow["calls"] == n and slow["timed_calls"] == 5  # calls 1, 65, 129, 193, 257
    assert slow["max_us"] >= 50_000 and slow["mean_us"] >= 2_000
    assert slow["seconds"] >= 0.002 * n
    for name in builtin_names():
        assert plugins[name]["calls"] == n
        assert plugins[name]["mean_us"] < slow["mean_us"] / 10, (name, plugins[name])

    errors = status["plugin_load_errors"]
    assert len(errors) == 2, errors
    syntax = next(e for e in errors if "syntax_error.py" in e)
    assert syntax.startswith(f"{directory / 'syntax_error.py'}:2: SyntaxError"), syntax
    missing = next(e for e in errors if "import_error.py" in e)
    assert missing.startswith(f"{directory / 'import_error.py'}:3: ModuleNotFoundError"), missing
    assert "sixminutes_no_such_module" in missing

    # The built-ins counted every CDR exactly; the slow plugin too; nothing was rejected.
    data = service.data()
    slow_calls = sum(s["count"] for series in data.values() for k, s in series.items()
                     if k == "slow_calls")
    assert slow_calls == n
    builtins = {t: {k: s for k, s in series.items() if k != "slow_calls"}
                for t, series in data.items()}
    differences = data_differences(builtins, reference_data(docs))
    assert not differences, differences
    assert status["by_source"] == {"http": {"accepted": n}}

    # /metrics says the same; a restart reloads, reports the broken files, and counting goes on.
    metrics = service.get("/metrics").text
    assert f'sixminutes_plugin_errors_total{{plugin="raiser"}} {float(n)}' in metrics
    restart = service.http.post("/6minutes/restart", headers=service.auth_headers())
    assert restart.status_code == 200, restart.text
    answer = restart.json()
    assert answer["ok"] is False and "slow" in answer["plugins"]
    assert sorted((Path(e["file"]).name, e["line"]) for e in answer["errors"]) == [
        ("import_error.py", 3), ("syntax_error.py", 2)]
    more = Realistic(seed=4243).docs(40)
    _post_all(service, more)
    differences = data_differences(
        {t: {k: s for k, s in series.items() if k != "slow_calls"}
         for t, series in service.data().items()},
        reference_data(docs + more))
    assert not differences, differences
    plugins = {p["name"]: p for p in service.status()["plugins"]}
    assert plugins["raiser"]["errors"] == len(more) and plugins["slow"]["calls"] == len(more)
    assert service.running and service.starts == 1
    assert "Traceback" not in service.stderr_text()


def test_plugin_failures_are_logged_once_per_change_of_state_and_shown_in_status(serve, tmp_path):
    """A plugin that raises on each of 60 CDRs is one log line, not 60; a file that does not load
    is one line however long the service runs, and one more when a reload finds it fixed."""
    directory = tmp_path / "plugins"
    directory.mkdir()
    (directory / "raiser.py").write_text(textwrap.dedent(PLUGINS["raiser.py"]))
    (directory / "syntax_error.py").write_text(textwrap.dedent(PLUGINS["syntax_error.py"]))
    service = serve(args=["--plugins", str(directory)], config=config_toml())
    _post_all(service, Realistic(seed=4244).docs(30))

    def failing() -> list[str]:
        return [p["name"] for p in service.status()["plugin_health"]["failing"]]

    service.wait(lambda: failing() == ["raiser"], what="raiser to show as failing")
    _post_all(service, Realistic(seed=4245).docs(30))
    service.wait(lambda: {p["name"]: p["errors"] for p in service.status()["plugins"]}["raiser"] >= 60,
                 what="60 errors")
    health = service.status()["plugin_health"]
    assert health["failing"][0]["errors"] >= 30
    assert health["failing"][0]["last_error"].startswith("ValueError: broken for ")
    assert len(health["load_errors"]) == 1 and "syntax_error.py:2: SyntaxError" in health["load_errors"][0]
    err = service.stderr_text()
    assert err.count("plugin raiser raises: ValueError: broken for ") == 1, err
    assert err.count("plugin not loaded: ") == 1 and "syntax_error.py:2: SyntaxError" in err
    # Fixed, then reloaded: said once, and gone from the status.
    (directory / "syntax_error.py").write_text("def plugin(ctx):\n    pass\n")
    assert service.http.post("/6minutes/restart", headers=service.auth_headers()).status_code == 200
    service.wait(lambda: service.status()["plugin_health"]["load_errors"] == [],
                 what="the load error to be gone")
    err = service.stderr_text()
    assert err.count("plugin load error gone (after a reload): ") == 1, err
    assert err.count("plugin not loaded: ") == 1
