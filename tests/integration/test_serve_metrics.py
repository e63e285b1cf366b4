"""GET /metrics of a running service, parsed by prometheus_client's own parser."""
from __future__ import annotations

import time

import orjson
from prometheus_client.parser import text_string_to_metric_families

from service_process import WINDOW, config_toml, small_cdr, unique, window_of


def scrape(service) -> dict[str, dict[tuple, float]]:
    """{sample name: {sorted label items: value}}."""
    response = service.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = \
                sample.value
    return samples


def _away_from_a_window_boundary(margin: float = 20.0) -> None:
    """The 'last complete window' moves at every boundary: keep the test clear of one."""
    left = WINDOW - time.time() % WINDOW
    if left < margin:
        time.sleep(left + 0.5)


def test_cdrs_total_by_source_and_outcome_and_last_window_gauges(pouchdb, serve):
    _away_from_a_window_boundary()
    db = pouchdb.new_db()
    service = serve(couchdb=[f"{pouchdb.url}/{db}"], since="0", config=config_toml())
    source = service.source()["name"]
    _away_from_a_window_boundary()  # (again: starting the service may have taken a while)
    now = int(time.time())
    last = window_of(now) - WINDOW
    carrier, other = unique("m"), unique("m")

    def post(doc, expect=200, content_type="application/json"):
        response = service.post_cdr(orjson.dumps(doc) if isinstance(doc, dict) else doc,
                                    content_type)
        assert response.status_code == expect, response.text
        return response

    # The last complete window: carrier egress 4 calls (1 answered, 1 SIP 503), ingress 2.
    for k in range(4):
        answered = k == 0
        post(small_cdr(last + 10 + k, profile=carrier, direction="egress",
                       billsec="60" if answered else "0",
                       answer_epoch=str(last) if answered else "0",
                       sip_term_status="200" if answered else "503" if k == 1 else "486",
                       progress_mediamsec="1500"))
    repeated = small_cdr(last + 300, profile=carrier, direction="ingress")
    post(repeated)
    post(small_cdr(last + 301, profile=carrier, direction="ingress"))
    assert post(repeated).json()["outcome"] == "duplicate"
    # The current window (not the last complete one): one call.
    post(small_cdr(now, profile=carrier, direction="egress"))
    post(b"cdr=%ZZ", 400, "application/x-www-form-urlencoded")  # unreadable: bad_body
    # CouchDB: 3 CDRs of another carrier in the last window, and a design document.
    pouchdb.post_many(db, [small_cdr(last + 5, profile=other, _id=unique("doc"))
                           for _ in range(3)])
    pouchdb.put(db, {"_id": "_design/views"})
    service.wait_caught_up(pouchdb, db)

    metrics = scrape(service)
    assert metrics["sixminutes_cdrs_total"] == {
        (("outcome", "accepted"), ("source", "http")): 7,
        (("outcome", "duplicate"), ("source", "http")): 1,
        (("outcome", "bad_body"), ("source", "http")): 1,
        (("outcome", "accepted"), ("source", source)): 3,
        (("outcome", "design_doc"), ("source", source)): 1,
    }
    assert metrics["sixminutes_last_window_timestamp_seconds"] == {(): last}

    def gauge(name: str, profile: str, direction: str) -> float | None:
        return metrics[f"sixminutes_last_window_{name}"].get(
            (("direction", direction), ("profile", profile)))

    assert gauge("calls", carrier, "egress") == 4  # not the call of the current window
    assert gauge("calls", carrier, "ingress") == 2
    assert gauge("calls", other, "egress") == 3
    assert gauge("answered_calls", carrier, "egress") == 1
    assert gauge("zero_duration_calls", carrier, "egress") == 3
    assert gauge("network_failure_calls", carrier, "egress") == 1
    assert gauge("acd_seconds", carrier, "egress") == 60
    assert gauge("pdd_seconds", carrier, "egress") == 1.5
    assert gauge("answered_calls", carrier, "ingress") == 0
    assert {labels for labels in metrics["sixminutes_last_window_calls"]} == {
        (("direction", "egress"), ("profile", carrier)),
        (("direction", "ingress"), ("profile", carrier)),
        (("direction", "egress"), ("profile", other))}
    assert metrics["sixminutes_source_connected"] == {(("source", source),): 1,
                                                      (("source", "http"),): 1}
    assert metrics["sixminutes_alerts_raised_total"] == {(): 1}  # the 503
    assert metrics["sixminutes_event_clients"] == {(): 0}
    assert all(v == 0 for v in metrics["sixminutes_plugin_errors_total"].values())
    wakeups = metrics["sixminutes_event_loop_lag_seconds_count"][()]
    assert wakeups > 0 and metrics["sixminutes_event_loop_lag_seconds_bucket"][
        (("le", "+Inf"),)] == wakeups  # the loop's stalls, measured while it ran
    assert metrics["sixminutes_event_loop_lag_max_seconds"][()] >= 0
    assert window_of(time.time()) - WINDOW == last, "crossed a window boundary mid-test"


def test_a_cdr_the_engine_rejects_is_counted_under_one_outcome_only(serve):
    """One POSTed CDR without end_epoch: 422 bad_end_epoch. It is one document, so it must be
    counted once, under its reason — not also under `bad_body`."""
    service = serve(config=config_toml())
    response = service.post_cdr(orjson.dumps({"variables": {"billsec": "3"}}))
    assert response.status_code == 422 and response.json()["error"] == "bad_end_epoch"
    assert service.json("/6minutes/rejected")[0]["error"] == "bad_end_epoch"  # kept, good
    assert service.status()["by_source"] == {"http": {"bad_end_epoch": 1}}
    assert service.status()["rejected"] == {"bad_end_epoch": 1}
    assert scrape(service)["sixminutes_cdrs_total"] == {
        (("outcome", "bad_end_epoch"), ("source", "http")): 1}
