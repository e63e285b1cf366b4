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
    confidence = 0.95                    # fires when the interval at 95 % is beyond the bound
    strong_confidence = 0.999            # ... in one window at 99.9 %, else ...
    for_windows = 2                      # ... in this many consecutive windows (docs/alerts.md)
    [rules.my_rule]                      # ... or add one
    series = "short_calls"
    per = "calls"
    op = ">"
    bound = 0.3
    min_count = 50                       # never fires on fewer samples in a window
    [rules.traffic_drop]                 # a traffic rule (traffic_drop, traffic_spike,
    ratio = 0.3                          # account_volume_spike): calls against the baseline
    min_count = 50                       # (sixminutes/traffic_rules.py, docs/alerts.md)

    [alerts]                             # when a firing alert resolves
    clear_windows = 2                    # a rule's: this many clean windows in a row (hysteresis)
    quiet_windows = 2                    # complete windows without it (too few samples for a rule)
    grace_seconds = 30                   # a window is complete this long after its end

    [serve]                              # the live service; flags of `sixminutes serve` win
    host = "127.0.0.1"
    port = 8360
    state = "sixminutes.sqlite"
    couchdb = ["http://user:password@couch:5984/cdrs"]
    since = "now"                        # where to start when no position is saved: now, 0, a seq
    couchdb_heartbeat_ms = 10000         # _changes heartbeat; two missed ones mean a dead connection
    couchdb_backoff_max = 30             # seconds between reconnection attempts, at most
    token = "…"                          # default: generated at first start, kept in <state>.token (0600)
    auth_reads = false                   # reads (data, alerts, status, events, metrics) need the token too
    allowed_hosts = ["six.example.net"]  # Host names answered besides localhost, the bound address
                                         # and public_url's host ("*": any); others get 421
    allowed_origins = ["https://noc.example.net"]  # web pages that may POST/DELETE here; others get 403
    demo = false
    demo_rate = 4.0                      # synthetic CDRs per second with demo
    max_body_bytes = 1048576
    snapshot_seconds = 5
    account_metrics = false              # per-account Prometheus gauges (they can be many)
    alertmanager = ["http://alertmanager:9093"]   # push alerts to Alertmanager's API v2
    alertmanager_resend_seconds = 60     # firing alerts are sent again this often
    webhook = ["https://hooks.example.net/sixminutes"]  # POST each alert that fires or resolves
    webhook_secret = "…"                 # signs webhooks: X-Sixminutes-Timestamp, X-Sixminutes-Signature
    public_url = "http://sixminutes.example.net:8360"  # links in notifications and in the start-up
                                         # log; its host is answered and its origin trusted
    notify_queue = 1000                  # alerts waiting per target; beyond, the oldest are dropped
    nats = ["nats://n1:4222", "nats://n2:4222"]  # join a group on a JetStream cluster (docs/scale-out.md)
    group = "sixminutes"                 # the group's name: its stream and buckets

Every [serve] key can also come from the environment as SIXMINUTES_<KEY> (SIXMINUTES_PORT,
SIXMINUTES_COUCHDB and SIXMINUTES_NATS with URLs separated by spaces, SIXMINUTES_DEMO=1, SIXMINUTES_ALLOWED_HOSTS
and SIXMINUTES_ALLOWED_ORIGINS separated by spaces, SIXMINUTES_AUTH_READS=1, ...).

