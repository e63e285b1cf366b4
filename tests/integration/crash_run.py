"""The kill -9 procedure shared by tests/integration/test_serve_crash.py and bench/crash.py.

CDRs flow into a real `sixminutes serve` (from a real pouchdb-server on disk, or POSTed as
mod_json_cdr does) while it is killed with SIGKILL at random moments and started again on the
same state file. The moments come from ``random.Random(seed)``: each kill waits for a random
share of the CDRs to be counted (CouchDB) or acknowledged (HTTP), then a random fraction of a
second, so kills land during startup, replay, counting and snapshots alike. At the end every
series of every window must equal what the engine alone computes from the same CDRs
(``reference_data``): nothing lost, nothing counted twice.
"""
from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from couchdb_server import PouchServer
from service_process import (Realistic, ServiceProcess, config_toml, data_differences,
                             encode_body, reference_data)

__all__ = ["CrashResult", "crash_couchdb", "crash_http"]

ENCODINGS = ("true", "base64", "false", "json")


@dataclass
class CrashResult:
    """What one run did and found; ``problems`` is empty when every total was exact."""

    path: str
    seed: int
    cdrs: int
    kills: int = 0
    restarts: int = 0
    seconds: float = 0.0
    moments: list[str] = field(default_factory=list)  # "at 312 counted +0.17 s" per kill
    problems: list[str] = field(default_factory=list)
    answers: dict[str, int] = field(default_factory=dict)  # HTTP: final answers by outcome
    retried: int = 0  # HTTP: CDRs whose POST was cut by a kill and sent again

    @property
    def exact(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        verdict = "exact" if self.exact else "DIFFERENCES: " + "; ".join(self.problems)
        extra = f", answers {self.answers}, {self.retried} re-sent" if self.path == "http" else ""
        return (f"{self.path}: {self.cdrs} CDRs, {self.kills} kill -9, {self.restarts} restarts, "
                f"{self.seconds:.1f} s{extra}, seed {self.seed}: {verdict}")


class CouchWriter(threading.Thread):
    """Adds documents to CouchDB in small batches at a steady pace, as a cluster's writes
    arrive, whatever the service is doing."""

    def __init__(self, server: PouchServer, db: str, docs: list[dict], seconds: float,
                 batch: int = 10) -> None:
        super().__init__(daemon=True)
        self.server, self.db, self.docs, self.batch = server, db, docs, batch
        self.pause = seconds * batch / max(1, len(docs))
        self.written = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            started = time.monotonic()
            for i in range(0, len(self.docs), self.batch):
                chunk = self.docs[i:i + self.batch]
                results = self.server.post_many(self.db, chunk)
                assert all(r.get("ok") for r in results), results
                self.written += len(chunk)
                time.sleep(max(0.0, started + self.pause * (i // self.batch + 1) - time.monotonic()))
        except BaseException as error:  # reported by the run
            self.error = error


class Poster(threading.Thread):
    """POSTs CDRs one after the other like mod_json_cdr: a POST that got no answer (connection
    refused or reset by the kill) or a 5xx is sent again until it gets one."""

    def __init__(self, url: str, bodies: list[tuple[str, bytes, str]],
                 auth: dict[str, str]) -> None:
        super().__init__(daemon=True)
        self.url, self.bodies, self.auth = url, bodies, auth
        self.outcomes: dict[str, list[str]] = {}  # uuid → every answer, failures included
        self.done = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with httpx.Client(base_url=self.url, timeout=10.0) as client:
                for uuid, body, content_type in self.bodies:
                    self.outcomes[uuid] = self._post(client, uuid, body, content_type)
                    self.done += 1
        except BaseException as error:  # reported by the run
            self.error = error

    def _post(self, client: httpx.Client, uuid: str, body: bytes, content_type: str) -> list[str]:
        answers: list[str] = []
        deadline = time.monotonic() + 60
        while True:
            assert time.monotonic() < deadline, f"{uuid}: never accepted: {answers}"
            try:
                response = client.post("/6minutes/cdr", content=body, headers={
                    "Content-Type": content_type, "User-Agent": "freeswitch-json/1.0",
                    **self.auth})
            except httpx.HTTPError as error:
                answers.append(f"failed: {type(error).__name__}")
                time.sleep(0.03)
                continue
            if response.status_code >= 500:
                answers.append(f"failed: HTTP {response.status_code}")
                time.sleep(0.03)
                continue
            assert response.status_code == 200, (uuid, response.status_code, response.text)
            answers.append(response.json()["outcome"])
            return answers


def _schedule(rng: random.Random, n: int, kills: int) -> list[tuple[int, float]]:
    """(progress to wait for, then seconds to wait) for each kill, in order."""
    thresholds = sorted(int(rng.uniform(0.02, 0.97) * n) for _ in range(kills))
    return [(t, rng.uniform(0.0, 0.4)) for t in thresholds]


def _kill_loop(service: ServiceProcess, result: CrashResult, schedule: list[tuple[int, float]],
               progress: Callable[[], int], what: str, alive: Callable[[], None]) -> None:
    for number, (threshold, delay) in enumerate(schedule, 1):
        def reached() -> bool:
            alive()  # a feeder that died fails the run now, not at the end
            return progress() >= threshold
        service.wait(reached, timeout=60, what=f"{threshold} {what} before kill #{number} "
                                                f"(seed {result.seed})")
        time.sleep(delay)
        assert service.kill() == -9, "the service was not running when its kill came"
        result.kills += 1
        result.moments.append(f"{threshold} {what} +{delay:.2f} s")
        service.start()
        result.restarts += 1


def _compare(service: ServiceProcess, result: CrashResult, documents: list) -> None:
    status = service.status()
    if status["accepted"] != result.cdrs:
        result.problems.append(f"status accepted={status['accepted']}, expected {result.cdrs}")
    differences = data_differences(service.data(), reference_data(documents))
    if differences:
        result.problems.append(differences)


def crash_couchdb(workdir: Path, n: int, kills: int, seed: int, seconds: float = 25.0,
                  snapshot_seconds: float = 0.2) -> CrashResult:
    """N documents written to an on-disk pouchdb-server over ``seconds`` while the service
    following it is killed ``kills`` times; every series compared with the reference."""
    result = CrashResult("couchdb", seed, n)
    rng = random.Random(seed)
    server = PouchServer(workdir / "pouchdb", on_disk=True)
    (workdir / "pouchdb").mkdir(parents=True, exist_ok=True)
    service = ServiceProcess(workdir / "service", since="0",
                             couchdb=[f"{server.url}/cdrs"],
                             config=config_toml(snapshot_seconds=snapshot_seconds))
    started = time.monotonic()
    try:
        server.start()
        server.create_db("cdrs")
        docs = Realistic(seed=seed).docs(n)
        service.start()
        writer = CouchWriter(server, "cdrs", docs, seconds)
        writer.start()

        def alive() -> None:
            assert writer.error is None, f"the writer failed: {writer.error!r}"

        _kill_loop(service, result, _schedule(rng, n, kills), service.total,
                   "docs counted", alive)
        writer.join(seconds + 60)
        alive()
        assert writer.written == n, f"the writer wrote {writer.written} of {n}"
        service.wait_caught_up(server, "cdrs", timeout=60)
        result.seconds = time.monotonic() - started
        _compare(service, result, docs)
        rejected = service.status()["rejected"]
        if rejected:  # a row read again after a restart would be a `duplicate` here
            result.problems.append(f"rejected {rejected}, expected none")
    finally:
        service.close()
        server.close()
    return result


def post_bodies(seed: int, n: int) -> tuple[list[tuple[str, bytes, str]], list[bytes]]:
    """(uuid, body, Content-Type) in every mod_json_cdr encoding, and the raw CDRs."""
    generator = Realistic(seed=seed)
    bodies, raws = [], []
    for i in range(n):
        raw, truth = generator.raw()
        body, content_type = encode_body(raw, ENCODINGS[i % len(ENCODINGS)])
        bodies.append((truth.uuid, body, content_type))
        raws.append(raw)
    return bodies, raws


def crash_http(workdir: Path, n: int, kills: int, seed: int, posters: int = 3,
               snapshot_seconds: float = 0.2) -> CrashResult:
    """N CDRs POSTed by ``posters`` clients while the service is killed ``kills`` times; a POST
    without an answer is sent again. Every CDR must be counted exactly once."""
    result = CrashResult("http", seed, n)
    rng = random.Random(seed)
    service = ServiceProcess(workdir / "service",
                             config=config_toml(snapshot_seconds=snapshot_seconds))
    bodies, raws = post_bodies(seed, n)
    clients: list[Poster] = []
    started = time.monotonic()
    try:
        service.start()  # (the token it generated is then in its file)
        clients = [Poster(service.url, bodies[i::posters], service.auth_headers())
                   for i in range(posters)]
        for client in clients:
            client.start()

        def alive() -> None:
            for client in clients:
                assert client.error is None, f"a poster failed: {client.error!r}"

        _kill_loop(service, result, _schedule(rng, n, kills),
                   lambda: sum(c.done for c in clients), "CDRs acknowledged", alive)
        for client in clients:
            client.join(120)
        alive()
        answers = {uuid: a for c in clients for uuid, a in c.outcomes.items()}
        assert len(answers) == n, f"{len(answers)} of {n} CDRs got an answer"
        result.seconds = time.monotonic() - started
        _check_answers(result, answers)
        _compare(service, result, raws)
        # A re-sent POST may itself be journaled (as a duplicate) and cut by the next kill
        # before its answer: the service then saw more duplicates than the clients were told,
        # but never more than the POSTs that failed, nor fewer than the duplicate answers.
        status = service.status()
        duplicates = status["rejected"].get("duplicate", 0)
        answered = result.answers.get("duplicate", 0)
        failed = sum(len(a) - 1 for a in answers.values())
        if not answered <= duplicates <= answered + failed:
            result.problems.append(f"status counts {duplicates} duplicates, the clients were "
                                   f"answered {answered} with {failed} failed POSTs")
        # Journal ids never repeat (AUTOINCREMENT): the last one is how many bodies were
        # journaled, and each must have been counted once, as accepted or as duplicate.
        journaled = service.source("http")["position"]
        if journaled != status["accepted"] + duplicates:
            result.problems.append(f"{journaled} bodies journaled, but {status['accepted']} "
                                   f"accepted + {duplicates} duplicates counted")
    finally:
        service.close()
    return result


def _check_answers(result: CrashResult, answers: dict[str, list[str]]) -> None:
    """A CDR answered at the first attempt was new ("accepted"); one re-sent after a kill was
    either journaled before it ("duplicate") or not ("accepted"); nothing else."""
    retried = {uuid for uuid, a in answers.items() if len(a) > 1}
    finals = Counter(a[-1] for a in answers.values())
    result.answers, result.retried = dict(finals), len(retried)
    first_time = [uuid for uuid, a in answers.items() if uuid not in retried and a != ["accepted"]]
    if first_time:
        result.problems.append(f"{len(first_time)} CDRs posted once were not answered "
                               f"'accepted', e.g. {answers[first_time[0]]}")
    if set(finals) - {"accepted", "duplicate"}:
        result.problems.append(f"unexpected answers {dict(finals)}")
    if finals["duplicate"] > len(retried):
        result.problems.append(f"{finals['duplicate']} duplicates for {len(retried)} re-sent")
