"""Configuration: embedded defaults, then a TOML file, then ``SIXMINUTES_*`` variables, then flags.

The TOML file (all keys optional)::

    retention_hours = 24            # windows kept; replay keeps everything

    [plugins]
    dirs = ["/etc/sixminutes/plugins"]   # loaded after the built-ins, in order
    disabled = ["accounts"]              # plugin names (file stems) not to load

    [plugins.kpis]                       # options handed to a plugin's setup()
    short_call_seconds = 6

    [plugins.unexpected_sip]
    expected = ["200", "401", "407", "480", "486", "487", "603", "none"]

    [rules.zero_duration_ratio]          # change a default rule ...
    bound = 0.6
    [rules.my_rule]                      # ... or add one
    series = "short_calls"
    per = "calls"
    op = ">"
    bound = 0.3
    min_count = 50
"""
from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from typing import Any, Mapping

__all__ = ["Config", "ConfigError"]


class ConfigError(ValueError):
    """A configuration that cannot be used; the message says which key and why."""


@dataclass
class Config:
    retention_hours: float | None = 24.0
    plugin_dirs: list[str] = field(default_factory=list)
    disabled: list[str] = field(default_factory=list)
    plugin_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    rules: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | None = None, env: Mapping[str, str] | None = None) -> Config:
        """Defaults, updated by the TOML file at ``path`` (or $SIXMINUTES_CONFIG), then the environment."""
        env = os.environ if env is None else env
        config = cls()
        path = path or env.get("SIXMINUTES_CONFIG")
        if path:
            config.apply_toml(path)
        if "SIXMINUTES_RETENTION_HOURS" in env:
            config.retention_hours = _hours(env["SIXMINUTES_RETENTION_HOURS"], "SIXMINUTES_RETENTION_HOURS")
        if env.get("SIXMINUTES_PLUGINS"):
            config.plugin_dirs += env["SIXMINUTES_PLUGINS"].split(os.pathsep)
        return config

    def apply_toml(self, path: str) -> None:
        try:
            with open(path, "rb") as file:
                data = tomllib.load(file)
        except OSError as error:
            raise ConfigError(f"cannot read config {path}: {error.strerror}") from None
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"config {path}: {error}") from None
        unknown = set(data) - {"retention_hours", "plugins", "rules"}
        if unknown:
            raise ConfigError(f"config {path}: unknown keys {sorted(unknown)}")
        if "retention_hours" in data:
            self.retention_hours = _hours(data["retention_hours"], "retention_hours")
        plugins = dict(data.get("plugins", {}))
        self.plugin_dirs += [str(d) for d in plugins.pop("dirs", [])]
        self.disabled += [str(d) for d in plugins.pop("disabled", [])]
        for name, options in plugins.items():
            if not isinstance(options, dict):
                raise ConfigError(f"config {path}: [plugins.{name}] must be a table")
            self.plugin_options[name] = options
        for name, table in data.get("rules", {}).items():
            if not isinstance(table, dict):
                raise ConfigError(f"config {path}: [rules.{name}] must be a table")
            self.rules[name] = table


def _hours(value: Any, where: str) -> float:
    try:
        hours = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: not a number: {value!r}") from None
    if hours <= 0:
        raise ConfigError(f"{where}: must be positive, got {hours}")
    return hours
