"""`kill -9` of the service mid-stream, then a restart on the same state file.

Nothing the service acknowledged may be lost and nothing may be counted twice: every CouchDB
document is counted exactly once (the saved position and the saved windows go together), and
every CDR whose POST got a 200 is counted exactly once (the journal is committed before the
200). A POST cut by the kill is retried by the client, as FreeSWITCH does; if the service had
already journaled it, the retry is answered `duplicate` and the total stays exact.
"""
from __future__ import annotations

import threading
import time
from collections import Counter

import httpx

from service_process import Realistic, config_toml, data_differences, encode_body, reference_data

KILLS = 3


class CouchWriter(threading.Thread):
    """Adds documents to CouchDB in small batches, as a FreeSWITCH cluster's writes arrive."""

    def __init__(self, server, db: str, docs: list[dict], batch: int = 4, pause: float = 0.01):
        super().__init__(daemon=True)
        self.server, self.db, self.docs = server, db, docs
        self.batch, self.pause = batch, pause
        self.written = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            for i in range(0, len(self.docs), self.batch):
                chunk = self.docs[i:i + self.batch]
                results = self.server.post_many(self.db, chunk)
                assert all(r.get("ok") for r in results), results
                self.written += len(chunk)
                time.sleep(self.pause)
        except BaseException as error:  # reported by the test
            self.error = error


class Poster(threading.Thread):
    """POSTs CDRs one after the other like mod_json_cdr: a failed POST (connection refused or
    cut, 5xx) is retried until it gets an answer."""

    def __init__(self, url: str, bodies: tuple[list[tuple[str, bytes, str]], list[bytes]]):
        super().__init__(daemon=True)
        self.url, (self.bodies, self.raws) = url, bodies
        self.outcomes: dict[str, list[str]] = {}  # uuid → every answer, failures included
        self.done = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with httpx.Client(base_url=self.url, timeout=5.0) as client:
                for uuid, body, content_type in self.bodies:
                    answers = self.outcomes[uuid] = []
                    deadline = time.monotonic() + 30
                    while True:
                        assert time.monotonic() < deadline, f"{uuid}: never accepted: {answers}"
                        try:
                            response = client.post("/6minutes/cdr", content=body, headers={
                                "Content-Type": content_type,
                                "User-Agent": "freeswitch-json/1.0"})
                        except httpx.HTTPError as error:
                            answers.append(f"failed: {type(error).__name__}")
                            time.sleep(0.03)
                            continue
                        if response.status_code >= 500:
                            answers.append(f"failed: HTTP {response.status_code}")
                            time.sleep(0.03)
                            continue
                        assert response.status_code == 200, (response.status_code, response.text)
                        answers.append(response.json()["outcome"])
                        break
                    self.done += 1
        except BaseException as error:  # reported by the test
            self.error = error


def test_kill_9_while_couchdb_docs_arrive_counts_every_doc_exactly_once(pouchdb, serve):
    db = pouchdb.new_db()
    docs = Realistic(seed=301).docs(400)
    service = serve(couchdb=[f"{pouchdb.url}/{db}"], since="0",
                    config=config_toml(snapshot_seconds=0.2))
    writer = CouchWriter(pouchdb, db, docs)
    writer.start()
    for kill in range(1, KILLS + 1):
        threshold = kill * len(docs) // (KILLS + 2)
        service.wait(lambda: service.total() >= threshold, timeout=20,
                     what=f"{threshold} docs counted before kill #{kill}")
        time.sleep(0.05 * kill)  # kill at different phases of the snapshot cycle
        assert service.kill() == -9
        service.start()
    writer.join(30)
    assert writer.error is None and writer.written == len(docs)

    service.wait_caught_up(pouchdb, db, timeout=20)
    got = service.total()
    status = service.status()
    assert got == len(docs), (
        f"after {KILLS} kill -9 the calls total is {got}, expected exactly {len(docs)}; "
        f"status says accepted={status['accepted']} rejected={status['rejected']}")
    assert status["accepted"] == len(docs)
    assert status["rejected"] == {}
    # Every series, not just `calls`: the same as the engine counting the docs offline.
    differences = data_differences(service.data(), reference_data(docs))
    assert not differences, f"after {KILLS} kill -9: {differences}"


def _post_bodies(seed: int, n: int) -> tuple[list[tuple[str, bytes, str]], list[bytes]]:
    generator = Realistic(seed=seed)
    encodings = ("true", "base64", "false", "json")
    bodies, raws = [], []
    for i in range(n):
        raw, truth = generator.raw()
        body, content_type = encode_body(raw, encodings[i % len(encodings)])
        bodies.append((truth.uuid, body, content_type))
        raws.append(raw)
    return bodies, raws


def test_kill_9_while_cdrs_are_posted_counts_every_acknowledged_cdr_exactly_once(serve):
    service = serve(config=config_toml(snapshot_seconds=0.2))
    posters = [Poster(service.url, _post_bodies(seed=310 + i, n=150)) for i in range(3)]
    n = sum(len(p.bodies) for p in posters)
    for poster in posters:
        poster.start()
    for kill in range(1, KILLS + 1):
        threshold = kill * n // (KILLS + 2)
        service.wait(lambda: sum(p.done for p in posters) >= threshold, timeout=20,
                     what=f"{threshold} CDRs acknowledged before kill #{kill}")
        time.sleep(0.05 * kill)
        assert service.kill() == -9
        service.start()
    for poster in posters:
        poster.join(60)
        assert poster.error is None, poster.error
        assert poster.done == len(poster.bodies)

    answers = {uuid: a for p in posters for uuid, a in p.outcomes.items()}
    assert len(answers) == n
    retried = {uuid for uuid, a in answers.items() if len(a) > 1}
    finals = Counter(a[-1] for a in answers.values())
    # A CDR acknowledged at the first attempt was never seen before: "accepted".
    assert all(a == ["accepted"] for uuid, a in answers.items() if uuid not in retried)
    # A retried one was either journaled before the kill (duplicate) or not (accepted).
    assert set(finals) <= {"accepted", "duplicate"}
    assert finals["duplicate"] <= len(retried)
    assert retried, "no POST was cut by the kills: the test did not test anything"

    got = service.total()
    status = service.status()
    assert got == n, (
        f"after {KILLS} kill -9 the calls total is {got}, expected exactly {n} "
        f"(answers: {dict(finals)}, {len(retried)} retried); status says "
        f"accepted={status['accepted']} rejected={status['rejected']}")
    assert status["accepted"] == n
    assert status["rejected"].get("duplicate", 0) == finals["duplicate"]
    raws = [raw for p in posters for raw in p.raws]
    differences = data_differences(service.data(), reference_data(raws))
    assert not differences, f"after {KILLS} kill -9: {differences}"
