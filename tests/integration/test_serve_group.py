"""`serve --nats`: instances in a group on a real three-node NATS JetStream cluster.

Each CDR POSTed to any instance is stored once in the stream, counted once by its
partition's owner, and shown by every instance (docs/scale-out.md)."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from nats_cluster import NatsCluster
from service_process import Realistic, ServiceProcess, config_toml, data_differences, reference_data

TOKEN = "group-test-token"


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[NatsCluster]:
    nats = NatsCluster(tmp_path / "nats").start()
    try:
        nats.wait_ready()
        yield nats
    finally:
        nats.stop()


def member(serve, cluster: NatsCluster, group: str = "g1", **options) -> ServiceProcess:
    args = [arg for url in cluster.urls for arg in ("--nats", url)] + ["--group", group]
    return serve(token=TOKEN, args=args, config=config_toml(seed_alerts=False), **options)


def test_every_member_shows_each_cdr_posted_to_any_member_once(serve, cluster) -> None:
    a, b = member(serve, cluster), member(serve, cluster)
    realistic = Realistic(seed=23)
    docs = [realistic.raw()[0] for _ in range(400)]
    for i, doc in enumerate(docs):
        response = (a if i % 2 else b).post_cdr(doc)
        assert response.status_code == 200, response.text
    # FreeSWITCH retrying a POST it thinks failed: stored once, answered as a duplicate
    again = a.post_cdr(docs[0])
    assert again.status_code == 200 and again.json()["outcome"] == "duplicate"
    want = reference_data(docs)
    for instance in (a, b):
        instance.wait(lambda: not data_differences(instance.data(), want), 30,
                      "the group's view to hold every CDR once")
        assert instance.total() == len(docs)
    partitions = [set(x.source("nats")["partitions"]) for x in (a, b)]
    assert partitions[0] and partitions[1] and not partitions[0] & partitions[1]
    assert len(partitions[0] | partitions[1]) == 16
