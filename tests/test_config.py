"""Configuration: defaults, a TOML file, then SIXMINUTES_* variables."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from sixminutes.config import Config, ConfigError
from sixminutes.engine import Engine

FULL = """\
retention_hours = 12.5

[plugins]
dirs = ["/etc/sixminutes/plugins", "/srv/plugins"]
disabled = ["accounts"]

[plugins.kpis]
short_call_seconds = 10

[plugins.unexpected_sip]
expected = ["200", "486", "none"]

[rules.zero_duration_ratio]
bound = 0.6

[rules.my_rule]
series = "short_calls"
per = "calls"
op = ">"
bound = 0.3
min_count = 50
"""


def toml(tmp_path: Path, text: str, name: str = "sixminutes.toml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_defaults():
    config = Config.load(env={})
    assert config == Config()
    assert config.retention_hours == 24.0
    assert (config.plugin_dirs, config.disabled, config.plugin_options, config.rules) == ([], [], {}, {})


def test_every_key_is_loaded(tmp_path):
    config = Config.load(toml(tmp_path, FULL), env={})
    assert config.retention_hours == 12.5
    assert config.plugin_dirs == ["/etc/sixminutes/plugins", "/srv/plugins"]
    assert config.disabled == ["accounts"]
    assert config.plugin_options == {"kpis": {"short_call_seconds": 10},
                                     "unexpected_sip": {"expected": ["200", "486", "none"]}}
    assert config.rules == {
        "zero_duration_ratio": {"bound": 0.6},
        "my_rule": {"series": "short_calls", "per": "calls", "op": ">", "bound": 0.3,
                    "min_count": 50},
    }


def test_empty_file_keeps_defaults(tmp_path):
    assert Config.load(toml(tmp_path, ""), env={}) == Config()


def test_integer_retention_is_a_float(tmp_path):
    config = Config.load(toml(tmp_path, "retention_hours = 48\n"), env={})
    assert config.retention_hours == 48.0 and type(config.retention_hours) is float


def test_loaded_config_drives_the_engine(tmp_path):
    config = Config.load(toml(tmp_path, FULL.replace('"/etc/sixminutes/plugins", "/srv/plugins"', "")),
                         env={})
    engine = Engine(config, clock=lambda: 1_700_000_000)
    assert engine.retention.hours == 12.5
    assert "accounts" not in engine.plugins.names()
    rules = {r.name: r for r in engine.thresholds.rules}
    assert rules["zero_duration_ratio"].bound == 0.6
    assert rules["my_rule"].min_count == 50


def test_unknown_top_level_key_is_named(tmp_path):
    with pytest.raises(ConfigError, match="retention_hour"):
        Config.load(toml(tmp_path, "retention_hour = 12\n"), env={})


def test_unknown_key_error_names_the_file(tmp_path):
    path = toml(tmp_path, "[plugin]\ndirs = []\n")
    with pytest.raises(ConfigError) as info:
        Config.load(path, env={})
    assert "plugin" in str(info.value) and path in str(info.value)


@pytest.mark.parametrize("value", ["0", "-1", '"abc"', "[]", "nan", "inf", "-inf"])
def test_bad_retention(tmp_path, value):
    with pytest.raises(ConfigError, match="retention_hours"):
        Config.load(toml(tmp_path, f"retention_hours = {value}\n"), env={})


def test_plugin_options_must_be_tables(tmp_path):
    with pytest.raises(ConfigError, match=r"plugins\.kpis"):
        Config.load(toml(tmp_path, "[plugins]\nkpis = 5\n"), env={})


def test_rules_must_be_tables(tmp_path):
    with pytest.raises(ConfigError, match=r"rules\.asr"):
        Config.load(toml(tmp_path, "[rules]\nasr = 0.2\n"), env={})


@pytest.mark.parametrize("key", ["dirs", "disabled"])
def test_plugin_lists_given_as_a_string_are_not_split_into_characters(tmp_path, key):
    # `dirs = "/srv/plugins"` (a string, not a list) must not become ["/", "s", "r", ...].
    try:
        config = Config.load(toml(tmp_path, f'[plugins]\n{key} = "/srv/plugins"\n'), env={})
    except ConfigError as error:
        assert key in str(error)
        return
    value = config.plugin_dirs if key == "dirs" else config.disabled
    assert value == ["/srv/plugins"]


def test_toml_syntax_error_names_the_file(tmp_path):
    path = toml(tmp_path, "retention_hours = = 1\n")
    with pytest.raises(ConfigError, match=str(tmp_path)):
        Config.load(path, env={})


def test_missing_file_names_the_path(tmp_path):
    path = str(tmp_path / "missing.toml")
    with pytest.raises(ConfigError) as info:
        Config.load(path, env={})
    assert path in str(info.value)


def test_config_error_is_a_value_error():
    assert issubclass(ConfigError, ValueError)


# --- environment ----------------------------------------------------------------------------

def test_env_retention_hours_overrides_the_file(tmp_path):
    config = Config.load(toml(tmp_path, FULL), env={"SIXMINUTES_RETENTION_HOURS": "6"})
    assert config.retention_hours == 6.0


@pytest.mark.parametrize("value", ["", "abc", "0", "-3", "nan"])
def test_env_bad_retention_names_the_variable(value):
    with pytest.raises(ConfigError, match="SIXMINUTES_RETENTION_HOURS"):
        Config.load(env={"SIXMINUTES_RETENTION_HOURS": value})


def test_env_plugins_are_added_after_the_file_dirs(tmp_path):
    env = {"SIXMINUTES_PLUGINS": os.pathsep.join(["/a", "/b"])}
    config = Config.load(toml(tmp_path, FULL), env=env)
    assert config.plugin_dirs == ["/etc/sixminutes/plugins", "/srv/plugins", "/a", "/b"]


def test_env_plugins_empty_adds_nothing():
    assert Config.load(env={"SIXMINUTES_PLUGINS": ""}).plugin_dirs == []


def test_env_config_names_the_file(tmp_path):
    path = toml(tmp_path, "retention_hours = 3\n")
    assert Config.load(env={"SIXMINUTES_CONFIG": path}).retention_hours == 3.0


def test_explicit_path_wins_over_env_config(tmp_path):
    explicit = toml(tmp_path, "retention_hours = 3\n", "a.toml")
    from_env = toml(tmp_path, "retention_hours = 5\n", "b.toml")
    assert Config.load(explicit, env={"SIXMINUTES_CONFIG": from_env}).retention_hours == 3.0


def test_env_config_missing_file_names_the_path(tmp_path):
    path = str(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="nope.toml"):
        Config.load(env={"SIXMINUTES_CONFIG": path})


def test_process_environment_is_the_default(tmp_path, monkeypatch):
    monkeypatch.setenv("SIXMINUTES_CONFIG", toml(tmp_path, "retention_hours = 2\n"))
    monkeypatch.setenv("SIXMINUTES_RETENTION_HOURS", "7")
    monkeypatch.setenv("SIXMINUTES_PLUGINS", "/p")
    config = Config.load()
    assert config.retention_hours == 7.0
    assert config.plugin_dirs == ["/p"]


def test_the_guard_settings_come_from_the_file_and_the_environment(tmp_path):
    path = toml(tmp_path, '[serve]\nauth_reads = true\nallowed_hosts = ["six.example.net"]\n'
                          'allowed_origins = ["https://noc.example.net"]\n')
    config = Config.load(path, env={})
    assert config.auth_reads is True
    assert config.allowed_hosts == ["six.example.net"]
    assert config.allowed_origins == ["https://noc.example.net"]
    config = Config.load(path, env={"SIXMINUTES_AUTH_READS": "no",
                                    "SIXMINUTES_ALLOWED_ORIGINS": "https://a.example https://b.example",
                                    "SIXMINUTES_ALLOWED_HOSTS": "a.example"})
    assert config.auth_reads is False
    assert config.allowed_origins == ["https://a.example", "https://b.example"]
    assert config.allowed_hosts == ["a.example"]
    assert (Config().auth_reads, Config().allowed_hosts, Config().allowed_origins) == (False, [], [])
    with pytest.raises(ConfigError, match="auth_reads"):
        Config.load(toml(tmp_path, '[serve]\nauth_reads = "sometimes"\n'), env={})


def test_a_group_on_nats_from_the_environment_and_the_file(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[serve]\nnats = ["nats://n1:4222"]\ngroup = "noc-east"\n')
    config = Config.load(str(path), env={"SIXMINUTES_NATS": "nats://a:4222 tls://user:pw@b:4222"})
    assert config.nats == ["nats://a:4222", "tls://user:pw@b:4222"] and config.group == "noc-east"


@pytest.mark.parametrize("key, value, message", [
    ("SIXMINUTES_NATS", "http://n1:4222", "a NATS server URL"),
    ("SIXMINUTES_GROUP", "a.b", "letters, digits"),
])
def test_a_bad_nats_setting_is_named(key, value, message):
    with pytest.raises(ConfigError, match=f"{key}.*{message}"):
        Config.load(env={key: value})

