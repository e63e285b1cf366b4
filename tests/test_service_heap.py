"""Service.freeze_heap (set by `sixminutes serve`): the heap as started is frozen out of the
cyclic garbage collector, and a plugin reload still lets the old plugins go. In a process
of its own: gc.freeze() is process-wide and must not freeze the test session's heap."""
from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import asyncio, gc, inspect, sys, weakref
    from sixminutes.config import Config
    from sixminutes.service import Service

    async def main(freeze):
        svc = Service(Config(token="t", state=":memory:"))
        svc.freeze_heap = freeze
        await svc.start()
        try:
            frozen = gc.get_freeze_count()
            # a plugin's function and its module's globals are a cycle: only the collector frees it
            old = weakref.ref(next(f for p in svc.engine.plugins.plugins if p.module
                                   for f in vars(p.module).values()
                                   if inspect.isfunction(f) and f.__globals__ is vars(p.module)))
            plugins = svc.reload_plugins()
            assert plugins is svc.engine.plugins and not plugins.errors, plugins.errors
            gc.collect()
            print(frozen, old() is None, gc.get_freeze_count() > 0)
        finally:
            await svc.stop()

    asyncio.run(main(sys.argv[1] == "freeze"))
""")


def run(mode: str) -> list[str]:
    out = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def test_the_started_heap_is_frozen_and_a_reload_still_frees_the_old_plugins():
    frozen, old_plugins_freed, still_frozen = run("freeze")
    assert int(frozen) > 10_000  # modules, functions, plugins: what a full collection walked
    assert old_plugins_freed == "True"
    assert still_frozen == "True"


def test_without_it_nothing_is_frozen():
    frozen, old_plugins_freed, still_frozen = run("plain")
    assert (frozen, old_plugins_freed, still_frozen) == ("0", "True", "False")
