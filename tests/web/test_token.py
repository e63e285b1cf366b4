"""The token kept beside the state file (sixminutes/web/token.py): created once, 0600, reused."""
from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from sixminutes.web.token import TokenError, resolve_token, token_path


def test_created_at_first_start_with_mode_0600_then_reused(tmp_path):
    state = str(tmp_path / "s.sqlite")
    first = resolve_token(None, state)
    assert (first.origin, first.path) == ("created", tmp_path / "s.sqlite.token")
    assert stat.S_IMODE(first.path.stat().st_mode) == 0o600
    assert first.path.read_text() == first.value + "\n" and len(first.value) >= 40
    again = resolve_token(None, state)
    assert (again.origin, again.value) == ("reused", first.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.sqlite.token"]  # no temporary left


def test_created_0600_whatever_the_umask(tmp_path):
    old = os.umask(0)
    try:
        token = resolve_token(None, str(tmp_path / "s.sqlite"))
    finally:
        os.umask(old)
    assert stat.S_IMODE(token.path.stat().st_mode) == 0o600


def test_a_configured_token_makes_no_file_and_an_empty_one_is_refused(tmp_path):
    state = str(tmp_path / "s.sqlite")
    assert resolve_token("mine", state).origin == "configured"
    assert not token_path(state).exists()
    for empty in ("", "  "):
        with pytest.raises(TokenError, match="empty"):
            resolve_token(empty, state)


def test_an_in_memory_state_gets_one_per_process():
    a, b = resolve_token(None, ":memory:"), resolve_token(None, ":memory:")
    assert a.origin == "process" and a.path is None and a.value != b.value


def test_an_empty_or_unreadable_file_is_an_error_not_a_new_token(tmp_path):
    state = str(tmp_path / "s.sqlite")
    token_path(state).write_text("\n")
    with pytest.raises(TokenError, match="is empty"):
        resolve_token(None, state)
    with pytest.raises(TokenError, match="cannot create"):
        resolve_token(None, str(tmp_path / "no-such-dir" / "s.sqlite"))


def test_a_file_others_can_read_is_used_with_a_warning(tmp_path, caplog):
    state = str(tmp_path / "s.sqlite")
    token_path(state).write_text("shared-token\n")
    token_path(state).chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="sixminutes"):
        assert resolve_token(None, state).value == "shared-token"
    assert "chmod 600" in caplog.text


def test_services_starting_at_once_agree_on_one_token(tmp_path):
    """Several processes race to create it: one wins, every one reads the winner's."""
    state = str(tmp_path / "s.sqlite")
    code = ("import sys; from sixminutes.web.token import resolve_token; "
            "print(resolve_token(None, sys.argv[1]).value)")
    processes = [subprocess.Popen([sys.executable, "-c", code, state], stdout=subprocess.PIPE)
                 for _ in range(8)]
    values = {p.communicate(timeout=60)[0].decode().strip() for p in processes}
    assert all(p.returncode == 0 for p in processes)
    assert values == {Path(state + ".token").read_text().strip()}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.sqlite.token"]
