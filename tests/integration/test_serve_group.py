"""`serve --nats`: instances in a group on a real three-node NATS JetStream cluster.

Each CDR POSTed to any instance is stored once in the stream, counted once by its
partition's owner, and shown by every instance (docs/scale-out.md)."""
from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from nats_cluster import NatsCluster
from service_process import (Realistic, ServiceProcess, config_toml, data_differences,
                             reference_data, small_cdr)

TOKEN = "group-test-token"


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[NatsCluster]:
    nats = NatsCluster(tmp_path / "nats").start()
    try:
        nats.wait_ready()
        yield nats
    finally:
        nats.stop()


def same_view(instance: ServiceProcess, want: dict) -> str:
    """'' when the instance's view holds exactly the reference's counts (calls in progress too)."""
    return data_differences(instance.data(), want)


def member(serve, cluster: NatsCluster, group: str = "g1", **options) -> ServiceProcess:
    args = [arg for url in cluster.urls for arg in ("--nats", url)] + ["--group", group]
    instance = serve(token=TOKEN, args=args, config=config_toml(seed_alerts=False), **options)
    return joined(instance)


def joined(instance: ServiceProcess) -> ServiceProcess:
    """Wait until the member has joined (it answers at once, and 503 to POSTs until then)."""
    instance.wait(lambda: instance.source("nats")["state"] == "member", 30, "joining the group")
    return instance


def test_every_member_shows_each_cdr_posted_to_any_member_once(cluster, serve) -> None:
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
        instance.wait(lambda: not same_view(instance, want), 30,
                      "the group's view to hold every CDR once")
        assert instance.total() == len(docs)
    deleted = a.http.delete("/6minutes/data", headers=a.auth_headers())
    assert deleted.status_code == 409 and deleted.json()["error"] == "group"

    def dealt() -> bool:  # (each member deals again within a second of seeing the other)
        mine, theirs = (set(x.source("nats")["partitions"]) for x in (a, b))
        return len(mine) == len(theirs) == 8 and len(mine | theirs) == 16

    a.wait(dealt, 10, "the partitions dealt 8 and 8")


def post_until_stored(members: list[ServiceProcess], doc: bytes, first: int,
                      deadline: float = 60.0) -> int:
    """POST as FreeSWITCH does: on a failure (refused, 503, cut), again on the next live
    member, until one answers 200; how many tries it took."""
    tries = 0
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        target = members[(first + tries) % len(members)]
        tries += 1
        if not target.running:
            continue
        try:
            response = target.post_cdr(doc, timeout=10.0)
        except httpx.HTTPError:
            continue
        if response.status_code == 200:
            return tries
        assert response.status_code == 503, response.text  # nothing else may go wrong
        time.sleep(0.05)
    raise AssertionError("no member stored the CDR within the deadline")


def test_nothing_lost_or_counted_twice_when_a_member_and_a_nats_node_die(cluster, serve) -> None:
    a, b = member(serve, cluster), member(serve, cluster)
    realistic = Realistic(seed=6000)
    docs = [realistic.raw()[0] for _ in range(6000)]
    retried = 0
    for i, doc in enumerate(docs):
        if i == 2000:
            a.kill()  # kill -9 with POSTs in flight on the other member only
        if i == 3000:
            cluster.kill(0)  # one of three NATS nodes: the stream keeps its quorum
        if i == 4500:
            a.start()  # back on its state file, as a new member (POSTs to it retried until it joins)
        retried += post_until_stored([a, b], doc, i) - 1
    last_post = time.monotonic()
    c = member(serve, cluster)  # joins afterwards, with an empty state
    want = reference_data(docs)
    for instance in (a, b, c):
        left = 60 - (time.monotonic() - last_post)
        instance.wait(lambda: not same_view(instance, want), max(left, 1),
                      "every member's view to hold every stored CDR exactly once")
    assert retried > 0  # the kill and the lost node were felt, and the POSTs were retried
    outcomes = orjson.loads(orjson.dumps(c.status()["by_source"]))
    assert outcomes["http"]["accepted"] == len(docs), outcomes


