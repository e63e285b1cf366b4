"""The test cluster itself: a node whose port was taken before it bound it is started again."""
from __future__ import annotations

import socket

from nats_cluster import NatsCluster


def test_a_node_whose_port_was_taken_is_started_again_on_it(tmp_path) -> None:
    cluster = NatsCluster(tmp_path / "nats")
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    holder.bind(("127.0.0.1", cluster.ports[0]))
    holder.listen()
    try:
        cluster.start()
        first = cluster.processes[0]
        assert first is not None and first.wait(timeout=30) != 0  # it could not listen
        holder.close()
        cluster.wait_ready()
        assert cluster.processes[0] is not first and cluster.processes[0].poll() is None
        assert "restarted by the tests" in (tmp_path / "nats" / "n0.log").read_text()
    finally:
        holder.close()
        cluster.stop()
