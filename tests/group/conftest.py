"""The group tests' real NATS cluster (tests/nats_cluster.py), one per module."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from nats_cluster import NatsCluster


@pytest.fixture(scope="module")
def nats_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsCluster]:
    cluster = NatsCluster(tmp_path_factory.mktemp("nats")).start()
    try:
        cluster.wait_ready()
        yield cluster
    finally:
        cluster.stop()