Every value is checked where it is set, by type and range (URLs by scheme and host), and a
bad one is a ConfigError naming where it came from (the flag, the variable or the file's key),
before anything starts.
"""
from __future__ import annotations

import math
import os
import tomllib
from dataclasses import dataclass, field
from typing import Any, Mapping
from urllib.parse import urlsplit

__all__ = ["Config", "ConfigError", "check_hours"]


class ConfigError(ValueError):
    """A configuration that cannot be used; the message says which key and why."""


@dataclass
class Config:
    retention_hours: float | None = 24.0
    plugin_dirs: list[str] = field(default_factory=list)
    disabled: list[str] = field(default_factory=list)
    plugin_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    rules: dict[str, dict[str, Any]] = field(default_factory=dict)
    alert_quiet_windows: int = 2
    alert_grace_seconds: float = 30.0
    alert_clear_windows: int = 2
    # The live service (`sixminutes serve`):
    host: str = "127.0.0.1"
    port: int = 8360
    state: str = "sixminutes.sqlite"
    couchdb: list[str] = field(default_factory=list)
    since: str = "now"
    token: str | None = None
    auth_reads: bool = False
    allowed_hosts: list[str] = field(default_factory=list)
    allowed_origins: list[str] = field(default_factory=list)
    demo: bool = False
    demo_rate: float = 4.0
    max_body_bytes: int = 1 << 20
    snapshot_seconds: float = 5.0
    account_metrics: bool = False
    couchdb_heartbeat_ms: int = 10_000
    couchdb_backoff_max: float = 30.0
    alertmanager: list[str] = field(default_factory=list)
    webhook: list[str] = field(default_factory=list)
    webhook_secret: str | None = None
    public_url: str | None = None
    notify_queue: int = 1000
    alertmanager_resend_seconds: float = 60.0
    nats: list[str] = field(default_factory=list)
    group: str = "sixminutes"

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
        for name in SERVE_SETTINGS:
            variable = f"SIXMINUTES_{name.upper()}"
            if variable in env:
                config.set(name, env[variable], variable)
        return config

    def set(self, name: str, value: Any, where: str) -> None:
        """Set a [serve] setting from TOML, the environment (text) or a flag, checking its type."""
        kind = SERVE_SETTINGS[name]
        try:
            if kind is bool and isinstance(value, str):
                if value.lower() not in _BOOLEANS:
                    raise ValueError(value)
                value = _BOOLEANS[value.lower()]
            elif kind is list:
                value = value.split() if isinstance(value, str) else [str(v) for v in value]
            elif kind is bool and not isinstance(value, bool):
                raise ValueError(value)
            elif kind in (int, float) and isinstance(value, bool):
                raise ValueError(value)  # (TOML true is no number, though int(True) is 1)
            elif kind is int and isinstance(value, float):
                raise ValueError(value)  # (a port of 80.5: no rounding)
            else:
                value = kind(value)
        except (TypeError, ValueError, OverflowError):
            raise ConfigError(f"{where}: not a valid {kind.__name__}: {_shown(name, value)}") from None
        problem = _problem(name, value)
        if problem:
            raise ConfigError(f"{where}: {problem}, got {_shown(name, value)}")
        setattr(self, name, value)

    def apply_toml(self, path: str) -> None:
        try:
            with open(path, "rb") as file:
                data = tomllib.load(file)
        except OSError as error:
            raise ConfigError(f"cannot read config {path}: {error.strerror}") from None
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"config {path}: {error}") from None
        unknown = set(data) - {"retention_hours", "plugins", "rules", "alerts", "serve"}
        if unknown:
            raise ConfigError(f"config {path}: unknown keys {sorted(unknown)}")
        if "retention_hours" in data:
            self.retention_hours = _hours(data["retention_hours"], "retention_hours")
        plugins = dict(data.get("plugins", {}))
        self.plugin_dirs += _strings(plugins.pop("dirs", []), f"config {path}: plugins.dirs")
        self.disabled += _strings(plugins.pop("disabled", []), f"config {path}: plugins.disabled")
        for name, options in plugins.items():
            if not isinstance(options, dict):
                raise ConfigError(f"config {path}: [plugins.{name}] must be a table")
            self.plugin_options[name] = options
        for name, table in data.get("rules", {}).items():
            if not isinstance(table, dict):
                raise ConfigError(f"config {path}: [rules.{name}] must be a table")
            self.rules[name] = table
        self._apply_alerts(data.get("alerts", {}), f"config {path}: [alerts]")
        serve = data.get("serve", {})
        unknown = set(serve) - set(SERVE_SETTINGS)
        if unknown:
            raise ConfigError(f"config {path}: unknown keys in [serve] {sorted(unknown)}")
        for name, value in serve.items():
            self.set(name, value, f"config {path}: serve.{name}")


    def _apply_alerts(self, table: Any, where: str) -> None:
        if not isinstance(table, dict):
            raise ConfigError(f"{where} must be a table")
        unknown = set(table) - {"quiet_windows", "grace_seconds", "clear_windows"}
        if unknown:
            raise ConfigError(f"{where}: unknown keys {sorted(unknown)}")
        quiet = table.get("quiet_windows", self.alert_quiet_windows)
        if not isinstance(quiet, int) or isinstance(quiet, bool) or quiet < 1:
            raise ConfigError(f"{where}: quiet_windows must be a whole number ≥ 1, got {quiet!r}")
        grace = table.get("grace_seconds", self.alert_grace_seconds)
        if not isinstance(grace, (int, float)) or isinstance(grace, bool) or not 0 <= grace < 3600:
            raise ConfigError(f"{where}: grace_seconds must be seconds in [0, 3600), got {grace!r}")
        clear = table.get("clear_windows", self.alert_clear_windows)
        if not isinstance(clear, int) or isinstance(clear, bool) or clear < 1:
            raise ConfigError(f"{where}: clear_windows must be a whole number ≥ 1, got {clear!r}")
        self.alert_quiet_windows, self.alert_grace_seconds = quiet, float(grace)
        self.alert_clear_windows = clear


SERVE_SETTINGS: dict[str, type] = {
    "host": str, "port": int, "state": str, "couchdb": list, "since": str, "token": str,
    "demo": bool, "demo_rate": float, "max_body_bytes": int, "snapshot_seconds": float,
    "account_metrics": bool, "alertmanager": list, "webhook": list, "webhook_secret": str,
    "public_url": str, "notify_queue": int, "alertmanager_resend_seconds": float,
    "couchdb_heartbeat_ms": int, "couchdb_backoff_max": float,
    "auth_reads": bool, "allowed_hosts": list, "allowed_origins": list,
    "nats": list, "group": str,
}
_BOOLEANS = {"1": True, "true": True, "yes": True, "on": True,
             "0": False, "false": False, "no": False, "off": False}


_RANGES: dict[str, tuple[float, float, str]] = {
    # name: (lowest, highest, what it is); the lowest is excluded for floats, kept for ints
    "port": (1, 65535, "a TCP port from 1 to 65535"),
    "demo_rate": (0, 100_000, "CDRs per second, more than 0 and at most 100000"),
    "max_body_bytes": (1024, 1 << 30, "bytes from 1024 to 1 GiB"),
    "snapshot_seconds": (0, 86_400, "seconds, more than 0 and at most a day"),
    "couchdb_heartbeat_ms": (100, 3_600_000, "milliseconds from 100 to an hour"),
    "couchdb_backoff_max": (0, 86_400, "seconds, more than 0 and at most a day"),
    "notify_queue": (1, 10_000_000, "alerts from 1 to 10000000"),
    "alertmanager_resend_seconds": (0, 86_400, "seconds, more than 0 and at most a day"),
}
_URLS = {"alertmanager": "an Alertmanager URL (http[s]://host:port)",
         "webhook": "a webhook URL (http[s]://host/path)",
         "public_url": "this service's URL (http[s]://host:port)",
         "couchdb": "a CouchDB database URL (http[s]://[user:password@]host:port/database)",
         "nats": "a NATS server URL (nats://[user:password@]host:port)"}
_SECRET = {"token", "webhook_secret"}


def _problem(name: str, value: Any) -> str | None:
    """What is wrong with a [serve] value of the right type, or None."""
    if name in _RANGES:
        low, high, what = _RANGES[name]
        too_low = value < low if isinstance(value, int) else not value > low
        if not math.isfinite(value) or too_low or value > high:
            return f"must be {what}"
    elif name in _URLS:
        for url in value if isinstance(value, list) else [value]:
            if not _is_url(url, database=name == "couchdb",
                           schemes=("nats", "tls") if name == "nats" else ("http", "https")):
                return f"must be {_URLS[name]}"
    elif name == "host":
        if not value.strip() or "/" in value or " " in value:
            return "must be an address to listen on, such as 127.0.0.1, ::1 or 0.0.0.0"
    elif name == "state":
        if not value.strip() or value.endswith(os.sep) or os.path.isdir(value):
            return "must be the path of a file"
    elif name == "since":
        if not value.strip() or any(c.isspace() for c in value):
            return "must be now, 0 or a CouchDB sequence"
    elif name == "group":
        if not value or len(value) > 64 or not all(c.isalnum() or c in "-_" for c in value):
            return "must be 1 to 64 letters, digits, _ or -"
    elif name in _SECRET and not value:
        return "must not be empty"
    return None


def _is_url(url: str, database: bool = False, schemes: tuple[str, ...] = ("http", "https")) -> bool:
    try:
        parts = urlsplit(url)
        parts.port  # (raises on a port that is no number)
    except ValueError:
        return False
    if parts.scheme not in schemes or not parts.hostname:
        return False
    return not database or bool(parts.path.strip("/"))


def _shown(name: str, value: Any) -> str:
    """A value for a message: secrets hidden, credentials in URLs masked."""
    if name in _SECRET:
        return "(hidden)"
    if isinstance(value, list):
        return repr([_shown(name, v) for v in value]).replace("'", "")
    if isinstance(value, str) and "@" in value and "//" in value:
        head, _, rest = value.partition("//")
        return repr(head + "//<credentials>@" + rest.rpartition("@")[2])
    return repr(value)


def check_hours(value: Any, where: str) -> float:
    """A retention in hours, from a flag: a positive finite number."""
    return _hours(value, where)


def _strings(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: must be a list of strings, got {value!r}")
    return value


def _hours(value: Any, where: str) -> float:
    try:
        hours = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: not a number: {value!r}") from None
    if not math.isfinite(hours) or hours <= 0:
        raise ConfigError(f"{where}: must be a positive number of hours, got {hours}")
    return hours
