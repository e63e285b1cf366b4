"""One owner per state file, with real `sixminutes serve` processes: a second one on a file in
use is refused at once and the first keeps running; the lock dies with its process (kill -9)."""
from __future__ import annotations

import sqlite3
import subprocess

from service_process import ServiceProcess, free_port, small_cdr

import orjson


def _second(first: ServiceProcess, tmp_path) -> subprocess.CompletedProcess:
    command = [c if c != str(first.port) else str(free_port()) for c in first.command]  # same state
    return subprocess.run(command, cwd=tmp_path, env=first.env, capture_output=True,
                          timeout=30, stdin=subprocess.DEVNULL)


def test_a_second_serve_on_a_state_file_in_use_is_refused_and_the_first_keeps_running(
        serve, tmp_path):
    first = serve()
    second = _second(first, tmp_path)
    assert second.returncode == 2
    message = second.stderr.decode()
    assert f"state file {first.state} is in use by another sixminutes process " \
           f"(pid {first.process.pid})" in message
    assert "serving http" not in message  # refused before listening
    assert first.running
    assert first.post_cdr(orjson.dumps(small_cdr())).json() == {"ok": True, "outcome": "accepted"}
    assert first.status()["accepted"] == 1


def test_the_lock_dies_with_a_killed_process(serve):
    service = serve()
    service.post_cdr(orjson.dumps(small_cdr()))
    service.kill()  # SIGKILL: nothing cleaned up
    service.start()  # the same state file, nothing to remove first
    service.wait_total(1)


def test_a_state_file_from_a_newer_version_is_refused_with_a_clear_message(serve, tmp_path):
    service = serve()
    service.stop()
    with sqlite3.connect(service.state) as db:
        db.execute("UPDATE meta SET value = '99' WHERE key = 'schema'")
    process = subprocess.run(service.command, cwd=tmp_path, env=service.env,
                             capture_output=True, timeout=30, stdin=subprocess.DEVNULL)
    assert process.returncode == 2
    assert f"state file {service.state} was written by a newer sixminutes (schema 99;" \
           in process.stderr.decode()
