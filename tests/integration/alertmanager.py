"""A real Alertmanager (Debian's prometheus-alertmanager) on a free port, for the tests.

It routes every alert, grouped by alertname and carrier with one-second waits, to a webhook
receiver of the test (tests/receiver.py), with resolved notifications on.
"""
from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import httpx

from couchdb_server import _free_port

BINARY = shutil.which("prometheus-alertmanager") or "/usr/bin/prometheus-alertmanager"

CONFIG = """\
route:
  receiver: test
  group_by: [alertname, profile, direction, account]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: test
    webhook_configs:
      - url: {url}
        send_resolved: true
"""


class Alertmanager:
    """``start()``, ``stop()`` and ``start()`` again on the same port and storage."""

    def __init__(self, workdir: Path, receiver_url: str) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = self.workdir / "alertmanager.yml"
        self.config.write_text(CONFIG.format(url=receiver_url))
        self.log = self.workdir / "alertmanager.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 20.0) -> Alertmanager:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [BINARY, f"--config.file={self.config}", f"--storage.path={self.workdir / 'data'}",
                 f"--web.listen-address=127.0.0.1:{self.port}", "--cluster.listen-address=",
                 "--log.level=info"],
                stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"alertmanager exited: {self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"alertmanager not ready in {timeout} s: {self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def alerts(self) -> list[dict]:
        """What Alertmanager holds now (GET /api/v2/alerts)."""
        return httpx.get(f"{self.url}/api/v2/alerts", timeout=5).json()