def test_a_failing_carrier_seen_by_both_members_is_one_incident_on_each_list(cluster, serve) -> None:
    a, b = member(serve, cluster), member(serve, cluster)
    end = int(time.time()) - 60
    for i in range(80):  # kestrel fails every other call with a 503; osprey is healthy
        for profile, code in (("kestrel", "503" if i % 2 else "200"), ("osprey", "200")):
            doc = orjson.dumps(small_cdr(end - i % 30, profile=profile, sip_term_status=code,
                                              billsec=0 if code == "503" else 60))
            assert (a if i % 2 else b).post_cdr(doc).status_code == 200

    def kestrel_incidents(instance: ServiceProcess) -> list[dict]:
        return [i for i in instance.json("/6minutes/incidents")
                if i["profile"] == "kestrel" and i["rule"] == "network_failure_ratio"]

    for instance in (a, b):
        instance.wait(lambda: kestrel_incidents(instance), 30, "kestrel's incident")
    seen = [kestrel_incidents(x) for x in (a, b)]
    assert len(seen[0]) == 1 and [i["id"] for i in seen[0]] == [i["id"] for i in seen[1]]
    for instance in (a, b):
        assert not [i for i in instance.json("/6minutes/incidents") if i["profile"] == "osprey"]
    # one of them notifies, once each has seen the other (within a heartbeat)
    a.wait(lambda: sum(x.source("nats")["leads"] for x in (a, b)) == 1, 10, "one lead")


def test_a_post_the_cluster_cannot_store_is_refused_503_to_be_retried(cluster, serve) -> None:
    a = member(serve, cluster)
    for i in range(3):
        cluster.kill(i)
    response = a.post_cdr(orjson.dumps(small_cdr()), timeout=30.0)
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == "1"
    assert response.json()["error"] == "unavailable"
    assert a.source("nats")["connected"] is False


def test_two_members_following_one_couchdb_database_count_each_cdr_once(cluster, pouchdb, serve) -> None:
    db = pouchdb.new_db()
    realistic = Realistic(seed=77)
    pouchdb.post_many(db, realistic.docs(150))
    url = f"{pouchdb.url}/{db}"
    a = member(serve, cluster, couchdb=[url], since="0")
    b = member(serve, cluster, couchdb=[url], since="0")  # the same feed, for availability
    docs = realistic.docs(150)
    pouchdb.post_many(db, docs[:75])
    a.kill()  # one follower dies; the other goes on alone
    pouchdb.post_many(db, docs[75:])
    b.wait_total(300, timeout=30)
    a.start()  # back from its saved position (or 0): what it reads again is stored once
    a.wait_total(300, timeout=30)
    b.wait_caught_up(pouchdb, db, timeout=30)
    a.wait_caught_up(pouchdb, db, timeout=30)
    for instance in (a, b):
        assert instance.total() == 300
        assert instance.status()["by_source"][instance.source()["name"]]["accepted"] == 300


def test_a_member_started_while_the_cluster_is_down_answers_and_joins_when_it_is_back(cluster, serve) -> None:
    for i in range(3):
        cluster.kill(i)
    args = [arg for url in cluster.urls for arg in ("--nats", url)] + ["--group", "g1"]
    a = serve(token=TOKEN, args=args, config=config_toml(seed_alerts=False))
    source = a.source("nats")
    assert source["state"] == "joining" and source["connected"] is False
    assert a.post_cdr(orjson.dumps(small_cdr())).status_code == 503
    cluster.start()  # the same nodes, on their storage
    joined(a)
    assert a.post_cdr(orjson.dumps(small_cdr(profile="late"))).status_code == 200
    a.wait_total(1, timeout=30, profile="late")
