"""Hostile input through a real pouchdb-server feed and the HTTP ingest of a real `sixminutes serve`.

Over 10,000 documents built to break it (tests/hostile.py) go in both ways at once: 12,000
through CouchDB `_bulk_docs` (design documents, deletions, missing and wrong-typed fields, HTML
and script in every string field, nesting 600 deep, strings of 700 KB, a 10 MB document and one
near CouchDB's 8 MB limit, text that is not Unicode), and 2,400 plus 160 unreadable bodies POSTed
in every mod_json_cdr encoding (also invalid UTF-8, truncated and non-object JSON, bare `nan`,
nesting 100,000 deep, 10 MB bodies). About a quarter are good realistic CDRs. The service must
never exit, answer each POST as its outcome says, count every document under its reason per
source exactly, count the good ones exactly as the engine alone does (reference_data), keep
saving snapshots, and serve the payloads back only as JSON text, never as HTML."""
from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import orjson
from prometheus_client.parser import text_string_to_metric_families

import hostile
from service_process import config_toml, data_differences, encode_body, reference_data

SEED = 20251130
TOKEN = "hostile-T0ken"
LIMIT = 4 << 20  # max_body_bytes: the 700 KB strings fit URL-encoded, 10 MB bodies do not
ENCODINGS = ("json", "false", "true", "base64")
COUCH_DOCS, HTTP_DOCS, BAD_BODIES, DUPLICATES = 12_000, 2_400, 160, 100


def _post(client: httpx.Client, body: Any, content_type: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    if content_type is not None:
        headers["Content-Type"] = content_type
    return client.post("/6minutes/cdr", content=body, headers=headers)


def _answer_matches(response: httpx.Response, expect: str) -> bool:
    if expect in ("accepted", "duplicate"):
        return response.status_code == 200 and response.json() == {"ok": True, "outcome": expect}
    if expect == "bad_body":
        return response.status_code == 400
    if expect == "too_large":
        return response.status_code == 413 and response.json()["error"] == "too_large"
    return response.status_code == 422 and response.json()["error"] == expect


def _bulk(server: Any, db: str, raws: list[bytes]) -> list[dict]:
    """_bulk_docs with documents already serialised (some nest deeper than orjson writes)."""
    body = b'{"docs":[' + b",".join(raws) + b"]}"
    response = server.http.post(f"{server.url}/{db}/_bulk_docs", content=body,
                                headers={"Content-Type": "application/json"}, timeout=120)
    assert response.status_code == 201, response.text[:500]
    rows = response.json()
    assert all(row.get("ok") for row in rows), [r for r in rows if not r.get("ok")][:3]
    return rows


def test_hostile_documents_through_the_feed_and_the_http_ingest(pouchdb, serve):
    now = int(time.time())
    couch = hostile.documents(SEED, now, COUCH_DOCS, "couch")
    http = hostile.documents(SEED, now, HTTP_DOCS, "http")
    bodies = hostile.bad_bodies(SEED, BAD_BODIES)
    big = [hostile.big_document(now, 10 << 20, "couch-big-10MB"),
           hostile.big_document(now, 7_900_000, "couch-big-near-limit")]
    db = pouchdb.new_db()
    service = serve(couchdb=[f"{pouchdb.url}/{db}"], since="0", token=TOKEN,
                    config=config_toml(snapshot_seconds=0.5, max_body_bytes=LIMIT))
    pid = service.process.pid
    started = time.monotonic()

    # -- phase 1: the feed and the HTTP ingest at once ---------------------------------------
    revs: dict[str, str] = {}

    def feed() -> None:
        for i in range(0, len(couch), 500):
            rows = _bulk(pouchdb, db, [c.raw for c in couch[i:i + 500]])
            revs.update((r["id"], r["rev"]) for r in rows)
        _bulk(pouchdb, db, big)

    feeder = threading.Thread(target=feed)
    feeder.start()
    # (what each POST sends, what it must get back)
    posts: list[tuple[Any, str | None, str, str]] = []
    for i, case in enumerate(http):
        body, content_type = encode_body(case.raw, ENCODINGS[i % 4])
        posts.append((body, content_type, case.expect, f"{case.kind}/{ENCODINGS[i % 4]}"))
    posts += [(body, ctype, "bad_body", kind) for kind, ctype, body in bodies]
    too_big = hostile.big_document(now, 10 << 20, "http-big")
    posts += [(too_big, "application/json", "too_large", "10 MB with Content-Length")] * 2

    def chunks():  # no Content-Length: refused while reading
        for i in range(0, len(too_big), 1 << 16):
            yield too_big[i:i + (1 << 16)]

    wrong: list[str] = []
    with httpx.Client(base_url=service.url, timeout=60,
                      limits=httpx.Limits(max_connections=8)) as client:
        def send(post: tuple[Any, str | None, str, str]) -> None:
            body, content_type, expect, what = post
            response = _post(client, body, content_type)
            if not _answer_matches(response, expect):
                wrong.append(f"{what}: expected {expect}, got {response.status_code} "
                             f"{response.text[:200]}")

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(send, posts))
        send((chunks(), "application/json", "too_large", "10 MB chunked"))
        http_seconds = time.monotonic() - started
        feeder.join()
        assert not wrong, f"{len(wrong)} POSTs answered wrongly, e.g. {wrong[:8]}"

        source = next(s["name"] for s in service.status()["sources"]
                      if s["name"].startswith("couchdb:"))
        want_couch = hostile.expected(couch) + Counter(accepted=len(big))
        want_http = hostile.expected(http) + Counter(bad_body=BAD_BODIES, too_large=3)
        _wait_counts(service, source, want_couch, want_http, timeout=90)
        counted_seconds = time.monotonic() - started

        # -- phase 2: duplicates, as CouchDB resends a document after a new _rev and as
        # FreeSWITCH retries a POST whose answer it did not get ----------------------------
        resent = [orjson.loads(c.raw) for c in couch
                  if c.kind in ("good", "wrong_types", "payloads_everywhere")][:DUPLICATES]
        for doc in resent:
            doc["_rev"], doc["resent"] = revs[doc["_id"]], True
        pouchdb.post_many(db, resent)
        retried = [p for p in posts if p[2] == "accepted"][:DUPLICATES]
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(send, [(b, c, "duplicate", w) for b, c, _, w in retried]))
        assert not wrong, f"{len(wrong)} retried POSTs answered wrongly, e.g. {wrong[:8]}"
        want_couch["duplicate"] += DUPLICATES
        want_http["duplicate"] += DUPLICATES
        _wait_counts(service, source, want_couch, want_http, timeout=30)

    # -- the service never stopped, and counted the good ones exactly -------------------------
    assert service.running and service.process.pid == pid and service.starts == 1
    good = [c.raw for c in couch + http if c.expect == "accepted"] + big
    differences = data_differences(service.data(), reference_data(good))
    assert not differences, differences
    _assert_snapshots_keep_working(service)
    _assert_payloads_are_served_only_as_json_text(service)
    stderr = service.stderr_text()
    for sign in ("Traceback", "stopped unexpectedly", "snapshot failed", "tick failed"):
        assert sign not in stderr, f"{sign!r} in the service's log:\n{service.stderr_tail()}"
    total = len(couch) + len(http) + len(big) + BAD_BODIES + 3 + 2 * DUPLICATES
    hostile_docs = sum(1 for c in couch + http if c.kind != "good") + BAD_BODIES + 5
    print(f"\n{total} documents ({hostile_docs} hostile, {len(good)} accepted): HTTP "
          f"({len(posts) + 1} POSTs, 8 at a time) done in {http_seconds:.1f} s, all counted "
          f"after {counted_seconds:.1f} s; by source {service.status()['by_source']}")


