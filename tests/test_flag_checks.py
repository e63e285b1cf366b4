"""Every flag and configuration value is checked before anything starts, and a bad one is
refused with a message naming the flag (or the variable, or the file's key): exit status 2,
nothing listened on, no state file made."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sixminutes.cli import main
from sixminutes.config import Config, ConfigError

SCRIPT = Path(sys.executable).parent / "sixminutes"


@pytest.mark.parametrize("args, message", [
    (["--retention-hours", "-1"], "--retention-hours: must be a positive number of hours"),
    (["--retention-hours", "0"], "--retention-hours: must be a positive number of hours"),
    (["--retention-hours", "nan"], "--retention-hours: must be a positive number of hours"),
    (["--demo-rate", "-5"], "--demo-rate: must be CDRs per second, more than 0"),
    (["--demo-rate", "0"], "--demo-rate: must be CDRs per second, more than 0"),
    (["--demo-rate", "inf"], "--demo-rate: must be CDRs per second"),
    (["--port", "0"], "--port: must be a TCP port from 1 to 65535, got 0"),
    (["--port", "70000"], "--port: must be a TCP port from 1 to 65535, got 70000"),
    (["--host", "http://0.0.0.0"], "--host: must be an address to listen on"),
    (["--host", ""], "--host: must be an address to listen on"),
    (["--couchdb", "ftp://couch:5984/cdrs"], "--couchdb: must be a CouchDB database URL"),
    (["--couchdb", "http://couch:5984"], "--couchdb: must be a CouchDB database URL"),
    (["--couchdb", "http://couch:port/cdrs"], "--couchdb: must be a CouchDB database URL"),
    (["--alertmanager", "alertmanager:9093"], "--alertmanager: must be an Alertmanager URL"),
    (["--webhook", "javascript:alert(1)"], "--webhook: must be a webhook URL"),
    (["--public-url", "sixminutes.example.net"], "--public-url: must be this service's URL"),
    (["--since", ""], "--since: must be now, 0 or a CouchDB sequence"),
    (["--webhook-secret", ""], "--webhook-secret: must not be empty, got (hidden)"),
    (["--state", ""], "--state: must be the path of a file"),
    (["--state", "/tmp"], "--state: must be the path of a file"),
    (["--state", "/nonexistent-dir/s.sqlite"], "cannot use state file /nonexistent-dir/s.sqlite "
                                               "(--state)"),
], ids=lambda v: v if isinstance(v, str) else " ".join(v))
def test_a_bad_serve_flag_is_refused_naming_it(tmp_path, capsys, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    assert main(["serve", "--state", str(tmp_path / "s.sqlite"), *args]) == 2
    out, err = capsys.readouterr()
    assert message in err and err.count("\n") == 1, err
    assert not (tmp_path / "s.sqlite").exists()  # nothing started


def test_credentials_in_a_refused_url_are_not_shown(capsys):
    assert main(["serve", "--couchdb", "ftp://admin:s3cret@couch:5984/cdrs"]) == 2
    err = capsys.readouterr().err
    assert "s3cret" not in err and "<credentials>@couch:5984/cdrs" in err


@pytest.mark.parametrize("variable, value, message", [
    ("SIXMINUTES_PORT", "0", "SIXMINUTES_PORT: must be a TCP port"),
    ("SIXMINUTES_DEMO_RATE", "-5", "SIXMINUTES_DEMO_RATE: must be CDRs per second"),
    ("SIXMINUTES_MAX_BODY_BYTES", "10", "SIXMINUTES_MAX_BODY_BYTES: must be bytes from 1024"),
    ("SIXMINUTES_SNAPSHOT_SECONDS", "nan", "SIXMINUTES_SNAPSHOT_SECONDS: must be seconds"),
    ("SIXMINUTES_NOTIFY_QUEUE", "0", "SIXMINUTES_NOTIFY_QUEUE: must be alerts from 1"),
    ("SIXMINUTES_WEBHOOK", "http://ok.example/x file:///etc/passwd", "SIXMINUTES_WEBHOOK: must be"),
    ("SIXMINUTES_RETENTION_HOURS", "-1", "SIXMINUTES_RETENTION_HOURS: must be a positive"),
])
def test_a_bad_environment_value_is_refused_naming_the_variable(variable, value, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        Config.load(env={variable: value})


@pytest.mark.parametrize("line, message", [
    ("port = true", "serve.port: not a valid int: True"),
    ("port = 80.5", "serve.port: not a valid int: 80.5"),
    ("couchdb_heartbeat_ms = 5", "serve.couchdb_heartbeat_ms: must be milliseconds from 100"),
    ("couchdb_backoff_max = -1", "serve.couchdb_backoff_max: must be seconds, more than 0"),
    ("alertmanager_resend_seconds = 0", "serve.alertmanager_resend_seconds: must be seconds"),
    ("demo_rate = 1e400", "serve.demo_rate: must be CDRs per second"),
])
def test_a_bad_config_file_value_is_refused_naming_its_key(tmp_path, line, message):
    path = tmp_path / "c.toml"
    path.write_text(f"[serve]\n{line}\n")
    with pytest.raises(ConfigError, match=f"config {path}: {message}".replace("(", r"\(")):
        Config.load(str(path), env={})


def test_good_values_still_load(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[serve]\nport = 1\ndemo_rate = 0.5\ncouchdb = ["http://u:p@couch:5984/cdrs"]\n'
                    'public_url = "https://six.example.net"\nsnapshot_seconds = 0.2\n')
    config = Config.load(str(path), env={"SIXMINUTES_WEBHOOK": "https://a.example/x http://b/y"})
    assert (config.port, config.demo_rate, config.snapshot_seconds) == (1, 0.5, 0.2)
    assert config.webhook == ["https://a.example/x", "http://b/y"]


@pytest.mark.parametrize("args, message", [
    (["replay", "--max-alerts", "-1", "x.json"], "--max-alerts must be 0 or more, not -1"),
    (["replay", "--jobs", "-2", "x.json"], "--jobs must be 0 (one per CPU) or more, not -2"),
    (["replay", "--timezone", "Nowhere/Else", "x.json"], "--timezone: unknown time zone"),
    (["synth", "--count", "-1"], "--count must be 0 or more, not -1"),
    (["synth", "--hours", "0"], "--hours must be more than 0 and at most a year, not 0.0"),
    (["synth", "--hours", "nan"], "--hours must be more than 0 and at most a year, not nan"),
])
def test_bad_replay_and_synth_flags_are_refused_naming_them(tmp_path, monkeypatch, capsys, args,
                                                            message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.json").write_text('{"variables": {"end_epoch": "1700000000"}}')
    assert main(args) == 2
    out, err = capsys.readouterr()
    assert out == "" and message in err


def test_serve_with_a_bad_flag_exits_at_once_before_listening(tmp_path):
    proc = subprocess.run([str(SCRIPT), "serve", "--retention-hours", "-1", "--state",
                           str(tmp_path / "s.sqlite")], capture_output=True, text=True,
                          timeout=30, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr == ("sixminutes: --retention-hours: must be a positive number of hours, "
                           "got -1.0\n")
    assert list(tmp_path.iterdir()) == []
