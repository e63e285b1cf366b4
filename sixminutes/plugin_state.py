"""What a plugin remembers across restarts and reloads: its optional state hooks.

A plugin file may define both of

    def export_state():          # -> a JSON value (dicts, lists, str, numbers), or None
    def import_state(data):      # data: what export_state returned, read back

The service calls ``export_state()`` on the event loop at every snapshot (keep it quick:
it runs between batches) and saves the result, as JSON, in the state file's
``plugin_state`` table when it differs from what was saved last; at start it hands the
saved value to ``import_state`` before any CDR is counted. A reload (POST
/6minutes/restart) hands the old set's state to the new one the same way. A hook that
raises, or a value that is not JSON, is counted as an error of the plugin (its health)
and the rest goes on: the plugin then starts without memory, or keeps what was saved
before. ``None`` from ``export_state`` saves nothing. A replay (no state file) never
calls them.

A third hook, optional and independent of the two:

    def forget_data(before):     # before: an epoch, or None for everything

is called when DELETE /6minutes/data erases the windows before ``before`` (all when None):
a plugin forgets what it learned from those CDRs, so that it judges nothing later against
data the operator erased (the fraud plugin forgets the countries first called then). What it
exports after is saved at the next snapshot, as any change.
"""
from __future__ import annotations

import logging
from types import ModuleType
from typing import TYPE_CHECKING

import orjson

if TYPE_CHECKING:
    from .plugins import PluginSet

__all__ = ["check_state_hooks", "export_state", "import_state", "forget_data"]

log = logging.getLogger("sixminutes")


def check_state_hooks(module: ModuleType) -> None:
    """At load: the two hooks come together, and are functions (a load error otherwise)."""
    found = {name: getattr(module, name, None) for name in ("export_state", "import_state")}
    defined = [name for name, hook in found.items() if hook is not None]
    if len(defined) == 1:
        missing = ({"export_state", "import_state"} - set(defined)).pop()
        raise TypeError(f"`{defined[0]}` without `{missing}`: a plugin's state needs both")
    for name in defined:
        if not callable(found[name]):
            raise TypeError(f"`{name}` is not callable")
    forget = getattr(module, "forget_data", None)
    if forget is not None and not callable(forget):
        raise TypeError("`forget_data` is not callable")


def export_state(plugins: PluginSet) -> dict[str, bytes]:
    """Plugin name → its state as JSON bytes, for the plugins that define the hooks."""
    from .plugins import _failed  # (plugins.py imports nothing from here at run time)

    saved: dict[str, bytes] = {}
    for plugin in plugins.plugins:
        hook = getattr(plugin.module, "export_state", None)
        if hook is None:
            continue
        try:
            data = hook()
            if data is not None:
                saved[plugin.name] = orjson.dumps(data)
        except Exception as error:  # a plugin must never stop the snapshot of the others
            _failed(plugin, error)
            log.warning("plugin %s: export_state failed: %s", plugin.name, plugin.last_error)
    return saved


def import_state(plugins: PluginSet, saved: dict[str, bytes]) -> None:
    """Hand each plugin that defines the hooks what was saved under its name."""
    from .plugins import _failed

    for plugin in plugins.plugins:
        hook = getattr(plugin.module, "import_state", None)
        if hook is None or plugin.name not in saved:
            continue
        try:
            hook(orjson.loads(saved[plugin.name]))
        except Exception as error:
            _failed(plugin, error)
            log.warning("plugin %s: import_state failed, it starts without its memory: %s",
                        plugin.name, plugin.last_error)


def forget_data(plugins: PluginSet, before: int | None) -> None:
    """DELETE /6minutes/data: each plugin that defines ``forget_data`` forgets the windows
    before ``before`` (all when None); one that raises is its own error, the others go on."""
    from .plugins import _failed

    for plugin in plugins.plugins:
        hook = getattr(plugin.module, "forget_data", None)
        if hook is None:
            continue
        try:
            hook(before)
        except Exception as error:
            _failed(plugin, error)
            log.warning("plugin %s: forget_data failed: %s", plugin.name, plugin.last_error)