def _wait_counts(service: Any, source: str, couch: Counter, http: Counter,
                 timeout: float) -> None:
    want = {source: dict(+couch), "http": dict(+http)}

    def counted() -> bool:
        by_source = service.status()["by_source"]
        return sum(by_source.get(source, {}).values()) >= sum(couch.values()) and \
            sum(by_source.get("http", {}).values()) >= sum(http.values())

    service.wait(counted, timeout, "every hostile document to be counted", interval=0.5)
    assert service.status()["by_source"] == want


def _assert_snapshots_keep_working(service: Any) -> None:
    """A deeply nested CDR is the sample of an alert: saving it must not fail every snapshot."""
    before = service.status()["snapshots"]["count"]
    service.wait(lambda: service.status()["snapshots"]["count"] >= before + 2, 10,
                 "two more snapshots")
    assert service.status()["snapshots"]["last_error"] is None


PAYLOAD_MARKS = ("<script>alert(", "onerror=alert(1)", "<svg/onload=alert(4)>")


def _assert_payloads_are_served_only_as_json_text(service: Any) -> None:
    alerts = service.get("/6minutes/alerts")
    rejected = service.get("/6minutes/rejected", params={"limit": 1000})
    for name, response in {"alerts": alerts, "rejected": rejected,
                           "data": service.get("/6minutes/data"),
                           "status": service.get("/6minutes/status"),
                           "bad query": service.get("/6minutes/data",
                                                    params={"start": "<script>alert(1)</script>"})
                           }.items():
        assert response.headers["content-type"] == "application/json", name
        assert response.headers["x-content-type-options"] == "nosniff", name
        response.json()  # well-formed
    # The payloads are there, as text: proof that the checks below looked at something.
    assert any("<script>" in a["msg"] for a in alerts.json()), "no alert carries a payload"
    assert any("<script>" in r["body"] for r in rejected.json())
    deep = [a for a in alerts.json() if a["profile"].startswith("deep-")]
    assert deep and all(a["doc"]["variables"]["sip_term_status"] == "503" for a in deep)
    assert any("(nested too deep)" in orjson.dumps(a["doc"]).decode() for a in deep)
    for path in ("/6minutes", "/6minutes/", "/6minutes/<script>alert(1)</script>"):
        response = service.get(path)
        if response.headers.get("content-type", "").startswith("text/html"):
            for mark in PAYLOAD_MARKS:
                assert mark not in response.text, f"{mark!r} raw in the HTML of {path}"
    metrics = service.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(metrics.text)}
    outcomes = {s.labels["outcome"] for s in families["sixminutes_cdrs"].samples
                if s.labels.get("source") == "http"}
    assert {"accepted", "bad_body", "too_large", "bad_json", "not_object"} <= outcomes
